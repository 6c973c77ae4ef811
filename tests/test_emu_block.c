/* test_emu_block.c - hand-computed cases for every parameter of the block
 * FMA model (emu/), each derived on paper from numerics.md §5.1:
 * window truncation (a large term, tiny terms off the window, truncation
 * toward zero, the exact grid boundary), C in the block vs after, output
 * rounding at exact ties, 13-bit outputs, subnormal inputs and outputs,
 * min_exp_limit, product exponent convention, F16 unpacking, interleaved
 * and reversed partitions, chunk scaling, NaN/Inf, overflow; plus model
 * strings and the preset table. */
#include "test_emu_common.h"

#include "emu_internal.h" /* emu_fast_enable: run the window cases on the general path too */

#define HG "sm90-hgmma-f16"
#define F16 FP4_FMT_F16
#define BF16 FP4_FMT_BF16
#define E4M3 FP4_FMT_E4M3

static const char *g_path = "fast path"; /* which block FMA ran, for messages */

static void expect(const char *what, uint64_t got, uint64_t want) {
    fp4t_check(got == want, "%s (%s): got 0x%llX want 0x%llX", what, g_path, (unsigned long long)got,
               (unsigned long long)want);
}

/* Terms are truncated to multiples of 2^(maxE - F), toward zero. */
static void test_window(void) {
    /* 1*1 - 1*1 cancels; maxE stays 0, so 2^-26 is below the F=25 grid. */
    double a[3] = {1, 1, 0x1p-13}, b[3] = {1, -1, 0x1p-13};
    expect("cancel, 2^-26 off the F=25 window", et_run(HG, F16, 3, a, b, 0), 0);
    expect("cancel, 2^-26 on the F=26 window", et_run(HG ":F=26", F16, 3, a, b, 0), et_f32(0x1p-26));
    double a2[3] = {1, 1, 0x1p-12}, b2[3] = {1, -1, 0x1p-13}; /* 2^-25: exactly on the grid */
    expect("term at the grid kept", et_run(HG, F16, 3, a2, b2, 0), et_f32(0x1p-25));
    double a3[3] = {1, 1, 0x1.8p-12}, b3[3] = {1, -1, 0x1p-13}; /* 1.5 * 2^-25 */
    expect("partial truncation", et_run(HG, F16, 3, a3, b3, 0), et_f32(0x1p-25));
    expect("F=26 keeps 1.5*2^-25", et_run(HG ":F=26", F16, 3, a3, b3, 0), et_f32(0x1.8p-25));
    double b4[3] = {1, -1, -0x1p-13}; /* -1.5 * 2^-25 truncates toward zero to -2^-25 */
    expect("negative truncation toward zero", et_run(HG, F16, 3, a3, b4, 0), et_f32(-0x1p-25));
    /* One huge term and 15 tiny ones (2^-27 each) that fall off the window. */
    double ah[16], bh[16];
    ah[0] = bh[0] = 1;
    for (int i = 1; i < 16; i++) ah[i] = 0x1p-13, bh[i] = 0x1p-14;
    expect("tiny terms dropped (F=25, RNE)", et_run(HG ":out=rne23", F16, 16, ah, bh, 0), et_f32(1));
    expect("tiny terms kept (F=27, RNE)", et_run(HG ":F=27,out=rne23", F16, 16, ah, bh, 0),
           et_f32(1 + 0x1p-23));
    expect("tiny terms kept (exact, RNE)", et_run(HG ":F=exact,out=rne23", F16, 16, ah, bh, 0),
           et_f32(1 + 0x1p-23));
    expect("tiny terms kept but RZ", et_run(HG ":F=27", F16, 16, ah, bh, 0), et_f32(1));
}

/* The window of the general block FMA (emu/blockfma.c emu_block), which the
 * single-instruction cases reach only when the fast path (emu/fastpath.c)
 * declines: an F+1 window there used to fail one assertion only, the
 * fast-vs-general comparison of test_emu_gemm (issue 16 item 3e).
 *  - test_window again with the fast path off (white box);
 *  - windows of 60..62 bits, wider than the fast path's 62-bit sum (it
 *    declines them by itself), on BF16 inputs: 1*1 - 1*1 + 2^-30*2^-31
 *    leaves 2^-61, below the grid 2^(0-60) of F = 60 (truncated: +0) and on
 *    the grid of F = 61; 2^-31*2^-31 = 2^-62 is dropped at F = 61 and kept
 *    at F = 62. maxE = 0 (the 1*1 products), min_exp_limit -133 is below. */
static void test_window_general(void) {
    emu_fast_enable(false);
    g_path = "general path";
    test_window();
    emu_fast_enable(true);
    g_path = "wide window";
    double a[3] = {1, 1, 0x1p-30}, b[3] = {1, -1, 0x1p-31};
    expect("2^-61 off the F=60 window", et_run("sm90-hgmma-bf16:F=60", BF16, 3, a, b, 0), 0);
    expect("2^-61 on the F=61 window", et_run("sm90-hgmma-bf16:F=61", BF16, 3, a, b, 0),
           et_f32(0x1p-61));
    double a2[3] = {1, 1, 0x1p-31};
    expect("2^-62 off the F=61 window", et_run("sm90-hgmma-bf16:F=61", BF16, 3, a2, b, 0), 0);
    expect("2^-62 on the F=62 window", et_run("sm90-hgmma-bf16:F=62", BF16, 3, a2, b, 0),
           et_f32(0x1p-62));
    g_path = "fast path";
}

/* C aligned with the products vs added after by an RN FADD. */
static void test_c_placement(void) {
    double a[6], b[6];
    for (int i = 0; i < 6; i++) a[i] = b[i] = 0x1p-13; /* 6 * 2^-26 = 1.5 * 2^-24 */
    expect("C in block truncates the products", et_run(HG, F16, 6, a, b, 1.0), et_f32(1));
    expect("C after: RN(1 + 1.5*2^-24)", et_run(HG ":c=after", F16, 6, a, b, 1.0),
           et_f32(1 + 0x1p-23));
    /* C alone is truncated to the window too (QGMMA: 13 bits). */
    fp4emu_model q = et_model("sm90-qgmma-e4m3-f32");
    uint8_t z[32] = {0};
    fp4emu_input in = fp4emu_input_plain(E4M3, E4M3);
    uint64_t d = 0;
    fp4emu_mma(&q, &in, z, z, NULL, NULL, et_f32(1 + 0x1p-20), &d);
    expect("QGMMA truncates C to 13 bits", d, et_f32(1));
}

/* Exact ties at the output: 1 + 2^-23 + 2^-24 lies halfway between
 * 1 + 2^-23 (odd) and 1 + 2^-22 (even). */
static void test_rounding_ties(void) {
    double a[3] = {1, 0x1p-11, 0x1p-12}, b[3] = {1, 0x1p-12, 0x1p-12};
    double n3[3] = {-1, -0x1p-12, -0x1p-12};
    const double lo = 1 + 0x1p-23, hi = 1 + 0x1p-22;
    expect("tie rz", et_run(HG, F16, 3, a, b, 0), et_f32(lo));
    expect("tie rne", et_run(HG ":out=rne23", F16, 3, a, b, 0), et_f32(hi));
    expect("tie rna", et_run(HG ":out=rna23", F16, 3, a, b, 0), et_f32(hi));
    expect("tie ru", et_run(HG ":out=ru23", F16, 3, a, b, 0), et_f32(hi));
    expect("tie rd", et_run(HG ":out=rd23", F16, 3, a, b, 0), et_f32(lo));
    expect("-tie rz", et_run(HG, F16, 3, a, n3, 0), et_f32(-lo));
    expect("-tie rne", et_run(HG ":out=rne23", F16, 3, a, n3, 0), et_f32(-hi));
    expect("-tie ru", et_run(HG ":out=ru23", F16, 3, a, n3, 0), et_f32(-lo));
    expect("-tie rd", et_run(HG ":out=rd23", F16, 3, a, n3, 0), et_f32(-hi));
    double a1[2] = {1, 0x1p-12}, b1[2] = {1, 0x1p-12}; /* 1 + 2^-24: tie to the even 1.0 */
    expect("tie to even below", et_run(HG ":out=rne23", F16, 2, a1, b1, 0), et_f32(1));
    expect("tie away above", et_run(HG ":out=rna23", F16, 2, a1, b1, 0), et_f32(1 + 0x1p-23));
    /* 1 + 1.5*2^-24 (0.75 ulp): RZ keeps 1.0 (Hopper), RN goes up. */
    double a2[2] = {1, 0x1.8p-12}, b2[2] = {1, 0x1p-12};
    expect("hgmma RZ 0.75 ulp", et_run(HG, F16, 2, a2, b2, 0), et_f32(1));
    expect("RN 0.75 ulp", et_run(HG ":out=rne23", F16, 2, a2, b2, 0), et_f32(1 + 0x1p-23));
}

/* Output with 13 fraction bits (QGMMA) and FP16 outputs. */
static void test_output_bits(void) {
    double a[3] = {1, 0x1p-6, 0x1p-7}, b[3] = {1, 0x1p-7, 0x1p-7}; /* 1 + 2^-13 + 2^-14 */
    expect("rz13", et_run(HG ":out=rz13", F16, 3, a, b, 0), et_f32(1 + 0x1p-13));
    expect("rne13 tie", et_run(HG ":out=rne13", F16, 3, a, b, 0), et_f32(1 + 0x1p-12));
    expect("rz23 keeps all", et_run(HG, F16, 3, a, b, 0), et_f32(1 + 0x1p-13 + 0x1p-14));
    /* QGMMA F16: 1 + 2^-10 + 2^-11 is a tie at FP16, RNE goes to 1 + 2^-9. */
    double qa[3] = {1, 0x1p-5, 0x1p-5}, qb[3] = {1, 0x1p-5, 0x1p-6};
    expect("qgmma f16 rne tie", et_run("sm90-qgmma-e4m3-f16", E4M3, 3, qa, qb, 0),
           et_code(F16, 1 + 0x1p-9));
    double ca[3] = {1, 1, 0x1p-7}, cb[3] = {1, -1, 0x1p-7}; /* 2^-14 off the F=13 window */
    expect("qgmma f16 window", et_run("sm90-qgmma-e4m3-f16", E4M3, 3, ca, cb, 0), 0);
}

static void test_subnormals(void) {
    double a[1] = {0x1p-24}, b[1] = {1}; /* FP16 subnormal 0x0001 */
    expect("subnormal input kept", et_run(HG, F16, 1, a, b, 0), et_f32(0x1p-24));
    expect("subnormal input flushed", et_run(HG ":subin=0", F16, 1, a, b, 0), 0);
    /* A subnormal operand's exponent is emin (-14): maxE = -14 with F=10
     * drops 2^-28; with normalized product exponents maxE = -24 keeps it. */
    double pa[2] = {0x1p-24, 0x1p-14}, pb[2] = {1, 0x1p-14};
    expect("pexp sum", et_run(HG ":F=10", F16, 2, pa, pb, 0), et_f32(0x1p-24));
    expect("pexp exact", et_run(HG ":F=10,pexp=exact", F16, 2, pa, pb, 0),
           et_f32(0x1p-24 + 0x1p-28));
    /* FP32-subnormal outputs. */
    double sa[1] = {0x1p-100}, sb[1] = {0x1p-40};
    expect("subnormal output", et_run(HG, BF16, 1, sa, sb, 0), 0x200);
    expect("subnormal output flushed", et_run(HG ":subout=0", BF16, 1, sa, sb, 0), 0);
    expect("rz13 grid below emin is 2^-139", et_run(HG ":out=rz13", BF16, 1, sa, sb, 0), 0);
    double ta[1] = {0x1.8p-100}, tb[1] = {0x1p-49}; /* 1.5 * 2^-149 */
    expect("subnormal rz", et_run(HG, BF16, 1, ta, tb, 0), 1);
    expect("subnormal rne tie", et_run(HG ":out=rne23", BF16, 1, ta, tb, 0), 2);
    expect("subnormal C alone", et_run(HG, BF16, 0, ta, tb, 0x1p-140), 0x200);
    double na[1] = {-0x1.8p-100};
    expect("negative subnormal rz", et_run(HG, BF16, 1, na, tb, 0), 0x80000001u);
    /* 2^-266 rounds far below the FP16 grid (2^-24): RU gives the smallest
     * subnormal, RZ zero. */
    double ua[1] = {0x1p-133}, ub[1] = {0x1p-133};
    expect("deep underflow ru", et_run(HG ":acc=f16,out=ru10,minexp=none", BF16, 1, ua, ub, 0), 1);
    expect("deep underflow rz", et_run(HG ":acc=f16,out=rz10,minexp=none", BF16, 1, ua, ub, 0), 0);
    /* min_exp_limit: maxE = max(-140, -133) moves the F=5 grid to 2^-138. */
    expect("min_exp_limit drops", et_run(HG ":F=5", BF16, 1, sa, sb, 0), 0);
    expect("no min_exp_limit", et_run(HG ":F=5,minexp=none", BF16, 1, sa, sb, 0), et_f32(0x1p-140));
}

static void test_specials(void) {
    double inf = INFINITY, nan = NAN;
    double a1[1] = {inf}, b1[1] = {1}, b0[1] = {0};
    expect("inf * 1", et_run(HG, F16, 1, a1, b1, 0), 0x7F800000u);
    expect("inf * 0", et_run(HG, F16, 1, a1, b0, 0), 0x7FFFFFFFu);
    double a2[2] = {inf, inf}, b2[2] = {1, -1};
    expect("inf - inf", et_run(HG, F16, 2, a2, b2, 0), 0x7FFFFFFFu);
    double an[1] = {nan};
    expect("nan input", et_run(HG, F16, 1, an, b1, 0), 0x7FFFFFFFu);
    expect("inf C", et_run(HG, F16, 0, an, b1, inf), 0x7F800000u);
    expect("-inf C + inf product", et_run(HG, F16, 1, a1, b1, -inf), 0x7FFFFFFFu);
    expect("inf C after", et_run(HG ":c=after", F16, 1, b1, b1, -inf), 0xFF800000u);
    expect("nan C", et_run(HG, F16, 1, b1, b1, nan), 0x7FFFFFFFu);
    expect("e4m3 nan", et_run("sm90-qgmma-e4m3-f32", E4M3, 1, an, b1, 0), 0x7FFFFFFFu);
    expect("f16 acc nan", et_run("sm90-qgmma-e4m3-f16", E4M3, 1, an, b1, 0), 0x7FFFu);
    /* Overflow of the block sum (BF16 products reach 2^254). */
    double oa[1] = {0x1p127}, ob[1] = {0x1p127}, on[1] = {-0x1p127};
    expect("overflow -> inf (KM)", et_run(HG, BF16, 1, oa, ob, 0), 0x7F800000u);
    expect("overflow rz ieee", et_run(HG ":ovf=ieee", BF16, 1, oa, ob, 0), 0x7F7FFFFFu);
    expect("-overflow rz ieee", et_run(HG ":ovf=ieee", BF16, 1, oa, on, 0), 0xFF7FFFFFu);
    expect("overflow rz13 ieee", et_run(HG ":ovf=ieee,out=rz13", BF16, 1, oa, ob, 0), 0x7F7FFC00u);
    expect("overflow rne ieee", et_run(HG ":ovf=ieee,out=rne23", BF16, 1, oa, ob, 0), 0x7F800000u);
    double ones[2] = {1, 1};
    expect("zero sum is +0", et_run(HG, F16, 2, b2, ones, -0.0), 0);
}

/* Block partitions: positions 0 and 1 (k mod 4 in {0,1}) cancel exactly;
 * position 2 holds 2^-18, which survives only if it is in another block. */
static void test_partitions(void) {
    double a[3] = {256, 256, 0x1p-9}, b[3] = {256, -256, 0x1p-9};
    expect("mma.sync halves by k mod 4", et_run("sm90-mmasync-e4m3", E4M3, 3, a, b, 0),
           et_f32(0x1p-18));
    expect("contiguous halves", et_run("sm90-mmasync-e4m3:il=0", E4M3, 3, a, b, 0), 0);
    expect("one 32-block", et_run("sm90-qgmma-e4m3-f32", E4M3, 3, a, b, 0), 0);
    /* Reversed: 2^-18 first, then it is C of the 2^16-exponent block. */
    expect("reversed halves", et_run("sm90-mmasync-e4m3:rev=1", E4M3, 3, a, b, 0), 0);
    /* C after the halves: 64 + 3 * 2^-18 rounds to nearest. */
    double ta[3] = {0x1p-9, 0x1p-9, 0x1p-9}, tb[3] = {0x1p-9, 0x1p-9, 0x1p-9};
    expect("mma.sync RN FADD", et_run("sm90-mmasync-e4m3", E4M3, 3, ta, tb, 64), et_f32(64 + 0x1p-16));
    /* F16 unpacking changes a subnormal E4M3 operand's exponent (-6 -> -9). */
    double ua[2] = {0x1p-9, 0x1p-6}, ub[2] = {1, 0x1p-6};
    const char *base = "sm90-qgmma-e4m3-f32:F=4,out=rz23";
    expect("native e4m3 exponent", et_run(base, E4M3, 2, ua, ub, 0), et_f32(0x1p-9));
    char spec[96];
    snprintf(spec, sizeof spec, "%s,unpack=f16", base);
    expect("unpacked to f16", et_run(spec, E4M3, 2, ua, ub, 0), et_f32(0x1p-9 + 0x1p-12));
}

/* NVFP4 scales: per product vs chunk sums; NaN scale. */
static uint64_t run_nvfp4(const char *spec, const uint8_t *a, const uint8_t *b, uint8_t s0) {
    fp4emu_model m = et_model(spec);
    uint8_t sa[2] = {s0, 0x38}, sb[2] = {0x38, 0x38};
    fp4emu_input in = fp4emu_input_nvfp4();
    uint64_t d = 0;
    fp4t_check(fp4emu_mma(&m, &in, a, b, sa, sb, 0, &d) == 0, "nvfp4 mma: %s", fp4_last_error());
    return d;
}

static void test_scales(void) {
    /* Chunk 0: 6*6 - 6*6 (scale SFA0); chunk 1 (position 16): 0.5*0.5, scale 1. */
    uint8_t a[32] = {0x7, 0x7}, b[32] = {0x7, 0xF};
    a[16] = b[16] = 0x1;
    const char *prod = "sm100-mxf4nvf4-cand-a:k=32,block=32,F=4";
    const char *chunk = "sm100-mxf4nvf4-cand-a:k=32,block=32,F=4,scale=chunk";
    /* Per product with SFA0 = 1: maxE = e(6)+e(6) = 4, grid 1, 0.25 dropped. */
    expect("per-product scale truncates 0.25", run_nvfp4(prod, a, b, 0x38), 0);
    /* Chunk sums: chunk 0 is exactly 0 (dropped), chunk 1 is 0.25 alone. */
    expect("chunk sum keeps 0.25", run_nvfp4(chunk, a, b, 0x38), et_f32(0.25));
    /* SFA0 = 2^-3 adds -3 to the big products' exponents: maxE = 1, grid 2^-3. */
    expect("scale exponent moves the grid", run_nvfp4(prod, a, b, 0x20), et_f32(0.25));
    expect("nan scale", run_nvfp4(prod, a, b, 0x7F), 0x7FFFFFFFu);
    expect("nan scale chunk", run_nvfp4(chunk, a, b, 0x7F), 0x7FFFFFFFu);
    expect("zero scale drops its products", run_nvfp4(prod, a, b, 0x00), et_f32(0.25));
}

/* numerics.md §5.2 statements about the sm90 presets, checked directly:
 * QGMMA outputs always have their low 10 bits zero (13 fraction bits, also
 * on the 2^-139 grid below emin); HGMMA bf16 truncates like f16; HGMMA's
 * RZ differs from the correctly rounded sum. */
static void test_sm90_statements(void) {
    fp4emu_model q = et_model("sm90-qgmma-e4m3-f32");
    fp4emu_input in = fp4emu_input_plain(E4M3, E4M3);
    uint8_t a[32], b[32];
    long low_bits = 0;
    for (int t = 0; t < 500; t++) {
        for (int i = 0; i < 32; i++) {
            a[i] = (uint8_t)fp4t_rand32(fp4t_seed(), 7, (uint64_t)t * 64 + i);
            b[i] = (uint8_t)fp4t_rand32(fp4t_seed(), 7, (uint64_t)t * 64 + 32 + i);
            if ((a[i] & 0x7F) == 0x7F) a[i] = 0x38;
            if ((b[i] & 0x7F) == 0x7F) b[i] = 0x38;
        }
        uint32_t c = fp4t_rand32(fp4t_seed(), 8, (uint64_t)t);
        c = (c & 0x807FFFFFu) | ((112u + (c >> 8) % 30) << 23); /* +-[2^-15, 2^15) */
        uint64_t d = 0;
        fp4emu_mma(&q, &in, a, b, NULL, NULL, c, &d);
        low_bits += (d & 0x3FF) != 0;
    }
    fp4t_check(low_bits == 0, "QGMMA outputs with low 10 bits set: %ld of 500", low_bits);
    double ca[3] = {1, 1, 0x1p-13}, cb[3] = {1, -1, 0x1p-13};
    expect("hgmma bf16 window", et_run("sm90-hgmma-bf16", BF16, 3, ca, cb, 0), 0);
    expect("hgmma bf16 F=26 keeps", et_run("sm90-hgmma-bf16:F=26", BF16, 3, ca, cb, 0), et_f32(0x1p-26));
    double ra[2] = {3, 0x1.8p-12}, rb[2] = {1, 0x1p-12}; /* 3 + 1.5*2^-24: 0.375 ulp */
    expect("hmma16816 rz", et_run("sm90-hmma-16816-f32", F16, 2, ra, rb, 0), et_f32(3));
    double sa[2] = {3, 0x1.cp-11}, sb[2] = {1, 0x1p-12}; /* 3 + 1.75*2^-23: 0.875 ulp */
    expect("hmma16816 rz (RN would go up)", et_run("sm90-hmma-16816-f32", F16, 2, sa, sb, 0), et_f32(3));
    expect("same sum RN", et_run("sm90-hmma-16816-f32:out=rne23", F16, 2, sa, sb, 0),
           et_f32(3 + 0x1p-22));
}

static void test_model_strings(void) {
    for (int i = 0; i < fp4emu_preset_count(); i++) {
        const fp4emu_preset *p = fp4emu_preset_at(i);
        char buf[256], spec[320];
        fp4t_check(fp4emu_model_check(&p->model) == 0, "%s invalid: %s", p->name, fp4_last_error());
        fp4emu_model_format(&p->model, buf, sizeof buf);
        snprintf(spec, sizeof spec, "sm90-hgmma-f16:%s", buf);
        for (char *c = spec; *c; c++) *c = *c == ' ' ? ',' : *c;
        fp4emu_model back;
        int rc = fp4emu_model_parse(spec, &back);
        fp4t_check(rc == 0 && fp4emu_model_equal(&back, &p->model), "%s: round trip of '%s'",
                   p->name, buf);
        fp4t_check(fp4emu_preset_get(p->name) == p, "lookup %s", p->name);
        fp4t_check(strlen(p->evidence) > 40, "%s has an evidence string", p->name);
    }
    fp4emu_model m;
    fp4t_check(fp4emu_preset_get("no-such-preset") == NULL, "unknown preset");
    fp4t_check(fp4emu_model_parse("no-such-preset", &m) != 0, "unknown preset parse");
    fp4t_check(fp4emu_model_parse("sm90-hgmma-f16:block=5", &m) != 0, "block must divide k");
    fp4t_check(fp4emu_model_parse("sm90-hgmma-f16:il=3", &m) != 0, "interleave must divide block");
    fp4t_check(fp4emu_model_parse("sm90-hgmma-f16:out=rz24", &m) != 0, "out_bits <= 23");
    fp4t_check(fp4emu_model_parse("sm90-hgmma-f16:frob=1", &m) != 0, "unknown key");
    fp4t_check(fp4emu_model_parse("F=13,out=rz13,k=32,block=32", &m) == 0 && m.F == 13 &&
                   m.k == 32 && m.out_bits == 13,
               "spec without a preset");
    fp4t_check(fp4emu_model_parse("SM90-QGMMA-E4M3-F32", &m) == 0 && m.out_bits == 13,
               "case-insensitive preset names");
    FILE *f = tmpfile();
    fp4emu_preset_list(f);
    fp4emu_preset_print(f, fp4emu_preset_get("sm90-mmasync-e4m3"));
    long size = ftell(f);
    fclose(f);
    fp4t_check(size > 2000, "list and print write text (%ld bytes)", size);
}

int main(void) {
    fp4t_begin("test_emu_block");
    test_window();
    test_window_general();
    test_c_placement();
    test_rounding_ties();
    test_output_bits();
    test_subnormals();
    test_specials();
    test_partitions();
    test_scales();
    test_sm90_statements();
    test_model_strings();
    return fp4t_end();
}
