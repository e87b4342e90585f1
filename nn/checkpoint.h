// Model checkpoints: PyTorch .pt files (torch.save zip + pickle, read without Python or torch) and
// our converted safetensors files, both turned into one state dict plus the model's description.
#pragma once
#include <stdint.h>

#include "tensor.h"
#include "value.h"

struct nn_checkpoint {
	// Official state_dict names (model.0.conv.weight, ...) in state_dict() order, original dtype
	// (F16/F32), num_batches_tracked included as I64 [] when the file has it. Owned.
	struct nn_tensor_map *state;
	// The model's yaml dict (nc, depth_multiple, width_multiple, backbone, head, ...). Owned, may be
	// NULL when the file does not carry it.
	struct nn_value *arch;
	// Class names: a list of strings (a {0: 'a', 1: 'b'} dict is converted). Owned, may be NULL.
	struct nn_value *names;
	float strides[8]; // detection strides (8, 16, 32)
	uint32_t stride_count;
	char source[16]; // "ema", "model" or "safetensors"
};

// Loads a .pt (zip, detected by content) or .safetensors file. For .pt: ckpt['ema'] when present and
// not None, else ckpt['model']; a plain state dict (name -> tensor) is accepted too.
// *out is owned by the caller (nn_checkpoint_destroy). -ENOENT/-EIO, -EINVAL for a malformed file,
// -ENOTSUP for a compressed zip entry, -ENOMEM.
int nn_checkpoint_load(const char *path, struct nn_checkpoint **out);
void nn_checkpoint_destroy(struct nn_checkpoint **ck);

// Writes ck->state with official names and __metadata__ {"format": "vkyolo-1", "arch": JSON of the
// yaml dict, "names": JSON list, "strides": JSON list}. nn_checkpoint_load of that file restores
// arch, names and strides (source "safetensors"). Atomic (see nn_safetensors_write).
int nn_checkpoint_save_safetensors(const struct nn_checkpoint *ck, const char *path);
