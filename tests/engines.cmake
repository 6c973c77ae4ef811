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
