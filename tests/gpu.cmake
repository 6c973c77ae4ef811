# GPU tests: run on a machine with a CUDA device, exit 77 (skipped) elsewhere.
fp4_add_test(test_gpu_convert test_gpu_convert.c "gpu" fp4kernels)
