// Shared by the loss_tal_* kernels (nn/loss_gpu.c): the parameter header of the targets buffer, the
// per-set layout of the work buffer, map access, and the fp32 math the assigner and the loss need
// with libm-like accuracy (GLSL's atan and log are allowed large errors; CIoU's aspect term and the
// BCE of logits near -10 cancel, so they get their own).
//
// Targets buffer T (uint words): [0] n, [1] nc, [2] reg_max, [3] nl, [4] A anchors, [5] MT gt rows
// per image (capacity), [6] no = 4 reg_max + nc, [7] Np (n*A rounded up to 64), [8] G (n*MT rounded
// up to 64), [9] gt table offset; level l at [16 + 4l]: h, w, first anchor, stride (float bits);
// [10] first-row table offset; [64 + img] gt count of image img, [T[10] + img] its first row; gt
// row (img, j) at [table + 8 (first row + j)]: x1, y1, x2, y2 (input pixels, float bits), class,
// valid (x1 + y1 + x2 + y2 > 0), 2 unused. Rows are grouped per image in the targets' order.
// Work buffer W of one set at word `base` (push constant): regions of Np words (per image anchor
// i = img A + a) or G words (per gt row), all 256-byte aligned.
// Bindings of every loss_tal kernel: 0..3 the set's level maps (unused levels repeat level 0),
// 4 work buffer W, 5 targets buffer T. Push: the set's work base (words) and its gradient scale.
layout(std430, binding = 0) readonly buffer L0 { float l0[]; };
layout(std430, binding = 1) readonly buffer L1 { float l1[]; };
layout(std430, binding = 2) readonly buffer L2 { float l2[]; };
layout(std430, binding = 3) readonly buffer L3 { float l3[]; };
layout(std430, binding = 4) buffer Wb { uint W[]; };
layout(std430, binding = 5) readonly buffer Tb { uint T[]; };
layout(push_constant) uniform Push {
	uint base;   // this set's work region (words)
	float scale; // batch size times the set weight (0.25 auxiliary, else 1)
	uint n_sets; // loss_tal_final: sets; base1 = the second set's region
	uint base1;
} pc;

float map_load(uint l, uint i)
{
	if (l == 0)
		return l0[i];
	if (l == 1)
		return l1[i];
	if (l == 2)
		return l2[i];
	return l3[i];
}

#define P_N T[0]
#define P_NC T[1]
#define P_REG T[2]
#define P_NL T[3]
#define P_A T[4]
#define P_MT T[5]
#define P_NO T[6]
#define P_NP T[7]
#define P_G T[8]
#define P_TABLE T[9]
#define P_LH(l) T[16 + 4 * (l)]
#define P_LW(l) T[17 + 4 * (l)]
#define P_LA(l) T[18 + 4 * (l)]
#define P_LS(l) uintBitsToFloat(T[19 + 4 * (l)])
#define P_COUNT(img) T[64 + (img)]
#define GT_ROW(img, j) (P_TABLE + 8 * (T[T[10] + (img)] + (j)))

#define W_PD(b) (b)                           // [Np][4] decoded predictions xyxy, input pixels
#define W_CNT(b) ((b) + 4 * P_NP)             // positives per anchor (top-k of several gts)
#define W_FIRST(b) ((b) + 5 * P_NP)           // smallest gt index of those
#define W_GT(b) ((b) + 6 * P_NP)              // assigned gt, 0xffffffff = background
#define W_AL(b) ((b) + 7 * P_NP)              // align metric of (assigned gt, anchor)
#define W_OV(b) ((b) + 8 * P_NP)              // overlap of (assigned gt, anchor)
#define W_SCORE(b) ((b) + 9 * P_NP)           // soft target (0 = background)
#define W_PART(b, k) ((b) + (10 + (k)) * P_NP) // per anchor: cls, box * w, dfl * w, fg
#define W_TMAX(b) ((b) + 14 * P_NP)           // [G] largest align metric of each gt's positives
#define W_OMAX(b) ((b) + 14 * P_NP + P_G)     // [G] largest overlap of each gt's positives
#define W_RED(b, k) ((b) + 14 * P_NP + 2 * P_G + 256 * (k)) // reduction partials: S, cls, box, dfl, fg
#define W_SUM(b, k) ((b) + 14 * P_NP + 2 * P_G + 1280 + 64 * (k))
#define NO_GT 0xffffffffu

#define EPS_IOU 1e-7
#define EPS_ASSIGN 1e-9

// Level of anchor a and its pixel.
uint anchor_level(uint a)
{
	uint l = 0;
	for (uint k = 1; k < P_NL; k++)
		if (a >= P_LA(k))
			l = k;
	return l;
}

// Cephes atanf (relative error ~2e-7).
float atan_acc(float x)
{
	float sgn = x < 0.0 ? -1.0 : 1.0;
	x = abs(x);
	float y = 0.0;
	if (x > 2.414213562373095) {
		y = 1.5707963267948966;
		x = -1.0 / x;
	} else if (x > 0.4142135623730950) {
		y = 0.7853981633974483;
		x = (x - 1.0) / (x + 1.0);
	}
	float z = x * x;
	y += (((8.05374449538e-2 * z - 1.38776856032e-1) * z + 1.99777106478e-1) * z - 3.33329491539e-1) * z * x + x;
	return sgn * y;
}

// fdlibm logf for positive finite y (error < 1 ulp).
float log_acc(float y)
{
	int e;
	float f = frexp(y, e); // [0.5, 1)
	if (f < 0.70710678) {
		f *= 2.0;
		e -= 1;
	}
	float d = f - 1.0, s = d / (2.0 + d), z = s * s, w = z * z;
	float t1 = w * (4.0000000596e-01 + w * (2.2222198546e-01 + w * 1.5313838422e-01));
	float t2 = z * (6.6666668653e-01 + w * (2.8571429849e-01 + w * (1.8183572590e-01 + w * 1.4798198640e-01)));
	float hfsq = 0.5 * d * d;
	float r = d - (hfsq - s * (hfsq + t1 + t2));
	float fe = float(e);
	return fe * 6.9313812256e-01 + (fe * 9.0580006145e-06 + r);
}

float sigmoid_f(float x)
{
	return 1.0 / (1.0 + exp(-x));
}

// bbox_iou(b1, b2, xywh=False, CIoU=True) in fp32, the official operation order (nn_loss_ciou_f).
float ciou_f(vec4 b1, vec4 b2)
{
	float w1 = b1.z - b1.x, h1 = b1.w - b1.y + EPS_IOU;
	float w2 = b2.z - b2.x, h2 = b2.w - b2.y + EPS_IOU;
	float iw = min(b1.z, b2.z) - max(b1.x, b2.x);
	float ih = min(b1.w, b2.w) - max(b1.y, b2.y);
	float inter = max(iw, 0.0) * max(ih, 0.0);
	float uni = w1 * h1 + w2 * h2 - inter + EPS_IOU;
	float iou = inter / uni;
	float cw = max(b1.z, b2.z) - min(b1.x, b2.x);
	float ch = max(b1.w, b2.w) - min(b1.y, b2.y);
	float c2 = cw * cw + ch * ch + EPS_IOU;
	float dx = b2.x + b2.z - b1.x - b1.z, dy = b2.y + b2.w - b1.y - b1.w;
	float rho2 = (dx * dx + dy * dy) / 4.0;
	float da = atan_acc(w2 / h2) - atan_acc(w1 / h1);
	float v = 0.40528473456935108578 * (da * da);
	float alpha = v / (v - iou + 1.0000001);
	return iou - (rho2 / c2 + v * alpha);
}

// Overlap and align metric of gt box g (class logit z) with prediction p: o = max(CIoU, 0),
// t = sqrt(sigmoid(z)) * o^6 (+0.0 turns a -0 into +0 for the bitwise atomicMax).
vec2 align_metric(vec4 g, vec4 p, float z)
{
	float o = max(ciou_f(g, p), 0.0) + 0.0;
	float o3 = o * o * o;
	return vec2(o, sqrt(sigmoid_f(z)) * (o3 * o3) + 0.0);
}

// Anchor centre strictly inside the gt (margin > 1e-9), in input pixels.
bool inside_gt(vec2 c, vec4 g)
{
	return min(min(c.x - g.x, c.y - g.y), min(g.z - c.x, g.w - c.y)) > EPS_ASSIGN;
}

vec4 gt_box(uint row)
{
	return vec4(uintBitsToFloat(T[row]), uintBitsToFloat(T[row + 1]), uintBitsToFloat(T[row + 2]),
	            uintBitsToFloat(T[row + 3]));
}

vec4 pred_box(uint base, uint i)
{
	uint p = W_PD(base) + 4 * i;
	return vec4(uintBitsToFloat(W[p]), uintBitsToFloat(W[p + 1]), uintBitsToFloat(W[p + 2]), uintBitsToFloat(W[p + 3]));
}
