// Debian ships volk as a source file (libvulkan-volk-dev) with no library: compile it here.
#include <volk.c>
