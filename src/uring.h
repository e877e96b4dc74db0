/*
 * uring.h — FUSE over io_uring (Linux 6.14, protocol 7.42) for libfuse
 * 3.14, which only knows /dev/fuse reads and writes.
 *
 * Why: with /dev/fuse every request wakes whichever daemon thread has
 * waited longest, usually on another CPU; on a virtual machine whose idle
 * CPUs halt, that wake-up is most of a round trip (O_DIRECT 4 KiB reads:
 * 50,000/s with the daemon and the reader on one CPU, 3,000-15,000/s
 * otherwise).  Over io_uring the kernel queues each request on the queue
 * of the CPU it was made on, and memfs serves queue N with a thread bound
 * to CPU N: the requester and the daemon take turns on one CPU.
 *
 * The kernel offers it (FUSE_OVER_IO_URING in the INIT request) only when
 * /sys/module/fuse/parameters/enable_uring is Y.  fuse_compat.c then adds
 * the flag to the INIT reply, if memfs_uring_available() says so, and calls
 * memfs_uring_start() once the reply is on its way.  Requests arrive in
 * ring buffers, are laid out as libfuse expects a /dev/fuse read, and go
 * through fuse_session_process_buf() like any other; the reply libfuse
 * writes comes back through fuse_compat's writev hook, which hands it to
 * memfs_uring_take_reply().  FORGET, INTERRUPT and notifications keep
 * using /dev/fuse, served by the usual session loop.
 *
 * This file goes, with fuse_compat.c, once libfuse >= 3.18 is required.
 */
#ifndef MEMFS_URING_H
#define MEMFS_URING_H

#include <fuse_lowlevel.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>

struct memfs_uring;

/* Whether this build can serve FUSE over io_uring at all. */
int memfs_uring_available(void);

/*
 * Start one thread per possible CPU, each registering depth ring entries
 * of payload bytes (at least the connection's max_write) for its queue.
 * Call after the INIT reply was written.  0, or a negative errno and
 * nothing started: requests then keep coming through /dev/fuse.
 */
int memfs_uring_start(struct fuse_session *se, size_t payload, struct memfs_uring **out);

/* Stop the threads and free everything (NULL: nothing). */
void memfs_uring_stop(struct memfs_uring *u);

/*
 * From the writev hook: if iov (a fuse_out_header and the reply's data)
 * answers the ring request the calling thread is handling, copy it into
 * that request's ring entry, set *ret to what writev(2) would have
 * returned (the bytes, or -1 with errno set), and return 1.  0: not a ring
 * reply, write it to /dev/fuse.
 */
int memfs_uring_take_reply(const struct iovec *iov, int count, ssize_t *ret);

#endif
