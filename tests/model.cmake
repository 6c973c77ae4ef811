# model/ tests: config parsing (both layouts, the full R1 config), loader
# errors, the forward against the tiny transformers fixture (FP64 and FP32
# paths), incremental decode and greedy generation, the RoPE cos/sin sources
# (correctly rounded vs long double; MKL where it loads). Data: tests/data.
set(FP4_MODEL_TEST_DATA "${CMAKE_CURRENT_SOURCE_DIR}/data")
foreach(t config loader fixture decode trig torchsum)
  fp4_add_test(test_model_${t} test_model_${t}.c "unit" fp4model)
  target_compile_definitions(test_model_${t} PRIVATE FP4_MODEL_TEST_DATA="${FP4_MODEL_TEST_DATA}")
endforeach()
# Synthetic weights on demand; precision policies / quantized GEMM backend
# (checked against MPFR).
fp4_add_test(test_model_synth test_model_synth.c "unit" fp4model OpenMP::OpenMP_C)
fp4_add_test(test_model_policy test_model_policy.c "unit" fp4model fp4emu PkgConfig::MPFR PkgConfig::GMP)
# Quantized checkpoints (ModelOpt / compressed-tensors NVFP4, FP8 blocks),
# quantization configs and loader errors; writes its own tiny model.
fp4_add_test(test_model_quant_ckpt test_model_quant_ckpt.c "unit" fp4model)
foreach(t synth policy)
  target_compile_definitions(test_model_${t} PRIVATE FP4_MODEL_TEST_DATA="${FP4_MODEL_TEST_DATA}")
endforeach()

# The CLI's model run computes what the library computes (every traced op,
# bit for bit): the regression test of the o.gemm bug (issue 11).
add_executable(test_cli_model_trace test_cli_model_trace.c)
target_link_libraries(test_cli_model_trace PRIVATE fp4model fp4ref fp4testutil)
add_dependencies(test_cli_model_trace fp4sim)
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/cli_model_trace)
add_test(NAME test_cli_model_trace
         COMMAND test_cli_model_trace $<TARGET_FILE:fp4sim> ${FP4_MODEL_TEST_DATA}/hf-deepseek-v3-tiny
                 ${CMAKE_CURRENT_BINARY_DIR}/cli_model_trace)
set_tests_properties(test_cli_model_trace PROPERTIES LABELS unit)
