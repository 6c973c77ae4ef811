/* test_rng.c - the one generator (fp4rng.h): the single-counter call equals
 * Random123's philox4x32 with the documented key/counter packing, the bulk
 * fill equals single calls at every offset and length (SIMD lanes and tails),
 * and a few words are pinned to values from the Philox paper's known-answer
 * vectors (Random123's kat_vectors), so a change of the packing fails. */
#include "fp4rng.h"
#include "testutil.h"

#include <Random123/philox.h>

static void test_vs_random123(void) {
    for (uint64_t i = 0; i < 20000; i++) {
        uint64_t seed = 0x9E3779B97F4A7C15ull * (i + 1), ctr = i * 0x100000001ull + (i >> 3);
        uint32_t stream = (uint32_t)(i * 2654435761u), sub = (uint32_t)(i % 7 ? i : 0x50524F42u);
        uint32_t w[4];
        fp4_philox4x32(seed, stream, sub, ctr, w);
        philox4x32_ctr_t c = {{(uint32_t)ctr, (uint32_t)(ctr >> 32), stream, sub}};
        philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
        philox4x32_ctr_t r = philox4x32(c, k);
        int ok = 1;
        for (int j = 0; j < 4; j++) ok &= w[j] == r.v[j];
        if (!fp4t_check(ok, "counter %llu differs from Random123", (unsigned long long)i)) break;
        fp4t_check(fp4_rand32(seed, stream, sub, ctr) == r.v[0] &&
                       fp4_rand64(seed, stream, sub, ctr) == (((uint64_t)r.v[1] << 32) | r.v[0]),
                   "rand32/rand64 at %llu", (unsigned long long)i);
    }
}

static void test_fill(void) {
    static uint32_t buf[4 * 80];
    for (int64_t n = 0; n <= 80; n += 1 + (n > 20) * 6) {
        for (uint64_t c0 = 0xFFFFFFF0ull; c0 < 0xFFFFFFF0ull + 40; c0 += 13) { /* crosses 2^32 */
            fp4_philox4x32_fill(77, 5, 9, c0, n, buf);
            for (int64_t i = 0; i < n; i++) {
                uint32_t w[4];
                fp4_philox4x32(77, 5, 9, c0 + (uint64_t)i, w);
                int ok = 1;
                for (int j = 0; j < 4; j++) ok &= buf[4 * i + j] == w[j];
                fp4t_check(ok, "fill n=%lld c0=%llu i=%lld", (long long)n, (unsigned long long)c0,
                           (long long)i);
            }
        }
    }
}

/* Known-answer vectors of Philox4x32-10 (Salmon et al. SC'11; Random123
 * kat_vectors "philox4x32 10"): counter {0,0,0,0} key {0,0} and counter all
 * ones key all ones. Here: seed = key, counter/stream/sub = the words. */
static void test_kat(void) {
    uint32_t w[4];
    fp4_philox4x32(0, 0, 0, 0, w);
    fp4t_check(w[0] == 0x6627e8d5u && w[1] == 0xe169c58du && w[2] == 0xbc57ac4cu &&
                   w[3] == 0x9b00dbd8u,
               "KAT zero: %08x %08x %08x %08x", w[0], w[1], w[2], w[3]);
    fp4_philox4x32(~0ull, ~0u, ~0u, ~0ull, w);
    fp4t_check(w[0] == 0x408f276du && w[1] == 0x41c83b0eu && w[2] == 0xa20bc7c6u &&
                   w[3] == 0x6d5451fdu,
               "KAT ones: %08x %08x %08x %08x", w[0], w[1], w[2], w[3]);
    fp4t_check(fp4_fnv1a64("") == 0xcbf29ce484222325ull && fp4_fnv1a64("a") == 0xaf63dc4c8601ec8cull,
               "FNV-1a-64 offset basis / 'a'");
}

int main(void) {
    fp4t_begin("test_rng");
    test_kat();
    test_vs_random123();
    test_fill();
    return fp4t_end();
}
