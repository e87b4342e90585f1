// CPU reference of BatchNorm2d over dense [n, c, h, w] tensors (nn/ref_bwd.h): batch statistics,
// normalisation, the training-mode backward (through the batch mean and variance) and PyTorch's
// running-statistics update. Reductions in double.
#include <math.h>

#include "ref_bwd.h"

void nn_bn_stats_ref(const struct nn_bn_desc *d, const float *z, float *mean, float *var)
{
	size_t hw = (size_t)d->h * d->w;
	double cnt = (double)d->n * hw;
	for (uint32_t c = 0; c < d->c; c++) {
		double s = 0.0, ss = 0.0;
		for (uint32_t n = 0; n < d->n; n++) {
			const float *p = z + ((size_t)n * d->c + c) * hw;
			for (size_t i = 0; i < hw; i++)
				s += p[i];
		}
		double mu = s / cnt;
		for (uint32_t n = 0; n < d->n; n++) {
			const float *p = z + ((size_t)n * d->c + c) * hw;
			for (size_t i = 0; i < hw; i++)
				ss += (p[i] - mu) * (p[i] - mu);
		}
		mean[c] = (float)mu;
		var[c] = (float)(ss / cnt);
	}
}

void nn_bn_forward_ref(const struct nn_bn_desc *d, const float *z, const float *gamma, const float *beta,
                       const float *mean, const float *var, float *y)
{
	size_t hw = (size_t)d->h * d->w;
	for (uint32_t n = 0; n < d->n; n++)
		for (uint32_t c = 0; c < d->c; c++) {
			float inv = 1.0f / sqrtf(var[c] + d->eps);
			size_t o = ((size_t)n * d->c + c) * hw;
			for (size_t i = 0; i < hw; i++)
				y[o + i] = (z[o + i] - mean[c]) * inv * gamma[c] + beta[c];
		}
}

void nn_bn_backward_ref(const struct nn_bn_desc *d, const float *z, const float *dy, const float *gamma,
                        const float *mean, const float *var, float *dz, float *dgamma, float *dbeta)
{
	size_t hw = (size_t)d->h * d->w;
	double cnt = (double)d->n * hw;
	for (uint32_t c = 0; c < d->c; c++) {
		double inv = 1.0 / sqrt((double)var[c] + d->eps), mu = mean[c];
		double sg = 0.0, sgx = 0.0; // sum dy, sum dy * xhat
		for (uint32_t n = 0; n < d->n; n++) {
			size_t o = ((size_t)n * d->c + c) * hw;
			for (size_t i = 0; i < hw; i++)
				sg += dy[o + i], sgx += dy[o + i] * ((z[o + i] - mu) * inv);
		}
		dgamma[c] = (float)sgx, dbeta[c] = (float)sg;
		// training: dz = gamma * inv * (dy - mean(dy) - xhat * mean(dy * xhat)); eval: gamma * inv * dy
		double a = gamma[c] * inv, mg = d->train ? sg / cnt : 0.0, mgx = d->train ? sgx / cnt : 0.0;
		for (uint32_t n = 0; n < d->n; n++) {
			size_t o = ((size_t)n * d->c + c) * hw;
			for (size_t i = 0; i < hw; i++)
				dz[o + i] = (float)(a * (dy[o + i] - mg - (z[o + i] - mu) * inv * mgx));
		}
	}
}

void nn_bn_running_update_ref(const struct nn_bn_desc *d, float momentum, const float *mean, const float *var,
                              float *running_mean, float *running_var)
{
	double cnt = (double)d->n * d->h * d->w;
	double unbias = cnt > 1 ? cnt / (cnt - 1) : 1.0;
	for (uint32_t c = 0; c < d->c; c++) {
		running_mean[c] = (1.0f - momentum) * running_mean[c] + momentum * mean[c];
		running_var[c] = (1.0f - momentum) * running_var[c] + momentum * (float)(var[c] * unbias);
	}
}
