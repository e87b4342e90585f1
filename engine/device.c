// Logical device: one compute queue, the features nn's kernels may use, device-loss tracking.
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int gpu_device_check(struct gpu_device *dev, VkResult r, const char *what)
{
	if (r == VK_SUCCESS)
		return 0;
	if (r == VK_ERROR_DEVICE_LOST) {
		if (!dev->lost)
			LOGE("%s: device lost (%s): the driver reset or the GPU hung; restart vkyolo",
			     what, dev->phys->info.name);
		dev->lost = true;
	} else {
		LOGE("%s: %s", what, gpu_vk_result_name(r));
	}
	return gpu_vk_errno(r);
}

void gpu_device_track_memory(struct gpu_device *dev, int64_t delta)
{
	dev->memory_used += delta;
	if (dev->memory_used > dev->memory_peak)
		dev->memory_peak = dev->memory_used;
}

int gpu_device_create(struct gpu_instance *inst, uint32_t index, struct gpu_device **out)
{
	struct gpu_device *dev = NULL;
	int ret = 0;

	*out = NULL;
	if (index >= inst->physical_count) {
		LOGE("device %u: no such device", index);
		return -ENODEV;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->inst = inst;
	dev->phys = &inst->physical[index];
	const struct gpu_physical *ph = dev->phys;
	const struct gpu_device_info *info = &ph->info;

	float prio = 1.0f;
	VkDeviceQueueCreateInfo qci = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
		.queueFamilyIndex = ph->compute_family,
		.queueCount = 1,
		.pQueuePriorities = &prio,
	};
	VkPhysicalDeviceShaderFloat16Int8Features f16i8 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES,
		.shaderFloat16 = info->fp16_arith,
		.shaderInt8 = info->int8_arith,
	};
	VkPhysicalDevice16BitStorageFeatures s16 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES,
		.storageBuffer16BitAccess = info->storage16,
	};
	VkPhysicalDevice8BitStorageFeatures s8 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES,
		.storageBuffer8BitAccess = info->storage8,
	};
	VkPhysicalDeviceSubgroupSizeControlFeaturesEXT sgc = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES_EXT,
		.subgroupSizeControl = VK_TRUE,
		.computeFullSubgroups = VK_TRUE,
	};
	const char *exts[4];
	uint32_t n_exts = 0;
	void *chain = &s16;
	if (info->storage8 && ph->has_8bit_storage_ext) {
		s8.pNext = chain;
		chain = &s8;
		if (inst->api_version < VK_API_VERSION_1_2)
			exts[n_exts++] = VK_KHR_8BIT_STORAGE_EXTENSION_NAME;
	}
	if ((info->fp16_arith || info->int8_arith) && ph->has_float16_int8_ext) {
		f16i8.pNext = chain;
		chain = &f16i8;
		if (inst->api_version < VK_API_VERSION_1_2)
			exts[n_exts++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
	}
	if (info->subgroup_size_control) {
		sgc.pNext = chain;
		chain = &sgc;
		exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
	}
	VkPhysicalDeviceFeatures feats = { 0 };
	VkDeviceCreateInfo dci = {
		.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
		.pNext = chain,
		.queueCreateInfoCount = 1,
		.pQueueCreateInfos = &qci,
		.enabledExtensionCount = n_exts,
		.ppEnabledExtensionNames = exts,
		.pEnabledFeatures = &feats,
	};
	VK_CHECK(vkCreateDevice(ph->handle, &dci, NULL, &dev->handle));
	volkLoadDevice(dev->handle);
	vkGetDeviceQueue(dev->handle, ph->compute_family, 0, &dev->queue);
	vkGetPhysicalDeviceMemoryProperties(ph->handle, &dev->mem_props);

	VkCommandPoolCreateInfo pci = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
		.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
		.queueFamilyIndex = ph->compute_family,
	};
	VK_CHECK(vkCreateCommandPool(dev->handle, &pci, NULL, &dev->transfer_pool));
	VkCommandBufferAllocateInfo cai = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
		.commandPool = dev->transfer_pool,
		.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
		.commandBufferCount = 1,
	};
	VK_CHECK(vkAllocateCommandBuffers(dev->handle, &cai, &dev->transfer_cmd));
	VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	VK_CHECK(vkCreateFence(dev->handle, &fci, NULL, &dev->transfer_fence));

	ret = gpu_pool_create(dev, &(struct gpu_pool_params){ .kind = GPU_POOL_HOST, .block_size = 16u << 20,
	                                                      .name = "staging" }, &dev->staging_pool);
	if (ret)
		goto fail;
	ret = gpu_buf_create(dev->staging_pool, 16u << 20, &dev->staging);
	if (ret)
		goto fail;
	ret = gpu_device_kernels_init(dev);
	if (ret)
		goto fail;
	LOGD("device %u: %s (%s)", index, info->name, gpu_device_type_name(info->type));
	*out = dev;
	return 0;
fail:
	gpu_device_destroy(&dev);
	return ret;
}

void gpu_device_destroy(struct gpu_device **pdev)
{
	struct gpu_device *dev = *pdev;
	if (!dev)
		return;
	if (dev->handle) {
		vkDeviceWaitIdle(dev->handle);
		gpu_device_kernels_finish(dev);
		gpu_buf_destroy(&dev->staging);
		gpu_pool_destroy(&dev->staging_pool);
		if (dev->transfer_fence)
			vkDestroyFence(dev->handle, dev->transfer_fence, NULL);
		if (dev->transfer_pool)
			vkDestroyCommandPool(dev->handle, dev->transfer_pool, NULL);
		vkDestroyDevice(dev->handle, NULL);
	}
	free(dev);
	*pdev = NULL;
}

const struct gpu_device_info *gpu_device_info(const struct gpu_device *dev)
{
	return &dev->phys->info;
}

int gpu_device_status(const struct gpu_device *dev)
{
	return dev->lost ? -ENODEV : 0;
}

uint64_t gpu_device_memory_used(const struct gpu_device *dev)
{
	return dev->memory_used;
}

uint64_t gpu_device_memory_peak(const struct gpu_device *dev)
{
	return dev->memory_peak;
}
