/*
 * uthash_cfg.h — include this instead of <uthash.h>.
 *
 * Routes uthash's allocations through alloc.h and makes an allocation
 * failure non-fatal: HASH_ADD then leaves the table unchanged and sets the
 * flag the caller checks (see dir.c).  uthash's default is to exit().
 */
#ifndef MFS_UTHASH_CFG_H
#define MFS_UTHASH_CFG_H

#include "alloc.h"

#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) mfs_malloc(sz)
#define uthash_free(ptr, sz) mfs_free(ptr)
/* Each user defines uthash_nonfatal_oom(obj) before including this file. */
#include <uthash.h>

#endif
