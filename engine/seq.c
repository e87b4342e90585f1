// Command sequences: dispatches recorded once with the barriers their data needs, then replayed.
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define SETS_PER_POOL 256
#define QUERIES_PER_POOL 1024
#define MAX_POOLS 64

struct gpu_access {
	VkBuffer buffer;
	VkDeviceSize start, end;
};

struct gpu_access_list {
	struct gpu_access *items;
	uint32_t count, cap;
};

struct gpu_seq {
	struct gpu_device *dev;
	VkCommandPool cmd_pool;
	VkCommandBuffer cmd;
	VkFence fence;
	bool recording, in_flight, recorded, timestamps;
	VkDescriptorPool desc_pools[MAX_POOLS];
	uint32_t desc_pool_count, sets_in_last_pool;
	VkQueryPool query_pools[MAX_POOLS];
	uint32_t query_pool_count, query_count;
	const char **labels; // per timed dispatch
	uint32_t label_cap;
	uint32_t dispatch_count, barrier_count;
	struct gpu_access_list reads, writes; // since the last barrier
	VkBufferView *views; // texel-buffer views of the recorded dispatches
	uint32_t view_count, view_cap;
};

static void drop_views(struct gpu_seq *seq)
{
	for (uint32_t i = 0; i < seq->view_count; i++)
		vkDestroyBufferView(seq->dev->handle, seq->views[i], NULL);
	seq->view_count = 0;
}

int gpu_seq_create(struct gpu_device *dev, struct gpu_seq **out)
{
	struct gpu_seq *seq = calloc(1, sizeof(*seq));
	int ret = 0;
	*out = NULL;
	if (!seq)
		return -ENOMEM;
	seq->dev = dev;
	VkCommandPoolCreateInfo pci = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
		.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
		.queueFamilyIndex = dev->phys->compute_family,
	};
	VK_CHECK(vkCreateCommandPool(dev->handle, &pci, NULL, &seq->cmd_pool));
	VkCommandBufferAllocateInfo cai = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
		.commandPool = seq->cmd_pool,
		.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
		.commandBufferCount = 1,
	};
	VK_CHECK(vkAllocateCommandBuffers(dev->handle, &cai, &seq->cmd));
	VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	VK_CHECK(vkCreateFence(dev->handle, &fci, NULL, &seq->fence));
	*out = seq;
	return 0;
fail:
	gpu_seq_destroy(&seq);
	return ret;
}

void gpu_seq_destroy(struct gpu_seq **pseq)
{
	struct gpu_seq *seq = *pseq;
	if (!seq)
		return;
	VkDevice d = seq->dev->handle;
	if (seq->in_flight)
		vkWaitForFences(d, 1, &seq->fence, VK_TRUE, UINT64_MAX);
	drop_views(seq);
	free(seq->views);
	for (uint32_t i = 0; i < seq->desc_pool_count; i++)
		vkDestroyDescriptorPool(d, seq->desc_pools[i], NULL);
	for (uint32_t i = 0; i < seq->query_pool_count; i++)
		vkDestroyQueryPool(d, seq->query_pools[i], NULL);
	if (seq->fence)
		vkDestroyFence(d, seq->fence, NULL);
	if (seq->cmd_pool)
		vkDestroyCommandPool(d, seq->cmd_pool, NULL);
	free(seq->reads.items);
	free(seq->writes.items);
	free(seq->labels);
	free(seq);
	*pseq = NULL;
}

int gpu_seq_begin(struct gpu_seq *seq, bool timestamps)
{
	struct gpu_device *dev = seq->dev;
	int ret = 0;
	if (dev->lost)
		return -ENODEV;
	if (seq->in_flight && (ret = gpu_seq_wait(seq, 0)))
		return ret;
	if (timestamps && !dev->phys->info.timestamps) {
		LOGW("timestamps: not supported by %s; timings disabled", dev->phys->info.name);
		timestamps = false;
	}
	for (uint32_t i = 0; i < seq->desc_pool_count; i++)
		VK_CHECK(vkResetDescriptorPool(dev->handle, seq->desc_pools[i], 0));
	drop_views(seq);
	seq->sets_in_last_pool = 0;
	seq->desc_pool_count = seq->desc_pool_count ? 1 : 0; // keep the first pool, drop nothing else yet
	seq->query_count = 0;
	seq->dispatch_count = seq->barrier_count = 0;
	seq->reads.count = seq->writes.count = 0;
	seq->timestamps = timestamps;
	seq->recorded = false;
	VK_CHECK(vkResetCommandBuffer(seq->cmd, 0));
	VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
	VK_CHECK(vkBeginCommandBuffer(seq->cmd, &bi));
	seq->recording = true;
	return 0;
fail:
	return ret;
}

static VkDescriptorSet alloc_set(struct gpu_seq *seq, VkDescriptorSetLayout layout, int *ret)
{
	struct gpu_device *dev = seq->dev;
	VkDescriptorSet set = VK_NULL_HANDLE;
	if (seq->desc_pool_count == 0 || seq->sets_in_last_pool == SETS_PER_POOL) {
		// Pools beyond the first were kept across begin() calls only when destroyed; reuse or make.
		if (seq->desc_pool_count == MAX_POOLS) {
			LOGE("command sequence: more than %d descriptor sets", MAX_POOLS * SETS_PER_POOL);
			*ret = -ENOMEM;
			return VK_NULL_HANDLE;
		}
		if (!seq->desc_pools[seq->desc_pool_count]) {
			VkDescriptorPoolSize ps[2] = { { VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * GPU_MAX_BINDINGS },
			                               { VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER, SETS_PER_POOL * GPU_MAX_BINDINGS } };
			VkDescriptorPoolCreateInfo dpci = {
				.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
				.maxSets = SETS_PER_POOL,
				.poolSizeCount = 2,
				.pPoolSizes = ps,
			};
			VkResult r = vkCreateDescriptorPool(dev->handle, &dpci, NULL, &seq->desc_pools[seq->desc_pool_count]);
			if ((*ret = gpu_device_check(dev, r, "descriptor pool")))
				return VK_NULL_HANDLE;
		} else {
			vkResetDescriptorPool(dev->handle, seq->desc_pools[seq->desc_pool_count], 0);
		}
		seq->desc_pool_count++;
		seq->sets_in_last_pool = 0;
	}
	VkDescriptorSetAllocateInfo ai = {
		.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
		.descriptorPool = seq->desc_pools[seq->desc_pool_count - 1],
		.descriptorSetCount = 1,
		.pSetLayouts = &layout,
	};
	*ret = gpu_device_check(dev, vkAllocateDescriptorSets(dev->handle, &ai, &set), "descriptor set");
	seq->sets_in_last_pool++;
	return set;
}

static bool overlaps(const struct gpu_access_list *l, const struct gpu_access *a)
{
	for (uint32_t i = 0; i < l->count; i++)
		if (l->items[i].buffer == a->buffer && l->items[i].start < a->end && a->start < l->items[i].end)
			return true;
	return false;
}

static int note(struct gpu_access_list *l, const struct gpu_access *a)
{
	if (l->count == l->cap) {
		uint32_t cap = l->cap ? 2 * l->cap : 64;
		void *p = realloc(l->items, cap * sizeof(*l->items));
		if (!p)
			return -ENOMEM;
		l->items = p;
		l->cap = cap;
	}
	l->items[l->count++] = *a;
	return 0;
}

static void barrier(struct gpu_seq *seq)
{
	VkMemoryBarrier mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
		                 VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
	};
	VkPipelineStageFlags stages = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
	vkCmdPipelineBarrier(seq->cmd, stages, stages, 0, 1, &mb, 0, NULL, 0, NULL);
	seq->barrier_count++;
	seq->reads.count = seq->writes.count = 0;
}

// Resolves bindings to absolute buffer ranges, inserts a barrier on a hazard, records the accesses.
static int track(struct gpu_seq *seq, const struct gpu_binding *b, uint32_t n, struct gpu_access *acc)
{
	bool hazard = false;
	for (uint32_t i = 0; i < n; i++) {
		if (!b[i].buf) {
			LOGE("command sequence: binding %u has no buffer", i);
			return -EINVAL;
		}
		size_t size = b[i].size ? b[i].size : gpu_buf_size(b[i].buf) - b[i].offset;
		if (b[i].offset > gpu_buf_size(b[i].buf) || size > gpu_buf_size(b[i].buf) - b[i].offset || size == 0) {
			LOGE("command sequence: binding %u range [%zu, +%zu) outside a buffer of %zu bytes", i,
			     b[i].offset, size, gpu_buf_size(b[i].buf));
			return -EINVAL;
		}
		VkDeviceSize base;
		acc[i].buffer = gpu_buf_vk(b[i].buf, &base);
		acc[i].start = base + b[i].offset;
		acc[i].end = acc[i].start + size;
		hazard |= overlaps(&seq->writes, &acc[i]) || (b[i].write && overlaps(&seq->reads, &acc[i]));
	}
	if (hazard)
		barrier(seq);
	for (uint32_t i = 0; i < n; i++)
		if (note(b[i].write ? &seq->writes : &seq->reads, &acc[i]))
			return -ENOMEM;
	return 0;
}

static int timestamp(struct gpu_seq *seq, const char *label)
{
	struct gpu_device *dev = seq->dev;
	uint32_t q = seq->query_count % QUERIES_PER_POOL, pool = seq->query_count / QUERIES_PER_POOL;
	if (pool >= MAX_POOLS)
		return 0; // timings stop; the work itself goes on
	if (pool == seq->query_pool_count) {
		VkQueryPoolCreateInfo qci = {
			.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
			.queryType = VK_QUERY_TYPE_TIMESTAMP,
			.queryCount = QUERIES_PER_POOL,
		};
		int ret = gpu_device_check(dev, vkCreateQueryPool(dev->handle, &qci, NULL, &seq->query_pools[pool]),
		                           "timestamp query pool");
		if (ret)
			return ret;
		seq->query_pool_count++;
	}
	if (q == 0)
		vkCmdResetQueryPool(seq->cmd, seq->query_pools[pool], 0, QUERIES_PER_POOL);
	if (seq->query_count >= seq->label_cap) {
		uint32_t cap = seq->label_cap ? 2 * seq->label_cap : 256;
		void *p = realloc(seq->labels, cap * sizeof(*seq->labels));
		if (!p)
			return -ENOMEM;
		seq->labels = p;
		seq->label_cap = cap;
	}
	seq->labels[seq->query_count] = label;
	vkCmdWriteTimestamp(seq->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, seq->query_pools[pool], q);
	seq->query_count++;
	return 0;
}

static int record_check(struct gpu_seq *seq)
{
	if (!seq->recording) {
		LOGE("command sequence: not recording (call gpu_seq_begin first)");
		return -EINVAL;
	}
	if (seq->timestamps && seq->query_count == 0)
		return timestamp(seq, NULL);
	return 0;
}

// A view of floats over the bound range, owned by the sequence until it is re-recorded.
static int texel_view(struct gpu_seq *seq, const struct gpu_access *a, const char *what, uint32_t binding,
                      uint32_t floats, VkBufferView *out)
{
	const struct gpu_device_info *info = &seq->dev->phys->info;
	VkDeviceSize bytes = a->end - a->start, texel = 4 * floats;
	bytes -= bytes % texel;
	if (a->start % info->min_texel_offset_align || !bytes || bytes / texel > info->max_texel_buffer_elements) {
		LOGE("dispatch %s: binding %u is a texel buffer of %llu bytes at offset %llu; the device needs "
		     "offsets aligned to %llu and at most %llu texels", what, binding, (unsigned long long)bytes,
		     (unsigned long long)a->start, (unsigned long long)info->min_texel_offset_align,
		     (unsigned long long)info->max_texel_buffer_elements);
		return -EINVAL;
	}
	if (seq->view_count == seq->view_cap) {
		uint32_t cap = seq->view_cap ? 2 * seq->view_cap : 64;
		void *p = realloc(seq->views, cap * sizeof(*seq->views));
		if (!p)
			return -ENOMEM;
		seq->views = p;
		seq->view_cap = cap;
	}
	VkBufferViewCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
		.buffer = a->buffer,
		.format = floats == 4 ? VK_FORMAT_R32G32B32A32_SFLOAT : VK_FORMAT_R32_SFLOAT,
		.offset = a->start,
		.range = bytes,
	};
	int ret = gpu_device_check(seq->dev, vkCreateBufferView(seq->dev->handle, &ci, NULL, out), "texel buffer view");
	if (!ret)
		seq->views[seq->view_count++] = *out;
	return ret;
}

int gpu_seq_dispatch(struct gpu_seq *seq, const struct gpu_dispatch *d)
{
	struct gpu_access acc[GPU_MAX_BINDINGS];
	VkDescriptorBufferInfo infos[GPU_MAX_BINDINGS];
	VkBufferView views[GPU_MAX_BINDINGS];
	VkWriteDescriptorSet writes[GPU_MAX_BINDINGS];
	const struct gpu_kernel *k = d->kernel;
	int ret = record_check(seq);
	if (ret)
		return ret;
	if (!k) {
		LOGE("dispatch %s: no kernel", d->label ? d->label : "?");
		return -EINVAL;
	}
	if (d->groups[0] == 0 || d->groups[1] == 0 || d->groups[2] == 0)
		return 0;
	const uint32_t *maxg = seq->dev->phys->info.max_workgroup_count;
	if (d->groups[0] > maxg[0] || d->groups[1] > maxg[1] || d->groups[2] > maxg[2]) {
		LOGE("dispatch %s: %u x %u x %u workgroups exceed the device limit %u x %u x %u",
		     d->label ? d->label : gpu_kernel_spirv[k->params.id].name, d->groups[0], d->groups[1],
		     d->groups[2], maxg[0], maxg[1], maxg[2]);
		return -EINVAL;
	}
	ret = track(seq, d->bindings, k->params.binding_count, acc);
	if (ret)
		return ret;
	VkDescriptorSet set = alloc_set(seq, k->set_layout, &ret);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < k->params.binding_count; i++) {
		bool texel1 = k->params.texel_bindings >> i & 1, texel4 = k->params.texel4_bindings >> i & 1;
		bool texel = texel1 || texel4;
		infos[i] = (VkDescriptorBufferInfo){ acc[i].buffer, acc[i].start, acc[i].end - acc[i].start };
		writes[i] = (VkWriteDescriptorSet){
			.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
			.dstSet = set,
			.dstBinding = i,
			.descriptorCount = 1,
			.descriptorType = texel ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
			.pBufferInfo = texel ? NULL : &infos[i],
			.pTexelBufferView = texel ? &views[i] : NULL,
		};
		if (texel && (ret = texel_view(seq, &acc[i], d->label ? d->label : gpu_kernel_spirv[k->params.id].name, i,
		                               texel4 ? 4 : 1, &views[i])))
			return ret;
	}
	vkUpdateDescriptorSets(seq->dev->handle, k->params.binding_count, writes, 0, NULL);
	vkCmdBindPipeline(seq->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->pipeline);
	vkCmdBindDescriptorSets(seq->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, k->layout, 0, 1, &set, 0, NULL);
	if (k->params.push_size)
		vkCmdPushConstants(seq->cmd, k->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, k->params.push_size, d->push);
	vkCmdDispatch(seq->cmd, d->groups[0], d->groups[1], d->groups[2]);
	seq->dispatch_count++;
	if (seq->timestamps)
		return timestamp(seq, d->label ? d->label : gpu_kernel_spirv[k->params.id].name);
	return 0;
}

int gpu_seq_copy(struct gpu_seq *seq, const struct gpu_binding *src, const struct gpu_binding *dst)
{
	struct gpu_binding b[2] = { *src, *dst };
	struct gpu_access acc[2];
	b[0].write = false;
	b[1].write = true;
	int ret = record_check(seq);
	if (ret || (ret = track(seq, b, 2, acc)))
		return ret;
	VkDeviceSize n = acc[0].end - acc[0].start;
	if (acc[1].end - acc[1].start < n) {
		LOGE("copy: destination smaller than source");
		return -EINVAL;
	}
	VkBufferCopy region = { acc[0].start, acc[1].start, n };
	vkCmdCopyBuffer(seq->cmd, acc[0].buffer, acc[1].buffer, 1, &region);
	return seq->timestamps ? timestamp(seq, "copy") : 0;
}

int gpu_seq_fill(struct gpu_seq *seq, const struct gpu_binding *dst, uint32_t value)
{
	struct gpu_binding b = *dst;
	struct gpu_access acc;
	b.write = true;
	int ret = record_check(seq);
	if (ret || (ret = track(seq, &b, 1, &acc)))
		return ret;
	if (acc.start % 4 || (acc.end - acc.start) % 4) {
		LOGE("fill: offset and size must be multiples of 4");
		return -EINVAL;
	}
	vkCmdFillBuffer(seq->cmd, acc.buffer, acc.start, acc.end - acc.start, value);
	return seq->timestamps ? timestamp(seq, "fill") : 0;
}

int gpu_seq_end(struct gpu_seq *seq)
{
	int ret = 0;
	if (!seq->recording) {
		LOGE("command sequence: end without begin");
		return -EINVAL;
	}
	// Results become visible to later submissions (downloads, other sequences) and the host.
	VkMemoryBarrier mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_SHADER_READ_BIT,
	};
	vkCmdPipelineBarrier(seq->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
	                     VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT |
	                     VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
	seq->recording = false;
	VK_CHECK(vkEndCommandBuffer(seq->cmd));
	seq->recorded = true;
	return 0;
fail:
	return ret;
}

int gpu_seq_submit(struct gpu_seq *seq)
{
	struct gpu_device *dev = seq->dev;
	int ret;
	if (!seq->recorded) {
		LOGE("command sequence: nothing recorded to submit");
		return -EINVAL;
	}
	if (dev->lost)
		return -ENODEV;
	if (seq->in_flight && (ret = gpu_seq_wait(seq, 0)))
		return ret;
	if ((ret = gpu_device_check(dev, vkResetFences(dev->handle, 1, &seq->fence), "submit: reset fence")))
		return ret;
	VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &seq->cmd };
	ret = gpu_device_check(dev, vkQueueSubmit(dev->queue, 1, &si, seq->fence), "submit");
	if (!ret)
		seq->in_flight = true;
	return ret;
}

int gpu_seq_wait(struct gpu_seq *seq, uint64_t timeout_ns)
{
	if (!seq->in_flight)
		return 0;
	VkResult r = vkWaitForFences(seq->dev->handle, 1, &seq->fence, VK_TRUE, timeout_ns ? timeout_ns : UINT64_MAX);
	if (r == VK_TIMEOUT)
		return -ETIMEDOUT;
	seq->in_flight = false;
	return gpu_device_check(seq->dev, r, "wait");
}

int gpu_seq_run(struct gpu_seq *seq)
{
	int ret = gpu_seq_submit(seq);
	return ret ? ret : gpu_seq_wait(seq, 0);
}

uint32_t gpu_seq_dispatch_count(const struct gpu_seq *seq)
{
	return seq->dispatch_count;
}

uint32_t gpu_seq_barrier_count(const struct gpu_seq *seq)
{
	return seq->barrier_count;
}

int gpu_seq_timings(const struct gpu_seq *seq, struct gpu_timing *out, uint32_t cap, uint32_t *count)
{
	const struct gpu_device_info *info = &seq->dev->phys->info;
	uint64_t mask = info->timestamp_valid_bits >= 64 ? ~0ull : (1ull << info->timestamp_valid_bits) - 1;
	uint64_t first = 0, prev = 0;
	uint32_t n = 0;
	*count = 0;
	if (!seq->timestamps || seq->in_flight || !seq->recorded || seq->query_count == 0)
		return seq->timestamps ? -EINVAL : -ENOTSUP;
	for (uint32_t q = 0; q < seq->query_count; q++) {
		uint64_t t;
		VkResult r = vkGetQueryPoolResults(seq->dev->handle, seq->query_pools[q / QUERIES_PER_POOL],
		                                   q % QUERIES_PER_POOL, 1, sizeof(t), &t, sizeof(t),
		                                   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
		if (r != VK_SUCCESS)
			return gpu_device_check(seq->dev, r, "timestamps");
		t &= mask;
		if (q == 0) {
			first = prev = t;
			continue;
		}
		if (n < cap) {
			out[n].label = seq->labels[q];
			out[n].start_ms = (double)(prev - first) * info->timestamp_period_ns * 1e-6;
			out[n].ms = (double)(t - prev) * info->timestamp_period_ns * 1e-6;
			n++;
		}
		prev = t;
	}
	*count = n;
	return 0;
}
