# tests/fast.cmake: the fast array paths (ref/formats_array.c) against the
# exact scalar path. Default: boundary binades, edges, random, threads, modes
# (label unit). test_fast_all_f32: all 2^32 FP32 inputs for E2M1 and E4M3,
# every SIMD variant (label long: ctest -L long; a few minutes on 2 cores).
fp4_add_test(test_fast test_fast.c unit)
add_test(NAME test_fast_all_f32 COMMAND test_fast --long)
set_tests_properties(test_fast_all_f32 PROPERTIES LABELS long TIMEOUT 3600)
