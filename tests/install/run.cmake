# Installs the duet build tree into a staging prefix, then configures,
# builds and runs a separate project that uses find_package(duet).
foreach(var DUET_BUILD_DIR WORK_DIR CMAKE_CXX_COMPILER)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()
set(prefix "${WORK_DIR}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}")

execute_process(COMMAND ${CMAKE_COMMAND} --install "${DUET_BUILD_DIR}" --prefix "${prefix}"
                RESULT_VARIABLE rc OUTPUT_QUIET)
if(rc)
  message(FATAL_ERROR "cmake --install failed: ${rc}")
endif()

# The consumer compiles as duet did: the same standard library (e.g.
# clang's -stdlib=libc++) and sanitizers.
set(flags "${CXX_FLAGS}")
if(SANITIZE)
  string(APPEND flags " -fsanitize=${SANITIZE}")
endif()
# CONSUMER: the project under tests/install (default "consumer"); with
# TOOLCHAIN (Emscripten) it is cross-built and run by RUNNER (node).
if(NOT DEFINED CONSUMER)
  set(CONSUMER consumer)
endif()
set(cross "")
if(TOOLCHAIN)
  set(cross "-DCMAKE_TOOLCHAIN_FILE=${TOOLCHAIN}" "-DCMAKE_FIND_ROOT_PATH=${prefix}" -DCMAKE_BUILD_TYPE=Release)
else()
  set(cross "-DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} -S "${CMAKE_CURRENT_LIST_DIR}/${CONSUMER}" -B "${WORK_DIR}/build"
                        -DCMAKE_PREFIX_PATH=${prefix} ${cross}
                        "-DCMAKE_CXX_FLAGS=${flags}" "-DCMAKE_EXE_LINKER_FLAGS=${flags}"
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer failed: ${rc}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build "${WORK_DIR}/build" RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed: ${rc}")
endif()
if(RUNNER)
  # Node 20 would fetch() the .wasm by its path: --no-experimental-fetch.
  execute_process(COMMAND ${RUNNER} --no-experimental-fetch "${WORK_DIR}/build/consumer.js" RESULT_VARIABLE rc
                  OUTPUT_VARIABLE out)
else()
  execute_process(COMMAND "${WORK_DIR}/build/consumer" RESULT_VARIABLE rc OUTPUT_VARIABLE out)
endif()
if(rc OR NOT out MATCHES "consumer ok")
  message(FATAL_ERROR "the consumer failed: ${rc}: ${out}")
endif()
message(STATUS "find_package(duet) consumer: ${out}")
