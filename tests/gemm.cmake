# Exact NVFP4 GEMM oracle vs MPFR, reference modes, bad arguments, threads.
fp4_add_test(test_gemm test_gemm.c "unit" PkgConfig::MPFR PkgConfig::GMP)
