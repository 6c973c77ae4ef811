# run.cmake - test install_consumer (cmake -P): installs the build into a
# scratch prefix, then builds consumer.c against it twice, as a user would:
# with find_package(fp4sim) and with pkg-config, and runs both programs.
# Variables: BUILD_DIR, SRC_DIR, WORK_DIR, C_COMPILER, EXTRA_FLAGS (the
# sanitizer flags when the tree was built with them).
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: ${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(step_out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)
step("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})

file(GLOB internal ${prefix}/include/fp4sim/*internal*.h)
if(internal)
  message(FATAL_ERROR "install_consumer: internal headers were installed: ${internal}")
endif()

# 1. CMake package.
step("consumer configure" ${CMAKE_COMMAND} -S ${SRC_DIR}/tests/consumer -B ${WORK_DIR}/build
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER}
     "-DCMAKE_C_FLAGS=${EXTRA_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${EXTRA_FLAGS}")
step("consumer build" ${CMAKE_COMMAND} --build ${WORK_DIR}/build)
step("consumer (find_package) run" ${WORK_DIR}/build/consumer)
message(STATUS "find_package: ${step_out}")

# 2. pkg-config (static link: --static brings the private dependencies).
find_program(PKG_CONFIG_EXE pkg-config REQUIRED)
file(GLOB pcdirs ${prefix}/lib*/pkgconfig ${prefix}/lib/*/pkgconfig)
string(REPLACE ";" ":" pcpath "${pcdirs}")
set(ENV{PKG_CONFIG_PATH} "${pcpath}")
step("pkg-config" ${PKG_CONFIG_EXE} --cflags --libs --static fp4sim)
string(STRIP "${step_out}" flags)
separate_arguments(flags UNIX_COMMAND "${flags}")
separate_arguments(extra UNIX_COMMAND "${EXTRA_FLAGS}")
step("consumer (pkg-config) compile" ${C_COMPILER} ${extra} ${SRC_DIR}/tests/consumer/consumer.c
     ${flags} -o ${WORK_DIR}/consumer-pc)
step("consumer (pkg-config) run" ${WORK_DIR}/consumer-pc)
message(STATUS "pkg-config: ${step_out}")
