/* test_quant_mufu.c - the sm_90 MUFU.RCP emulation (ref/mufu.c) against the
 * measured table's stated facts (recipes.md §5, numerics.md §2.4,
 * data/mufu-rcp-sm90/README.md):
 *  - the embedded table is byte-identical to data/mufu-rcp-sm90/mufu_rcp_sm90_delta2bit.bin;
 *  - counts over all 2^23 mantissas: equal 7 280 086, +1 ulp 733 799,
 *    -1 ulp 374 723, code 3 never;
 *  - every result is RN(1/x) + delta (read here from the .bin directly),
 *    never more than 1 ulp away;
 *  - rcp(6.0f) = 0x3E2AAAAB = RN(1/6); powers of two are exact;
 *  - exponent invariance: fp4t_f32_bits(rcp(x * 2^e)) = fp4t_f32_bits(rcp(x)) - (e << 23) for
 *    e in {+-1, +-10, +-60, +-120};
 *  - .ftz and specials: +-0 and subnormal inputs -> +-inf, +-inf -> +-0,
 *    NaN -> 0x7FFFFFFF, subnormal results -> +-0. */
#include "fp4quant.h"
#include "testutil.h"

#include <math.h>
#include <string.h>

static unsigned char *read_bin(size_t *n) {
    FILE *f = fopen(FP4_MUFU_BIN, "rb");
    if (!f) return NULL;
    unsigned char *buf = malloc(1u << 22);
    *n = buf ? fread(buf, 1, 1u << 22, f) : 0;
    fclose(f);
    return buf;
}

static void test_table_bytes(const unsigned char *bin, size_t n) {
    fp4t_check(n == 2097152, "bin size %zu", n);
    const unsigned char *t = fp4_mufu_rcp_sm90_table_bytes();
    fp4t_check(n == 2097152 && memcmp(t, bin, n) == 0, "embedded table differs from %s", FP4_MUFU_BIN);
    fp4t_check(strlen(fp4_mufu_rcp_sm90_table_sha256_hex()) == 64, "sha256 string");
}

/* Counts per code from the raw bytes and from the library's delta API. */
static void test_counts(const unsigned char *bin) {
    long raw[4] = {0}, api[3] = {0};
    for (uint32_t m = 0; m < (1u << 23); m++) {
        raw[(bin[m >> 2] >> (2 * (m & 3))) & 3]++;
        api[fp4_mufu_rcp_sm90_delta(m) + 1]++;
    }
    fp4t_check(raw[0] == 7280086 && raw[1] == 733799 && raw[2] == 374723 && raw[3] == 0,
               "raw counts %ld %ld %ld %ld", raw[0], raw[1], raw[2], raw[3]);
    fp4t_check(api[1] == 7280086 && api[2] == 733799 && api[0] == 374723,
               "api counts same %ld +1 %ld -1 %ld", api[1], api[2], api[0]);
}

/* Every mantissa at e = 0 against RN(1/x) + delta read from the .bin. */
static void test_all_mantissas(const unsigned char *bin) {
    long bad = 0, far = 0;
    for (uint32_t m = 0; m < (1u << 23); m++) {
        float x = fp4t_f32_from_bits(0x3F800000u | m);
        uint32_t rn = fp4t_f32_bits(1.0f / x);
        unsigned code = (bin[m >> 2] >> (2 * (m & 3))) & 3;
        uint32_t want = code == 1 ? rn + 1 : code == 2 ? rn - 1 : rn;
        uint32_t got = fp4t_f32_bits(fp4_mufu_rcp_sm90(x));
        bad += got != want;
        far += (got > rn ? got - rn : rn - got) > 1;
        if (got != want)
            fp4t_check(0, "rcp(1.%06x): got %08x want %08x", (unsigned)m, (unsigned)got, (unsigned)want);
    }
    fp4t_check(bad == 0 && far == 0, "%ld mismatches, %ld beyond 1 ulp", bad, far);
}

static void test_points(void) {
    fp4t_check(fp4t_f32_bits(fp4_mufu_rcp_sm90(6.0f)) == 0x3E2AAAABu, "rcp(6) = %08x",
               (unsigned)fp4t_f32_bits(fp4_mufu_rcp_sm90(6.0f)));
    fp4t_check(fp4_mufu_rcp_sm90(6.0f) == 1.0f / 6.0f, "rcp(6) == RN(1/6)");
    for (int e = -126; e <= 126; e++) {
        float x = ldexpf(1.0f, e);
        fp4t_check(fp4_mufu_rcp_sm90(x) == ldexpf(1.0f, -e), "rcp(2^%d)", e);
        fp4t_check(fp4_mufu_rcp_sm90(-x) == -ldexpf(1.0f, -e), "rcp(-2^%d)", e);
    }
}

/* fp4t_f32_bits(rcp(x * 2^e)) = fp4t_f32_bits(rcp(x)) - (e << 23), x in [1, 2). */
static void test_exponent_invariance(void) {
    static const int es[] = {-120, -60, -10, -1, 1, 10, 60, 120};
    long bad = 0;
    for (size_t k = 0; k < sizeof es / sizeof es[0]; k++) {
        int e = es[k];
        uint32_t step = (e == 1 || e == -1) ? 1 : 61; /* every mantissa at +-1, a sample elsewhere */
        for (uint32_t m = 0; m < (1u << 23); m += step) {
            float x = fp4t_f32_from_bits(0x3F800000u | m);
            uint32_t base = fp4t_f32_bits(fp4_mufu_rcp_sm90(x));
            float xe = fp4t_f32_from_bits(((uint32_t)(127 + e) << 23) | m);
            uint32_t got = fp4t_f32_bits(fp4_mufu_rcp_sm90(xe));
            uint32_t want = (uint32_t)((int64_t)base - (int64_t)e * (1 << 23));
            if (got != want && bad++ < 5)
                fp4t_check(0, "rcp(1.%06x * 2^%d) = %08x, want %08x", (unsigned)m, e,
                           (unsigned)got, (unsigned)want);
        }
    }
    fp4t_check(bad == 0, "exponent invariance: %ld failures", bad);
}

static void expect(uint32_t in, uint32_t want, const char *what) {
    uint32_t got = fp4t_f32_bits(fp4_mufu_rcp_sm90(fp4t_f32_from_bits(in)));
    fp4t_check(got == want, "%s: rcp(%08x) = %08x, want %08x", what, (unsigned)in, (unsigned)got,
               (unsigned)want);
}

static void test_specials(void) {
    expect(0x00000000u, 0x7F800000u, "+0");
    expect(0x80000000u, 0xFF800000u, "-0");
    expect(0x00000001u, 0x7F800000u, "min subnormal (ftz)");
    expect(0x007FFFFFu, 0x7F800000u, "max subnormal (ftz)");
    expect(0x807FFFFFu, 0xFF800000u, "-max subnormal (ftz)");
    expect(0x7F800000u, 0x00000000u, "+inf");
    expect(0xFF800000u, 0x80000000u, "-inf");
    expect(0x7FC00000u, 0x7FFFFFFFu, "qNaN");
    expect(0xFFC00000u, 0x7FFFFFFFu, "-qNaN (sign dropped)");
    expect(0x7F800001u, 0x7FFFFFFFu, "sNaN");
    expect(0x00800000u, 0x7E800000u, "2^-126 -> 2^126");
    expect(0x7E800000u, 0x00800000u, "2^126 -> 2^-126 (normal)");
    expect(0x7F000000u, 0x00000000u, "2^127 -> 2^-127 flushed");
    expect(0xFF000000u, 0x80000000u, "-2^127 -> -0");
    expect(0x7E800001u, 0x00000000u, "2^126(1+ulp): subnormal result flushed");
    expect(0x7F7FFFFFu, 0x00000000u, "FLT_MAX");
}

int main(void) {
    fp4t_begin("test_quant_mufu");
    size_t n = 0;
    unsigned char *bin = read_bin(&n);
    fp4t_check(bin != NULL, "cannot read %s", FP4_MUFU_BIN);
    if (bin) {
        test_table_bytes(bin, n);
        if (n == 2097152) {
            test_counts(bin);
            test_all_mantissas(bin);
        }
    }
    free(bin);
    test_points();
    test_exponent_invariance();
    test_specials();
    return fp4t_end();
}
