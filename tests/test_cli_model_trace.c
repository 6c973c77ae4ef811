/* test_cli_model_trace.c - `fp4sim model run` computes what the library
 * computes: every intermediate the CLI writes with --trace equals, bit for
 * bit, the same op traced through fp4m_open + fp4m_forward with the same
 * options. Regression test of the o.gemm bug (issue 11): the CLI replaced
 * fp4m_opts_transformers(F64)'s torch-blocked GEMM with NULL when no
 * --policy was given, and the layer-0 MLP output differed in 1858 of 2048
 * values while the logits agreed (FP32 islands hid it).
 *
 * usage: test_cli_model_trace FP4SIM FIXTURE_DIR TMP_DIR */
#include "fp4model.h"
#include "testutil.h"

#include <inttypes.h>
#include <string.h>

typedef struct cmp_ctx {
    const fp4_st_file *f;
    int64_t compared, differ, missing;
} cmp_ctx;

/* The CLI's trace names (cmd_model.c): layers.L.OP, fixture spellings of three ops. */
static void trace_name(const fp4m_event *ev, char *name, size_t n) {
    const char *op = ev->op;
    if (strcmp(op, "self_attn.probs") == 0) op = "self_attn.1";
    else if (strcmp(op, "mlp.gate.weights") == 0) op = "mlp.gate.1";
    else if (strcmp(op, "mlp.gate.indices") == 0) op = "mlp.gate.2";
    if (ev->expert >= 0) snprintf(name, n, "layers.%" PRId64 ".mlp.experts.%" PRId64 ".out", ev->layer, ev->expert);
    else if (ev->layer >= 0) snprintf(name, n, "layers.%" PRId64 ".%s", ev->layer, op);
    else snprintf(name, n, "%s", op);
}

static int compare_cb(void *ctx, const fp4m_event *ev) {
    cmp_ctx *c = ctx;
    char name[200];
    trace_name(ev, name, sizeof name);
    const fp4_st_tensor *t = fp4_st_find(c->f, name);
    if (!t) {
        c->missing++;
        fp4t_check(0, "the CLI trace has no '%s'", name);
        return 0;
    }
    int64_t numel = 1;
    for (int i = 0; i < ev->ndim; i++) numel *= ev->shape[i];
    size_t bytes = (size_t)numel * 8;
    c->compared++;
    if (t->nbytes != (int64_t)bytes || memcmp(t->data, ev->data, bytes) != 0) {
        c->differ++;
        fp4t_check(0, "'%s' differs between the CLI and the library", name);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: test_cli_model_trace FP4SIM FIXTURE_DIR TMP_DIR\n");
        return 2;
    }
    fp4t_begin("test_cli_model_trace");
    char trace[1024], cmd[4096];
    snprintf(trace, sizeof trace, "%s/cli-trace.safetensors", argv[3]);
    snprintf(cmd, sizeof cmd, "'%s' model run '%s' --prompt-ids 1,2,3,5,8 --precision f64 "
             "--options transformers --trace '%s' > /dev/null", argv[1], argv[2], trace);
    if (!fp4t_check(system(cmd) == 0, "%s failed", cmd)) return fp4t_end();
    fp4_st_file *f = NULL;
    if (!fp4t_check(fp4_st_open(trace, &f) == FP4_ST_OK, "%s", fp4_last_error())) return fp4t_end();
    cmp_ctx c = {f, 0, 0, 0};
    fp4m_opts o = fp4m_opts_transformers(FP4M_F64);
    o.trace = compare_cb;
    o.trace_ctx = &c;
    fp4m_model *m = NULL;
    const int64_t ids[5] = {1, 2, 3, 5, 8};
    if (fp4t_check(fp4m_open(argv[2], &o, &m) == 0, "open: %s", fp4_last_error()))
        fp4t_check(fp4m_forward(m, ids, 5, false, NULL) == 0, "forward: %s", fp4_last_error());
    fp4t_check(c.compared > 50 && c.differ == 0 && c.missing == 0,
               "%lld traced tensors compared, %lld differ, %lld missing", (long long)c.compared,
               (long long)c.differ, (long long)c.missing);
    printf("%lld traced tensors identical between the CLI and the library\n", (long long)c.compared);
    fp4m_close(m);
    fp4_st_close(f);
    return fp4t_end();
}
