// The official metrics: the coco128 oracle (official val.py matching + ap_per_class on noisy
// predictions) reproduced through the whole scorer, plus hand-computed AP, matching and label cases.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "confusion.h"
#include "metrics.h"
#include "value.h"

// Oracle tolerance: the same float32 matching decisions and float64 curve formulas as numpy;
// only summation order differs (~1e-15). 1e-6 absolute leaves room for that and nothing else
// (one matching or ordering difference moves a class AP by > 1e-3).
#define ORACLE_ATOL 1e-6
// Hand-computed cases: exact arithmetic up to double rounding.
#define HAND_ATOL 1e-12

static const char *shared_dir(void)
{
	const char *s = getenv("VKYOLO_SHARED");
	return s && *s ? s : "../shared";
}

static bool close_to(double got, double want, double atol)
{
	return fabs(got - want) <= atol;
}

static int read_all(const char *path, char **text, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	*text = malloc((size_t)n + 1);
	if (!*text || fread(*text, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(*text);
		return -EIO;
	}
	(*text)[n] = '\0';
	*len = (size_t)n;
	fclose(f);
	return 0;
}

static double num(const struct nn_value *d, const char *k)
{
	double v = NAN;
	nn_value_as_double(nn_value_dict_get(d, k), &v);
	return v;
}

// Returns 0 pass, 1 fail, 77 skip.
static int check_coco128_oracle(void)
{
	char yaml[1024], preds[1024], expf[1024], *text = NULL;
	size_t len = 0;
	snprintf(yaml, sizeof(yaml), "%s/data/coco128/coco128.yaml", shared_dir());
	snprintf(preds, sizeof(preds), "%s/oracle/metrics_coco128/labels", shared_dir());
	snprintf(expf, sizeof(expf), "%s/oracle/metrics_coco128/expected_metrics.json", shared_dir());
	if (read_all(expf, &text, &len)) {
		printf("skip: %s not found (set VKYOLO_SHARED)\n", expf);
		return 77;
	}
	struct nn_value *exp = NULL;
	struct nn_dataset *ds = NULL;
	struct nn_dataset_split *sp = NULL;
	struct nn_metrics_result r = {0};
	int fail = 1;
	if (nn_value_from_json(text, len, &exp) || nn_dataset_open(yaml, &ds) ||
	    nn_dataset_split_load(ds, NN_SPLIT_VAL, &sp) || nn_metrics_score_dir(sp, preds, &r, NULL)) {
		printf("FAIL coco128: could not load or score\n");
		goto done;
	}
	const struct nn_value *pc = nn_value_dict_get(exp, "per_class");
	if (r.images != 128 || r.instances != 929 || r.nclasses != nn_value_len(pc)) {
		printf("FAIL coco128: images %zu instances %zu classes %zu, want 128 929 %zu\n",
		       r.images, r.instances, r.nclasses, nn_value_len(pc));
		goto done;
	}
	double worst = 0.0;
	char worst_name[64] = "";
	double worst_got = 0, worst_want = 0;
	const char *keys[] = {"P", "R", "mAP50", "mAP50-95"};
	const double got_all[] = {r.p, r.r, r.map50, r.map50_95};
	for (int k = 0; k < 4; k++) {
		double e = fabs(got_all[k] - num(exp, keys[k]));
		if (!(e <= worst)) {
			worst = e;
			snprintf(worst_name, sizeof(worst_name), "all %s", keys[k]);
			worst_got = got_all[k];
			worst_want = num(exp, keys[k]);
		}
	}
	const char *ckeys[] = {"P", "R", "AP50", "AP50-95"};
	for (size_t i = 0; i < r.nclasses; i++) {
		char id[16];
		snprintf(id, sizeof(id), "%d", r.classes[i].cls);
		const struct nn_value *c = nn_value_dict_get(pc, id);
		if (!c) {
			printf("FAIL coco128: class %s not in the oracle\n", id);
			goto done;
		}
		const double got[] = {r.classes[i].p, r.classes[i].r, r.classes[i].ap50,
				      r.classes[i].ap50_95};
		for (int k = 0; k < 4; k++) {
			double e = fabs(got[k] - num(c, ckeys[k]));
			if (!(e <= worst)) {
				worst = e;
				snprintf(worst_name, sizeof(worst_name), "class %s %s", id, ckeys[k]);
				worst_got = got[k];
				worst_want = num(c, ckeys[k]);
			}
		}
	}
	if (!close_to(worst, 0.0, ORACLE_ATOL)) {
		printf("FAIL coco128: worst %s got %.17g want %.17g (abs err %.3g)\n", worst_name,
		       worst_got, worst_want, worst);
		goto done;
	}
	printf("ok coco128 oracle: P %.6f R %.6f mAP50 %.6f mAP50-95 %.6f, %zu classes, max abs err "
	       "%.3g (%s)\n",
	       r.p, r.r, r.map50, r.map50_95, r.nclasses, worst, worst_name);
	fail = 0;
done:
	nn_metrics_result_finish(&r);
	nn_dataset_split_destroy(&sp);
	nn_dataset_destroy(&ds);
	nn_value_destroy(&exp);
	free(text);
	return fail;
}

static int check_compute_ap(void)
{
	// Perfect curve: envelope 1 at x = 0..0.99, the appended (recall 1, precision 0) sentinel at
	// x = 1 -> 0.99 + 0.01 * (1 + 0) / 2 = 0.995 (the official quirk: never 1).
	double r1[] = {1.0}, p1[] = {1.0};
	double ap = nn_metrics_compute_ap(r1, p1, 1);
	if (!close_to(ap, 0.995, HAND_ATOL)) {
		printf("FAIL compute_ap perfect: got %.17g want 0.995\n", ap);
		return 1;
	}
	// TP, FP, TP over 2 labels: recall .5 .5 1, precision 1 .5 2/3; envelope 1 up to recall .5
	// (exclusive), 2/3 from .5 on, 0 at the sentinel. Trapezoid: 0.49 + 0.01*(1+2/3)/2
	// + 0.49*2/3 + 0.01*(2/3)/2 = 0.828333...
	double r2[] = {0.5, 0.5, 1.0}, p2[] = {1.0, 0.5, 2.0 / 3.0};
	double want = 0.49 + 0.01 * (1.0 + 2.0 / 3.0) / 2 + 0.49 * 2.0 / 3.0 + 0.01 * (2.0 / 3.0) / 2;
	ap = nn_metrics_compute_ap(r2, p2, 3);
	if (!close_to(ap, want, HAND_ATOL)) {
		printf("FAIL compute_ap TP FP TP: got %.17g want %.17g\n", ap, want);
		return 1;
	}
	printf("ok compute_ap: perfect 0.995, TP-FP-TP %.6f\n", ap);
	return 0;
}

static int check_ap_per_class(void)
{
	// Class 3: two labels, predictions conf .9 TP, .8 FP, .7 TP (given out of order to check the
	// sort); class 5: one label, no prediction (AP 0, counted in the means); a prediction of
	// class 9, which has no label, is ignored.
	bool tp[4][NN_METRICS_NIOU] = {{0}};
	for (int t = 0; t < NN_METRICS_NIOU; t++)
		tp[0][t] = tp[2][t] = true;
	// tp rows in confidence order .9, .8, .7 (class 3) and .95 (class 9); shuffled below.
	const float shuffled_conf[] = {0.7f, 0.95f, 0.9f, 0.8f};
	const int shuffled_cls[] = {3, 9, 3, 3};
	bool shuffled_tp[4][NN_METRICS_NIOU];
	const int perm[] = {2, 3, 0, 1};
	for (int i = 0; i < 4; i++)
		memcpy(shuffled_tp[i], tp[perm[i]], sizeof(tp[0]));
	const int tcls[] = {3, 5, 3};
	struct nn_metrics_result r;
	if (nn_metrics_ap_per_class(&shuffled_tp[0][0], shuffled_conf, shuffled_cls, 4, tcls, 3, &r))
		return 1;
	double ap3 = 0.49 + 0.01 * (1.0 + 2.0 / 3.0) / 2 + 0.49 * 2.0 / 3.0 + 0.01 * (2.0 / 3.0) / 2;
	int fail = 0;
	if (r.nclasses != 2 || r.classes[0].cls != 3 || r.classes[1].cls != 5 ||
	    r.classes[0].n_labels != 2 || r.classes[1].n_labels != 1) {
		printf("FAIL ap_per_class: classes\n");
		fail = 1;
	} else if (!close_to(r.classes[0].ap50, ap3, HAND_ATOL) ||
		   !close_to(r.classes[0].ap50_95, ap3, HAND_ATOL) ||
		   r.classes[1].ap50 != 0.0 || !close_to(r.map50, ap3 / 2, HAND_ATOL) ||
		   !close_to(r.map50_95, ap3 / 2, HAND_ATOL)) {
		printf("FAIL ap_per_class: AP50 %.17g AP50-95 %.17g mAP50 %.17g, want %.17g and %.17g\n",
		       r.classes[0].ap50, r.classes[0].ap50_95, r.map50, ap3, ap3 / 2);
		fail = 1;
	} else if (r.classes[1].p != 0.0 || r.classes[1].r != 0.0) {
		printf("FAIL ap_per_class: class without predictions has P %g R %g\n", r.classes[1].p,
		       r.classes[1].r);
		fail = 1;
	} else {
		// At the chosen confidence c, class 3's P and R are the np.interp of its curves at -c;
		// both curves are piecewise linear between the three confidences, so check the
		// interpolation by hand.
		double c = r.conf, p, rec;
		if (c > 0.9) {
			p = 1.0;
			rec = 0.0;
		} else if (c >= 0.8) {
			double u = (0.9 - c) / (0.9 - 0.8); // share of the way from .9 to .8
			p = 1.0 + u * (0.5 - 1.0);
			rec = 0.5;
		} else if (c >= 0.7) {
			double u = (0.8 - c) / (0.8 - 0.7);
			p = 0.5 + u * (2.0 / 3.0 - 0.5);
			rec = 0.5 + u * 0.5;
		} else {
			p = 2.0 / 3.0;
			rec = 1.0;
		}
		// float32 confidences move the interpolation nodes by ~1e-8: tolerance 1e-6.
		if (!close_to(r.classes[0].p, p, 1e-6) || !close_to(r.classes[0].r, rec, 1e-6)) {
			printf("FAIL ap_per_class: at conf %.6f P %.9f R %.9f, want %.9f %.9f\n", c,
			       r.classes[0].p, r.classes[0].r, p, rec);
			fail = 1;
		}
	}
	// plotted curves: class 3's precision envelope over recall (mrec 0, .5, .5, 1, 1 / envelope 1, 1,
	// 2/3, 2/3, 0): 1 up to recall .5, 2/3 after it, 0 at recall 1 exactly; class 5 has no PR row;
	// F1 = 2PR / (P + R) on the confidence axis.
	if (!fail) {
		const double *pr = r.curve_pr, *p3 = r.curve_p, *r3 = r.curve_r, *f3 = r.curve_f1;
		size_t k = 700; // px 0.7007: below confidence .7 nothing changes (P 2/3, R 1)
		double f1 = 2.0 * p3[k] * r3[k] / (p3[k] + r3[k] + 1e-16);
		if (!pr || !r.has_pr[0] || r.has_pr[1] || pr[0] != 1.0 || pr[400] != 1.0 ||
		    !close_to(pr[600], 2.0 / 3.0, HAND_ATOL) || pr[NN_METRICS_NPX - 1] != 0.0 ||
		    !close_to(p3[100], 2.0 / 3.0, 1e-6) || r3[100] != 1.0 || !close_to(f3[k], f1, HAND_ATOL) ||
		    r.curve_p[NN_METRICS_NPX + 5] != 0.0) {
			printf("FAIL ap_per_class curves: pr %g %g %g %g, has_pr %d %d, P %g R %g at px .1, F1 %g vs %g\n",
			       pr ? pr[0] : -1, pr ? pr[400] : -1, pr ? pr[600] : -1, pr ? pr[NN_METRICS_NPX - 1] : -1,
			       r.has_pr ? r.has_pr[0] : -1, r.has_pr ? r.has_pr[1] : -1, p3 ? p3[100] : -1,
			       r3 ? r3[100] : -1, f3 ? f3[k] : -1, f1);
			fail = 1;
		}
	}
	if (!fail)
		printf("ok ap_per_class: AP %.6f, mAP %.6f, P %.4f R %.4f at conf %.3f\n",
		       r.classes[0].ap50, r.map50, r.classes[0].p, r.classes[0].r, r.conf);
	nn_metrics_result_finish(&r);
	return fail;
}

static int expect_row(const char *what, const bool *c, const bool *want)
{
	for (int t = 0; t < NN_METRICS_NIOU; t++)
		if (c[t] != want[t]) {
			printf("FAIL match %s: threshold %d got %d want %d\n", what, t, c[t], want[t]);
			return 1;
		}
	return 0;
}

static int check_match(void)
{
	float thr[NN_METRICS_NIOU];
	nn_metrics_iou_thresholds(thr);
	if (thr[0] != 0.5f || thr[9] != 0.95f || fabsf(thr[6] - 0.8f) > 1e-7f) {
		printf("FAIL thresholds: %.9g .. %.9g\n", thr[0], thr[9]);
		return 1;
	}
	const struct nn_gt gts[] = {{0, 0, 0, 10, 10}, {0, 5, 0, 15, 10}};
	bool c[2 * NN_METRICS_NIOU];
	const bool all[NN_METRICS_NIOU] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, none[NN_METRICS_NIOU] = {0};
	// det0 = label A exactly (IoU 1; 1/3 with B); det1 overlaps A with IoU 90/110 = 0.818 and B
	// with 0.43: both pick A, the lower index (det0) wins; B stays unmatched.
	const struct nn_det d1[] = {{0, 0, 10, 10, 0.9f, 0}, {1, 0, 11, 10, 0.8f, 0}};
	if (nn_metrics_match(d1, 2, gts, 2, c) || expect_row("same label det0", c, all) ||
	    expect_row("same label det1", c + NN_METRICS_NIOU, none))
		return 1;
	// det0 overlaps B with 0.818 and A with 0.43 -> B (TP up to threshold 0.80, not at 0.85);
	// det1 = A exactly -> TP everywhere.
	const struct nn_det d2[] = {{4, 0, 14, 10, 0.9f, 0}, {0, 0, 10, 10, 0.8f, 0}};
	const bool upto80[NN_METRICS_NIOU] = {1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
	if (nn_metrics_match(d2, 2, gts, 2, c) || expect_row("own label det0", c, upto80) ||
	    expect_row("own label det1", c + NN_METRICS_NIOU, all))
		return 1;
	// Wrong class: no match at all.
	const struct nn_det d3[] = {{0, 0, 10, 10, 0.9f, 1}};
	if (nn_metrics_match(d3, 1, gts, 2, c) || expect_row("wrong class", c, none))
		return 1;
	printf("ok match: best label per detection, lowest detection per label, thresholds\n");
	return 0;
}

// ConfusionMatrix.process_batch by hand (nc 3, background index 3; rows predicted, columns true).
static int check_confusion(void)
{
	struct nn_confusion *cm = NULL;
	if (nn_confusion_create(3, NN_CONFUSION_CONF, NN_CONFUSION_IOU, &cm))
		return 1;
	double want[4][4] = {{0}};
	// 1: d0 = label A exactly; d1 (class 2) on label B (class 1) with IoU 0.818: a class confusion;
	// d2 overlaps A (0.818) but A went to d0: background column; d3 is under conf 0.25, so label C is
	// missed: background row; d4 overlaps nothing: background column.
	const struct nn_gt g1[] = {{0, 0, 0, 10, 10}, {1, 20, 0, 30, 10}, {2, 40, 0, 50, 10}};
	const struct nn_det d1[] = {{0, 0, 10, 10, 0.9f, 0}, {21, 0, 31, 10, 0.8f, 2}, {1, 0, 11, 10, 0.7f, 0},
	                            {40, 0, 50, 10, 0.2f, 2}, {100, 100, 110, 110, 0.6f, 1}};
	want[0][0] += 1, want[2][1] += 1, want[0][3] += 1, want[3][2] += 1, want[1][3] += 1;
	// 2: a label and no detections: background row
	const struct nn_gt g2[] = {{1, 0, 0, 10, 10}};
	want[3][1] += 1;
	// 3: detections and no labels: nothing (official: no match in the image, so unmatched
	// detections are not counted)
	const struct nn_det d3[] = {{0, 0, 5, 5, 0.9f, 0}};
	// 4: a label and a detection far from it: the label counts, the detection does not (same rule)
	const struct nn_gt g4[] = {{0, 0, 0, 10, 10}};
	const struct nn_det d4[] = {{50, 50, 60, 60, 0.9f, 0}};
	want[3][0] += 1;
	// 5: the official two passes (best label per detection, then best detection per label) are
	// not a greedy matching: D0 and D1 both prefer L0 (1 and 0.818), so D1's 0.667 with L1 is
	// dropped in the first pass; L0 takes D0, L1 is missed and D1 is background.
	const struct nn_gt g5[] = {{0, 0, 0, 10, 10}, {1, 3, 0, 13, 10}};
	const struct nn_det d5[] = {{0, 0, 10, 10, 0.9f, 0}, {1, 0, 11, 10, 0.8f, 1}};
	want[0][0] += 1, want[3][1] += 1, want[1][3] += 1;
	int fail = nn_confusion_add_image(cm, d1, 5, g1, 3) || nn_confusion_add_image(cm, NULL, 0, g2, 1) ||
	           nn_confusion_add_image(cm, d3, 1, NULL, 0) || nn_confusion_add_image(cm, d4, 1, g4, 1) ||
	           nn_confusion_add_image(cm, d5, 2, g5, 2);
	for (int p = 0; p < 4 && !fail; p++)
		for (int t = 0; t < 4; t++)
			if (nn_confusion_at(cm, p, t) != want[p][t]) {
				printf("FAIL confusion [pred %d][true %d] = %g, want %g\n", p, t, nn_confusion_at(cm, p, t),
				       want[p][t]);
				fail = 1;
			}
	const struct nn_gt bad[] = {{3, 0, 0, 1, 1}};
	if (!fail && nn_confusion_add_image(cm, NULL, 0, bad, 1) != -EINVAL) {
		printf("FAIL confusion: label class 3 of 3 accepted\n");
		fail = 1;
	}
	if (!fail)
		printf("ok confusion: matches, class confusions, both backgrounds, the two-pass matching\n");
	nn_confusion_destroy(&cm);
	return fail;
}

static int parse(const char *text, int nc, struct nn_label **l, size_t *n, size_t *dups)
{
	return nn_labels_parse(text, strlen(text), nc, "<test>", l, n, dups);
}

static int check_labels(void)
{
	struct nn_label *l = NULL;
	size_t n = 0, dups = 0;
	int fail = 0;
	// Polygon mode (a line with > 6 fields): every line is x y pairs; the 5-field line becomes
	// the two points (0.5, 0.5), (0.6, 0.7).
	if (parse("0 0.1 0.2 0.3 0.4 0.2 0.6\n1 0.5 0.5 0.6 0.7\n", 80, &l, &n, &dups) || n != 2 ||
	    l[0].cls != 0 || fabsf(l[0].cx - 0.2f) > 1e-6f || fabsf(l[0].cy - 0.4f) > 1e-6f ||
	    fabsf(l[0].w - 0.2f) > 1e-6f || fabsf(l[0].h - 0.4f) > 1e-6f || l[1].cls != 1 ||
	    fabsf(l[1].cx - 0.55f) > 1e-6f || fabsf(l[1].cy - 0.6f) > 1e-6f ||
	    fabsf(l[1].w - 0.1f) > 1e-6f || fabsf(l[1].h - 0.2f) > 1e-6f) {
		printf("FAIL labels polygon: n %zu\n", n);
		fail = 1;
	}
	free(l);
	// Duplicates removed, the rest in lexicographic order (np.unique).
	if (parse("3 0.5 0.5 0.2 0.2\r\n1 0.1 0.1 0.1 0.1\n\n3 0.5 0.5 0.2 0.2\n", 80, &l, &n, &dups) ||
	    n != 2 || dups != 1 || l[0].cls != 1 || l[1].cls != 3) {
		printf("FAIL labels duplicates: n %zu dups %zu\n", n, dups);
		fail = 1;
	}
	free(l);
	if (parse("  \n", 80, &l, &n, &dups) || n != 0 || l) {
		printf("FAIL labels empty\n");
		fail = 1;
	}
	const char *corrupt[] = {
		"-1 0.5 0.5 0.1 0.1\n",		 // negative class
		"0 0.5 1.5 0.1 0.1\n",		 // coordinate > 1
		"0 0.5 -0.5 0.1 0.1\n",		 // negative coordinate
		"80 0.5 0.5 0.1 0.1\n",		 // class >= nc
		"0 0.5 0.5 0.1 0.1 0.9\n",	 // 6 columns
		"0 0.5 0.5 0.1\n",		 // 4 columns
		"0 0.5 zero 0.1 0.1\n",		 // not a number
		"1 0.1 0.2 0.3 0.4 0.5 0.6 0.7\n", // polygon with an odd coordinate count
		"1.5 0.5 0.5 0.1 0.1\n",	 // class not an integer
	};
	for (size_t i = 0; i < sizeof(corrupt) / sizeof(corrupt[0]); i++) {
		int rc = parse(corrupt[i], 80, &l, &n, &dups);
		free(l);
		if (rc != -EINVAL) {
			printf("FAIL labels corrupt case %zu accepted (rc %d)\n", i, rc);
			fail = 1;
		}
	}
	char *p = NULL;
	if (nn_label_path("/d/images/x/images/a.b.JPG", &p) || strcmp(p, "/d/images/x/labels/a.b.txt")) {
		printf("FAIL label path: %s\n", p ? p : "(null)");
		fail = 1;
	}
	free(p);
	if (!fail)
		printf("ok labels: polygon, duplicates, %zu corrupt cases, label path\n",
		       sizeof(corrupt) / sizeof(corrupt[0]));
	return fail;
}

int main(void)
{
	int fail = 0;
	fail |= check_compute_ap();
	fail |= check_ap_per_class();
	fail |= check_match();
	fail |= check_confusion();
	fail |= check_labels();
	int o = check_coco128_oracle();
	if (o == 1)
		fail = 1;
	return fail ? 1 : 0;
}
