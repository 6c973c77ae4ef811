# probe: the tensor-core probe driver (emu/probe*.c) against simulated GPUs,
# its fingerprint and emu/kernels table agreement (label unit); `fp4sim
# probe` argument errors and the no-GPU path (cli); the real probes on the
# GPU present (label gpu: skipped, exit 77, without one). docs/probe.md.
fp4_add_test(test_probe test_probe.c "unit" fp4emu fp4kernels OpenMP::OpenMP_C ${CJSON_LIB})
target_include_directories(test_probe PRIVATE ${CJSON_INCLUDE})
fp4_add_test(test_gpu_probe test_gpu_probe.c "gpu" fp4emu fp4kernels)
set_tests_properties(test_gpu_probe PROPERTIES TIMEOUT 1800)

if(TARGET fp4sim)
  add_test(NAME cli_probe_no_gpu COMMAND test_probe nogpu $<TARGET_FILE:fp4sim>)
  set_tests_properties(cli_probe_no_gpu PROPERTIES LABELS unit SKIP_RETURN_CODE 77)
endif()
if(COMMAND fp4_cli_test AND TARGET fp4sim)
  fp4_cli_test(probe_help text ARGS probe --help REGEX "^usage: fp4sim probe")
  fp4_cli_test(probe_list text ARGS probe list REGEX "sm100-tcgen05-mxf4nvf4 +sm_100a")
  fp4_cli_test(probe_bad_instr usage ARGS probe --instr no-such-mma)
  fp4_cli_test(probe_bad_count usage ARGS probe --count 0)
  fp4_cli_test(probe_bad_count_text usage ARGS probe --count many)
  fp4_cli_test(probe_bad_simulate usage ARGS probe --simulate no-such-preset)
  fp4_cli_test(probe_sim_shape usage ARGS probe --simulate sm90-hgmma-f16 --instr sm120-mma-mxf4nvf4)
  fp4_cli_test(probe_rcp_no_out usage ARGS probe rcp)
  fp4_cli_test(probe_list_extra usage ARGS probe list extra)
  # A model outside the fit's space (round up): "unexplained", exit 1, cases saved.
  fp4_cli_test(probe_unexplained text
               ARGS probe --simulate sm90-hgmma-f16:out=ru23 --instr sm90-wgmma-f16-f32 --count 2000
                    --targeted 256 --cases ${CMAKE_CURRENT_BINARY_DIR}/probe-unexplained-cases.json
               EXPECT_RC 1 REGEX "UNEXPLAINED: no candidate model.*failing cases saved to")
  fp4_cli_test(probe_simulate json
               ARGS probe --simulate sm120-mxf4nvf4-cand-2x32 --instr sm120-mma-mxf4nvf4 --count 3000
                    --targeted 512 --json
               CHECKS "fp4sim_fingerprint=1~device.simulated=ON~instructions.#=1"
                      "instructions.0.name=sm120-mma-mxf4nvf4~instructions.0.verdict=explained"
                      "instructions.0.presets.2.name=sm120-mxf4nvf4-cand-2x32"
                      "instructions.0.presets.2.reproduces_fitted=ON~instructions.0.mismatches=0")
endif()
