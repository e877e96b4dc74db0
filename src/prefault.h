/*
 * prefault.h — fault the heap in ahead of bulk writes, on an idle CPU.
 *
 * A new page of anonymous memory costs the kernel an allocation, a clear and
 * a page-table update when it is first touched; writing a new 1 GiB file,
 * that was most of the time the request threads spent (perf: page faults
 * under malloc, 14 % of each ring thread's samples against 1.3 % for the
 * copy of the data itself), on the writer's own CPU.  Once a file system
 * holds 64 MiB, memfs_prefault_start()'s thread keeps glibc's heap growing
 * in steps of up to 16 MiB (M_TOP_PAD, at most 1/32 of what is stored) and
 * faults each new step in with madvise(MADV_POPULATE_WRITE) while the
 * request threads fill the start of it.  The memory is malloc's own, about
 * to be handed out; nothing is written to it.  Daemon-side only, like
 * trim.h: the core just reports growth (alloc.h, mfs_heap_grew).
 */
#ifndef MEMFS_PREFAULT_H
#define MEMFS_PREFAULT_H

struct memfs_prefault;

/*
 * Call after fuse_daemonize (threads do not survive its fork).  0, or
 * -errno: memfs runs on without it, its pages faulted in as they are used.
 * Where malloc does not take memory by moving the break (ASan, valgrind) or
 * the kernel lacks MADV_POPULATE_WRITE (before Linux 5.14) it does nothing.
 */
int memfs_prefault_start(struct memfs_prefault **out);
/* Stop and join the thread (NULL: nothing). */
void memfs_prefault_stop(struct memfs_prefault *p);

#endif
