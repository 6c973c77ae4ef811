# I/O tests: safetensors reader/writer and sharded checkpoints (ref/fp4io*).
# tests/data holds small copies from the tiny DeepSeek-V3 fixture so the
# fixture tests always run; test_io_shared_fixture reads the full fixture from
# shared/ (beside the repository, or $FP4SIM_FIXTURES) and skips without it.
set(FP4_IO_TEST_DATA "${CMAKE_CURRENT_SOURCE_DIR}/data")
get_filename_component(FP4_IO_SHARED_FIXTURES "${PROJECT_SOURCE_DIR}/../shared/fixtures" ABSOLUTE)

foreach(t errors roundtrip ckpt fixture fuzz shared_fixture)
  fp4_add_test(test_io_${t} test_io_${t}.c "unit")
  if(t STREQUAL "fixture")
    target_link_libraries(test_io_fixture PRIVATE fp4model) # the tensor manifest
  endif()
  target_compile_definitions(test_io_${t} PRIVATE
    FP4_IO_TEST_DATA="${FP4_IO_TEST_DATA}"
    FP4_IO_SHARED_FIXTURES="${FP4_IO_SHARED_FIXTURES}")
  target_include_directories(test_io_${t} PRIVATE ${CJSON_INCLUDE})
endforeach()

# libFuzzer harness (clang only): cmake -DCMAKE_C_COMPILER=clang -DFP4SIM_FUZZ=ON.
# The reader's sources are compiled into the harness itself so that libFuzzer
# sees their coverage; see docs/io.md for running it.
option(FP4SIM_FUZZ "Build the libFuzzer harnesses in tests/fuzz (clang only)" OFF)
if(FP4SIM_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "FP4SIM_FUZZ=ON needs clang (found ${CMAKE_C_COMPILER_ID}); "
                        "configure with -DCMAKE_C_COMPILER=clang")
  endif()
  foreach(h safetensors index)
    add_executable(fuzz_${h} fuzz/fuzz_${h}.c
      ${PROJECT_SOURCE_DIR}/ref/fp4io.c ${PROJECT_SOURCE_DIR}/ref/fp4io_write.c
      ${PROJECT_SOURCE_DIR}/ref/fp4io_ckpt.c)
    target_include_directories(fuzz_${h} PRIVATE ${PROJECT_SOURCE_DIR}/ref ${CJSON_INCLUDE})
    target_compile_options(fuzz_${h} PRIVATE -fsanitize=fuzzer,address,undefined
                           -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
    target_link_options(fuzz_${h} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_${h} PRIVATE ${CJSON_LIB})
    # A short run as a test (label fuzz, not in default CI). New inputs go to
    # the first corpus directory, in the build tree; the seeds stay untouched.
    # (The index harness writes a file per input, hence fewer runs.)
    file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz_corpus_${h})
    if(h STREQUAL "index")
      set(runs 3000)
    else()
      set(runs 20000)
    endif()
    add_test(NAME fuzz_${h}_smoke
             COMMAND fuzz_${h} -runs=${runs} -seed=1 -max_len=4096
                     -dict=${CMAKE_CURRENT_SOURCE_DIR}/fuzz/safetensors.dict
                     ${CMAKE_CURRENT_BINARY_DIR}/fuzz_corpus_${h}
                     ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_${h})
    set_tests_properties(fuzz_${h}_smoke PROPERTIES LABELS "fuzz")
  endforeach()
endif()

# The one error channel of every library (fp4ref.h "Errors").
fp4_add_test(test_error test_error.c "unit" fp4kernels Threads::Threads)

# The one counter-based generator (fp4rng.h) against Random123 and its KATs.
fp4_add_test(test_rng test_rng.c "unit")
