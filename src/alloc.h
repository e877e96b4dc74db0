/*
 * alloc.h — the one place the core allocates memory.
 *
 * Every allocation in the core goes through these wrappers, so that a test
 * build can make the Nth allocation fail (fault injection) and prove that
 * each caller turns that into -ENOMEM instead of a crash.  uthash is routed
 * here too (see uthash_cfg.h).
 */
#ifndef MFS_ALLOC_H
#define MFS_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Nonzero when this allocation must fail (fault-injection builds only). */
#ifdef MFS_FAULT_INJECTION
int mfs_alloc_should_fail(void);
#else
static inline int mfs_alloc_should_fail(void)
{
	return 0;
}
#endif

static inline void *mfs_malloc(size_t n)
{
	return mfs_alloc_should_fail() ? NULL : malloc(n);
}

static inline void *mfs_calloc(size_t nmemb, size_t n)
{
	return mfs_alloc_should_fail() ? NULL : calloc(nmemb, n);
}

static inline void *mfs_realloc(void *p, size_t n)
{
	return mfs_alloc_should_fail() ? NULL : realloc(p, n);
}

static inline void mfs_free(void *p)
{
	free(p);
}

/*
 * data.c calls this after it allocated a full chunk of file data
 * (data_bytes: the bytes the file system holds now), and it calls the hook
 * the daemon set, if any: prefault.c, which decides whether to fault the
 * heap in ahead of bulk writes.  The core itself does nothing with it.
 */
void mfs_heap_grew(uint64_t data_bytes);
void mfs_set_heap_hook(void (*hook)(uint64_t data_bytes));

/*
 * Fault injection: fail the allocation number `nth` (1-based, counted from
 * this call), and then every `every`-th one after it if `every` > 0.
 * nth == 0 turns injection off.  Only effective when built with
 * -Dfault_injection=true; otherwise a no-op.
 */
void mfs_alloc_fail_at(unsigned long nth, unsigned long every);

/* Allocations attempted since the last mfs_alloc_fail_at() (fault-injection builds; 0 otherwise). */
unsigned long mfs_alloc_count(void);

#endif
