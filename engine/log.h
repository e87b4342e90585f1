// Logging for the whole tree: one thread-safe sink, printf-checked macros.
// Messages put the subject first, in lower case, with no trailing newline.
#pragma once
#include <stdarg.h>

enum gpu_log_level {
	GPU_LOG_ERROR = 0,
	GPU_LOG_WARN = 1,
	GPU_LOG_INFO = 2,
	GPU_LOG_DEBUG = 3,
};

// sink receives one finished message (no newline). NULL sink = stderr.
typedef void (*gpu_log_sink)(enum gpu_log_level level, const char *msg, void *user);

// Call once from main(); messages above `level` are dropped. Thread-safe.
void gpu_log_init(enum gpu_log_level level, gpu_log_sink sink, void *user);
enum gpu_log_level gpu_log_level_get(void);
void gpu_log_write(enum gpu_log_level level, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define LOGE(...) gpu_log_write(GPU_LOG_ERROR, __FILE__, __LINE__, __VA_ARGS__)
#define LOGW(...) gpu_log_write(GPU_LOG_WARN, __FILE__, __LINE__, __VA_ARGS__)
#define LOGI(...) gpu_log_write(GPU_LOG_INFO, __FILE__, __LINE__, __VA_ARGS__)
#define LOGD(...) gpu_log_write(GPU_LOG_DEBUG, __FILE__, __LINE__, __VA_ARGS__)
