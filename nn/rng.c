// xoshiro256** (Blackman & Vigna) with splitmix64 seeding, plus the few distributions the data
// pipeline needs (uniform, normal, gamma, beta).
#include "rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

void nn_rng_seed(struct nn_rng *r, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

uint64_t nn_rng_mix(uint64_t seed, uint64_t a, uint64_t b)
{
	uint64_t x = seed;
	uint64_t h = splitmix64(&x);
	x = h ^ a;
	h = splitmix64(&x);
	x = h ^ b;
	return splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t nn_rng_next(struct nn_rng *r)
{
	uint64_t *s = r->s;
	uint64_t out = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double nn_rng_unit(struct nn_rng *r)
{
	return (double)(nn_rng_next(r) >> 11) * 0x1.0p-53;
}

double nn_rng_uniform(struct nn_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * nn_rng_unit(r);
}

uint32_t nn_rng_below(struct nn_rng *r, uint32_t n)
{
	if (n == 0)
		return 0;
	// Lemire's multiply-shift with rejection of the biased low range.
	uint64_t m = (nn_rng_next(r) >> 32) * n;
	uint32_t lo = (uint32_t)m;
	if (lo < n) {
		uint32_t thresh = (uint32_t)(-n) % n;
		while (lo < thresh) {
			m = (nn_rng_next(r) >> 32) * n;
			lo = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

double nn_rng_normal(struct nn_rng *r)
{
	double u, v, s;
	do {
		u = 2.0 * nn_rng_unit(r) - 1.0;
		v = 2.0 * nn_rng_unit(r) - 1.0;
		s = u * u + v * v;
	} while (s >= 1.0 || s == 0.0);
	return u * sqrt(-2.0 * log(s) / s);
}

double nn_rng_gamma(struct nn_rng *r, double shape)
{
	if (shape < 1.0) {
		// Boost: Gamma(a) = Gamma(a + 1) * U^(1/a).
		double u = nn_rng_unit(r);
		return nn_rng_gamma(r, shape + 1.0) * pow(u > 0 ? u : 0x1.0p-53, 1.0 / shape);
	}
	double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
	for (;;) {
		double x, v;
		do {
			x = nn_rng_normal(r);
			v = 1.0 + c * x;
		} while (v <= 0.0);
		v = v * v * v;
		double u = nn_rng_unit(r);
		if (u < 1.0 - 0.0331 * x * x * x * x)
			return d * v;
		if (u > 0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v)))
			return d * v;
	}
}

double nn_rng_beta(struct nn_rng *r, double a, double b)
{
	double x = nn_rng_gamma(r, a), y = nn_rng_gamma(r, b);
	return x / (x + y);
}
