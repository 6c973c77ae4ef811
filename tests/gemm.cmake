# Exact NVFP4 GEMM oracle vs MPFR, reference modes, bad arguments, threads.
fp4_add_test(test_gemm test_gemm.c "unit" fp4emu PkgConfig::MPFR PkgConfig::GMP)
fp4_add_test(test_gemm_bs test_gemm_bs.c "unit" PkgConfig::MPFR PkgConfig::GMP)
