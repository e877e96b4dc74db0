/*
 * alloc.c — allocation fault injection, and the heap-growth hook (see alloc.h).
 *
 * Counters are atomics so that a multi-threaded daemon built for fault
 * injection still counts every allocation exactly once.  Without
 * -Dfault_injection the hot path (mfs_alloc_should_fail) is an inline 0.
 */
#include "alloc.h"

#include <stdatomic.h>

static void (*_Atomic heap_hook)(uint64_t data_bytes);

void mfs_set_heap_hook(void (*hook)(uint64_t data_bytes))
{
	atomic_store(&heap_hook, hook);
}

void mfs_heap_grew(uint64_t data_bytes)
{
	void (*hook)(uint64_t) = atomic_load_explicit(&heap_hook, memory_order_relaxed);

	if (hook)
		hook(data_bytes);
}

#ifdef MFS_FAULT_INJECTION
static _Atomic unsigned long alloc_count; /* allocations since the last arm */
static _Atomic unsigned long fail_nth;    /* 0: injection off */
static _Atomic unsigned long fail_every;

int mfs_alloc_should_fail(void)
{
	unsigned long n = atomic_fetch_add_explicit(&alloc_count, 1, memory_order_relaxed) + 1;
	unsigned long nth = atomic_load_explicit(&fail_nth, memory_order_relaxed);
	unsigned long every = atomic_load_explicit(&fail_every, memory_order_relaxed);
	if (nth == 0 || n < nth)
		return 0;
	if (n == nth)
		return 1;
	return every > 0 && (n - nth) % every == 0;
}

void mfs_alloc_fail_at(unsigned long nth, unsigned long every)
{
	atomic_store(&fail_every, every);
	atomic_store(&fail_nth, nth);
	atomic_store(&alloc_count, 0);
}

unsigned long mfs_alloc_count(void)
{
	return atomic_load(&alloc_count);
}
#else
void mfs_alloc_fail_at(unsigned long nth, unsigned long every)
{
	(void)nth;
	(void)every;
}

unsigned long mfs_alloc_count(void)
{
	return 0;
}
#endif
