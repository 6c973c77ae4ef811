# tests/regress.cmake - output bits pinned across refactors: the SHA-256 of
# files written by fp4sim gemm / quantize / model run on fixed inputs and
# seeds, recorded before the engine refactor (tests/regress/outputs.sha256).
add_test(NAME regress_outputs
         COMMAND ${CMAKE_COMMAND} -E env bash -c
                 "'${CMAKE_CURRENT_SOURCE_DIR}/regress/outputs.sh' '$<TARGET_FILE:fp4sim>' \
'${CMAKE_CURRENT_SOURCE_DIR}/data' '${CMAKE_CURRENT_BINARY_DIR}/regress' | \
diff -u '${CMAKE_CURRENT_SOURCE_DIR}/regress/outputs.sha256' -")
set_tests_properties(regress_outputs PROPERTIES LABELS unit TIMEOUT 600)
