# Exact NVFP4 GEMM oracle vs MPFR, reference modes, bad arguments, threads.
fp4_add_test(test_gemm test_gemm.c "unit" fp4emu PkgConfig::MPFR PkgConfig::GMP)
fp4_add_test(test_gemm_bs test_gemm_bs.c "unit" PkgConfig::MPFR PkgConfig::GMP)

# ref's exact add / mul / fma on codes (the one FP32 epilogue and emu's adds):
# exhaustive small formats against MPFR, random wide formats, the host FPU.
fp4_add_test(test_ops test_ops.c "unit" fp4mpfroracle)
target_compile_options(test_ops PRIVATE -frounding-math)
set_tests_properties(test_ops PROPERTIES TIMEOUT 900)
