// Device memory: pools of large blocks, each one VkBuffer, suballocated first-fit with a free list.
// Staged uploads and downloads go through the device's host-visible staging buffer.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DEFAULT_BLOCK (64u << 20)
#define MAX_FREE 256

struct gpu_range {
	VkDeviceSize offset, size;
};

struct gpu_block {
	struct gpu_block *next;
	VkDeviceMemory memory;
	VkBuffer buffer;
	VkDeviceSize size;
	void *mapped;
	uint32_t live;
	uint32_t free_count;
	struct gpu_range free[MAX_FREE]; // sorted by offset, coalesced
};

static int find_memory_type(const struct gpu_device *dev, uint32_t bits, enum gpu_pool_kind kind,
                            uint32_t *type)
{
	const VkPhysicalDeviceMemoryProperties *mp = &dev->mem_props;
	VkMemoryPropertyFlags want[3];
	uint32_t n_want = 0;
	if (kind == GPU_POOL_DEVICE) {
		want[n_want++] = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
		want[n_want++] = 0;
	} else {
		want[n_want++] = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
		                 VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
		want[n_want++] = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
	}
	for (uint32_t w = 0; w < n_want; w++)
		for (uint32_t t = 0; t < mp->memoryTypeCount; t++)
			if ((bits & (1u << t)) && (mp->memoryTypes[t].propertyFlags & want[w]) == want[w]) {
				*type = t;
				return 0;
			}
	return -ENOTSUP;
}

static void block_destroy(struct gpu_device *dev, struct gpu_block *b)
{
	if (b->mapped)
		vkUnmapMemory(dev->handle, b->memory);
	if (b->buffer)
		vkDestroyBuffer(dev->handle, b->buffer, NULL);
	if (b->memory) {
		vkFreeMemory(dev->handle, b->memory, NULL);
		gpu_device_track_memory(dev, -(int64_t)b->size);
	}
	free(b);
}

static int block_create(struct gpu_pool *pool, VkDeviceSize size, struct gpu_block **out)
{
	struct gpu_device *dev = pool->dev;
	struct gpu_block *b = calloc(1, sizeof(*b));
	int ret = 0;
	if (!b)
		return -ENOMEM;
	b->size = size;
	VkDeviceSize largest = 0;
	for (uint32_t h = 0; h < dev->mem_props.memoryHeapCount; h++)
		if (dev->mem_props.memoryHeaps[h].size > largest)
			largest = dev->mem_props.memoryHeaps[h].size;
	if (size > largest || size > dev->phys->info.max_storage_buffer_range) {
		LOGE("pool %s: %.1f MiB requested, more than the device can hold in one buffer "
		     "(largest heap %.0f MiB, buffer range %.0f MiB)", pool->name, size / 1048576.0,
		     largest / 1048576.0, dev->phys->info.max_storage_buffer_range / 1048576.0);
		ret = -ENOMEM;
		goto fail;
	}
	VkBufferCreateInfo bci = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = size,
		.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_UNIFORM_TEXEL_BUFFER_BIT |
		         VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT,
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	VK_CHECK(vkCreateBuffer(dev->handle, &bci, NULL, &b->buffer));
	VkMemoryRequirements req;
	vkGetBufferMemoryRequirements(dev->handle, b->buffer, &req);
	uint32_t type;
	ret = find_memory_type(dev, req.memoryTypeBits, pool->params.kind, &type);
	if (ret) {
		LOGE("pool %s: no suitable memory type", pool->name);
		goto fail;
	}
	uint32_t heap = dev->mem_props.memoryTypes[type].heapIndex;
	if (req.size > dev->mem_props.memoryHeaps[heap].size) {
		LOGE("pool %s: %.1f MiB requested, larger than the device's memory heap (%.1f MiB)",
		     pool->name, req.size / 1048576.0, dev->mem_props.memoryHeaps[heap].size / 1048576.0);
		ret = -ENOMEM;
		goto fail;
	}
	VkMemoryAllocateInfo mai = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
		.allocationSize = req.size,
		.memoryTypeIndex = type,
	};
	VkResult r = vkAllocateMemory(dev->handle, &mai, NULL, &b->memory);
	if (r != VK_SUCCESS) {
		LOGE("pool %s: allocating %.1f MiB of device memory: %s", pool->name, req.size / 1048576.0,
		     gpu_vk_result_name(r));
		ret = gpu_vk_errno(r);
		goto fail;
	}
	gpu_device_track_memory(dev, (int64_t)req.size);
	b->size = req.size;
	VK_CHECK(vkBindBufferMemory(dev->handle, b->buffer, b->memory, 0));
	if (pool->params.kind == GPU_POOL_HOST)
		VK_CHECK(vkMapMemory(dev->handle, b->memory, 0, VK_WHOLE_SIZE, 0, &b->mapped));
	b->free_count = 1;
	b->free[0] = (struct gpu_range){ 0, size };
	*out = b;
	return 0;
fail:
	block_destroy(dev, b);
	return ret;
}

int gpu_pool_create(struct gpu_device *dev, const struct gpu_pool_params *p, struct gpu_pool **out)
{
	struct gpu_pool *pool = calloc(1, sizeof(*pool));
	*out = NULL;
	if (!pool)
		return -ENOMEM;
	pool->dev = dev;
	pool->params = *p;
	if (!pool->params.block_size)
		pool->params.block_size = DEFAULT_BLOCK;
	snprintf(pool->name, sizeof(pool->name), "%s", p->name ? p->name : "unnamed");
	pool->params.name = pool->name;
	*out = pool;
	return 0;
}

void gpu_pool_destroy(struct gpu_pool **ppool)
{
	struct gpu_pool *pool = *ppool;
	if (!pool)
		return;
	if (pool->live_bufs)
		LOGW("pool %s: destroyed with %u live buffers", pool->name, pool->live_bufs);
	while (pool->blocks) {
		struct gpu_block *b = pool->blocks;
		pool->blocks = b->next;
		block_destroy(pool->dev, b);
	}
	free(pool);
	*ppool = NULL;
}

uint64_t gpu_pool_reserved(const struct gpu_pool *pool)
{
	return pool->reserved;
}

static VkDeviceSize align_up(VkDeviceSize v, VkDeviceSize a)
{
	return (v + a - 1) / a * a;
}

static bool block_take(struct gpu_block *b, VkDeviceSize size, VkDeviceSize *offset)
{
	for (uint32_t i = 0; i < b->free_count; i++) {
		if (b->free[i].size < size)
			continue;
		*offset = b->free[i].offset;
		b->free[i].offset += size;
		b->free[i].size -= size;
		if (b->free[i].size == 0) {
			memmove(&b->free[i], &b->free[i + 1], (b->free_count - i - 1) * sizeof(b->free[0]));
			b->free_count--;
		}
		return true;
	}
	return false;
}

static void block_give(struct gpu_block *b, VkDeviceSize offset, VkDeviceSize size)
{
	uint32_t i = 0;
	while (i < b->free_count && b->free[i].offset < offset)
		i++;
	bool merge_prev = i > 0 && b->free[i - 1].offset + b->free[i - 1].size == offset;
	bool merge_next = i < b->free_count && offset + size == b->free[i].offset;
	if (merge_prev && merge_next) {
		b->free[i - 1].size += size + b->free[i].size;
		memmove(&b->free[i], &b->free[i + 1], (b->free_count - i - 1) * sizeof(b->free[0]));
		b->free_count--;
	} else if (merge_prev) {
		b->free[i - 1].size += size;
	} else if (merge_next) {
		b->free[i].offset = offset;
		b->free[i].size += size;
	} else if (b->free_count < MAX_FREE) {
		memmove(&b->free[i + 1], &b->free[i], (b->free_count - i) * sizeof(b->free[0]));
		b->free[i] = (struct gpu_range){ offset, size };
		b->free_count++;
	} // else: the range leaks until the block is empty again (bounded, logged nowhere: rare)
	if (b->live == 0) {
		b->free_count = 1;
		b->free[0] = (struct gpu_range){ 0, b->size };
	}
}

int gpu_buf_create(struct gpu_pool *pool, size_t size, struct gpu_buf **out)
{
	struct gpu_device *dev = pool->dev;
	VkDeviceSize align = dev->phys->info.min_storage_offset_align;
	if (align < 256)
		align = 256;
	VkDeviceSize need = align_up(size ? size : 1, align);
	struct gpu_block *b;
	VkDeviceSize offset = 0;
	int ret;

	*out = NULL;
	if (dev->lost)
		return -ENODEV;
	for (b = pool->blocks; b; b = b->next)
		if (block_take(b, need, &offset))
			break;
	if (!b) {
		VkDeviceSize bsize = need > pool->params.block_size ? need : pool->params.block_size;
		ret = block_create(pool, bsize, &b);
		if (ret)
			return ret;
		b->next = pool->blocks;
		pool->blocks = b;
		pool->reserved += b->size;
		block_take(b, need, &offset);
	}
	struct gpu_buf *buf = calloc(1, sizeof(*buf));
	if (!buf) {
		block_give(b, offset, need);
		return -ENOMEM;
	}
	buf->pool = pool;
	buf->block = b;
	buf->offset = offset;
	buf->size = size;
	b->live++;
	pool->live_bufs++;
	*out = buf;
	return 0;
}

void gpu_buf_destroy(struct gpu_buf **pbuf)
{
	struct gpu_buf *buf = *pbuf;
	if (!buf)
		return;
	struct gpu_device *dev = buf->pool->dev;
	VkDeviceSize align = dev->phys->info.min_storage_offset_align;
	if (align < 256)
		align = 256;
	buf->block->live--;
	buf->pool->live_bufs--;
	block_give(buf->block, buf->offset, align_up(buf->size ? buf->size : 1, align));
	free(buf);
	*pbuf = NULL;
}

size_t gpu_buf_size(const struct gpu_buf *buf)
{
	return buf->size;
}

void *gpu_buf_map(struct gpu_buf *buf)
{
	if (!buf->block->mapped)
		return NULL;
	return (char *)buf->block->mapped + buf->offset;
}

VkBuffer gpu_buf_vk(const struct gpu_buf *buf, VkDeviceSize *offset)
{
	*offset = buf->offset;
	return buf->block->buffer;
}

// One staged copy of up to the staging size, submitted and waited on.
static int staged_copy(struct gpu_device *dev, const struct gpu_buf *dev_buf, VkDeviceSize dev_off,
                       VkDeviceSize size, bool upload)
{
	int ret = 0;
	VkCommandBuffer cmd = dev->transfer_cmd;
	VkCommandBufferBeginInfo bi = {
		.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
		.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT,
	};
	VK_CHECK(vkResetCommandBuffer(cmd, 0));
	VK_CHECK(vkBeginCommandBuffer(cmd, &bi));
	VkBufferCopy region = { .size = size };
	VkBuffer staging = dev->staging->block->buffer, target = dev_buf->block->buffer;
	if (upload) {
		region.srcOffset = dev->staging->offset;
		region.dstOffset = dev_buf->offset + dev_off;
		vkCmdCopyBuffer(cmd, staging, target, 1, &region);
	} else {
		region.srcOffset = dev_buf->offset + dev_off;
		region.dstOffset = dev->staging->offset;
		vkCmdCopyBuffer(cmd, target, staging, 1, &region);
	}
	// Make the copy visible to later compute work and to the host.
	VkMemoryBarrier mb = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_HOST_READ_BIT,
	};
	vkCmdPipelineBarrier(cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
	                     VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0,
	                     NULL, 0, NULL);
	VK_CHECK(vkEndCommandBuffer(cmd));
	VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd };
	VK_CHECK(vkResetFences(dev->handle, 1, &dev->transfer_fence));
	ret = gpu_device_check(dev, vkQueueSubmit(dev->queue, 1, &si, dev->transfer_fence), "buffer copy: submit");
	if (ret)
		return ret;
	return gpu_device_check(dev, vkWaitForFences(dev->handle, 1, &dev->transfer_fence, VK_TRUE, UINT64_MAX),
	                        "buffer copy: wait");
fail:
	return ret;
}

static int check_range(const struct gpu_buf *buf, size_t offset, size_t size, const char *what)
{
	if (offset > buf->size || size > buf->size - offset) {
		LOGE("%s: range [%zu, +%zu) outside a buffer of %zu bytes", what, offset, size, (size_t)buf->size);
		return -EINVAL;
	}
	return buf->pool->dev->lost ? -ENODEV : 0;
}

int gpu_buf_upload(struct gpu_buf *dst, size_t offset, const void *src, size_t size)
{
	struct gpu_device *dev = dst->pool->dev;
	int ret = check_range(dst, offset, size, "upload");
	if (ret)
		return ret;
	if (dst->block->mapped) {
		memcpy((char *)dst->block->mapped + dst->offset + offset, src, size);
		return 0;
	}
	size_t chunk = dev->staging->size;
	for (size_t done = 0; done < size && !ret; done += chunk) {
		size_t n = size - done < chunk ? size - done : chunk;
		memcpy(gpu_buf_map(dev->staging), (const char *)src + done, n);
		ret = staged_copy(dev, dst, offset + done, n, true);
	}
	return ret;
}

int gpu_buf_download(const struct gpu_buf *src, size_t offset, void *dst, size_t size)
{
	struct gpu_device *dev = src->pool->dev;
	int ret = check_range(src, offset, size, "download");
	if (ret)
		return ret;
	if (src->block->mapped) {
		memcpy(dst, (const char *)src->block->mapped + src->offset + offset, size);
		return 0;
	}
	size_t chunk = dev->staging->size;
	for (size_t done = 0; done < size && !ret; done += chunk) {
		size_t n = size - done < chunk ? size - done : chunk;
		ret = staged_copy(dev, src, offset + done, n, false);
		if (!ret)
			memcpy((char *)dst + done, gpu_buf_map(dev->staging), n);
	}
	return ret;
}
