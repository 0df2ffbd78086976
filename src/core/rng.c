/* Philox4x32-10 counter-based random numbers (Salmon et al., SC'11). The state is a key and
 * a block counter, so saving and restoring it is exact and streams never overlap. */
#include "graft/core.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void gf_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

static void philox_block(uint64_t counter, uint64_t key, uint32_t out[4]) {
    const uint32_t ctr[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), 0, 0};
    const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    gf_philox4x32(ctr, k, out);
}

void gf_rng_seed(gf_rng *r, uint64_t seed) {
    /* splitmix64 spreads nearby seeds (0, 1, 2...) over the key space */
    uint64_t z = seed + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    r->key = z ^ (z >> 31);
    r->counter = 0;
    r->lane = 4;
    for (int i = 0; i < 4; i++) r->block[i] = 0;
}

uint32_t gf_rng_u32(gf_rng *r) {
    if (r->lane >= 4) {
        philox_block(r->counter++, r->key, r->block);
        r->lane = 0;
    }
    return r->block[r->lane++];
}

uint64_t gf_rng_u64(gf_rng *r) {
    uint64_t hi = gf_rng_u32(r);
    return (hi << 32) | gf_rng_u32(r);
}

float gf_rng_uniform(gf_rng *r) { return (float)(gf_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

uint64_t gf_rng_below(gf_rng *r, uint64_t n) {
    if (n <= 1) return 0;
    /* rejection sampling: drop the top partial range so every residue is equally likely */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
    uint64_t v;
    do v = gf_rng_u64(r);
    while (v >= limit);
    return v % n;
}

float gf_rng_normal(gf_rng *r) {
    double u1 = ((double)gf_rng_u32(r) + 1.0) / 4294967297.0; /* (0, 1): log is finite */
    double u2 = (double)gf_rng_u32(r) / 4294967296.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void gf_rng_shuffle(gf_rng *r, int64_t *idx, int64_t n) {
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)gf_rng_below(r, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
