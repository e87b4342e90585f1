// Engine-private declarations: Vulkan types live here and in engine/*.c only.
#pragma once
#include <errno.h>
#include <volk.h>

#include "gpu.h"

const char *gpu_vk_result_name(VkResult r);
int gpu_vk_errno(VkResult r);

// Checks a VkResult: on failure logs its name with the call, sets `ret` and jumps to `fail`.
// The only control-flow macro in the tree.
#define VK_CHECK(call)                                                                           \
	do {                                                                                     \
		VkResult vk_check_r_ = (call);                                                   \
		if (vk_check_r_ != VK_SUCCESS) {                                                 \
			LOGE("%s: %s", #call, gpu_vk_result_name(vk_check_r_));                   \
			ret = gpu_vk_errno(vk_check_r_);                                         \
			goto fail;                                                               \
		}                                                                                \
	} while (0)

struct gpu_physical {
	VkPhysicalDevice handle;
	struct gpu_device_info info;
	uint32_t compute_family;
	uint8_t uuid[VK_UUID_SIZE];
	bool has_subgroup_size_control_ext;
	bool has_float16_int8_ext, has_16bit_storage_ext, has_8bit_storage_ext;
};

struct gpu_instance {
	VkInstance handle;
	VkDebugUtilsMessengerEXT messenger;
	uint32_t validation_messages;
	uint32_t api_version;
	uint32_t physical_count;
	struct gpu_physical *physical;
};

struct gpu_kernel {
	struct gpu_kernel_params params;
	VkDescriptorSetLayout set_layout;
	VkPipelineLayout layout;
	VkPipeline pipeline;
	struct gpu_kernel *next; // device's cache list
};

struct gpu_device {
	struct gpu_instance *inst;
	const struct gpu_physical *phys;
	VkDevice handle;
	VkQueue queue;
	VkPhysicalDeviceMemoryProperties mem_props;
	bool lost;
	uint64_t memory_used, memory_peak;
	// kernels
	VkShaderModule modules[GPU_KERNEL_COUNT];
	VkPipelineCache pipeline_cache;
	char pipeline_cache_path[1024];
	size_t pipeline_cache_initial_size;
	struct gpu_kernel *kernels;
	struct gpu_kernel_stats kernel_stats;
	// one-shot transfers (upload/download)
	VkCommandPool transfer_pool;
	VkCommandBuffer transfer_cmd;
	VkFence transfer_fence;
	struct gpu_pool *staging_pool;
	struct gpu_buf *staging;
};

struct gpu_block;

struct gpu_pool {
	struct gpu_device *dev;
	struct gpu_pool_params params;
	char name[64];
	struct gpu_block *blocks;
	uint64_t reserved;
	uint32_t live_bufs;
};

struct gpu_buf {
	struct gpu_pool *pool;
	struct gpu_block *block;
	VkDeviceSize offset, size;
};

// Returns the VkBuffer and its offset within it for a binding (memory.c).
VkBuffer gpu_buf_vk(const struct gpu_buf *buf, VkDeviceSize *offset);
// Marks the device lost when r says so (device.c); returns the errno for r.
int gpu_device_check(struct gpu_device *dev, VkResult r, const char *what);
int gpu_device_kernels_init(struct gpu_device *dev);
void gpu_device_kernels_finish(struct gpu_device *dev);
void gpu_device_track_memory(struct gpu_device *dev, int64_t delta);
