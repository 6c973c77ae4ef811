/* replay.c - "replay:FILE[:u8=FMT]": an engine that answers GEMM calls with
 * outputs recorded in a safetensors file (a GPU run, another library), so
 * recorded hardware is a conformance target on any machine.
 *
 * File layout (docs/engines.md "Replay files"): each case is a name prefix P
 * with operand tensors P.A [M, K] and P.B [N, K] and the output P.D [M, N]
 * (F32, F16 or BF16). Element formats come from the dtype (F32, F16, BF16,
 * F8_E4M3, F8_E5M2, F4 = packed E2M1) or, for U8, from __metadata__
 * "P.format" / the spec's u8=FMT; block-scaled kinds add P.A_scale /
 * P.B_scale (F8_E4M3 = UE4M3 bytes, F8_E8M0, or F32 per 128) with
 * "P.kind" naming the kind (nvfp4, mxfp4, mxfp8-e4m3, fp8-block128, ...),
 * and optional F32 scalars P.A_scale_2 / P.B_scale_2 (tensor scales).
 * "P.alpha" / "P.beta" metadata record the epilogue scalars (default 1, 0).
 * The recorded H100 cuBLASLt file (shared/data/h100-cublaslt-gemm) names
 * its output P.C: when P.D is absent, P.C is taken as the output.
 * A call is answered when its A and B equal a case's bit for bit (kind,
 * shape, codes, scales, tensor scales), alpha and beta match and beta is 0;
 * anything else is "not recorded" (FP4_ERR_UNSUPPORTED).
 */
#include "fp4conform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rcase {
    char prefix[160];
    fp4_tensor A, B;
    const fp4_st_tensor *D;
    fp4_format out;
    float alpha, beta;
} rcase;

typedef struct replay {
    fp4_st_file *f;
    rcase *cases;
    int64_t n;
    fp4_format u8; /* what U8 operands hold (FP4_FMT_COUNT: unknown) */
} replay;

static const char *meta(const fp4_st_file *f, const char *p, const char *key) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", p, key);
    return fp4_st_metadata(f, k);
}

static const fp4_st_tensor *find(const fp4_st_file *f, const char *p, const char *suffix) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", p, suffix);
    return fp4_st_find(f, k);
}

/* The element format of an operand tensor. */
static int elem_of(const replay *r, const char *p, const fp4_st_tensor *t, fp4_format *f,
                   bool *packed) {
    *packed = false;
    switch (t->dtype) {
    case FP4_ST_F32: *f = FP4_FMT_F32; return 0;
    case FP4_ST_F16: *f = FP4_FMT_F16; return 0;
    case FP4_ST_BF16: *f = FP4_FMT_BF16; return 0;
    case FP4_ST_F8_E4M3: *f = FP4_FMT_E4M3; return 0;
    case FP4_ST_F8_E5M2: *f = FP4_FMT_E5M2; return 0;
    case FP4_ST_F4: *f = FP4_FMT_E2M1, *packed = true; return 0;
    case FP4_ST_U8: {
        const char *m = meta(r->f, p, "format");
        if (m && fp4_format_from_name(m, f) == 0) {
            *packed = *f == FP4_FMT_E2M1;
            return 0;
        }
        if (r->u8 != FP4_FMT_COUNT) {
            *f = r->u8;
            *packed = *f == FP4_FMT_E2M1;
            return 0;
        }
        return fp4_fail("replay: %s: tensor '%s' is U8: say what it holds with __metadata__ "
                        "\"%s.format\" or replay:FILE:u8=FMT (e.g. u8=e4m3)",
                        fp4_st_path(r->f), t->name, p);
    }
    default:
        return fp4_fail("replay: %s: tensor '%s' has dtype %s, not an operand format",
                        fp4_st_path(r->f), t->name, t->dtype_name);
    }
}

/* One operand of case p ("A" or "B"). */
static int operand(const replay *r, const char *p, const char *which, fp4_tensor *out) {
    const fp4_st_tensor *t = find(r->f, p, which);
    if (!t || t->ndim != 2)
        return fp4_fail("replay: %s: case '%s' needs a 2-D tensor %s.%s", fp4_st_path(r->f), p, p,
                        which);
    fp4_format f;
    bool packed;
    if (elem_of(r, p, t, &f, &packed)) return -1;
    int64_t cols = t->dtype == FP4_ST_U8 && packed ? 2 * t->shape[1] : t->shape[1];
    *out = fp4_tensor_plain(f, t->shape[0], cols, t->data);
    out->packed = packed;
    char sname[16], gname[16];
    snprintf(sname, sizeof sname, "%s_scale", which);
    snprintf(gname, sizeof gname, "%s_scale_2", which);
    const fp4_st_tensor *s = find(r->f, p, sname), *g = find(r->f, p, gname);
    if (g) {
        if (g->dtype != FP4_ST_F32 || g->numel != 1)
            return fp4_fail("replay: %s: %s.%s must be one F32", fp4_st_path(r->f), p, gname);
        memcpy(&out->global_scale, g->data, 4);
    }
    if (!s) return fp4_tensor_check(out, p);
    const char *kn = meta(r->f, p, "kind");
    fp4_tkind k;
    if (!kn || fp4_tkind_from_name(kn, &k))
        return fp4_fail("replay: %s: case '%s' has block scales: name its kind in __metadata__ "
                        "\"%s.kind\" (nvfp4, mxfp4, mxfp8-e4m3, fp8-block128, ...)",
                        fp4_st_path(r->f), p, p);
    out->scales = s->data;
    out->block_rows = 1;
    switch (k) {
    case FP4_TK_NVFP4: out->scale_fmt = FP4_FMT_UE4M3, out->block = 16; break;
    case FP4_TK_FP8_BLOCK128:
        out->scale_fmt = FP4_FMT_F32, out->block = 128;
        out->block_rows = s->shape[0] == t->shape[0] ? 1 : 128;
        break;
    default: out->scale_fmt = FP4_FMT_UE8M0, out->block = 32; break;
    }
    if (fp4_tensor_check(out, p)) return -1;
    int64_t need = fp4_tensor_scales_count(out) * fp4_tensor_scale_bytes(out);
    if (s->nbytes != need)
        return fp4_fail("replay: %s: %s.%s holds %lld bytes, the %s operand needs %lld",
                        fp4_st_path(r->f), p, sname, (long long)s->nbytes, kn, (long long)need);
    return 0;
}

static float meta_float(const fp4_st_file *f, const char *p, const char *key, float dflt) {
    const char *m = meta(f, p, key);
    return m ? strtof(m, NULL) : dflt;
}

static int load_case(replay *r, const char *p, rcase *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->prefix, sizeof c->prefix, "%s", p);
    if (operand(r, p, "A", &c->A) || operand(r, p, "B", &c->B)) return -1;
    c->D = find(r->f, p, "D");
    if (!c->D) c->D = find(r->f, p, "C"); /* the h100-cublaslt-gemm layout */
    if (!c->D || c->D->ndim != 2 || c->D->shape[0] != c->A.rows || c->D->shape[1] != c->B.rows)
        return fp4_fail("replay: %s: case '%s' needs an output %s.D [%lld, %lld]",
                        fp4_st_path(r->f), p, p, (long long)c->A.rows, (long long)c->B.rows);
    c->out = c->D->dtype == FP4_ST_F32 ? FP4_FMT_F32 : c->D->dtype == FP4_ST_F16 ? FP4_FMT_F16
           : c->D->dtype == FP4_ST_BF16 ? FP4_FMT_BF16 : FP4_FMT_COUNT;
    if (c->out == FP4_FMT_COUNT)
        return fp4_fail("replay: %s: %s is %s; outputs are F32, F16 or BF16", fp4_st_path(r->f),
                        c->D->name, c->D->dtype_name);
    c->alpha = meta_float(r->f, p, "alpha", 1.0f);
    c->beta = meta_float(r->f, p, "beta", 0.0f);
    return 0;
}

static bool same_bytes(const void *a, const void *b, int64_t n) {
    return n == 0 || (a && b && memcmp(a, b, (size_t)n) == 0);
}

/* Bitwise equality of two operands (kind, shape, codes, scales, tensor scale). */
static bool same_tensor(const fp4_tensor *x, const fp4_tensor *y) {
    if (x->elem != y->elem || x->packed != y->packed || x->rows != y->rows || x->cols != y->cols ||
        x->scale_fmt != y->scale_fmt || fp4_f32_bits(x->global_scale) != fp4_f32_bits(y->global_scale))
        return false;
    if (!same_bytes(x->codes, y->codes, fp4_tensor_codes_bytes(x))) return false;
    if (!fp4_tensor_scaled(x)) return true;
    if (x->block != y->block || x->block_rows != y->block_rows || x->layout != y->layout) return false;
    return same_bytes(x->scales, y->scales, fp4_tensor_scales_count(x) * fp4_tensor_scale_bytes(x));
}

static int replay_gemm(fp4_engine *self, const fp4_gemm_call *c) {
    replay *r = self->ctx;
    for (int64_t i = 0; i < r->n; i++) {
        const rcase *rc = &r->cases[i];
        if (!same_tensor(c->A, &rc->A) || !same_tensor(c->B, &rc->B)) continue;
        if (c->beta != 0.0f || fp4_f32_bits(c->alpha) != fp4_f32_bits(rc->alpha) || rc->beta != 0.0f)
            return fp4_fail_kind(FP4_ERR_UNSUPPORTED, "replay: case '%s' was recorded with alpha "
                                 "%g, beta %g; the call has alpha %g, beta %g", rc->prefix,
                                 rc->alpha, rc->beta, c->alpha, c->beta);
        if (c->out != rc->out)
            return fp4_fail_kind(FP4_ERR_UNSUPPORTED, "replay: case '%s' recorded %s outputs, the "
                                 "call asks for %s", rc->prefix, fp4_format_get(rc->out)->name,
                                 fp4_format_get(c->out)->name);
        int64_t m0, m1, n0, n1, N = c->B->rows;
        fp4_gemm_call_window(c, &m0, &m1, &n0, &n1);
        const int es = c->out == FP4_FMT_F32 ? 4 : 2;
        for (int64_t m = m0; m < m1; m++)
            memcpy((char *)c->D + (m * N + n0) * es, (const char *)rc->D->data + (m * N + n0) * es,
                   (size_t)((n1 - n0) * es));
        return 0;
    }
    return fp4_fail_kind(FP4_ERR_UNSUPPORTED, "replay: %s holds no case with these operands "
                         "(%s [%lld, %lld] x %s [%lld, %lld]); it answers only what was recorded",
                         fp4_st_path(r->f), fp4_tkind_name(fp4_tensor_kind(c->A)),
                         (long long)c->A->rows, (long long)c->A->cols,
                         fp4_tkind_name(fp4_tensor_kind(c->B)), (long long)c->B->rows,
                         (long long)c->B->cols);
}

static void replay_free(replay *r) {
    if (!r) return;
    fp4_st_close(r->f);
    free(r->cases);
    free(r);
}

static void replay_close(fp4_engine *self) {
    if (!self) return;
    replay_free(self->ctx);
    free(self);
}

/* Splits "FILE[:u8=FMT]". */
static int parse_args(const char *args, char *path, size_t n, fp4_format *u8) {
    *u8 = FP4_FMT_COUNT;
    const char *opt = strstr(args, ":u8=");
    size_t len = opt ? (size_t)(opt - args) : strlen(args);
    if (len == 0 || len >= n) return fp4_fail("replay: give the file: replay:FILE[:u8=FMT]");
    memcpy(path, args, len);
    path[len] = '\0';
    if (opt && fp4_format_from_name(opt + 4, u8))
        return fp4_fail("replay: u8=%s is not a format (%s)", opt + 4, fp4_format_names());
    return 0;
}

int fp4conf_replay_open(const char *args, fp4_engine **out) {
    char path[1024];
    replay *r = calloc(1, sizeof *r);
    if (!r) return fp4_fail_kind(FP4_ERR_NOMEM, "out of memory");
    if (parse_args(args, path, sizeof path, &r->u8) || fp4_st_open(path, &r->f) != FP4_ST_OK) {
        replay_free(r);
        return -1;
    }
    int64_t nt = fp4_st_count(r->f);
    r->cases = calloc((size_t)(nt ? nt : 1), sizeof *r->cases);
    if (!r->cases) {
        replay_free(r);
        return fp4_fail_kind(FP4_ERR_NOMEM, "out of memory");
    }
    uint32_t kinds = 0;
    for (int64_t i = 0; i < nt; i++) {
        const char *name = fp4_st_at(r->f, i)->name;
        size_t len = strlen(name);
        if (len < 3 || strcmp(name + len - 2, ".A") != 0 || len - 2 >= sizeof r->cases[0].prefix)
            continue;
        char p[160];
        memcpy(p, name, len - 2);
        p[len - 2] = '\0';
        if (load_case(r, p, &r->cases[r->n])) {
            replay_free(r);
            return -1;
        }
        kinds |= FP4_TK_BIT(fp4_tensor_kind(&r->cases[r->n].A)) |
                 FP4_TK_BIT(fp4_tensor_kind(&r->cases[r->n].B));
        r->n++;
    }
    if (r->n == 0) {
        replay_free(r);
        return fp4_fail("replay: %s holds no case (tensors P.A, P.B and P.D)", path);
    }
    fp4_engine *e = calloc(1, sizeof *e);
    if (!e) {
        replay_free(r);
        return fp4_fail_kind(FP4_ERR_NOMEM, "out of memory");
    }
    e->abi = FP4_ENGINE_ABI_VERSION;
    snprintf(e->name, sizeof e->name, "replay:%.240s", args);
    snprintf(e->kind, sizeof e->kind, "replay");
    const char *src = fp4_st_metadata(r->f, "source");
    snprintf(e->evidence, sizeof e->evidence, "%lld recorded cases from %.400s%s%.400s",
             (long long)r->n, path, src ? ": " : "", src ? src : "");
    e->caps.kinds_a = e->caps.kinds_b = kinds;
    e->caps.mixed = true;
    e->caps.outs = (1u << FP4_FMT_F32) | (1u << FP4_FMT_F16) | (1u << FP4_FMT_BF16);
    e->caps.epilogues = (1u << FP4_EPI_EXACT) | (1u << FP4_EPI_F32);
    e->caps.k_multiple = 1;
    e->gemm = replay_gemm;
    e->close = replay_close;
    e->ctx = r;
    *out = e;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Recording                                                                 */
/* ------------------------------------------------------------------------ */

static int put(fp4_st_writer *w, const char *p, const char *suffix, fp4_st_dtype dt, int32_t ndim,
               int64_t d0, int64_t d1, const void *data, int64_t nbytes) {
    char name[256];
    int64_t shape[2] = {d0, d1};
    snprintf(name, sizeof name, "%s.%s", p, suffix);
    return fp4_st_writer_add_copy(w, name, dt, ndim, shape, data, nbytes) == FP4_ST_OK ? 0 : -1;
}

static int meta_put(fp4_st_writer *w, const char *p, const char *key, const char *value) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", p, key);
    return fp4_st_writer_set_metadata(w, k, value) == FP4_ST_OK ? 0 : -1;
}

static fp4_st_dtype operand_dtype(const fp4_tensor *t) {
    if (t->packed) return FP4_ST_F4;
    switch (t->elem) {
    case FP4_FMT_E4M3: return FP4_ST_F8_E4M3;
    case FP4_FMT_E5M2: return FP4_ST_F8_E5M2;
    case FP4_FMT_F16: return FP4_ST_F16;
    case FP4_FMT_BF16: return FP4_ST_BF16;
    case FP4_FMT_F32: return FP4_ST_F32;
    default: return FP4_ST_U8;
    }
}

static int record_operand(fp4_st_writer *w, const char *p, const char *which, const fp4_tensor *t0) {
    fp4_tensor t;
    void *own = NULL;
    if (fp4_tensor_linearize(t0, &t, &own)) return -1;
    fp4_st_dtype dt = operand_dtype(&t);
    int rc = put(w, p, which, dt, 2, t.rows, t.cols, t.codes, fp4_tensor_codes_bytes(&t));
    if (!rc && dt == FP4_ST_U8) {
        char k[32];
        snprintf(k, sizeof k, "format");
        rc = meta_put(w, p, k, fp4_format_get(t.elem)->name);
    }
    if (!rc && fp4_tensor_scaled(&t)) {
        char sfx[16];
        snprintf(sfx, sizeof sfx, "%s_scale", which);
        fp4_st_dtype sd = t.scale_fmt == FP4_FMT_F32 ? FP4_ST_F32
                          : t.scale_fmt == FP4_FMT_UE8M0 ? FP4_ST_F8_E8M0 : FP4_ST_F8_E4M3;
        rc = put(w, p, sfx, sd, 2, fp4_tensor_scale_rows(&t), fp4_tensor_scale_cols(&t), t.scales,
                 fp4_tensor_scales_count(&t) * fp4_tensor_scale_bytes(&t));
        if (!rc) rc = meta_put(w, p, "kind", fp4_tkind_name(fp4_tensor_kind(&t)));
    }
    if (!rc && t.global_scale != 1.0f) {
        char sfx[16];
        snprintf(sfx, sizeof sfx, "%s_scale_2", which);
        rc = put(w, p, sfx, FP4_ST_F32, 0, 1, 0, &t.global_scale, 4);
    }
    free(own);
    return rc;
}

int fp4conf_replay_record(fp4_st_writer *w, const char *prefix, const fp4_gemm_call *c) {
    if (fp4_gemm_call_check(c)) return -1;
    if (c->m0 || c->n0 || (c->m1 && c->m1 != c->A->rows) || (c->n1 && c->n1 != c->B->rows))
        return fp4_fail("replay record: the call must cover the whole output");
    if (c->beta != 0.0f)
        return fp4_fail("replay record: beta != 0 (C is not recorded; replays answer beta = 0)");
    if (fp4_tensor_kind(c->A) != fp4_tensor_kind(c->B) && c->A->scale_fmt != FP4_FMT_COUNT &&
        c->B->scale_fmt != FP4_FMT_COUNT && (c->A->scale_fmt != c->B->scale_fmt))
        return fp4_fail("replay record: A and B block scales of different kinds are not recordable");
    fp4_st_dtype dt = c->out == FP4_FMT_F32 ? FP4_ST_F32 : c->out == FP4_FMT_F16 ? FP4_ST_F16 : FP4_ST_BF16;
    const int64_t es = c->out == FP4_FMT_F32 ? 4 : 2;
    char a[64];
    if (record_operand(w, prefix, "A", c->A) || record_operand(w, prefix, "B", c->B) ||
        put(w, prefix, "D", dt, 2, c->A->rows, c->B->rows, c->D, c->A->rows * c->B->rows * es))
        return -1;
    snprintf(a, sizeof a, "%.9g", (double)c->alpha);
    return c->alpha != 1.0f ? meta_put(w, prefix, "alpha", a) : 0;
}
