/*
 * unit_check.h — what the core's Check tests share: the consistency check
 * after a step, how a test ends, and (in a -Dfault_injection=true build)
 * the steps of an allocation-failure walk.
 */
#ifndef MEMFS_UNIT_CHECK_H
#define MEMFS_UNIT_CHECK_H

#include <check.h>
#include <errno.h>

#include "alloc.h"
#include "fs.h"

/* mfs_check must pass, or the test stops where it was called. */
#define check_ok(fs)                                                                               \
	do {                                                                                       \
		const char *why_ = NULL;                                                           \
		int err_ = mfs_check((fs), &why_);                                                 \
		if (err_ != 0)                                                                     \
			ck_abort_msg("%s:%d: mfs_check: %d %s", __FILE__, __LINE__, err_,          \
				     why_ ? why_ : "(no reason)");                                 \
	} while (0)

/* mfs_check, then mfs_fs_destroy: how every test ends. */
#define finish(fs)                                                                                 \
	do {                                                                                       \
		check_ok(fs);                                                                      \
		mfs_fs_destroy(fs);                                                                \
	} while (0)

#ifdef MFS_FAULT_INJECTION
/*
 * A walk fails allocation number fi_target of a workload, counted across
 * its steps (fi_used so far); mfs_check between steps runs with injection
 * off and its allocations are not counted.  fi_enomem counts the runs a
 * step ended with -ENOMEM.
 */
static unsigned long fi_target, fi_used, fi_enomem;

static inline void fi_resume(void)
{
	mfs_alloc_fail_at(fi_used < fi_target ? fi_target - fi_used : 0, 0);
}

static inline void fi_pause(void)
{
	fi_used += mfs_alloc_count();
	mfs_alloc_fail_at(0, 0);
}

/*
 * One step of a workload on `fs`: the call succeeds or gives -ENOMEM, and
 * the filesystem is consistent afterwards either way.  A failed step ends
 * the workload (later steps depend on it) by jumping to its label `out`.
 */
#define FI_STEP(expr)                                                                              \
	do {                                                                                       \
		fi_resume();                                                                       \
		long r_ = (long)(expr);                                                            \
		fi_pause();                                                                        \
		if (r_ < 0 && r_ != -ENOMEM)                                                       \
			ck_abort_msg("N=%lu: %s gave %ld", fi_target, #expr, r_);                  \
		check_ok(fs);                                                                      \
		if (r_ == -ENOMEM) {                                                               \
			fi_enomem++;                                                               \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)
#endif

#endif
