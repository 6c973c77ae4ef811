/* rng.c - Philox4x32-10 keyed by (seed, stream, sub, counter): fp4rng.h. The
 * single-counter call is Random123's; the bulk fill is the same rounds
 * written over lanes so the compiler vectorises them (the synthetic R1's main
 * cost). test_rng checks both against each other and against Random123. */
#include "fp4rng.h"

#include <Random123/philox.h>

void fp4_philox4x32(uint64_t seed, uint32_t stream, uint32_t sub, uint64_t counter,
                    uint32_t out[4]) {
    philox4x32_ctr_t c = {{(uint32_t)counter, (uint32_t)(counter >> 32), stream, sub}};
    philox4x32_key_t k = {{(uint32_t)seed, (uint32_t)(seed >> 32)}};
    philox4x32_ctr_t r = philox4x32(c, k);
    for (int w = 0; w < 4; w++) out[w] = r.v[w];
}

uint32_t fp4_rand32(uint64_t seed, uint32_t stream, uint32_t sub, uint64_t i) {
    uint32_t w[4];
    fp4_philox4x32(seed, stream, sub, i, w);
    return w[0];
}

uint64_t fp4_rand64(uint64_t seed, uint32_t stream, uint32_t sub, uint64_t i) {
    uint32_t w[4];
    fp4_philox4x32(seed, stream, sub, i, w);
    return ((uint64_t)w[1] << 32) | w[0];
}

uint64_t fp4_fnv1a64(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
    return h;
}

/* Philox constants and round structure (Salmon et al.; Random123's philox.h). */
enum { PB = 16 }; /* counters per lane group */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* The AVX2 / AVX-512 clones multiply 8 / 16 lanes at once; the bits are the
 * same in every clone (integer arithmetic). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static void philox_lanes(uint64_t q, uint32_t h0, uint32_t h1, uint32_t k0, uint32_t k1,
                         uint32_t out[PB * 4]) {
    uint32_t c0[PB], c1[PB], c2[PB], c3[PB];
    for (int j = 0; j < PB; j++) {
        c0[j] = (uint32_t)(q + (uint64_t)j);
        c1[j] = (uint32_t)((q + (uint64_t)j) >> 32);
        c2[j] = h0;
        c3[j] = h1;
    }
    for (int r = 0; r < 10; r++) {
        if (r) { /* the key is bumped before every round but the first */
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        for (int j = 0; j < PB; j++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0[j], p1 = (uint64_t)PHILOX_M1 * c2[j];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
            c1[j] = (uint32_t)p1;
            c3[j] = (uint32_t)p0;
            c0[j] = n0;
            c2[j] = n2;
        }
    }
    for (int j = 0; j < PB; j++) {
        out[4 * j + 0] = c0[j];
        out[4 * j + 1] = c1[j];
        out[4 * j + 2] = c2[j];
        out[4 * j + 3] = c3[j];
    }
}

void fp4_philox4x32_fill(uint64_t seed, uint32_t stream, uint32_t sub, uint64_t counter0,
                         int64_t n, uint32_t *out) {
    const uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    int64_t i = 0;
    for (; i + PB <= n; i += PB) philox_lanes(counter0 + (uint64_t)i, stream, sub, k0, k1, out + 4 * i);
    if (i < n) {
        uint32_t tail[PB * 4];
        philox_lanes(counter0 + (uint64_t)i, stream, sub, k0, k1, tail);
        for (int64_t j = 0; j < 4 * (n - i); j++) out[4 * i + j] = tail[j];
    }
}
