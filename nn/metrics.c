// Detection metrics, reproducing the official YOLOv9 val.py process_batch and utils/metrics.py
// ap_per_class / compute_ap / smooth number for number (see metrics.h for the contract).
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define NPX NN_METRICS_NPX // confidence samples of the P/R/F1 curves (np.linspace(0, 1, 1000))
#define EPS 1e-16    // ap_per_class eps
#define SMOOTH_F 0.1 // box filter fraction used to pick the max-F1 confidence

void nn_metrics_iou_thresholds(float out[NN_METRICS_NIOU])
{
	// torch.linspace(0.5, 0.95, 10) in float32: the first half counts up from start, the second
	// half down from end, with a float32 step.
	const float start = 0.5f, end = 0.95f;
	const float step = (end - start) / (float)(NN_METRICS_NIOU - 1);
	for (int i = 0; i < NN_METRICS_NIOU; i++)
		out[i] = i < NN_METRICS_NIOU / 2 ? start + step * (float)i
						 : end - step * (float)(NN_METRICS_NIOU - 1 - i);
}

float nn_box_iou(const float a[4], const float b[4])
{
	// Same float32 operation order as box_iou: inter / (area_a + area_b - inter + eps).
	float wx = fminf(a[2], b[2]) - fmaxf(a[0], b[0]);
	float wy = fminf(a[3], b[3]) - fmaxf(a[1], b[1]);
	wx = wx > 0.0f ? wx : 0.0f;
	wy = wy > 0.0f ? wy : 0.0f;
	float inter = wx * wy;
	float area_a = (a[2] - a[0]) * (a[3] - a[1]);
	float area_b = (b[2] - b[0]) * (b[3] - b[1]);
	float den = area_a + area_b;
	den = den - inter;
	den = den + 1e-7f;
	return inter / den;
}

int nn_metrics_match(const struct nn_det *dets, size_t ndet, const struct nn_gt *gts, size_t ngt,
		     bool *correct)
{
	int rc = 0;
	float *iou = NULL;
	long *best = NULL, *owner = NULL;
	if (ndet == 0)
		return 0;
	memset(correct, 0, ndet * NN_METRICS_NIOU * sizeof(*correct));
	if (ngt == 0)
		return 0;
	iou = malloc(ndet * ngt * sizeof(*iou)); // [ngt][ndet], -1 where the classes differ
	best = malloc(ndet * sizeof(*best));
	owner = malloc(ngt * sizeof(*owner));
	if (!iou || !best || !owner) {
		LOGE("metrics: match %zu predictions x %zu labels: out of memory", ndet, ngt);
		rc = -ENOMEM;
		goto fail;
	}
	for (size_t l = 0; l < ngt; l++) {
		const float lb[4] = {gts[l].x1, gts[l].y1, gts[l].x2, gts[l].y2};
		for (size_t d = 0; d < ndet; d++) {
			const float db[4] = {dets[d].x1, dets[d].y1, dets[d].x2, dets[d].y2};
			iou[l * ndet + d] = gts[l].cls == dets[d].cls ? nn_box_iou(lb, db) : -1.0f;
		}
	}
	float thr[NN_METRICS_NIOU];
	nn_metrics_iou_thresholds(thr);
	for (int t = 0; t < NN_METRICS_NIOU; t++) {
		// Official: candidate pairs sorted by IoU descending, first pair per detection kept (its
		// best label), then per label the first of those in detection order (lowest index).
		// IoU ties: numpy's reversed ascending argsort puts the later pair (higher label index)
		// first for small arrays; we use that rule throughout.
		for (size_t d = 0; d < ndet; d++) {
			long bl = -1;
			float bv = 0.0f;
			for (size_t l = 0; l < ngt; l++) {
				float v = iou[l * ndet + d];
				if (v >= 0.0f && v >= thr[t] && (bl < 0 || v >= bv)) {
					bl = (long)l;
					bv = v;
				}
			}
			best[d] = bl;
		}
		for (size_t l = 0; l < ngt; l++)
			owner[l] = -1;
		for (size_t d = 0; d < ndet; d++)
			if (best[d] >= 0 && owner[best[d]] < 0)
				owner[best[d]] = (long)d;
		for (size_t l = 0; l < ngt; l++)
			if (owner[l] >= 0)
				correct[(size_t)owner[l] * NN_METRICS_NIOU + (size_t)t] = true;
	}
fail:
	free(iou);
	free(best);
	free(owner);
	return rc;
}

// np.interp(x, xp, fp, left, right) for ascending xp (duplicates allowed), numpy's formula.
static double interp1(double x, const double *xp, const double *fp, size_t n, double left,
		      double right)
{
	if (x < xp[0])
		return left;
	if (x > xp[n - 1])
		return right;
	// largest j with xp[j] <= x
	size_t lo = 0, hi = n - 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo + 1) / 2;
		if (xp[mid] <= x)
			lo = mid;
		else
			hi = mid - 1;
	}
	size_t j = lo;
	if (j == n - 1 || xp[j] == x)
		return fp[j];
	double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
	double y = slope * (x - xp[j]) + fp[j];
	if (isnan(y)) {
		y = slope * (x - xp[j + 1]) + fp[j + 1];
		if (isnan(y) && fp[j] == fp[j + 1])
			y = fp[j];
	}
	return y;
}

static double linspace_at(double start, double stop, size_t num, size_t k)
{
	// np.linspace: arange(num) * step + start, last element set to stop exactly.
	if (k == num - 1)
		return stop;
	double step = (stop - start) / (double)(num - 1);
	return (double)k * step + start;
}

// compute_ap; with py (NPX values) also np.interp(px, mrec, mpre): the envelope at recall px.
static double compute_ap_curve(const double *recall, const double *precision, size_t n, double *py)
{
	size_t m = n + 2;
	double *mrec = malloc(m * sizeof(*mrec)), *mpre = malloc(m * sizeof(*mpre));
	double ap = 0.0;
	if (!mrec || !mpre) {
		LOGE("metrics: compute_ap of %zu points: out of memory", n);
		ap = NAN;
		goto fail;
	}
	mrec[0] = 0.0;
	mpre[0] = 1.0;
	for (size_t i = 0; i < n; i++) {
		mrec[i + 1] = recall[i];
		mpre[i + 1] = precision[i];
	}
	mrec[m - 1] = 1.0;
	mpre[m - 1] = 0.0;
	for (size_t i = m - 1; i-- > 0;) // precision envelope (running max from the right)
		mpre[i] = fmax(mpre[i], mpre[i + 1]);
	// 101-point interpolation then np.trapz. Note the quirk this keeps: at recall 1 the
	// appended (1, 0) sentinel wins, so a perfect curve gives 0.995, not 1.
	double xprev = 0.0, yprev = 0.0;
	for (size_t k = 0; k < 101; k++) {
		double x = linspace_at(0.0, 1.0, 101, k);
		double y = interp1(x, mrec, mpre, m, mpre[0], mpre[m - 1]);
		if (k > 0)
			ap += (x - xprev) * (y + yprev) / 2.0;
		xprev = x;
		yprev = y;
	}
	for (size_t k = 0; py && k < NPX; k++)
		py[k] = interp1(linspace_at(0.0, 1.0, NPX, k), mrec, mpre, m, mpre[0], mpre[m - 1]);
fail:
	free(mrec);
	free(mpre);
	return ap;
}

double nn_metrics_compute_ap(const double *recall, const double *precision, size_t n)
{
	return compute_ap_curve(recall, precision, n, NULL);
}

void nn_metrics_result_finish(struct nn_metrics_result *r)
{
	if (!r)
		return;
	free(r->classes);
	free(r->curve_p), free(r->curve_r), free(r->curve_f1), free(r->curve_pr), free(r->has_pr);
	memset(r, 0, sizeof(*r));
}

struct conf_idx {
	float conf;
	size_t i;
};

static int cmp_conf_desc(const void *pa, const void *pb)
{
	// np.argsort(-conf) uses an unstable quicksort: the order of equal confidences is not
	// defined by the official code. We break ties by input order (deterministic).
	const struct conf_idx *a = pa, *b = pb;
	if (a->conf != b->conf)
		return a->conf > b->conf ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

static int cmp_int(const void *pa, const void *pb)
{
	int a = *(const int *)pa, b = *(const int *)pb;
	return (a > b) - (a < b);
}

// One class: its P and R curves over px (rows p_row / r_row) and AP per threshold.
static void class_curves(const bool *tp, const float *conf, const size_t *sel, size_t n_p,
			 size_t n_l, double *p_row, double *r_row, double *pr_row, double ap[NN_METRICS_NIOU],
			 double *recall, double *precision, double *xp)
{
	for (int t = 0; t < NN_METRICS_NIOU; t++) {
		double tpc = 0.0, fpc = 0.0;
		for (size_t k = 0; k < n_p; k++) {
			bool hit = tp[sel[k] * NN_METRICS_NIOU + (size_t)t];
			tpc += hit;
			fpc += !hit;
			recall[k] = tpc / ((double)n_l + EPS);
			precision[k] = tpc / (tpc + fpc);
		}
		if (t == 0) {
			for (size_t k = 0; k < n_p; k++)
				xp[k] = -(double)conf[sel[k]];
			for (size_t k = 0; k < NPX; k++) {
				double x = -linspace_at(0.0, 1.0, NPX, k);
				r_row[k] = interp1(x, xp, recall, n_p, 0.0, recall[n_p - 1]);
				p_row[k] = interp1(x, xp, precision, n_p, 1.0, precision[n_p - 1]);
			}
		}
		ap[t] = compute_ap_curve(recall, precision, n_p, t == 0 ? pr_row : NULL);
	}
}

void nn_metrics_smooth(const double *y, size_t n, double f, double *out)
{
	size_t nf = (size_t)nearbyint((double)n * f * 2.0) / 2 + 1, half = nf / 2;
	double w = 1.0 / (double)nf;
	for (size_t k = 0; k < n; k++) {
		double s = 0.0;
		for (size_t m = 0; m < nf; m++) {
			long src = (long)(k + m) - (long)half;
			double v = src < 0 ? y[0] : src >= (long)n ? y[n - 1] : y[src];
			s += v * w;
		}
		out[k] = s;
	}
}

// The index of the first maximum of smooth(y, f) (NPX values).
static size_t smooth_argmax(const double *y, size_t n, double f)
{
	double s[NPX], bestv = -INFINITY;
	size_t besti = 0;
	nn_metrics_smooth(y, n, f, s);
	for (size_t k = 0; k < n; k++)
		if (s[k] > bestv)
			bestv = s[k], besti = k;
	return besti;
}

int nn_metrics_ap_per_class(const bool *tp, const float *conf, const int *pred_cls, size_t n,
			    const int *target_cls, size_t nt, struct nn_metrics_result *out)
{
	int rc = -ENOMEM;
	struct conf_idx *order = NULL;
	int *tcls = NULL;
	size_t *sel = NULL;
	double *pc = NULL, *rc_ = NULL, *f1 = NULL, *pr = NULL, *f1mean = NULL, *recall = NULL, *precision = NULL,
	       *xp = NULL;
	memset(out, 0, sizeof(*out));

	order = malloc((n ? n : 1) * sizeof(*order));
	tcls = malloc((nt ? nt : 1) * sizeof(*tcls));
	sel = malloc((n ? n : 1) * sizeof(*sel));
	recall = malloc((n ? n : 1) * sizeof(*recall));
	precision = malloc((n ? n : 1) * sizeof(*precision));
	xp = malloc((n ? n : 1) * sizeof(*xp));
	if (!order || !tcls || !sel || !recall || !precision || !xp)
		goto fail;
	for (size_t i = 0; i < n; i++)
		order[i] = (struct conf_idx){conf[i], i};
	qsort(order, n, sizeof(*order), cmp_conf_desc);
	memcpy(tcls, target_cls, nt * sizeof(*tcls));
	qsort(tcls, nt, sizeof(*tcls), cmp_int);

	size_t nc = 0;
	for (size_t i = 0; i < nt; i++)
		nc += i == 0 || tcls[i] != tcls[i - 1];
	out->instances = nt;
	out->nclasses = nc;
	out->classes = calloc(nc ? nc : 1, sizeof(*out->classes));
	pc = calloc((nc ? nc : 1) * NPX, sizeof(*pc));
	rc_ = calloc((nc ? nc : 1) * NPX, sizeof(*rc_));
	f1 = calloc((nc ? nc : 1) * NPX, sizeof(*f1));
	pr = calloc((nc ? nc : 1) * NPX, sizeof(*pr));
	out->has_pr = calloc(nc ? nc : 1, sizeof(*out->has_pr));
	f1mean = calloc(NPX, sizeof(*f1mean));
	if (!out->classes || !pc || !rc_ || !f1 || !pr || !out->has_pr || !f1mean)
		goto fail;
	for (size_t i = 0, ci = 0; i < nt; i++) {
		if (i > 0 && tcls[i] == tcls[i - 1]) {
			out->classes[ci - 1].n_labels++;
			continue;
		}
		out->classes[ci].cls = tcls[i];
		out->classes[ci++].n_labels = 1;
	}

	for (size_t ci = 0; ci < nc; ci++) {
		struct nn_class_metrics *cm = &out->classes[ci];
		size_t n_p = 0;
		for (size_t k = 0; k < n; k++)
			if (pred_cls[order[k].i] == cm->cls)
				sel[n_p++] = order[k].i;
		if (n_p == 0 || cm->n_labels == 0)
			continue; // P, R, AP stay 0, as official
		class_curves(tp, conf, sel, n_p, cm->n_labels, pc + ci * NPX, rc_ + ci * NPX, pr + ci * NPX,
			     cm->ap, recall, precision, xp);
		out->has_pr[ci] = true;
	}
	// f1 = 2pr/(p+r+eps) per class, mean over classes (row by row, as numpy's axis-0 mean).
	for (size_t ci = 0; ci < nc; ci++)
		for (size_t k = 0; k < NPX; k++) {
			double p = pc[ci * NPX + k], r = rc_[ci * NPX + k];
			f1[ci * NPX + k] = 2.0 * p * r / (p + r + EPS);
			f1mean[k] += f1[ci * NPX + k];
		}
	for (size_t k = 0; k < NPX; k++)
		f1mean[k] /= (double)(nc ? nc : 1);
	size_t best = smooth_argmax(f1mean, NPX, SMOOTH_F);
	out->conf = linspace_at(0.0, 1.0, NPX, best);

	for (size_t ci = 0; ci < nc; ci++) {
		struct nn_class_metrics *cm = &out->classes[ci];
		cm->p = pc[ci * NPX + best];
		cm->r = rc_[ci * NPX + best];
		cm->f1 = 2.0 * cm->p * cm->r / (cm->p + cm->r + EPS);
		cm->ap50 = cm->ap[0];
		double s = 0.0;
		for (int t = 0; t < NN_METRICS_NIOU; t++)
			s += cm->ap[t];
		cm->ap50_95 = s / NN_METRICS_NIOU;
		out->p += cm->p;
		out->r += cm->r;
		out->map50 += cm->ap50;
		out->map50_95 += cm->ap50_95;
	}
	if (nc) {
		out->p /= (double)nc;
		out->r /= (double)nc;
		out->map50 /= (double)nc;
		out->map50_95 /= (double)nc;
	}
	out->curve_p = pc, out->curve_r = rc_, out->curve_f1 = f1, out->curve_pr = pr;
	pc = rc_ = f1 = pr = NULL;
	rc = 0;
fail:
	if (rc) {
		LOGE("metrics: ap_per_class over %zu predictions, %zu labels: out of memory", n, nt);
		nn_metrics_result_finish(out);
	}
	free(order);
	free(tcls);
	free(sel);
	free(pc);
	free(rc_);
	free(f1);
	free(pr);
	free(f1mean);
	free(recall);
	free(precision);
	free(xp);
	return rc;
}

struct nn_metrics {
	size_t images;
	bool *tp; // [n][NN_METRICS_NIOU]
	float *conf;
	int *pred_cls;
	size_t n, cap;
	int *target_cls;
	size_t nt, tcap;
};

int nn_metrics_create(struct nn_metrics **out)
{
	*out = calloc(1, sizeof(**out));
	if (!*out) {
		LOGE("metrics: create: out of memory");
		return -ENOMEM;
	}
	return 0;
}

void nn_metrics_destroy(struct nn_metrics **m)
{
	if (!m || !*m)
		return;
	free((*m)->tp);
	free((*m)->conf);
	free((*m)->pred_cls);
	free((*m)->target_cls);
	free(*m);
	*m = NULL;
}

static size_t grown_cap(size_t cap, size_t need)
{
	size_t c = cap ? cap : 256;
	while (c < need)
		c *= 2;
	return c;
}

int nn_metrics_add_image(struct nn_metrics *m, const struct nn_det *dets, size_t ndet,
			 const struct nn_gt *gts, size_t ngt)
{
	m->images++;
	if (m->n + ndet > m->cap) {
		size_t c = grown_cap(m->cap, m->n + ndet);
		void *a = realloc(m->tp, c * NN_METRICS_NIOU * sizeof(bool)), *b = NULL, *p = NULL;
		if (a)
			m->tp = a;
		if (a && (b = realloc(m->conf, c * sizeof(float))))
			m->conf = b;
		if (b && (p = realloc(m->pred_cls, c * sizeof(int))))
			m->pred_cls = p;
		if (!p)
			goto nomem;
		m->cap = c;
	}
	if (m->nt + ngt > m->tcap) {
		size_t c = grown_cap(m->tcap, m->nt + ngt);
		void *t = realloc(m->target_cls, c * sizeof(int));
		if (!t)
			goto nomem;
		m->target_cls = t;
		m->tcap = c;
	}
	int rc = nn_metrics_match(dets, ndet, gts, ngt, m->tp + m->n * NN_METRICS_NIOU);
	if (rc)
		return rc;
	for (size_t d = 0; d < ndet; d++) {
		m->conf[m->n + d] = dets[d].conf;
		m->pred_cls[m->n + d] = dets[d].cls;
	}
	m->n += ndet;
	for (size_t l = 0; l < ngt; l++)
		m->target_cls[m->nt + l] = gts[l].cls;
	m->nt += ngt;
	return 0;
nomem:
	LOGE("metrics: add image %zu (%zu predictions, %zu labels): out of memory", m->images, ndet,
	     ngt);
	return -ENOMEM;
}

int nn_metrics_compute(const struct nn_metrics *m, struct nn_metrics_result *out)
{
	bool any = false;
	for (size_t i = 0; i < m->n * NN_METRICS_NIOU && !any; i++)
		any = m->tp[i];
	memset(out, 0, sizeof(*out));
	if (any) {
		int rc = nn_metrics_ap_per_class(m->tp, m->conf, m->pred_cls, m->n, m->target_cls,
						 m->nt, out);
		if (rc)
			return rc;
	}
	out->images = m->images;
	out->instances = m->nt;
	return 0;
}
