// A small explicit pseudo-random generator (xoshiro256**, seeded through splitmix64) so data
// augmentation is reproducible: every sample gets its own state derived from (seed, epoch, slot),
// never a global rand(). Not thread-safe per object; use one state per thread or per sample.
#pragma once
#include <stdint.h>

struct nn_rng {
	uint64_t s[4];
};

// Seeds the state from one 64-bit value (any value, 0 included).
void nn_rng_seed(struct nn_rng *r, uint64_t seed);
// A well-mixed 64-bit seed from a base seed and two counters (e.g. epoch and sample position).
uint64_t nn_rng_mix(uint64_t seed, uint64_t a, uint64_t b);
uint64_t nn_rng_next(struct nn_rng *r);
// Uniform double in [0, 1) with 53 random bits.
double nn_rng_unit(struct nn_rng *r);
// Uniform double in [lo, hi) (Python random.uniform(lo, hi)).
double nn_rng_uniform(struct nn_rng *r, double lo, double hi);
// Uniform integer in [0, n) without modulo bias; 0 when n is 0.
uint32_t nn_rng_below(struct nn_rng *r, uint32_t n);
// Standard normal (Marsaglia polar method).
double nn_rng_normal(struct nn_rng *r);
// Gamma(shape, 1) for shape > 0 (Marsaglia-Tsang), Beta(a, b) from two gammas (numpy's beta for
// a, b > 1 follows the same distribution).
double nn_rng_gamma(struct nn_rng *r, double shape);
double nn_rng_beta(struct nn_rng *r, double a, double b);
