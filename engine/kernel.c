// Kernels: compute pipelines built from the embedded SPIR-V, cached per (shader, spec constants),
// and a VkPipelineCache persisted in the user's cache directory so the next run starts faster.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static bool cache_dir(char *out, size_t cap)
{
	const char *dir = getenv("VKYOLO_PIPELINE_CACHE_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	if (dir && *dir)
		snprintf(out, cap, "%s", dir);
	else if (xdg && *xdg)
		snprintf(out, cap, "%s/vkyolo", xdg);
	else if (home && *home)
		snprintf(out, cap, "%s/.cache/vkyolo", home);
	else
		return false;
	return true;
}

static void mkdir_p(const char *path)
{
	char tmp[1024];
	snprintf(tmp, sizeof(tmp), "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(tmp, 0755);
			*p = '/';
		}
	}
	mkdir(tmp, 0755);
}

static void *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	void *data = NULL;
	long n;
	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
		data = malloc((size_t)n);
		if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
			free(data);
			data = NULL;
		}
		*size = (size_t)n;
	}
	fclose(f);
	return data;
}

int gpu_device_kernels_init(struct gpu_device *dev)
{
	const struct gpu_physical *ph = dev->phys;
	const char *env = getenv("VKYOLO_PIPELINE_CACHE");
	char dir[900];
	void *initial = NULL;
	size_t initial_size = 0;
	int ret = 0;

	if (!(env && strcmp(env, "0") == 0) && cache_dir(dir, sizeof(dir))) {
		char uuid[2 * VK_UUID_SIZE + 1];
		for (unsigned i = 0; i < VK_UUID_SIZE; i++)
			snprintf(uuid + 2 * i, 3, "%02x", ph->uuid[i]);
		snprintf(dev->pipeline_cache_path, sizeof(dev->pipeline_cache_path),
		         "%s/pipelines-%04x-%04x-%s.bin", dir, ph->info.vendor_id, ph->info.device_id, uuid);
		initial = read_file(dev->pipeline_cache_path, &initial_size);
		if (!initial)
			initial_size = 0;
	}
	VkPipelineCacheCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO,
		.initialDataSize = initial_size,
		.pInitialData = initial,
	};
	VkResult r = vkCreatePipelineCache(dev->handle, &ci, NULL, &dev->pipeline_cache);
	if (r != VK_SUCCESS && initial) {
		// A stale or foreign cache file is not an error: start empty.
		LOGW("pipeline cache %s: unusable (%s), starting empty", dev->pipeline_cache_path,
		     gpu_vk_result_name(r));
		ci.initialDataSize = 0;
		ci.pInitialData = NULL;
		initial_size = 0;
		r = vkCreatePipelineCache(dev->handle, &ci, NULL, &dev->pipeline_cache);
	}
	free(initial);
	VK_CHECK(r);
	dev->kernel_stats.cache_loaded_bytes = initial_size;
fail:
	return ret;
}

int gpu_device_save_pipeline_cache(struct gpu_device *dev)
{
	size_t size = 0;
	void *data = NULL;
	char tmp[1100], dir[1024];
	int ret = 0;
	FILE *f = NULL;

	if (!dev->pipeline_cache || !dev->pipeline_cache_path[0])
		return 0;
	VK_CHECK(vkGetPipelineCacheData(dev->handle, dev->pipeline_cache, &size, NULL));
	data = malloc(size ? size : 1);
	if (!data)
		return -ENOMEM;
	VK_CHECK(vkGetPipelineCacheData(dev->handle, dev->pipeline_cache, &size, data));
	snprintf(dir, sizeof(dir), "%s", dev->pipeline_cache_path);
	*strrchr(dir, '/') = '\0';
	mkdir_p(dir);
	snprintf(tmp, sizeof(tmp), "%s.%d.tmp", dev->pipeline_cache_path, (int)getpid());
	f = fopen(tmp, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fflush(f) != 0 || fsync(fileno(f)) != 0) {
		LOGW("pipeline cache %s: cannot write", tmp);
		ret = -EIO;
		goto fail;
	}
	fclose(f);
	f = NULL;
	if (rename(tmp, dev->pipeline_cache_path) != 0) {
		LOGW("pipeline cache %s: cannot rename into place", dev->pipeline_cache_path);
		ret = -EIO;
	}
fail:
	if (f)
		fclose(f);
	if (ret)
		unlink(tmp);
	free(data);
	return ret;
}

static void kernel_free(struct gpu_device *dev, struct gpu_kernel *k)
{
	if (!k)
		return;
	if (k->pipeline)
		vkDestroyPipeline(dev->handle, k->pipeline, NULL);
	if (k->layout)
		vkDestroyPipelineLayout(dev->handle, k->layout, NULL);
	if (k->set_layout)
		vkDestroyDescriptorSetLayout(dev->handle, k->set_layout, NULL);
	free(k);
}

void gpu_device_kernels_finish(struct gpu_device *dev)
{
	if (dev->pipeline_cache) {
		gpu_device_save_pipeline_cache(dev);
		vkDestroyPipelineCache(dev->handle, dev->pipeline_cache, NULL);
	}
	while (dev->kernels) {
		struct gpu_kernel *k = dev->kernels;
		dev->kernels = k->next;
		kernel_free(dev, k);
	}
	for (int i = 0; i < GPU_KERNEL_COUNT; i++)
		if (dev->modules[i])
			vkDestroyShaderModule(dev->handle, dev->modules[i], NULL);
}

static bool same_params(const struct gpu_kernel_params *a, const struct gpu_kernel_params *b)
{
	return a->id == b->id && a->binding_count == b->binding_count && a->push_size == b->push_size &&
	       a->spec_count == b->spec_count && a->subgroup_size == b->subgroup_size &&
	       a->texel_bindings == b->texel_bindings && a->texel4_bindings == b->texel4_bindings &&
	       memcmp(a->spec, b->spec, a->spec_count * sizeof(a->spec[0])) == 0;
}

static int check_params(const struct gpu_device *dev, const struct gpu_kernel_params *p)
{
	const struct gpu_device_info *info = &dev->phys->info;
	if ((unsigned)p->id >= GPU_KERNEL_COUNT || p->binding_count > GPU_MAX_BINDINGS ||
	    p->spec_count > GPU_MAX_SPEC || p->push_size % 4 || p->push_size > 128 ||
	    p->push_size > info->max_push_constants) {
		LOGE("kernel %d: invalid parameters (bindings %u, push %u bytes, spec %u)", (int)p->id,
		     p->binding_count, p->push_size, p->spec_count);
		return -EINVAL;
	}
	if (p->spec_count > 0 && (p->spec[0] == 0 || p->spec[0] > info->max_workgroup_size[0] ||
	                          p->spec[0] > info->max_workgroup_invocations)) {
		LOGE("kernel %s: workgroup size %u not supported (max %u)", gpu_kernel_spirv[p->id].name,
		     p->spec[0], info->max_workgroup_size[0]);
		return -EINVAL;
	}
	if ((p->texel_bindings | p->texel4_bindings) >> p->binding_count || (p->texel_bindings & p->texel4_bindings)) {
		LOGE("kernel %s: texel bindings 0x%x / 0x%x invalid for its %u bindings", gpu_kernel_spirv[p->id].name,
		     p->texel_bindings, p->texel4_bindings, p->binding_count);
		return -EINVAL;
	}
	if (p->subgroup_size && (!info->subgroup_size_control || p->subgroup_size < info->subgroup_min ||
	                         p->subgroup_size > info->subgroup_max)) {
		LOGE("kernel %s: subgroup size %u not supported", gpu_kernel_spirv[p->id].name, p->subgroup_size);
		return -ENOTSUP;
	}
	return 0;
}

int gpu_kernel_get(struct gpu_device *dev, const struct gpu_kernel_params *p, struct gpu_kernel **out)
{
	struct gpu_kernel *k;
	int ret;

	for (k = dev->kernels; k; k = k->next)
		if (same_params(&k->params, p)) {
			*out = k;
			return 0;
		}
	*out = NULL;
	ret = check_params(dev, p);
	if (ret)
		return ret;
	const struct gpu_kernel_spirv *spv = &gpu_kernel_spirv[p->id];
	if (!dev->modules[p->id]) {
		VkShaderModuleCreateInfo smci = {
			.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
			.codeSize = spv->size,
			.pCode = spv->words,
		};
		VK_CHECK(vkCreateShaderModule(dev->handle, &smci, NULL, &dev->modules[p->id]));
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->params = *p;

	VkDescriptorSetLayoutBinding binds[GPU_MAX_BINDINGS];
	for (uint32_t i = 0; i < p->binding_count; i++)
		binds[i] = (VkDescriptorSetLayoutBinding){
			.binding = i,
			.descriptorType = ((p->texel_bindings | p->texel4_bindings) >> i & 1) ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
			                                               : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
			.descriptorCount = 1,
			.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
		};
	VkDescriptorSetLayoutCreateInfo dslci = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
		.bindingCount = p->binding_count,
		.pBindings = binds,
	};
	VK_CHECK(vkCreateDescriptorSetLayout(dev->handle, &dslci, NULL, &k->set_layout));
	VkPushConstantRange pcr = { .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .size = p->push_size };
	VkPipelineLayoutCreateInfo plci = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
		.setLayoutCount = 1,
		.pSetLayouts = &k->set_layout,
		.pushConstantRangeCount = p->push_size ? 1 : 0,
		.pPushConstantRanges = &pcr,
	};
	VK_CHECK(vkCreatePipelineLayout(dev->handle, &plci, NULL, &k->layout));

	VkSpecializationMapEntry entries[GPU_MAX_SPEC];
	for (uint32_t i = 0; i < p->spec_count; i++)
		entries[i] = (VkSpecializationMapEntry){ .constantID = i, .offset = 4 * i, .size = 4 };
	VkSpecializationInfo si = {
		.mapEntryCount = p->spec_count,
		.pMapEntries = entries,
		.dataSize = 4 * p->spec_count,
		.pData = k->params.spec,
	};
	VkPipelineShaderStageRequiredSubgroupSizeCreateInfoEXT rss = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO_EXT,
		.requiredSubgroupSize = p->subgroup_size,
	};
	VkPipelineCreationFeedback feedback = { 0 };
	VkPipelineCreationFeedbackCreateInfo fci = {
		.sType = VK_STRUCTURE_TYPE_PIPELINE_CREATION_FEEDBACK_CREATE_INFO,
		.pPipelineCreationFeedback = &feedback,
	};
	bool use_feedback = dev->inst->api_version >= VK_API_VERSION_1_3 &&
	                    dev->phys->info.api_version >= VK_API_VERSION_1_3;
	VkComputePipelineCreateInfo cpci = {
		.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
		.pNext = use_feedback ? &fci : NULL,
		.stage = {
			.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
			.pNext = p->subgroup_size ? &rss : NULL,
			.stage = VK_SHADER_STAGE_COMPUTE_BIT,
			.module = dev->modules[p->id],
			.pName = "main",
			.pSpecializationInfo = p->spec_count ? &si : NULL,
		},
		.layout = k->layout,
	};
	ret = gpu_device_check(dev, vkCreateComputePipelines(dev->handle, dev->pipeline_cache, 1, &cpci, NULL,
	                                                     &k->pipeline), spv->name);
	if (ret)
		goto fail;
	dev->kernel_stats.created++;
	if (feedback.flags & VK_PIPELINE_CREATION_FEEDBACK_APPLICATION_PIPELINE_CACHE_HIT_BIT)
		dev->kernel_stats.cache_hits++;
	k->next = dev->kernels;
	dev->kernels = k;
	*out = k;
	return 0;
fail:
	kernel_free(dev, k);
	return ret;
}

void gpu_device_kernel_stats(const struct gpu_device *dev, struct gpu_kernel_stats *out)
{
	*out = dev->kernel_stats;
}
