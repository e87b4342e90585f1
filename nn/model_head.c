// Lowering of the anchor-free detection heads DDetect and DualDDetect (models/yolo.py): per level a
// grouped box branch and a class branch writing one raw [64 + nc] map, then one decode op per set.
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "model_internal.h"

static uint32_t max3(uint32_t a, uint32_t b, uint32_t c)
{
	uint32_t m = a > b ? a : b;
	return m > c ? m : c;
}

// One output set over levels in[0..nl): box names bx ("cv2"/"cv4"), class names cl ("cv3"/"cv5").
static int lower_set(struct nn_builder *b, const struct nn_row *row, const struct nn_slice *in, uint32_t nl,
                     const char *bx, const char *cl, const char *dfl, uint32_t set, uint32_t *out_tensor)
{
	struct nn_model *m = b->m;
	uint32_t nc = m->nc, reg = m->reg_max, ch0 = in[0].c;
	// widths from the first level only: c2 = roundup4(max(ch0/4, 4*reg_max, 16)), c3 = max(ch0, min(2nc, 128))
	uint32_t c2 = (max3(ch0 / 4, 4 * reg, 16) + 3) / 4 * 4;
	uint32_t c3 = ch0 > (2 * nc < 128 ? 2 * nc : 128) ? ch0 : (2 * nc < 128 ? 2 * nc : 128);
	char p[128];
	int ret;
	for (uint32_t l = 0; l < nl; l++) {
		uint32_t map, t[4];
		if ((ret = nn_builder_tensor(b, 4 * reg + nc, &map)))
			return ret;
		for (int i = 0; i < 4; i++)
			if ((ret = nn_builder_tensor(b, i < 2 ? c2 : c3, &t[i])))
				return ret;
		struct nn_slice s0 = {t[0], 0, c2}, s1 = {t[1], 0, c2}, s2 = {t[2], 0, c3}, s3 = {t[3], 0, c3};
		struct nn_slice box = {map, 0, 4 * reg}, cls = {map, 4 * reg, nc};
		// box: Conv3x3 -> Conv3x3 g4 -> conv2d 1x1 g4 (+bias)
		snprintf(p, sizeof(p), "%s.%s.%u.0", row->prefix, bx, l);
		if ((ret = nn_emit_conv_block(b, p, in[l], s0, 3, 1, 1, 1, NN_ACT_SILU, false, nn_slice_none())))
			return ret;
		snprintf(p, sizeof(p), "%s.%s.%u.1", row->prefix, bx, l);
		if ((ret = nn_emit_conv_block(b, p, s0, s1, 3, 1, 1, 4, NN_ACT_SILU, false, nn_slice_none())))
			return ret;
		snprintf(p, sizeof(p), "%s.%s.%u.2", row->prefix, bx, l);
		if ((ret = nn_emit_conv_bias(b, p, s1, box, 1, 1, 4)))
			return ret;
		// class: Conv3x3 -> Conv3x3 -> conv2d 1x1 (+bias)
		snprintf(p, sizeof(p), "%s.%s.%u.0", row->prefix, cl, l);
		if ((ret = nn_emit_conv_block(b, p, in[l], s2, 3, 1, 1, 1, NN_ACT_SILU, false, nn_slice_none())))
			return ret;
		snprintf(p, sizeof(p), "%s.%s.%u.1", row->prefix, cl, l);
		if ((ret = nn_emit_conv_block(b, p, s2, s3, 3, 1, 1, 1, NN_ACT_SILU, false, nn_slice_none())))
			return ret;
		snprintf(p, sizeof(p), "%s.%s.%u.2", row->prefix, cl, l);
		if ((ret = nn_emit_conv_bias(b, p, s3, cls, 1, 1, 1)))
			return ret;
		m->head_map[set][l] = map;
	}
	snprintf(p, sizeof(p), "%s.%s", row->prefix, dfl);
	if ((ret = nn_check_dfl(b, p, reg)))
		return ret;
	uint32_t y;
	struct nn_op *op;
	if ((ret = nn_builder_tensor(b, 4 + nc, &y)) || (ret = nn_builder_op(b, NN_OP_DECODE, p, &op)))
		return ret;
	op->y = (struct nn_slice){y, 0, 4 + nc};
	op->x = op->r = nn_slice_none();
	op->nl = nl, op->nc = nc, op->reg_max = reg;
	for (uint32_t l = 0; l < nl; l++)
		op->level[l] = m->head_map[set][l];
	*out_tensor = y;
	return 0;
}

int nn_lower_detect(struct nn_builder *b, const struct nn_row *row, struct nn_model_layer *layer)
{
	static const char *const names[2][3] = {{"cv2", "cv3", "dfl"}, {"cv4", "cv5", "dfl2"}};
	bool dual = !strcmp(row->module, "DualDDetect");
	uint32_t sets = dual ? 2 : 1, nl = row->n_in / sets;
	int ret;
	if (nl < 1 || nl > 3 || nl * sets != row->n_in) {
		LOGE("model layer %u (%s): needs %s input levels, got %u", row->index, row->module, dual ? "6" : "1..3",
		     row->n_in);
		return -EINVAL;
	}
	if (b->m->n_head_sets) {
		LOGE("model layer %u (%s): only one detection layer is supported", row->index, row->module);
		return -ENOTSUP;
	}
	b->m->nl = nl;
	b->m->n_head_sets = sets;
	layer->n_out = sets;
	for (uint32_t s = 0; s < sets; s++) {
		uint32_t y;
		if ((ret = lower_set(b, row, row->in + s * nl, nl, names[s][0], names[s][1], names[s][2], s, &y)))
			return ret;
		layer->out[s] = (struct nn_slice){y, 0, 4 + b->m->nc};
	}
	b->m->output = layer->out[sets - 1].tensor;
	b->m->output_aux = dual ? layer->out[0].tensor : NN_NO_TENSOR;
	return 0;
}
