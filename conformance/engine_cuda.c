/* engine_cuda.c - "cuda:INSTR": a GEMM computed by the GPU's tensor-core
 * instruction INSTR (the probe catalog: fp4sim probe list), one K step at a
 * time, each step's D fed back as the next step's C (a plain chain, the
 * structure "emu:PRESET" models without promotion or split-K), then ref/'s
 * epilogue on the host. It measures the instruction, not a library's
 * kernel: compare it with emu presets, or run cuBLASLt through a plugin.
 * Without CUDA or without a GPU that has INSTR, opening it reports
 * FP4_ERR_UNSUPPORTED: a conformance run lists it as "not supported". */
#include "fp4conform.h"
#include "fp4emu.h"
#include "fp4kernels.h"

#include <stdlib.h>
#include <string.h>

typedef struct cuda_eng {
    fp4k_probe_instr instr;
    const fp4k_probe_desc *d;
    const fp4emu_probe_instr *ins;
} cuda_eng;

typedef struct batch {
    int64_t tm, tn, tiles;
    uint8_t *a, *b, *sa, *sb; /* a/b: one code per byte, or two bytes for 16-bit elements */
    uint32_t *c, *d;
} batch;

static void batch_free(batch *b) {
    free(b->a), free(b->b), free(b->sa), free(b->sb), free(b->c), free(b->d);
}

/* Copies the K step s of rows [r0, r0 + rows) of X into tile rows (zero padding). */
static void fill(const fp4_tensor *X, int64_t r0, int rows, int64_t k0, int k, int esz,
                 uint8_t *dst, uint8_t *sdst) {
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < k; j++) {
            uint64_t code = 0;
            if (r0 + r < X->rows && k0 + j < X->cols) code = fp4_tensor_code(X, r0 + r, k0 + j);
            if (esz == 2) ((uint16_t *)dst)[r * k + j] = (uint16_t)code;
            else dst[r * k + j] = (uint8_t)code;
        }
    for (int r = 0; sdst && r < rows; r++)
        for (int g = 0; g < k / 16; g++)
            sdst[r * (k / 16) + g] = r0 + r < X->rows && k0 + g * 16 < X->cols
                                         ? (uint8_t)fp4_tensor_scale_code(X, r0 + r, k0 + g * 16)
                                         : 0x38; /* 1.0 over padding zeros */
}

static int cuda_gemm(fp4_engine *self, const fp4_gemm_call *c) {
    cuda_eng *x = self->ctx;
    const fp4k_probe_desc *d = x->d;
    const int m = d->m, n = d->n, k = d->k, esz = d->elem == FP4K_ELEM_16 ? 2 : 1;
    const bool scaled = d->scale_block > 0;
    const fp4_tensor *A = c->A, *B = c->B;
    batch bt;
    memset(&bt, 0, sizeof bt);
    bt.tm = (A->rows + m - 1) / m, bt.tn = (B->rows + n - 1) / n, bt.tiles = bt.tm * bt.tn;
    const int64_t T = bt.tiles;
    bt.a = malloc((size_t)(T * m * k * esz));
    bt.b = malloc((size_t)(T * n * k * esz));
    bt.sa = scaled ? malloc((size_t)(T * m * (k / 16))) : NULL;
    bt.sb = scaled ? malloc((size_t)(T * n * (k / 16))) : NULL;
    bt.c = calloc((size_t)(T * m * n), sizeof(uint32_t));
    bt.d = malloc((size_t)(T * m * n) * sizeof(uint32_t));
    if (!bt.a || !bt.b || (scaled && (!bt.sa || !bt.sb)) || !bt.c || !bt.d) {
        batch_free(&bt);
        return fp4_fail_kind(FP4_ERR_NOMEM, "cuda engine: out of memory");
    }
    const int64_t K = A->cols, steps = (K + k - 1) / k;
    int rc = 0;
    for (int64_t s = 0; s < steps && !rc; s++) {
        for (int64_t t = 0; t < T; t++) {
            int64_t i = t / bt.tn, j = t % bt.tn;
            fill(A, i * m, m, s * k, k, esz, bt.a + t * m * k * esz, scaled ? bt.sa + t * m * (k / 16) : NULL);
            fill(B, j * n, n, s * k, k, esz, bt.b + t * n * k * esz, scaled ? bt.sb + t * n * (k / 16) : NULL);
        }
        fp4k_probe_req req = {x->instr, T, bt.a, bt.b, bt.sa, bt.sb, bt.c};
        if (fp4k_probe_mma(&req, bt.d) != FP4K_OK) rc = -1;
        else memcpy(bt.c, bt.d, (size_t)(T * m * n) * sizeof(uint32_t));
    }
    int64_t m0, m1, n0, n1, N = B->rows;
    fp4_gemm_call_window(c, &m0, &m1, &n0, &n1);
    const fp4_format accf = d->acc_bits == 16 ? FP4_FMT_F16 : FP4_FMT_F32;
    for (int64_t r = m0; !rc && r < m1; r++)
        for (int64_t q = n0; q < n1; q++) {
            int64_t t = (r / m) * bt.tn + q / n;
            uint64_t acc = bt.c[(t * m + r % m) * n + q % n];
            if (accf == FP4_FMT_F16) acc &= 0xFFFF;
            fp4_value v = fp4_decode(accf, acc);
            float cv = c->C ? c->C[r * N + q] : 0.0f;
            fp4_gemm_store(c->D, c->out, r * N + q,
                           fp4_epilogue_apply(c->epi, &v, c->alpha, A->global_scale,
                                              B->global_scale, c->beta, cv, c->out, c->out_round));
        }
    batch_free(&bt);
    return rc;
}

static void cuda_close(fp4_engine *self) {
    if (!self) return;
    free(self->ctx);
    free(self);
}

int fp4conf_cuda_open(const char *args, fp4_engine **out) {
    fp4k_probe_instr instr = fp4k_probe_find(args);
    const fp4emu_probe_instr *ins = fp4emu_probe_instr_get(args);
    if (instr == FP4K_PROBE_COUNT || !ins)
        return fp4_fail("cuda: unknown instruction '%s' (fp4sim engines lists them)", args);
    if (!fp4k_built_with_cuda())
        return fp4_fail_kind(FP4_ERR_UNSUPPORTED, "cuda:%s: not supported: fp4sim was built "
                             "without CUDA", args);
    fp4k_device_info di;
    if (fp4k_get_device_info(0, &di) != FP4K_OK)
        return fp4_fail_wrap("cuda:%s: not supported", args);
    const fp4k_probe_desc *d = fp4k_probe_info(instr);
    if (d->cc_major && (d->cc_major != di.cc_major || d->cc_minor != di.cc_minor))
        return fp4_fail_kind(FP4_ERR_UNSUPPORTED, "cuda:%s: not supported: needs sm_%d%da, this "
                             "GPU is sm_%d%d (%s)", args, d->cc_major, d->cc_minor, di.cc_major,
                             di.cc_minor, di.name);
    fp4_engine *e = calloc(1, sizeof *e);
    cuda_eng *x = calloc(1, sizeof *x);
    if (!e || !x) {
        free(e), free(x);
        return fp4_fail_kind(FP4_ERR_NOMEM, "out of memory");
    }
    x->instr = instr, x->d = d, x->ins = ins;
    e->abi = FP4_ENGINE_ABI_VERSION;
    snprintf(e->name, sizeof e->name, "cuda:%.200s", args);
    snprintf(e->kind, sizeof e->kind, "cuda");
    snprintf(e->evidence, sizeof e->evidence, "%.200s on %.200s (sm_%d%d, driver %d, runtime %d), "
             "one instruction per K step chained through C", d->ptx, di.name, di.cc_major,
             di.cc_minor, di.driver_version, di.runtime_version);
    fp4_tensor probe_kind = fp4_tensor_plain(ins->in.a_fmt, 1, d->k, NULL);
    if (d->scale_block) probe_kind = fp4_tensor_nvfp4(1, d->k, NULL, NULL, 1.0f);
    e->caps.kinds_a = e->caps.kinds_b = FP4_TK_BIT(fp4_tensor_kind(&probe_kind));
    e->caps.outs = (1u << FP4_FMT_F32) | (1u << FP4_FMT_F16) | (1u << FP4_FMT_BF16);
    e->caps.epilogues = (1u << FP4_EPI_EXACT) | (1u << FP4_EPI_F32);
    e->caps.device = true;
    e->caps.k_multiple = d->scale_block ? 16 : 1;
    e->gemm = cuda_gemm;
    e->close = cuda_close;
    e->ctx = x;
    *out = e;
    return 0;
}
