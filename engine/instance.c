// Vulkan instance, validation messages, and the capabilities of every physical device.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *gpu_vk_result_name(VkResult r)
{
	switch (r) {
#define CASE(x) case x: return #x
	CASE(VK_SUCCESS); CASE(VK_NOT_READY); CASE(VK_TIMEOUT); CASE(VK_INCOMPLETE);
	CASE(VK_ERROR_OUT_OF_HOST_MEMORY); CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY);
	CASE(VK_ERROR_INITIALIZATION_FAILED); CASE(VK_ERROR_DEVICE_LOST);
	CASE(VK_ERROR_MEMORY_MAP_FAILED); CASE(VK_ERROR_LAYER_NOT_PRESENT);
	CASE(VK_ERROR_EXTENSION_NOT_PRESENT); CASE(VK_ERROR_FEATURE_NOT_PRESENT);
	CASE(VK_ERROR_INCOMPATIBLE_DRIVER); CASE(VK_ERROR_TOO_MANY_OBJECTS);
	CASE(VK_ERROR_FORMAT_NOT_SUPPORTED); CASE(VK_ERROR_FRAGMENTED_POOL);
	CASE(VK_ERROR_OUT_OF_POOL_MEMORY); CASE(VK_ERROR_INVALID_SHADER_NV);
	CASE(VK_ERROR_FRAGMENTATION); CASE(VK_PIPELINE_COMPILE_REQUIRED);
#undef CASE
	default: return "VK_ERROR_UNKNOWN";
	}
}

int gpu_vk_errno(VkResult r)
{
	switch (r) {
	case VK_SUCCESS: return 0;
	case VK_ERROR_OUT_OF_HOST_MEMORY:
	case VK_ERROR_OUT_OF_DEVICE_MEMORY:
	case VK_ERROR_OUT_OF_POOL_MEMORY:
	case VK_ERROR_FRAGMENTED_POOL:
	case VK_ERROR_FRAGMENTATION:
	case VK_ERROR_TOO_MANY_OBJECTS: return -ENOMEM;
	case VK_ERROR_DEVICE_LOST: return -ENODEV;
	case VK_ERROR_LAYER_NOT_PRESENT:
	case VK_ERROR_EXTENSION_NOT_PRESENT:
	case VK_ERROR_FEATURE_NOT_PRESENT:
	case VK_ERROR_INCOMPATIBLE_DRIVER:
	case VK_ERROR_FORMAT_NOT_SUPPORTED: return -ENOTSUP;
	case VK_TIMEOUT: return -ETIMEDOUT;
	default: return -EIO;
	}
}

const char *gpu_device_type_name(enum gpu_device_type t)
{
	switch (t) {
	case GPU_DEVICE_TYPE_INTEGRATED: return "integrated GPU";
	case GPU_DEVICE_TYPE_DISCRETE: return "discrete GPU";
	case GPU_DEVICE_TYPE_VIRTUAL: return "virtual GPU";
	case GPU_DEVICE_TYPE_CPU: return "CPU";
	default: return "other";
	}
}

static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                    VkDebugUtilsMessageTypeFlagsEXT types,
                                                    const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                    void *user)
{
	struct gpu_instance *inst = user;
	(void)types;
	if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) {
		inst->validation_messages++;
		LOGE("vulkan validation: %s", data->pMessage);
	} else if (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
		inst->validation_messages++;
		LOGW("vulkan validation: %s", data->pMessage);
	}
	return VK_FALSE;
}

static bool has_layer(const char *name)
{
	uint32_t n = 0;
	bool found = false;
	if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
		return false;
	VkLayerProperties *props = calloc(n, sizeof(*props));
	if (!props)
		return false;
	if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			found |= strcmp(props[i].layerName, name) == 0;
	free(props);
	return found;
}

static bool has_device_ext(const VkExtensionProperties *exts, uint32_t n, const char *name)
{
	for (uint32_t i = 0; i < n; i++)
		if (strcmp(exts[i].extensionName, name) == 0)
			return true;
	return false;
}

static enum gpu_device_type map_type(VkPhysicalDeviceType t)
{
	switch (t) {
	case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return GPU_DEVICE_TYPE_INTEGRATED;
	case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return GPU_DEVICE_TYPE_DISCRETE;
	case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return GPU_DEVICE_TYPE_VIRTUAL;
	case VK_PHYSICAL_DEVICE_TYPE_CPU: return GPU_DEVICE_TYPE_CPU;
	default: return GPU_DEVICE_TYPE_OTHER;
	}
}

static int describe_physical(struct gpu_instance *inst, uint32_t index, struct gpu_physical *p)
{
	struct gpu_device_info *info = &p->info;
	VkExtensionProperties *exts = NULL;
	uint32_t ext_count = 0, family_count = 0;
	int ret = 0;

	VK_CHECK(vkEnumerateDeviceExtensionProperties(p->handle, NULL, &ext_count, NULL));
	exts = calloc(ext_count ? ext_count : 1, sizeof(*exts));
	if (!exts)
		return -ENOMEM;
	VK_CHECK(vkEnumerateDeviceExtensionProperties(p->handle, NULL, &ext_count, exts));

	VkPhysicalDeviceProperties props;
	vkGetPhysicalDeviceProperties(p->handle, &props);
	uint32_t api = props.apiVersion < inst->api_version ? props.apiVersion : inst->api_version;

	VkPhysicalDeviceSubgroupProperties sg = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
	VkPhysicalDeviceSubgroupSizeControlPropertiesEXT sgc = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT };
	VkPhysicalDeviceDriverProperties drv = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES };
	VkPhysicalDeviceIDProperties idp = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_ID_PROPERTIES };
	VkPhysicalDeviceProperties2 props2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg };
	sg.pNext = &idp;
	void **tail = &idp.pNext;
	p->has_subgroup_size_control_ext = has_device_ext(exts, ext_count, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
	if (p->has_subgroup_size_control_ext) {
		*tail = &sgc;
		tail = &sgc.pNext;
	}
	bool has_driver_props = api >= VK_API_VERSION_1_2 ||
	                        has_device_ext(exts, ext_count, VK_KHR_DRIVER_PROPERTIES_EXTENSION_NAME);
	if (has_driver_props)
		*tail = &drv;
	vkGetPhysicalDeviceProperties2(p->handle, &props2);
	memcpy(p->uuid, idp.deviceUUID, VK_UUID_SIZE);

	VkPhysicalDeviceShaderFloat16Int8Features f16i8 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES };
	VkPhysicalDevice16BitStorageFeatures s16 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES, .pNext = &f16i8 };
	VkPhysicalDevice8BitStorageFeatures s8 = {
		.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES, .pNext = &s16 };
	VkPhysicalDeviceFeatures2 feats2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &s8 };
	vkGetPhysicalDeviceFeatures2(p->handle, &feats2);

	info->index = index;
	snprintf(info->name, sizeof(info->name), "%s", props.deviceName);
	info->type = map_type(props.deviceType);
	info->vendor_id = props.vendorID;
	info->device_id = props.deviceID;
	if (has_driver_props) {
		snprintf(info->driver_name, sizeof(info->driver_name), "%s", drv.driverName);
		snprintf(info->driver_info, sizeof(info->driver_info), "%s", drv.driverInfo);
	}
	info->api_version = props.apiVersion;
	p->has_float16_int8_ext = api >= VK_API_VERSION_1_2 ||
	                          has_device_ext(exts, ext_count, VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME);
	p->has_16bit_storage_ext = true; // core in 1.1
	p->has_8bit_storage_ext = api >= VK_API_VERSION_1_2 ||
	                          has_device_ext(exts, ext_count, VK_KHR_8BIT_STORAGE_EXTENSION_NAME);
	info->fp16_arith = p->has_float16_int8_ext && f16i8.shaderFloat16;
	info->int8_arith = p->has_float16_int8_ext && f16i8.shaderInt8;
	info->storage16 = s16.storageBuffer16BitAccess;
	info->storage8 = p->has_8bit_storage_ext && s8.storageBuffer8BitAccess;
	info->int_dot = has_device_ext(exts, ext_count, "VK_KHR_shader_integer_dot_product");
	info->subgroup_size = sg.subgroupSize;
	info->subgroup_min = info->subgroup_max = sg.subgroupSize;
	if (p->has_subgroup_size_control_ext && (sgc.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT)) {
		info->subgroup_size_control = true;
		info->subgroup_min = sgc.minSubgroupSize;
		info->subgroup_max = sgc.maxSubgroupSize;
	}
	if (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) {
		VkSubgroupFeatureFlags o = sg.supportedOperations;
		info->subgroup_basic = o & VK_SUBGROUP_FEATURE_BASIC_BIT;
		info->subgroup_vote = o & VK_SUBGROUP_FEATURE_VOTE_BIT;
		info->subgroup_arith = o & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT;
		info->subgroup_ballot = o & VK_SUBGROUP_FEATURE_BALLOT_BIT;
		info->subgroup_shuffle = o & VK_SUBGROUP_FEATURE_SHUFFLE_BIT;
		info->subgroup_clustered = o & VK_SUBGROUP_FEATURE_CLUSTERED_BIT;
	}
	const VkPhysicalDeviceLimits *lim = &props.limits;
	info->max_shared_memory = lim->maxComputeSharedMemorySize;
	info->max_workgroup_invocations = lim->maxComputeWorkGroupInvocations;
	memcpy(info->max_workgroup_size, lim->maxComputeWorkGroupSize, sizeof(info->max_workgroup_size));
	memcpy(info->max_workgroup_count, lim->maxComputeWorkGroupCount, sizeof(info->max_workgroup_count));
	info->max_push_constants = lim->maxPushConstantsSize;
	info->max_storage_buffer_range = lim->maxStorageBufferRange;
	info->min_storage_offset_align = lim->minStorageBufferOffsetAlignment;
	info->max_texel_buffer_elements = lim->maxTexelBufferElements;
	info->min_texel_offset_align = lim->minTexelBufferOffsetAlignment;
	info->cooperative_matrix = has_device_ext(exts, ext_count, "VK_KHR_cooperative_matrix") ||
	                           has_device_ext(exts, ext_count, "VK_NV_cooperative_matrix");

	vkGetPhysicalDeviceQueueFamilyProperties(p->handle, &family_count, NULL);
	VkQueueFamilyProperties fams[32];
	if (family_count > 32)
		family_count = 32;
	vkGetPhysicalDeviceQueueFamilyProperties(p->handle, &family_count, fams);
	p->compute_family = UINT32_MAX;
	// Prefer a family with compute; a dedicated compute family is not needed for our single queue.
	for (uint32_t f = 0; f < family_count; f++) {
		if (fams[f].queueFlags & VK_QUEUE_COMPUTE_BIT) {
			p->compute_family = f;
			info->timestamp_valid_bits = fams[f].timestampValidBits;
			break;
		}
	}
	info->timestamps = info->timestamp_valid_bits > 0 && lim->timestampPeriod > 0;
	info->timestamp_period_ns = lim->timestampPeriod;

	VkPhysicalDeviceMemoryProperties mem;
	vkGetPhysicalDeviceMemoryProperties(p->handle, &mem);
	info->heap_count = mem.memoryHeapCount > 16 ? 16 : mem.memoryHeapCount;
	for (uint32_t h = 0; h < info->heap_count; h++) {
		info->heaps[h].size = mem.memoryHeaps[h].size;
		info->heaps[h].device_local = mem.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
	}
fail:
	free(exts);
	return ret;
}

int gpu_instance_create(const struct gpu_instance_params *p, struct gpu_instance **out)
{
	struct gpu_instance *inst = NULL;
	VkPhysicalDevice *handles = NULL;
	int ret = 0;
	bool validation = p && p->validation;
	const char *env = getenv("VKYOLO_VALIDATION");
	if (env && *env && strcmp(env, "0") != 0)
		validation = true;

	*out = NULL;
	if (volkInitialize() != VK_SUCCESS) {
		LOGE("vulkan: no Vulkan loader found (install libvulkan1 and a driver, e.g. mesa-vulkan-drivers)");
		return -ENODEV;
	}
	inst = calloc(1, sizeof(*inst));
	if (!inst)
		return -ENOMEM;

	inst->api_version = volkGetInstanceVersion();
	if (inst->api_version > VK_API_VERSION_1_3)
		inst->api_version = VK_API_VERSION_1_3;
	if (inst->api_version < VK_API_VERSION_1_1) {
		LOGE("vulkan: the loader supports Vulkan %u.%u; vkyolo needs 1.1 or newer",
		     VK_API_VERSION_MAJOR(inst->api_version), VK_API_VERSION_MINOR(inst->api_version));
		ret = -ENOTSUP;
		goto fail;
	}

	const char *layers[1] = { "VK_LAYER_KHRONOS_validation" };
	const char *exts[2];
	uint32_t n_exts = 0;
	if (validation) {
		if (!has_layer(layers[0])) {
			LOGE("vulkan: validation requested but VK_LAYER_KHRONOS_validation is not installed "
			     "(apt-get install vulkan-validationlayers)");
			ret = -ENOTSUP;
			goto fail;
		}
		exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
	}
	VkApplicationInfo app = {
		.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
		.pApplicationName = "vkyolo",
		.pEngineName = "vkyolo",
		.apiVersion = inst->api_version,
	};
	VkDebugUtilsMessengerCreateInfoEXT dbg = {
		.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
		.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
		                   VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
		.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
		               VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
		               VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
		.pfnUserCallback = on_validation,
		.pUserData = inst,
	};
	VkInstanceCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
		.pNext = validation ? &dbg : NULL,
		.pApplicationInfo = &app,
		.enabledLayerCount = validation ? 1 : 0,
		.ppEnabledLayerNames = layers,
		.enabledExtensionCount = n_exts,
		.ppEnabledExtensionNames = exts,
	};
	VK_CHECK(vkCreateInstance(&ci, NULL, &inst->handle));
	volkLoadInstanceOnly(inst->handle);
	if (validation)
		VK_CHECK(vkCreateDebugUtilsMessengerEXT(inst->handle, &dbg, NULL, &inst->messenger));

	uint32_t n = 0;
	VK_CHECK(vkEnumeratePhysicalDevices(inst->handle, &n, NULL));
	handles = calloc(n ? n : 1, sizeof(*handles));
	inst->physical = calloc(n ? n : 1, sizeof(*inst->physical));
	if (!handles || !inst->physical) {
		ret = -ENOMEM;
		goto fail;
	}
	VK_CHECK(vkEnumeratePhysicalDevices(inst->handle, &n, handles));
	for (uint32_t i = 0; i < n; i++) {
		struct gpu_physical *ph = &inst->physical[inst->physical_count];
		ph->handle = handles[i];
		ret = describe_physical(inst, inst->physical_count, ph);
		if (ret)
			goto fail;
		if (ph->compute_family == UINT32_MAX) {
			LOGW("vulkan: device %s has no compute queue, ignored", ph->info.name);
			continue;
		}
		inst->physical_count++;
	}
	free(handles);
	*out = inst;
	return 0;
fail:
	free(handles);
	gpu_instance_destroy(&inst);
	return ret;
}

void gpu_instance_destroy(struct gpu_instance **pinst)
{
	struct gpu_instance *inst = *pinst;
	if (!inst)
		return;
	if (inst->messenger)
		vkDestroyDebugUtilsMessengerEXT(inst->handle, inst->messenger, NULL);
	if (inst->handle)
		vkDestroyInstance(inst->handle, NULL);
	free(inst->physical);
	free(inst);
	*pinst = NULL;
}

uint32_t gpu_instance_validation_messages(const struct gpu_instance *inst)
{
	return inst->validation_messages;
}

uint32_t gpu_instance_device_count(const struct gpu_instance *inst)
{
	return inst->physical_count;
}

const struct gpu_device_info *gpu_instance_device_info(const struct gpu_instance *inst, uint32_t i)
{
	return i < inst->physical_count ? &inst->physical[i].info : NULL;
}

static int type_rank(enum gpu_device_type t)
{
	switch (t) {
	case GPU_DEVICE_TYPE_DISCRETE: return 4;
	case GPU_DEVICE_TYPE_INTEGRATED: return 3;
	case GPU_DEVICE_TYPE_VIRTUAL: return 2;
	case GPU_DEVICE_TYPE_OTHER: return 1;
	default: return 0; // CPU (lavapipe) only when nothing else is present
	}
}

static uint64_t local_memory(const struct gpu_device_info *info)
{
	uint64_t sum = 0;
	for (uint32_t h = 0; h < info->heap_count; h++)
		if (info->heaps[h].device_local)
			sum += info->heaps[h].size;
	return sum;
}

static bool name_contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (; *hay; hay++) {
		size_t i = 0;
		while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
			i++;
		if (i == n)
			return true;
	}
	return false;
}

int gpu_instance_pick(const struct gpu_instance *inst, const char *want, uint32_t *index)
{
	if (!want || !*want)
		want = getenv("VKYOLO_DEVICE");
	if (inst->physical_count == 0) {
		LOGE("vulkan: no device found (install mesa-vulkan-drivers for lavapipe, or a GPU driver)");
		return -ENODEV;
	}
	if (want && *want) {
		char *end = NULL;
		unsigned long i = strtoul(want, &end, 10);
		if (end && *end == '\0') {
			if (i >= inst->physical_count) {
				LOGE("device %s: no such device (%u present; see `vkyolo devices`)", want,
				     inst->physical_count);
				return -ENODEV;
			}
			*index = (uint32_t)i;
			return 0;
		}
		for (uint32_t d = 0; d < inst->physical_count; d++) {
			if (name_contains(inst->physical[d].info.name, want) ||
			    name_contains(inst->physical[d].info.driver_name, want)) {
				*index = d;
				return 0;
			}
		}
		LOGE("device '%s': no device name matches (see `vkyolo devices`)", want);
		return -ENODEV;
	}
	uint32_t best = 0;
	for (uint32_t d = 1; d < inst->physical_count; d++) {
		const struct gpu_device_info *a = &inst->physical[d].info, *b = &inst->physical[best].info;
		if (type_rank(a->type) > type_rank(b->type) ||
		    (type_rank(a->type) == type_rank(b->type) && local_memory(a) > local_memory(b)))
			best = d;
	}
	*index = best;
	return 0;
}
