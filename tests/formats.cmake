# Formats verification: ref/formats.c against an independent MPFR oracle
# (tests/mpfr_oracle.c). Labels: unit, exhaustive (both default CI), long.
#
# Work level: the exhaustive/boundary suites run in full by default. Set
# FP4SIM_FORMATS_LEVEL=0 (quick: every input, fewer rounding configurations)
# to shorten them, e.g. for sanitizer builds; sanitizer builds pick level 0
# by themselves unless the variable says otherwise.
add_library(fp4mpfroracle STATIC mpfr_oracle.c)
target_include_directories(fp4mpfroracle PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(fp4mpfroracle PUBLIC fp4ref PkgConfig::MPFR PkgConfig::GMP)

fp4_add_test(test_formats_decode test_formats_decode.c "unit" fp4mpfroracle)
fp4_add_test(test_formats_special test_formats_special.c "unit" fp4mpfroracle)
fp4_add_test(test_formats_bigint test_formats_bigint.c "unit" fp4mpfroracle)
fp4_add_test(test_formats_nan test_formats_nan.c "unit" fp4mpfroracle)
fp4_add_test(test_formats_tininess test_formats_tininess.c "unit" fp4mpfroracle)

# One executable, one CTest case per argument (so ctest -j runs them side by side).
function(fp4_formats_cases exe src labels)
  add_executable(${exe} ${src})
  target_link_libraries(${exe} PRIVATE fp4ref fp4testutil fp4mpfroracle OpenMP::OpenMP_C)
  foreach(arg ${ARGN})
    add_test(NAME ${exe}_${arg} COMMAND ${exe} ${arg})
    set_tests_properties(${exe}_${arg} PROPERTIES LABELS "${labels}" SKIP_RETURN_CODE 77)
  endforeach()
endfunction()

# Every FP16 and BF16 pattern (and every narrow code) -> each target format.
fp4_formats_cases(test_formats_exhaustive test_formats_exhaustive.c "exhaustive"
                  e2m1 e2m3 e3m2 e4m3 ue4m3 e5m2 ue8m0 f16 bf16 f32 narrow)
# Midpoints +-1,2 ulps of every adjacent code pair, overflow and underflow edges.
fp4_formats_cases(test_formats_boundaries test_formats_boundaries.c "exhaustive"
                  e2m1 e2m3 e3m2 e4m3 ue4m3 e5m2 ue8m0 f16 bf16)

# All 2^32 FP32 inputs -> e2m1 and e4m3 (RNE, satfinite); not in default CI.
# An optional argument limits the count: test_formats_long 0x4000000.
add_executable(test_formats_long test_formats_long.c)
target_link_libraries(test_formats_long PRIVATE fp4ref fp4testutil fp4mpfroracle
                      OpenMP::OpenMP_C)
add_test(NAME test_formats_long COMMAND test_formats_long)
set_tests_properties(test_formats_long PROPERTIES LABELS "long" TIMEOUT 36000)
