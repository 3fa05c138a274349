# Compiler settings shared by every duet target.

set(CMAKE_CXX_EXTENSIONS OFF)

find_program(DUET_CCACHE ccache)
if(DUET_CCACHE AND NOT EMSCRIPTEN AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER "${DUET_CCACHE}")
endif()

if(DUET_SANITIZE)
  set(_duet_san -fsanitize=${DUET_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_options(${_duet_san})
  add_link_options(${_duet_san})
endif()

if(EMSCRIPTEN)
  # Exceptions are off by default in Emscripten; duet reports errors with
  # them. Emscripten's default (-fexceptions) emulates them in JavaScript:
  # every call that may throw goes through a JS trampoline (invoke_*),
  # which made the scheduler's hot paths 8-15x slower than native (W8).
  # WebAssembly's own exception handling (-fwasm-exceptions; Node 20 and
  # Chromium run it) has no such cost. Asyncify (the fibers flavour) does
  # not support it, so that flavour keeps the emulation.
  if(DUET_WASM_FIBERS)
    set(_duet_wasm_eh -fexceptions)
  else()
    set(_duet_wasm_eh -fwasm-exceptions)
  endif()
  add_compile_options(${_duet_wasm_eh})
  add_link_options(${_duet_wasm_eh} -sALLOW_MEMORY_GROWTH=1 -sEXIT_RUNTIME=1
                   # One .js file with the wasm inlined: Node 20's loader would
                   # otherwise try fetch() on the .wasm path and fail.
                   -sSINGLE_FILE=1)
  if(DUET_WASM_FIBERS)
    # Asyncify (under Emscripten's fibers) cannot handle tail calls, so
    # this flavour does without symmetric transfer (duet/coroutine.hpp).
    add_compile_definitions(DUET_NO_SYMMETRIC_TRANSFER)
  else()
    # Symmetric transfer (await_suspend returning a handle) needs wasm tail
    # calls. Only those: with -mtail-call alone, Emscripten 3.1.6's LLVM
    # also turns ordinary sibling calls into return_call, including calls
    # whose by-value arguments live in the caller's shadow-stack frame,
    # which the return_call has already popped — the callee reads freed
    # stack (seen: Timeout::enter passing its deadline, a std::optional, to
    # reschedule(), which scheduled the timer at a garbage time). The
    # coroutines' musttail calls are unaffected by -fno-optimize-sibling-calls.
    add_compile_options(-mtail-call -fno-optimize-sibling-calls)
    add_link_options(-mtail-call)
  endif()
endif()

if(MINGW)
  # Self-contained .exe files for Wine and for users: no MinGW DLLs to ship.
  add_link_options(-static -static-libgcc -static-libstdc++)
endif()

# duet_target_defaults(<target>): C++20 and the warning set, privately.
function(duet_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 $<$<BOOL:${DUET_WERROR}>:/WX>)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic $<$<BOOL:${DUET_WERROR}>:-Werror>)
  endif()
endfunction()
