/*
 * space.h — the filesystem's memory budget for file contents (size=).
 *
 * used_bytes grows before memory is allocated (a reservation) and shrinks
 * after it is freed, so a writer that would pass limit_bytes gets -ENOSPC and
 * nothing is allocated.  Updated with atomics: writers of different files run
 * in parallel under the namespace read lock.
 */
#ifndef MFS_SPACE_H
#define MFS_SPACE_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

struct mfs_space {
	_Atomic uint64_t used_bytes;     /* reserved for file contents now */
	_Atomic uint64_t released_bytes; /* ever given back; only grows (mfs_freed_units) */
	uint64_t limit_bytes;        /* size=; never changes after mount */
};

static inline int mfs_space_reserve(struct mfs_space *sp, uint64_t n)
{
	uint64_t cur = atomic_load_explicit(&sp->used_bytes, memory_order_relaxed);
	do {
		if (n > sp->limit_bytes || cur > sp->limit_bytes - n)
			return -ENOSPC;
	} while (!atomic_compare_exchange_weak_explicit(&sp->used_bytes, &cur, cur + n,
							memory_order_relaxed,
							memory_order_relaxed));
	return 0;
}

static inline void mfs_space_release(struct mfs_space *sp, uint64_t n)
{
	atomic_fetch_sub_explicit(&sp->used_bytes, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&sp->released_bytes, n, memory_order_relaxed);
}

static inline uint64_t mfs_space_used(struct mfs_space *sp)
{
	return atomic_load_explicit(&sp->used_bytes, memory_order_relaxed);
}

#endif
