// Shared by the CPU unit tests: a CHECK that prints the failing expression and returns 1 from the
// calling check_* function, and the shared-folder lookup (VKYOLO_SHARED, default ../shared).
#pragma once
#include <stdio.h>
#include <stdlib.h>

#define CHECK(c)                                                                   \
	do {                                                                           \
		if (!(c)) {                                                                \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); \
			return 1;                                                              \
		}                                                                          \
	} while (0)

// CHECK with a printf-style message (the numbers that failed) instead of the expression.
#define CHECKF(c, ...)                                                             \
	do {                                                                           \
		if (!(c)) {                                                                \
			fprintf(stderr, "%s:%d: FAIL ", __FILE__, __LINE__);                   \
			fprintf(stderr, __VA_ARGS__);                                          \
			fprintf(stderr, "\n");                                                 \
			return 1;                                                              \
		}                                                                          \
	} while (0)

static inline const char *test_shared_dir(void)
{
	const char *s = getenv("VKYOLO_SHARED");
	return s && *s ? s : "../shared";
}

// Removes dir/name (a file or an empty directory); cleanup helper for tests using a temp folder.
static inline void test_remove(const char *dir, const char *name)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	remove(p);
}
