// The one log sink of the process (the only mutable global of the tree), guarded by a mutex.
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static enum gpu_log_level log_level = GPU_LOG_INFO;
static gpu_log_sink log_sink;
static void *log_user;

void gpu_log_init(enum gpu_log_level level, gpu_log_sink sink, void *user)
{
	pthread_mutex_lock(&log_lock);
	log_level = level;
	log_sink = sink;
	log_user = user;
	pthread_mutex_unlock(&log_lock);
}

enum gpu_log_level gpu_log_level_get(void)
{
	return log_level;
}

void gpu_log_write(enum gpu_log_level level, const char *file, int line, const char *fmt, ...)
{
	static const char *const prefix[] = { "error", "warning", "info", "debug" };
	char msg[2048];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&log_lock);
	if (log_sink) {
		log_sink(level, msg, log_user);
	} else if (log_level >= GPU_LOG_DEBUG) {
		const char *base = strrchr(file, '/');
		fprintf(stderr, "vkyolo: %s: %s (%s:%d)\n", prefix[level], msg, base ? base + 1 : file, line);
	} else {
		fprintf(stderr, "vkyolo: %s: %s\n", prefix[level], msg);
	}
	pthread_mutex_unlock(&log_lock);
}
