# emu/: block-FMA datapath models, presets, GEMM driver, fitter (label unit).
fp4_add_test(test_emu_block test_emu_block.c "unit" fp4emu)
fp4_add_test(test_emu_exact test_emu_exact.c "unit" fp4emu PkgConfig::MPFR PkgConfig::GMP)
fp4_add_test(test_emu_gemm test_emu_gemm.c "unit" fp4emu OpenMP::OpenMP_C)
fp4_add_test(test_emu_fit test_emu_fit.c "unit" fp4emu OpenMP::OpenMP_C)
