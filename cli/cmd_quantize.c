/* cmd_quantize.c - `fp4sim quantize`: quantize the 2-D float tensors of a
 * safetensors file with one or more recipes, summarize the scales, codes and
 * error, compare two recipes bit by bit, and write a ModelOpt-style
 * checkpoint (docs/cli.md "fp4sim quantize"). */
#include "args.h"
#include "commands.h"
#include "fp4io.h"
#include "fp4quant.h"
#include "render.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char k_help[] =
    "usage: fp4sim quantize IN.safetensors [options]\n"
    "\n"
    "Quantizes 2-D F32/BF16/F16 tensors of IN with each recipe and prints, per\n"
    "tensor and recipe: shape, tensor scale (stored and decode polarity), the\n"
    "number of blocks whose scale byte is 0x00, the smallest and largest scale\n"
    "byte, the saturated element codes (|E2M1| = 6, or the FP8 maximum) and the\n"
    "relative RMS error of the dequantized tensor (finite inputs only).\n"
    "\n"
    "options:\n"
    "  --tensor NAME[,NAME]  tensors to quantize (default: every 2-D float tensor)\n"
    "  --recipe R[,R...]     recipes (default: modelopt); see docs/recipes.md\n"
    "  --amax X              calibrated amax for every tensor (default: max |x|)\n"
    "  --layout L            scale layout: linear (default) or swizzled\n"
    "  --out OUT.safetensors write NAME (U8 codes), NAME_scale (F8_E4M3 / F8_E8M0\n"
    "                        [rows, cols/block]; U8 padded 128x4 tiles with\n"
    "                        --layout swizzled) and NAME_scale_2 (F32 scalar,\n"
    "                        decode-polarity tensor scale); needs one recipe\n"
    "  --compare A,B         count scale bytes and codes where recipes A and B differ\n"
    "  --json                JSON object instead of text\n";

enum { MAX_RECIPES = 32, MAX_SHOWN_DIFFS = 5 };

typedef struct q_state {
    const char *in, *out;
    char *names_buf;       /* --tensor values joined with ',' (malloc'd) */
    const fp4_qrecipe *recipes[MAX_RECIPES];
    int nrecipes;
    const fp4_qrecipe *cmp[2];
    bool have_cmp, json, have_amax;
    float amax;
    fp4_scale_layout layout;
    int npos;
} q_state;

/* Summary of one (tensor, recipe). */
typedef struct q_stats {
    const fp4_qrecipe *recipe;
    float amax, g_stored, g_decode, g_encode;
    int64_t blocks, zero_blocks, saturated;
    int scale_min, scale_max;
    double rel_rms;
} q_stats;

typedef struct q_diff_pos {
    int64_t row, block;
    uint8_t sa, sb;
    char ca[80], cb[80];
} q_diff_pos;

typedef struct q_cmp {
    int64_t blocks, elems, scale_diff, code_diff;
    int nshown;
    q_diff_pos shown[MAX_SHOWN_DIFFS];
} q_cmp;

typedef struct q_tensor_result {
    const fp4_st_tensor *t;
    q_stats stats[MAX_RECIPES];
    bool have_cmp;
    q_cmp cmp;
} q_tensor_result;

/* ------------------------------------------------------------------------ */
/* Options                                                                   */
/* ------------------------------------------------------------------------ */

static int opt_tensor(void *s, const char *name, const char *v) {
    q_state *st = s;
    size_t old = st->names_buf ? strlen(st->names_buf) : 0, add = strlen(v);
    if (add == 0) return cli_usage_error("quantize: %s: empty tensor name", name);
    char *p = realloc(st->names_buf, old + add + 2);
    if (!p) return cli_fail("quantize: out of memory");
    if (old) p[old++] = ',';
    memcpy(p + old, v, add + 1);
    st->names_buf = p;
    return CLI_OK;
}

static int parse_recipe(const char *what, const char *s, size_t len, const fp4_qrecipe **out) {
    char name[96];
    if (len == 0 || len >= sizeof name)
        return cli_usage_error("quantize: %s: empty or overlong recipe name in '%s'", what, s);
    memcpy(name, s, len);
    name[len] = 0;
    if (fp4_qrecipe_from_name(name, out) != 0)
        return cli_usage_error("quantize: unknown recipe '%s' for %s (valid: %s)", name, what,
                               fp4_qrecipe_names());
    return CLI_OK;
}

static int opt_recipe(void *s, const char *name, const char *v) {
    q_state *st = s;
    const char *p = v;
    for (;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (st->nrecipes >= MAX_RECIPES)
            return cli_usage_error("quantize: %s: more than %d recipes", name, MAX_RECIPES);
        int rc = parse_recipe(name, p, len, &st->recipes[st->nrecipes]);
        if (rc != CLI_OK) return rc;
        st->nrecipes++;
        if (!c) break;
        p = c + 1;
    }
    return CLI_OK;
}

static int opt_compare(void *s, const char *name, const char *v) {
    q_state *st = s;
    const char *c = strchr(v, ',');
    if (!c || strchr(c + 1, ','))
        return cli_usage_error("quantize: %s wants two recipes A,B, got '%s'", name, v);
    int rc = parse_recipe(name, v, (size_t)(c - v), &st->cmp[0]);
    if (rc == CLI_OK) rc = parse_recipe(name, c + 1, strlen(c + 1), &st->cmp[1]);
    if (rc == CLI_OK && st->cmp[0]->block != st->cmp[1]->block)
        return cli_usage_error("quantize: %s: recipes %s and %s use different block sizes", name,
                               st->cmp[0]->name, st->cmp[1]->name);
    if (rc == CLI_OK && st->cmp[0]->elem != st->cmp[1]->elem)
        return cli_usage_error("quantize: %s: recipes %s and %s use different element formats",
                               name, st->cmp[0]->name, st->cmp[1]->name);
    st->have_cmp = true;
    return rc;
}

static int opt_out(void *s, const char *name, const char *v) {
    ((q_state *)s)->out = v;
    return CLI_OK;
}

static int opt_layout(void *s, const char *name, const char *v) {
    q_state *st = s;
    if (strcmp(v, "linear") == 0) st->layout = FP4_SCALE_LINEAR;
    else if (strcmp(v, "swizzled") == 0) st->layout = FP4_SCALE_SWIZZLED;
    else
        return cli_usage_error("quantize: unknown layout '%s' for %s (valid: linear, swizzled)",
                               v, name);
    return CLI_OK;
}

static int opt_amax(void *s, const char *name, const char *v) {
    q_state *st = s;
    char *end;
    float x = strtof(v, &end);
    if (end == v || *end || !isfinite(x) || !(x > 0))
        return cli_usage_error("quantize: %s wants a finite positive number, got '%s'", name, v);
    st->amax = x;
    st->have_amax = true;
    return CLI_OK;
}

static int opt_json(void *s, const char *n, const char *v) {
    ((q_state *)s)->json = true;
    return CLI_OK;
}

static int add_input(void *s, const char *arg) {
    q_state *st = s;
    if (st->npos++ > 0) return cli_usage_error("quantize: unexpected argument '%s'", arg);
    st->in = arg;
    return CLI_OK;
}

static const cli_opt k_opts[] = {
    {"--tensor", true, opt_tensor}, {"--recipe", true, opt_recipe},
    {"--compare", true, opt_compare}, {"--out", true, opt_out},
    {"--layout", true, opt_layout}, {"--amax", true, opt_amax},
    {"--json", false, opt_json},
};

/* ------------------------------------------------------------------------ */
/* Tensor selection and checks                                               */
/* ------------------------------------------------------------------------ */

static bool float_dtype(fp4_st_dtype d, fp4_format *f) {
    switch (d) {
    case FP4_ST_F32: *f = FP4_FMT_F32; return true;
    case FP4_ST_BF16: *f = FP4_FMT_BF16; return true;
    case FP4_ST_F16: *f = FP4_FMT_F16; return true;
    default: return false;
    }
}

static int check_tensor(const q_state *st, const fp4_st_tensor *t) {
    fp4_format f;
    if (!float_dtype(t->dtype, &f))
        return cli_usage_error("quantize: tensor '%s' is %s; only F32, BF16 and F16 are "
                               "quantized",
                               t->name, t->dtype_name);
    if (t->ndim != 2)
        return cli_usage_error("quantize: tensor '%s' has %d dimensions; only 2-D tensors are "
                               "quantized",
                               t->name, (int)t->ndim);
    for (int i = 0; i < st->nrecipes; i++)
        if (t->shape[1] % st->recipes[i]->block != 0)
            return cli_usage_error("quantize: tensor '%s' has %lld columns, not a multiple of "
                                   "%d (the block of recipe %s)",
                                   t->name, (long long)t->shape[1], st->recipes[i]->block,
                                   st->recipes[i]->name);
    if (st->have_cmp && t->shape[1] % st->cmp[0]->block != 0)
        return cli_usage_error("quantize: tensor '%s' has %lld columns, not a multiple of %d",
                               t->name, (long long)t->shape[1], st->cmp[0]->block);
    return CLI_OK;
}

/* Fills *sel with the tensors to quantize (malloc'd array of pointers). */
static int select_tensors(q_state *st, fp4_st_file *f, const fp4_st_tensor ***sel, int64_t *n) {
    int64_t cap = fp4_st_count(f) + 1;
    if (st->names_buf) {
        cap = 1;
        for (const char *p = st->names_buf; *p; p++) cap += *p == ',';
    }
    const fp4_st_tensor **v = calloc((size_t)cap, sizeof *v);
    if (!v) return cli_fail("quantize: out of memory");
    *sel = v;
    *n = 0;
    if (st->names_buf) {
        char *save = NULL;
        for (char *tok = strtok_r(st->names_buf, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            const fp4_st_tensor *t = fp4_st_find(f, tok);
            if (!t)
                return cli_usage_error("quantize: %s: no tensor named '%s'", st->in, tok);
            int rc = check_tensor(st, t);
            if (rc != CLI_OK) return rc;
            v[(*n)++] = t;
        }
        if (*n == 0) return cli_usage_error("quantize: --tensor: no tensor name given");
    } else {
        fp4_format fmt;
        for (int64_t i = 0; i < fp4_st_count(f); i++) {
            const fp4_st_tensor *t = fp4_st_at(f, i);
            if (t->ndim != 2 || !float_dtype(t->dtype, &fmt)) continue;
            int rc = check_tensor(st, t);
            if (rc != CLI_OK) return rc;
            v[(*n)++] = t;
        }
        if (*n == 0)
            return cli_usage_error("quantize: %s holds no 2-D F32/BF16/F16 tensor", st->in);
    }
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* Quantizing and statistics                                                 */
/* ------------------------------------------------------------------------ */

static bool code_saturated(fp4_format elem, uint8_t c) {
    switch (elem) {
    case FP4_FMT_E2M1: return (c & 7) == 7;
    case FP4_FMT_E4M3: return (c & 0x7f) == 0x7e;
    case FP4_FMT_E5M2: return (c & 0x7f) == 0x7b;
    default: return false;
    }
}

static int quantize_one(const q_state *st, const fp4_st_tensor *t, const void *x,
                        const fp4_qrecipe *r, fp4_qtensor *q) {
    fp4_format fmt = FP4_FMT_F32;
    float_dtype(t->dtype, &fmt);
    fp4_qopts o = fp4_qopts_default();
    o.layout = st->layout;
    if (st->have_amax) {
        o.global_source = FP4_QGS_AMAX;
        o.amax = st->amax;
    }
    if (fp4_quantize(r, fmt, x, t->shape[0], t->shape[1], &o, q) != 0)
        return cli_lib_error("quantize: tensor '%s', recipe %s", t->name, r->name);
    return CLI_OK;
}

static int compute_stats(const fp4_st_tensor *t, const void *x, const fp4_qtensor *q,
                         q_stats *s) {
    int64_t rows = q->t.rows, cols = q->t.cols, n = rows * cols;
    fp4_format fmt = FP4_FMT_F32;
    float_dtype(t->dtype, &fmt);
    memset(s, 0, sizeof *s);
    s->recipe = q->recipe;
    s->amax = q->amax;
    s->g_stored = q->global_stored;
    s->g_decode = q->global_decode;
    s->g_encode = q->global_encode;
    s->scale_min = 255;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < fp4_tensor_scale_cols(&q->t); g++) {
            int b = fp4_qtensor_scale(q, r, g * q->t.block);
            s->blocks++;
            s->zero_blocks += b == 0;
            if (b < s->scale_min) s->scale_min = b;
            if (b > s->scale_max) s->scale_max = b;
        }
    if (s->blocks == 0) s->scale_min = 0;
    double *dq = malloc((size_t)(n > 0 ? n : 1) * sizeof *dq);
    if (!dq) return cli_fail("quantize: out of memory");
    if (fp4_qtensor_dequantize(q, dq) != 0) {
        free(dq);
        return cli_lib_error("quantize");
    }
    double num = 0, den = 0;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++) {
            int64_t i = r * cols + c;
            s->saturated += code_saturated(q->t.elem, fp4_qtensor_code(q, r, c));
            double xi = fmt == FP4_FMT_F32
                            ? (double)((const float *)x)[i]
                            : fp4_to_f64(fmt, ((const uint16_t *)x)[i]);
            if (!isfinite(xi) || !isfinite(dq[i])) continue;
            num += (dq[i] - xi) * (dq[i] - xi);
            den += xi * xi;
        }
    s->rel_rms = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0);
    free(dq);
    return CLI_OK;
}

static void block_codes(const fp4_qtensor *q, int64_t r, int64_t g, char *buf, size_t n) {
    size_t k = 0;
    buf[0] = 0;
    for (int64_t c = g * q->t.block; c < (g + 1) * q->t.block && k + 3 < n; c++) {
        uint8_t code = fp4_qtensor_code(q, r, c);
        k += (size_t)snprintf(buf + k, n - k, q->t.elem == FP4_FMT_E2M1 ? "%x" : "%02x", code);
    }
}

static void compare(const fp4_qtensor *a, const fp4_qtensor *b, q_cmp *c) {
    memset(c, 0, sizeof *c);
    c->blocks = a->t.rows * fp4_tensor_scale_cols(&a->t);
    c->elems = a->t.rows * a->t.cols;
    for (int64_t r = 0; r < a->t.rows; r++)
        for (int64_t g = 0; g < fp4_tensor_scale_cols(&a->t); g++) {
            uint8_t sa = fp4_qtensor_scale(a, r, g * a->t.block);
            uint8_t sb = fp4_qtensor_scale(b, r, g * b->t.block);
            bool differ = sa != sb;
            c->scale_diff += differ;
            for (int64_t k = g * a->t.block; k < (g + 1) * a->t.block; k++) {
                bool d = fp4_qtensor_code(a, r, k) != fp4_qtensor_code(b, r, k);
                c->code_diff += d;
                differ |= d;
            }
            if (differ && c->nshown < MAX_SHOWN_DIFFS) {
                q_diff_pos *p = &c->shown[c->nshown++];
                p->row = r;
                p->block = g;
                p->sa = sa;
                p->sb = sb;
                block_codes(a, r, g, p->ca, sizeof p->ca);
                block_codes(b, r, g, p->cb, sizeof p->cb);
            }
        }
}

static double ppm(int64_t k, int64_t n) { return n > 0 ? 1e6 * (double)k / (double)n : 0; }

/* ------------------------------------------------------------------------ */
/* Output                                                                    */
/* ------------------------------------------------------------------------ */

static const char *polarity_name(fp4_qglobal_polarity p) {
    return p == FP4_QGLOBAL_DECODE ? "decode" : p == FP4_QGLOBAL_ENCODE ? "encode" : "none";
}


static cJSON *result_json(const q_state *st, const q_tensor_result *tr) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", tr->t->name);
    cJSON_AddStringToObject(o, "dtype", tr->t->dtype_name);
    cJSON_AddNumberToObject(o, "rows", (double)tr->t->shape[0]);
    cJSON_AddNumberToObject(o, "cols", (double)tr->t->shape[1]);
    cJSON *arr = cJSON_AddArrayToObject(o, "recipes");
    for (int i = 0; i < st->nrecipes; i++) {
        const q_stats *s = &tr->stats[i];
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "recipe", s->recipe->name);
        cJSON_AddStringToObject(r, "polarity", polarity_name(s->recipe->global));
        cJSON_AddItemToObject(r, "amax", cli_json_number(s->amax));
        cJSON_AddItemToObject(r, "global_stored", cli_json_number(s->g_stored));
        cJSON_AddItemToObject(r, "global_decode", cli_json_number(s->g_decode));
        cJSON_AddItemToObject(r, "global_encode", cli_json_number(s->g_encode));
        cJSON_AddNumberToObject(r, "blocks", (double)s->blocks);
        cJSON_AddNumberToObject(r, "zero_scale_blocks", (double)s->zero_blocks);
        cJSON_AddNumberToObject(r, "scale_min", s->scale_min);
        cJSON_AddNumberToObject(r, "scale_max", s->scale_max);
        cJSON_AddNumberToObject(r, "saturated_codes", (double)s->saturated);
        cJSON_AddItemToObject(r, "rel_rms_error", cli_json_number(s->rel_rms));
        cJSON_AddItemToArray(arr, r);
    }
    if (tr->have_cmp) {
        const q_cmp *c = &tr->cmp;
        cJSON *co = cJSON_AddObjectToObject(o, "compare");
        cJSON_AddStringToObject(co, "a", st->cmp[0]->name);
        cJSON_AddStringToObject(co, "b", st->cmp[1]->name);
        cJSON_AddNumberToObject(co, "blocks", (double)c->blocks);
        cJSON_AddNumberToObject(co, "elements", (double)c->elems);
        cJSON_AddNumberToObject(co, "scale_diff", (double)c->scale_diff);
        cJSON_AddNumberToObject(co, "scale_diff_ppm", ppm(c->scale_diff, c->blocks));
        cJSON_AddNumberToObject(co, "code_diff", (double)c->code_diff);
        cJSON_AddNumberToObject(co, "code_diff_ppm", ppm(c->code_diff, c->elems));
        cJSON *first = cJSON_AddArrayToObject(co, "first");
        for (int i = 0; i < c->nshown; i++) {
            const q_diff_pos *p = &c->shown[i];
            cJSON *d = cJSON_CreateObject();
            char h[8];
            cJSON_AddNumberToObject(d, "row", (double)p->row);
            cJSON_AddNumberToObject(d, "block", (double)p->block);
            snprintf(h, sizeof h, "0x%02x", p->sa);
            cJSON_AddStringToObject(d, "scale_a", h);
            snprintf(h, sizeof h, "0x%02x", p->sb);
            cJSON_AddStringToObject(d, "scale_b", h);
            cJSON_AddStringToObject(d, "codes_a", p->ca);
            cJSON_AddStringToObject(d, "codes_b", p->cb);
            cJSON_AddItemToArray(first, d);
        }
    }
    return o;
}

static int print_json(const q_state *st, const q_tensor_result *res, int64_t n) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "file", st->in);
    cJSON_AddStringToObject(o, "layout", st->layout == FP4_SCALE_SWIZZLED ? "swizzled" : "linear");
    cJSON *arr = cJSON_AddArrayToObject(o, "tensors");
    for (int64_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, result_json(st, &res[i]));
    if (st->out) cJSON_AddStringToObject(o, "out", st->out);
    return cli_json_print(o);
}

static int print_text(const q_state *st, const q_tensor_result *res, int64_t n) {
    static const char *const head[] = {"recipe", "global(stored)", "global(decode)", "blocks",
                                       "zero-scale", "scale min", "scale max", "saturated",
                                       "rel rms err"};
    for (int64_t i = 0; i < n; i++) {
        const q_tensor_result *tr = &res[i];
        printf("tensor %s: %s [%lld x %lld]\n", tr->t->name, tr->t->dtype_name,
               (long long)tr->t->shape[0], (long long)tr->t->shape[1]);
        cli_table tab;
        cli_table_init(&tab, 9);
        int rc = cli_table_add(&tab, head);
        for (int k = 0; rc == 0 && k < st->nrecipes; k++) {
            const q_stats *s = &tr->stats[k];
            char c[8][40];
            bool none = s->recipe->global == FP4_QGLOBAL_NONE;
            snprintf(c[0], 40, none ? "-" : "%.9g (%s)", s->g_stored,
                     polarity_name(s->recipe->global));
            snprintf(c[1], 40, none ? "-" : "%.9g", s->g_decode);
            snprintf(c[2], 40, "%lld", (long long)s->blocks);
            snprintf(c[3], 40, "%lld", (long long)s->zero_blocks);
            snprintf(c[4], 40, "0x%02x", s->scale_min);
            snprintf(c[5], 40, "0x%02x", s->scale_max);
            snprintf(c[6], 40, "%lld", (long long)s->saturated);
            snprintf(c[7], 40, "%.6g", s->rel_rms);
            const char *cells[] = {s->recipe->name, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]};
            rc = cli_table_add(&tab, cells);
        }
        if (rc == 0) cli_table_print(&tab, stdout, "  ");
        cli_table_free(&tab);
        if (rc != 0) return cli_fail("quantize: out of memory");
        if (tr->have_cmp) {
            const q_cmp *c = &tr->cmp;
            printf("  compare %s vs %s: scale bytes differ in %lld of %lld blocks (%.1f ppm), "
                   "codes in %lld of %lld elements (%.1f ppm)\n",
                   st->cmp[0]->name, st->cmp[1]->name, (long long)c->scale_diff,
                   (long long)c->blocks, ppm(c->scale_diff, c->blocks), (long long)c->code_diff,
                   (long long)c->elems, ppm(c->code_diff, c->elems));
            for (int k = 0; k < c->nshown; k++) {
                const q_diff_pos *p = &c->shown[k];
                printf("    row %lld block %lld: scale 0x%02x / 0x%02x, codes %s / %s\n",
                       (long long)p->row, (long long)p->block, p->sa, p->sb, p->ca, p->cb);
            }
        }
    }
    if (st->out) printf("wrote %s\n", st->out);
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */
/* Checkpoint writing                                                        */
/* ------------------------------------------------------------------------ */

/* fp4sim's on-disk convention (ref/fp4tensor.h): NAME codes (U8 packed E2M1,
 * or F8_E4M3 / F8_E5M2 elements), NAME_scale, NAME_scale_2 (decode-polarity
 * tensor scale, NVFP4 recipes only). */
static int add_quantized(fp4_st_writer *w, const fp4_st_tensor *t, const fp4_qtensor *q) {
    fp4_disk_tensor d = {.t = q->t, .conv = FP4_DISK_FP4SIM,
                         .has_global = q->recipe->global != FP4_QGLOBAL_NONE,
                         .global_stored = q->global_decode};
    if (fp4_disk_write(w, t->name, &d) != 0) return cli_lib_error("quantize");
    return CLI_OK;
}

/* ------------------------------------------------------------------------ */

static int run(q_state *st) {
    fp4_st_file *f = NULL;
    if (fp4_st_open(st->in, &f) != FP4_ST_OK)
        return cli_lib_error("quantize");
    const fp4_st_tensor **sel = NULL;
    q_tensor_result *res = NULL;
    fp4_qtensor *keep = NULL; /* --out: one per tensor, alive until the writer finishes */
    fp4_st_writer *w = NULL;
    int64_t n = 0, nkept = 0;
    int rc = select_tensors(st, f, &sel, &n);
    if (rc == CLI_OK) {
        res = calloc((size_t)n, sizeof *res);
        keep = st->out ? calloc((size_t)n, sizeof *keep) : NULL;
        if (!res || (st->out && !keep)) rc = cli_fail("quantize: out of memory");
    }
    for (int64_t i = 0; rc == CLI_OK && i < n; i++) {
        const fp4_st_tensor *t = sel[i];
        res[i].t = t;
        void *x = malloc((size_t)(t->nbytes > 0 ? t->nbytes : 1));
        if (!x) {
            rc = cli_fail("quantize: out of memory");
            break;
        }
        memcpy(x, t->data, (size_t)t->nbytes); /* the mapping may be unaligned */
        for (int k = 0; rc == CLI_OK && k < st->nrecipes; k++) {
            fp4_qtensor q;
            rc = quantize_one(st, t, x, st->recipes[k], &q);
            if (rc != CLI_OK) break;
            rc = compute_stats(t, x, &q, &res[i].stats[k]);
            if (st->out && rc == CLI_OK) {
                keep[nkept++] = q;
            } else {
                fp4_qtensor_free(&q);
            }
        }
        if (rc == CLI_OK && st->have_cmp) {
            fp4_qtensor a, b;
            rc = quantize_one(st, t, x, st->cmp[0], &a);
            if (rc == CLI_OK) {
                rc = quantize_one(st, t, x, st->cmp[1], &b);
                if (rc == CLI_OK) {
                    compare(&a, &b, &res[i].cmp);
                    res[i].have_cmp = true;
                    fp4_qtensor_free(&b);
                }
                fp4_qtensor_free(&a);
            }
        }
        free(x);
    }
    if (rc == CLI_OK && st->out) {
        fp4_st_status s = fp4_st_writer_create(st->out, &w);
        if (s == FP4_ST_OK) s = fp4_st_writer_set_metadata(w, "fp4sim_recipe", st->recipes[0]->name);
        if (s == FP4_ST_OK) s = fp4_st_writer_set_metadata(w, "fp4sim_version", FP4SIM_VERSION);
        if (s == FP4_ST_OK)
            s = fp4_st_writer_set_metadata(w, "fp4sim_scale_layout",
                                           st->layout == FP4_SCALE_SWIZZLED ? "swizzled" : "linear");
        if (s == FP4_ST_OK) s = fp4_st_writer_set_metadata(w, "format", "pt");
        if (s != FP4_ST_OK) rc = cli_lib_error("quantize");
        for (int64_t i = 0; rc == CLI_OK && i < n; i++) rc = add_quantized(w, sel[i], &keep[i]);
        if (rc == CLI_OK) {
            s = fp4_st_writer_finish(w);
            w = NULL;
            if (s != FP4_ST_OK) rc = cli_lib_error("quantize");
        }
    }
    fp4_st_writer_abort(w);
    if (rc == CLI_OK) rc = st->json ? print_json(st, res, n) : print_text(st, res, n);
    for (int64_t i = 0; i < nkept; i++) fp4_qtensor_free(&keep[i]);
    free(keep);
    free(res);
    free(sel);
    fp4_st_close(f);
    return rc;
}

int cli_cmd_quantize(int argc, char **argv) {
    q_state st = {.layout = FP4_SCALE_LINEAR};
    int rc = cli_parse(argc, argv, "quantize", k_opts, sizeof k_opts / sizeof k_opts[0], &st,
                       add_input);
    if (rc == CLI_OK && !st.in)
        rc = cli_usage_error("quantize: no input file given (fp4sim quantize IN.safetensors)");
    if (rc == CLI_OK && st.nrecipes == 0) {
        fp4_qrecipe_from_name("modelopt", &st.recipes[0]);
        st.nrecipes = st.recipes[0] ? 1 : 0;
    }
    if (rc == CLI_OK && st.out && st.nrecipes != 1)
        rc = cli_usage_error("quantize: --out needs exactly one recipe (%d given)", st.nrecipes);
    if (rc == CLI_HELP) rc = fputs(k_help, stdout) < 0 ? CLI_FAIL : CLI_OK;
    else if (rc == CLI_OK) rc = run(&st);
    free(st.names_buf);
    return rc;
}
