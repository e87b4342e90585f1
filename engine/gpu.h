// The engine's public API: the only door to Vulkan. No Vulkan type crosses it.
//
// Errors: every call that can fail returns 0 or a negative errno (-ENOMEM out of host or device
// memory, -EINVAL bad argument, -ENODEV no such device or device lost, -ENOTSUP missing feature,
// -EIO any other driver failure), after logging the detail once with LOGE.
// Objects are externally synchronized (one thread at a time) unless a line says "thread-safe".
// destroy(&p) accepts &NULL, clears *p and cannot fail.
#pragma once
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gpu_kernels.h"
#include "log.h"

struct gpu_instance;
struct gpu_device;
struct gpu_pool;
struct gpu_buf;
struct gpu_kernel;
struct gpu_seq;

// ---- instance and devices -------------------------------------------------------------------

struct gpu_instance_params {
	// Enable VK_LAYER_KHRONOS_validation and count its messages. Also forced on by the
	// environment variable VKYOLO_VALIDATION=1 (tests set it).
	bool validation;
};

int gpu_instance_create(const struct gpu_instance_params *p, struct gpu_instance **out);
void gpu_instance_destroy(struct gpu_instance **inst);
// Validation warnings and errors reported so far (each is also logged). 0 without validation.
uint32_t gpu_instance_validation_messages(const struct gpu_instance *inst);

enum gpu_device_type {
	GPU_DEVICE_TYPE_OTHER,
	GPU_DEVICE_TYPE_INTEGRATED,
	GPU_DEVICE_TYPE_DISCRETE,
	GPU_DEVICE_TYPE_VIRTUAL,
	GPU_DEVICE_TYPE_CPU,
};

struct gpu_heap_info {
	uint64_t size; // bytes
	bool device_local;
};

// What the engine and nn need to know to choose kernels, and what `vkyolo devices` prints.
struct gpu_device_info {
	uint32_t index;
	char name[256];
	enum gpu_device_type type;
	uint32_t vendor_id, device_id;
	char driver_name[256], driver_info[256];
	uint32_t api_version; // VK_MAKE_API_VERSION layout
	bool fp16_arith;      // shaderFloat16
	bool storage16;       // storageBuffer16BitAccess
	bool int8_arith;      // shaderInt8
	bool storage8;        // storageBuffer8BitAccess
	bool int_dot;         // VK_KHR_shader_integer_dot_product
	uint32_t subgroup_size, subgroup_min, subgroup_max;
	bool subgroup_size_control; // VK_EXT_subgroup_size_control usable in compute
	bool subgroup_basic, subgroup_vote, subgroup_arith, subgroup_ballot, subgroup_shuffle, subgroup_clustered;
	uint32_t max_shared_memory;         // bytes
	uint32_t max_workgroup_invocations;
	uint32_t max_workgroup_size[3];
	uint32_t max_workgroup_count[3];
	uint32_t max_push_constants;        // bytes
	uint64_t max_storage_buffer_range;  // bytes
	uint64_t min_storage_offset_align;  // bytes
	uint64_t max_texel_buffer_elements; // floats one texel binding can cover
	uint64_t min_texel_offset_align;    // bytes
	bool cooperative_matrix;            // VK_KHR_cooperative_matrix or VK_NV_cooperative_matrix
	bool timestamps;                    // compute queue supports timestamps
	float timestamp_period_ns;
	uint32_t timestamp_valid_bits;
	uint32_t heap_count;
	struct gpu_heap_info heaps[16];
};

uint32_t gpu_instance_device_count(const struct gpu_instance *inst);
// Borrowed; valid until the instance is destroyed. NULL when i is out of range.
const struct gpu_device_info *gpu_instance_device_info(const struct gpu_instance *inst, uint32_t i);
// Choose a device: `want` is an index ("1") or a case-insensitive name substring ("llvmpipe",
// "nvidia"); NULL or "" falls back to the environment variable VKYOLO_DEVICE, then to the best
// device (discrete > integrated > virtual > other > CPU/lavapipe; ties by device-local memory).
// -ENODEV when nothing matches or no device exists.
int gpu_instance_pick(const struct gpu_instance *inst, const char *want, uint32_t *index);
const char *gpu_device_type_name(enum gpu_device_type t);

int gpu_device_create(struct gpu_instance *inst, uint32_t index, struct gpu_device **out);
void gpu_device_destroy(struct gpu_device **dev);
const struct gpu_device_info *gpu_device_info(const struct gpu_device *dev);
// 0 while healthy, -ENODEV once the device has been lost.
int gpu_device_status(const struct gpu_device *dev);
// Bytes of device memory held by all pools of this device now, and the peak since creation.
uint64_t gpu_device_memory_used(const struct gpu_device *dev);
uint64_t gpu_device_memory_peak(const struct gpu_device *dev);

// ---- memory ----------------------------------------------------------------------------------

enum gpu_pool_kind {
	GPU_POOL_DEVICE, // device-local storage buffers (weights, activations, gradients)
	GPU_POOL_HOST,   // host-visible, coherent, mapped (staging, readback)
};

// A pool suballocates buffers from large blocks (never one vkAllocateMemory per tensor). Use one
// pool per lifetime: weights (model), activations (per input shape), training state (run).
struct gpu_pool_params {
	enum gpu_pool_kind kind;
	size_t block_size; // 0 = 64 MiB; larger requests get a block of their own
	const char *name;  // for messages ("weights", "activations")
};

int gpu_pool_create(struct gpu_device *dev, const struct gpu_pool_params *p, struct gpu_pool **out);
// All buffers of the pool must be destroyed first.
void gpu_pool_destroy(struct gpu_pool **pool);
uint64_t gpu_pool_reserved(const struct gpu_pool *pool); // bytes of blocks allocated

// Allocation is aligned for storage-buffer binding. -ENOMEM (logged with the pool's name and
// size) when the device cannot provide it.
int gpu_buf_create(struct gpu_pool *pool, size_t size, struct gpu_buf **out);
void gpu_buf_destroy(struct gpu_buf **buf);
size_t gpu_buf_size(const struct gpu_buf *buf);
// Host pools only: the mapped pointer (borrowed, valid until destroy). NULL for device pools.
void *gpu_buf_map(struct gpu_buf *buf);
// Synchronous copies through the device's staging buffer; wait for the queue to be idle first.
int gpu_buf_upload(struct gpu_buf *dst, size_t offset, const void *src, size_t size);
int gpu_buf_download(const struct gpu_buf *src, size_t offset, void *dst, size_t size);

// ---- kernels ---------------------------------------------------------------------------------

// A kernel is a compute pipeline for (shader, specialization constants). Kernels are cached by the
// device (also across runs, through a VkPipelineCache file in $XDG_CACHE_HOME/vkyolo or
// ~/.cache/vkyolo; VKYOLO_PIPELINE_CACHE=0 disables the file) and owned by it: never destroyed
// by the caller. By convention spec constant 0 is the workgroup size in x (local_size_x_id = 0).
#define GPU_MAX_SPEC 16
#define GPU_MAX_BINDINGS 12
struct gpu_kernel_params {
	enum gpu_kernel_id id;
	uint32_t binding_count; // storage buffers at set 0, bindings 0..n-1
	uint32_t push_size;     // bytes of push constants (multiple of 4, <= 128)
	uint32_t spec_count;
	uint32_t spec[GPU_MAX_SPEC]; // uint32/int32/float bit patterns, constant_id 0..spec_count-1
	uint32_t subgroup_size;      // required subgroup size, 0 = the driver's choice
	// Bit i set: binding i is a read-only uniform texel buffer of R32 floats (GLSL `uniform
	// samplerBuffer`, read with texelFetch) instead of a storage buffer. CPU devices such as
	// lavapipe turn a storage-buffer load into a loop over the SIMD lanes but a texel fetch into one
	// vector gather. The bound range must start at a multiple of min_texel_offset_align and hold at
	// most max_texel_buffer_elements floats.
	uint32_t texel_bindings;
	uint32_t texel4_bindings; // the same with R32G32B32A32 texels (vec4 per fetch); offsets as above
};

int gpu_kernel_get(struct gpu_device *dev, const struct gpu_kernel_params *p, struct gpu_kernel **out);
struct gpu_kernel_stats {
	uint32_t created;          // pipelines created by this device
	uint32_t cache_hits;       // of those, found in the pipeline cache (where the driver reports it)
	size_t cache_loaded_bytes; // size of the pipeline cache file read at device creation (0: none)
};
void gpu_device_kernel_stats(const struct gpu_device *dev, struct gpu_kernel_stats *out);
// Write the pipeline cache file now (also done by gpu_device_destroy). Atomic (write + rename).
int gpu_device_save_pipeline_cache(struct gpu_device *dev);

// ---- command sequences -----------------------------------------------------------------------

// A buffer range bound to one binding of a dispatch. size 0 = to the end of the buffer.
struct gpu_binding {
	struct gpu_buf *buf;
	size_t offset;
	size_t size;
	bool write; // the kernel writes this range (drives the barriers)
};

struct gpu_dispatch {
	struct gpu_kernel *kernel;
	const struct gpu_binding *bindings; // kernel's binding_count entries
	const void *push;                   // kernel's push_size bytes (copied)
	uint32_t groups[3];                 // workgroup counts; 0 is treated as "skip"
	const char *label;                  // borrowed string for timings ("model.2.cv1"), may be NULL
};

// A recorded sequence of dispatches and copies, replayed as often as needed. Barriers are
// inserted only where a range is read or written after an earlier write, or written after a read.
int gpu_seq_create(struct gpu_device *dev, struct gpu_seq **out);
void gpu_seq_destroy(struct gpu_seq **seq); // waits for its own in-flight work first
// Start (re)recording; drops what was recorded before. With timestamps, each dispatch is timed.
int gpu_seq_begin(struct gpu_seq *seq, bool timestamps);
int gpu_seq_dispatch(struct gpu_seq *seq, const struct gpu_dispatch *d);
int gpu_seq_copy(struct gpu_seq *seq, const struct gpu_binding *src, const struct gpu_binding *dst);
int gpu_seq_fill(struct gpu_seq *seq, const struct gpu_binding *dst, uint32_t value);
int gpu_seq_end(struct gpu_seq *seq);
// Submit the recorded work; returns at once. Then wait (timeout 0 = forever).
int gpu_seq_submit(struct gpu_seq *seq);
int gpu_seq_wait(struct gpu_seq *seq, uint64_t timeout_ns);
int gpu_seq_run(struct gpu_seq *seq); // submit + wait
uint32_t gpu_seq_dispatch_count(const struct gpu_seq *seq);
uint32_t gpu_seq_barrier_count(const struct gpu_seq *seq);

struct gpu_timing {
	const char *label;  // as given to the dispatch (borrowed)
	double start_ms;    // from the start of the sequence
	double ms;          // duration of this dispatch
};
// After a completed run of a sequence begun with timestamps. *count = entries written.
int gpu_seq_timings(const struct gpu_seq *seq, struct gpu_timing *out, uint32_t cap, uint32_t *count);
