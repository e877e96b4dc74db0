/*
 * trim.h — give the memory of deleted files back to the system.
 *
 * glibc keeps freed memory in its heaps for reuse, so a daemon that held a
 * million files keeps the memory of all of them after they are deleted.
 * memfs_trim_start() starts a thread that, once a second, looks at how
 * much the core has freed (mfs_freed_units: inodes and blocks, a count
 * that only grows) and calls malloc_trim() when it moved by 256 or more
 * (files were deleted or truncated).  It relies on main.c
 * having put every thread on glibc's main heap (M_ARENA_MAX 1), which
 * malloc_trim() gives back best.  Daemon-side only: the core knows
 * nothing of it.
 */
#ifndef MEMFS_TRIM_H
#define MEMFS_TRIM_H

#include "fs.h"

struct memfs_trim;

/*
 * Call once the session is set up.  0, or -errno (memfs runs on
 * without it: the memory is only given back later).
 */
int memfs_trim_start(struct mfs_fs *fs, struct memfs_trim **out);
/* Stop and join the thread (NULL: nothing). */
void memfs_trim_stop(struct memfs_trim *t);

#endif
