// Box geometry of the loss: CIoU (fp32 for the assigner, double with its gradient for the box loss)
// and the DFL softmax expectation. Boxes are xyxy; eps 1e-7 is added to heights only, to the union
// and to the enclosing diagonal, like the official bbox_iou.
#include <math.h>

#include "loss_internal.h"

#define FOUR_OVER_PI2 0.40528473456935108578 // 4 / pi^2

float nn_loss_ciou_f(const float b1[4], const float b2[4])
{
	const float eps = NN_LOSS_IOU_EPS;
	float w1 = b1[2] - b1[0], h1 = b1[3] - b1[1] + eps;
	float w2 = b2[2] - b2[0], h2 = b2[3] - b2[1] + eps;
	float iw = fminf(b1[2], b2[2]) - fmaxf(b1[0], b2[0]);
	float ih = fminf(b1[3], b2[3]) - fmaxf(b1[1], b2[1]);
	float inter = fmaxf(iw, 0.0f) * fmaxf(ih, 0.0f);
	float uni = w1 * h1 + w2 * h2 - inter + eps;
	float iou = inter / uni;
	float cw = fmaxf(b1[2], b2[2]) - fminf(b1[0], b2[0]);
	float ch = fmaxf(b1[3], b2[3]) - fminf(b1[1], b2[1]);
	float c2 = cw * cw + ch * ch + eps;
	float dx = b2[0] + b2[2] - b1[0] - b1[2], dy = b2[1] + b2[3] - b1[1] - b1[3];
	float rho2 = (dx * dx + dy * dy) / 4.0f;
	float da = atanf(w2 / h2) - atanf(w1 / h1);
	float v = (float)FOUR_OVER_PI2 * (da * da);
	float alpha = v / (v - iou + (float)(1.0 + 1e-7));
	return iou - (rho2 / c2 + v * alpha);
}

double nn_loss_ciou_grad(const double p[4], const double t[4], const double *alpha_in, double g[4])
{
	const double eps = NN_LOSS_IOU_EPS;
	double w1 = p[2] - p[0], h1 = p[3] - p[1] + eps;
	double w2 = t[2] - t[0], h2 = t[3] - t[1] + eps;
	// intersection: which box bounds it decides the gradient (ties count as the target's side)
	double ix = fmin(p[2], t[2]) - fmax(p[0], t[0]);
	double iy = fmin(p[3], t[3]) - fmax(p[1], t[1]);
	double ixc = fmax(ix, 0.0), iyc = fmax(iy, 0.0);
	double inter = ixc * iyc;
	double uni = w1 * h1 + w2 * h2 - inter + eps;
	double iou = inter / uni;
	double cw = fmax(p[2], t[2]) - fmin(p[0], t[0]);
	double ch = fmax(p[3], t[3]) - fmin(p[1], t[1]);
	double c2 = cw * cw + ch * ch + eps;
	double dx = t[0] + t[2] - p[0] - p[2], dy = t[1] + t[3] - p[1] - p[3];
	double rho2 = (dx * dx + dy * dy) / 4.0;
	double a1 = atan(w1 / h1), da = atan(w2 / h2) - a1;
	double v = FOUR_OVER_PI2 * da * da;
	double alpha = alpha_in ? *alpha_in : v / (v - iou + (1.0 + eps));
	double ciou = iou - (rho2 / c2 + v * alpha);
	if (!g)
		return alpha;

	// d inter / d p: only the coordinates that bound the intersection, only while it is open
	double dix[4] = {0}, diy[4] = {0}; // d ix / d p, d iy / d p
	if (ix >= 0.0) {
		dix[0] = p[0] > t[0] ? -1.0 : 0.0;
		dix[2] = p[2] < t[2] ? 1.0 : 0.0;
	}
	if (iy >= 0.0) {
		diy[1] = p[1] > t[1] ? -1.0 : 0.0;
		diy[3] = p[3] < t[3] ? 1.0 : 0.0;
	}
	double d_iou_inter = (uni + inter) / (uni * uni); // inter appears in the numerator and the union
	double d_iou_area = -inter / (uni * uni);         // d iou / d (w1 * h1)
	double d_area[4] = {-h1, -w1, h1, w1};
	// enclosing box: which box bounds it
	double dcw[4] = {p[0] < t[0] ? -1.0 : 0.0, 0.0, p[2] > t[2] ? 1.0 : 0.0, 0.0};
	double dch[4] = {0.0, p[1] < t[1] ? -1.0 : 0.0, 0.0, p[3] > t[3] ? 1.0 : 0.0};
	double drho2[4] = {-dx / 2.0, -dy / 2.0, -dx / 2.0, -dy / 2.0};
	// v through atan(w1 / h1): d a1 / d w1 = h1 / (w1^2 + h1^2), d a1 / d h1 = -w1 / (w1^2 + h1^2)
	double r2 = w1 * w1 + h1 * h1;
	double dv_da1 = -2.0 * FOUR_OVER_PI2 * da;
	double dv[4] = {dv_da1 * -h1 / r2, dv_da1 * w1 / r2, dv_da1 * h1 / r2, dv_da1 * -w1 / r2};
	for (int k = 0; k < 4; k++) {
		double dinter = dix[k] * iyc + diy[k] * ixc;
		double diou = d_iou_inter * dinter + d_iou_area * d_area[k];
		double dc2 = 2.0 * cw * dcw[k] + 2.0 * ch * dch[k];
		double dterm = drho2[k] / c2 - rho2 * dc2 / (c2 * c2);
		g[k] = diou - dterm - alpha * dv[k];
	}
	return ciou;
}

float nn_loss_dfl_expect_f(const float *z, size_t pitch, uint32_t reg)
{
	float m = z[0];
	for (uint32_t k = 1; k < reg; k++)
		m = fmaxf(m, z[k * pitch]);
	float e[64], sum = 0.0f;
	for (uint32_t k = 0; k < reg; k++)
		sum += e[k] = expf(z[k * pitch] - m);
	float ev = 0.0f;
	for (uint32_t k = 0; k < reg; k++)
		ev += e[k] / sum * (float)k;
	return ev;
}

double nn_loss_dfl_softmax(const float *z, size_t pitch, uint32_t reg, double *p, double *lse)
{
	double m = z[0];
	for (uint32_t k = 1; k < reg; k++)
		m = fmax(m, z[k * pitch]);
	double sum = 0.0;
	for (uint32_t k = 0; k < reg; k++)
		sum += p[k] = exp(z[k * pitch] - m);
	double ev = 0.0;
	for (uint32_t k = 0; k < reg; k++) {
		p[k] /= sum;
		ev += p[k] * k;
	}
	*lse = m + log(sum);
	return ev;
}
