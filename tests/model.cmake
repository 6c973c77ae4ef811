# model/ tests: config parsing (both layouts, the full R1 config), loader
# errors, the forward against the tiny transformers fixture (FP64 and FP32
# paths), incremental decode and greedy generation. Data: tests/data.
set(FP4_MODEL_TEST_DATA "${CMAKE_CURRENT_SOURCE_DIR}/data")
foreach(t config loader fixture decode)
  fp4_add_test(test_model_${t} test_model_${t}.c "unit" fp4model)
  target_compile_definitions(test_model_${t} PRIVATE FP4_MODEL_TEST_DATA="${FP4_MODEL_TEST_DATA}")
endforeach()
