# Compiler settings shared by every duet target.

set(CMAKE_CXX_EXTENSIONS OFF)

include(DuetCompilerCheck)

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
  # them. Two models exist, and one program must use one of them throughout:
  #
  #  * JavaScript-emulated (-fexceptions), the default: every call that may
  #    throw goes through a JS trampoline (invoke_*), so the scheduler's hot
  #    paths are slower (docs/compilers.md has the figures).
  #  * WebAssembly's own (-fwasm-exceptions; Node 20 and every current
  #    browser run it), with DUET_WASM_NATIVE_EXCEPTIONS=ON: no such cost,
  #    but LLVM (14 through 22) miscompiles a try/catch around a co_await in
  #    a loop body at -O1 and above — the catch is skipped and the exception
  #    leaves the coroutine (WebAssemblyFixIrreducibleControlFlow routes
  #    the edge into the catch handler through its dispatch block; the
  #    inliner creates the shape). No narrower flag avoids it, so the fast
  #    model is an opt-in for code that keeps such try blocks out of loops.
  #
  # Asyncify (the fibers flavour) supports only the emulated model.
  #
  # No -mtail-call: duet hands control between coroutines through its
  # trampoline on wasm (duet/coroutine.hpp). Emscripten 3.1.6's tail calls
  # popped a caller's shadow-stack frame before a sibling call read its
  # by-value arguments, and leaked the resume function's shadow-stack frame
  # on every symmetric transfer (a million-await chain ran out of memory).
  if(DUET_WASM_NATIVE_EXCEPTIONS AND NOT DUET_WASM_FIBERS)
    set(_duet_wasm_eh -fwasm-exceptions)
  else()
    set(_duet_wasm_eh -fexceptions)
  endif()
  add_compile_options(${_duet_wasm_eh})
  add_link_options(${_duet_wasm_eh} -sALLOW_MEMORY_GROWTH=1 -sEXIT_RUNTIME=1
                   # One .js file with the wasm inlined: Node 20's loader would
                   # otherwise try fetch() on the .wasm path and fail.
                   -sSINGLE_FILE=1)
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
