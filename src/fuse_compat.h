/*
 * fuse_compat.h — what memfs needs from the FUSE protocol that libfuse 3.14
 * (Debian 12) can neither negotiate nor pass on.  Delete this file, and
 * ask for FUSE_CAP_HANDLE_KILLPRIV_V2 and FUSE_CAP_PARALLEL_DIROPS in
 * conn->want_ext instead, once memfs requires libfuse >= 3.17.
 *
 *  - FUSE_HANDLE_KILLPRIV_V2: the daemon, not the kernel, clears the
 *    set-user-ID and set-group-ID bits on write, truncate and chown.  The
 *    kernel then marks the superblock SB_NOSEC and stops sending a
 *    GETXATTR "security.capability" before every write(2).
 *  - FUSE_PARALLEL_DIROPS: lookups and readdirs in one directory may run
 *    in parallel (libfuse 3.14 lists it in conn->capable but never puts it
 *    in the INIT reply).
 *  - FUSE_DIRECT_IO_ALLOW_MMAP (Linux 6.6): files opened with direct I/O
 *    (cache=none) may still be mapped MAP_SHARED.
 *  - FUSE_OVER_IO_URING (Linux 6.14): requests come through per-CPU
 *    io_uring queues (uring.h), started once the INIT reply is written.
 *
 * Both are bits of the INIT reply.  fuse_compat_attach() routes the
 * session's /dev/fuse traffic through fuse_session_custom_io() with hooks
 * that do exactly what libfuse would (read, writev, splice) and, once,
 * add those bits to the INIT reply on its way to the kernel, if the
 * kernel offered them in its INIT request.
 */
#ifndef MEMFS_FUSE_COMPAT_H
#define MEMFS_FUSE_COMPAT_H

#include <fuse_lowlevel.h>
#include <stdatomic.h>
#include <stdint.h>

struct fuse_compat {
	uint64_t want;		  /* INIT flags (<linux/fuse.h>) to add if offered */
	int debug;		  /* -d: say what was added */
	uint64_t init_unique;	  /* the INIT request's id, to find its reply */
	uint64_t offered;	  /* the kernel's INIT request flags (flags2 << 32) */
	_Atomic uint64_t granted; /* INIT flags memfs added to the reply */
	atomic_int init_seen;	  /* the INIT reply has gone by */
	size_t max_payload;	  /* the largest request or reply data, from INIT */
	struct memfs_uring *uring; /* FUSE over io_uring, if started (uring.h) */
};

/* What fuse_compat_attach() may add to the INIT reply. */
enum {
	FUSE_COMPAT_KILLPRIV_V2 = 1 << 0,
	FUSE_COMPAT_PARALLEL_DIROPS = 1 << 1,
	FUSE_COMPAT_DIRECT_IO_ALLOW_MMAP = 1 << 2,
	FUSE_COMPAT_OVER_IO_URING = 1 << 3, /* and start the rings (uring.h) */
};

/*
 * Put the hooks on a mounted session (after fuse_session_mount(), before
 * the loop).  want: FUSE_COMPAT_* bits.  The session's userdata must be
 * the struct memfs (ops.h) holding c.  0 or a negative errno.
 */
int fuse_compat_attach(struct fuse_session *se, struct fuse_compat *c, unsigned want, int debug);

/* Whether the kernel runs this mount with FUSE_HANDLE_KILLPRIV_V2. */
int fuse_compat_killpriv_v2(const struct fuse_compat *c);
/* Whether the kernel lets direct-I/O files be mapped MAP_SHARED. */
int fuse_compat_direct_io_mmap(const struct fuse_compat *c);

/*
 * For a WRITE request: did the kernel ask the daemon to clear the set-id
 * bits (FUSE_WRITE_KILL_SUIDGID, set when the writer lacks CAP_FSETID)?
 * libfuse 3.14 drops write_flags, but when the data arrived in memory the
 * request header sits right before it; that header is read, after
 * checking it describes this very write (offset and size).  1 or 0; -1 if
 * it cannot be known (data spliced through a pipe).
 */
int fuse_compat_write_kills_suidgid(const struct fuse_bufvec *buf, off_t off);

/*
 * For a SETATTR (with KILLPRIV_V2): clear set-id bits?  Yes for
 * FATTR_KILL_SUIDGID (truncate by a writer without CAP_FSETID, chown) and
 * for an empty SETATTR (the kernel's file_remove_privs(), see the .c).
 */
int fuse_compat_setattr_kills_suidgid(int to_set);

/*
 * The set-id bits to clear from a regular file of that mode and group
 * when the kernel asks (Linux's setattr_should_drop_suidgid()): S_ISUID;
 * S_ISGID if the group may execute, or if the caller of req is outside
 * the file's group and lacks CAP_FSETID (no_fsetid: known to lack it).
 */
mode_t fuse_compat_setid_to_clear(fuse_req_t req, mode_t mode, gid_t gid, int no_fsetid);

#endif
