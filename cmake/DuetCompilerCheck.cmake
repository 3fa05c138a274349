# Warns, at configure time, about compilers known to miscompile ordinary
# coroutine code, and says what to avoid. Included by duet's own build and
# by find_package(duet), so that a consumer hears it too. See
# docs/compilers.md for the details and the reproductions.
#
# Set DUET_NO_COMPILER_WARNINGS to silence it once you have read it.

function(duet_check_compiler)
  if(DUET_NO_COMPILER_WARNINGS)
    return()
  endif()
  set(id "${CMAKE_CXX_COMPILER_ID}")
  set(version "${CMAKE_CXX_COMPILER_VERSION}")
  if(id STREQUAL "GNU" AND version VERSION_LESS 13)
    message(WARNING
      "duet: g++ ${version} miscompiles temporaries that live across a co_await "
      "(seen with Debian's g++ 12.2): `co_await q.put(T{...})`, `co_return co_await f(T{...})`, "
      "`co_await [x]() -> Coro<T> {...}()` and `timeout(1s, f(T{...}))` free the temporary twice. "
      "Name the value first (`T v{...}; co_await q.put(std::move(v));`, `auto c = f(v); co_await std::move(c);`). "
      "duet itself is written that way; see docs/compilers.md. "
      "(Set DUET_NO_COMPILER_WARNINGS=ON to silence this.)")
  elseif(id MATCHES "Clang" AND NOT EMSCRIPTEN AND version VERSION_LESS 17)
    message(WARNING
      "duet: clang ${version} is not supported (clang 14 cannot build duet's tests and fails to link "
      "-fsanitize=undefined builds of coroutine code); duet is tested with clang 19 and g++ 12. "
      "See docs/compilers.md. (Set DUET_NO_COMPILER_WARNINGS=ON to silence this.)")
  endif()
endfunction()

duet_check_compiler()
