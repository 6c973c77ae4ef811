# tests/engines.cmake - the engine interface: one battery against every engine
# kind through the registry (ref, the example plugin, replay, emu).
add_executable(test_engines test_engines.c)
target_link_libraries(test_engines PRIVATE fp4conform fp4emu fp4ref fp4testutil)
add_dependencies(test_engines fp4_plugin_example)
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/engines)
add_test(NAME test_engines
         COMMAND test_engines $<TARGET_FILE:fp4_plugin_example> ${CMAKE_CURRENT_SOURCE_DIR}/data
                 ${CMAKE_CURRENT_BINARY_DIR}/engines)
set_tests_properties(test_engines PROPERTIES LABELS unit)

# The recorded H100 cuBLASLt outputs, reproduced by emu engines with a kernel
# structure (docs/emu.md).
add_executable(test_emu_cublas test_emu_cublas.c)
target_link_libraries(test_emu_cublas PRIVATE fp4conform fp4ref fp4testutil)
add_test(NAME test_emu_cublas COMMAND test_emu_cublas ${CMAKE_CURRENT_SOURCE_DIR}/data)
set_tests_properties(test_emu_cublas PROPERTIES LABELS unit)
# The search tool itself still runs (its --verify uses the public API only).
add_test(NAME tool_cublas_search_verify
         COMMAND cublas_search --verify --file
                 ${CMAKE_CURRENT_SOURCE_DIR}/data/h100-cublaslt-gemm/h100-cublaslt-gemm.safetensors)
set_tests_properties(tool_cublas_search_verify PROPERTIES LABELS unit)

# fp4sim engines: the list (with each preset's evidence), one spec opened.
if(COMMAND fp4_cli_test AND TARGET fp4sim)
  fp4_cli_test(engines_list text ARGS engines
               REGEX "sm90-qgmma-e4m3-f32 +measured.*evidence of each emu preset.*sm90-qgmma-e4m3-f32 \\[measured\\]: wgmma")
  fp4_cli_test(engines_json json ARGS engines --json
               CHECKS "emu_presets.0.spec=emu:sm90-hgmma-f16~emu_presets.0.status=measured~kinds.0=ref")
  # (A ';' structure cannot pass through CMake's argument lists; the
  # override form shows the same path. Structures: test_emu_cublas.)
  fp4_cli_test(engines_one text ARGS engines emu:sm90-qgmma-e4m3-f32:F=14
               REGEX "kind: +emu.*F=14.*QGMMA")
  fp4_cli_test(engines_one_json json ARGS engines ref --json CHECKS "kind=ref~exact=ON")
  fp4_cli_test(engines_unknown usage ARGS engines emu:no-such-preset)
  fp4_cli_test(engines_two usage ARGS engines ref ref)
endif()
