# Installed package: a consumer built with find_package and with pkg-config
# (tests/consumer/run.cmake). Also the -march check: the files with target
# attributes (SIMD clones) must compile when the baseline already holds
# AVX-512 (FP4SIM_NATIVE on such a host), whatever this host is.
set(_fp4_consumer_flags "")
if(FP4SIM_SANITIZE)
  set(_fp4_consumer_flags "-fsanitize=address,undefined")
endif()
add_test(NAME install_consumer
         COMMAND ${CMAKE_COMMAND} -DBUILD_DIR=${PROJECT_BINARY_DIR} -DSRC_DIR=${PROJECT_SOURCE_DIR}
                 -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer
                 -DC_COMPILER=${CMAKE_C_COMPILER} "-DEXTRA_FLAGS=${_fp4_consumer_flags}"
                 -P ${CMAKE_CURRENT_SOURCE_DIR}/consumer/run.cmake)
set_tests_properties(install_consumer PROPERTIES LABELS unit TIMEOUT 600)

include(CheckCCompilerFlag)
check_c_compiler_flag(-march=sapphirerapids FP4_HAVE_MARCH_SPR)
if(FP4_HAVE_MARCH_SPR)
  # Object files only (never run): the target attributes must be accepted.
  add_library(fp4_march_check OBJECT EXCLUDE_FROM_ALL
              ${PROJECT_SOURCE_DIR}/ref/formats_array.c ${PROJECT_SOURCE_DIR}/ref/gemm.c
              ${PROJECT_SOURCE_DIR}/ref/rng.c ${PROJECT_SOURCE_DIR}/model/backend.c
              ${PROJECT_SOURCE_DIR}/model/synth.c)
  target_compile_options(fp4_march_check PRIVATE -march=sapphirerapids)
  target_include_directories(fp4_march_check PRIVATE ${CJSON_INCLUDE} ${RANDOM123_INCLUDE})
  target_link_libraries(fp4_march_check PRIVATE fp4model fp4emu OpenMP::OpenMP_C)
  add_test(NAME build_march_avx512
           COMMAND ${CMAKE_COMMAND} --build ${PROJECT_BINARY_DIR} --target fp4_march_check)
  set_tests_properties(build_march_avx512 PROPERTIES LABELS unit TIMEOUT 600)
endif()
