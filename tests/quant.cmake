# Quantizers (ref/quant*.c, ref/mufu.c): every recipe against hand-derived
# vectors and its published formula, the MUFU.RCP table, the scale layouts,
# and recipe-vs-recipe disagreement rates. Label: unit (default CI).
fp4_add_test(test_quant_mufu test_quant_mufu.c "unit")
fp4_add_test(test_quant_layout test_quant_layout.c "unit")
fp4_add_test(test_quant_recipes test_quant_recipes.c "unit")
fp4_add_test(test_quant_mx test_quant_mx.c "unit")
fp4_add_test(test_quant_disagree test_quant_disagree.c "unit")
# The source .bin must be what the library embedded (copied measured data).
target_compile_definitions(test_quant_mufu PRIVATE
  FP4_MUFU_BIN="${PROJECT_SOURCE_DIR}/data/mufu-rcp-sm90/mufu_rcp_sm90_delta2bit.bin")
