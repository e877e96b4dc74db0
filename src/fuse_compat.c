/*
 * fuse_compat.c — negotiate FUSE_HANDLE_KILLPRIV_V2, FUSE_PARALLEL_DIROPS and
 * FUSE_DIRECT_IO_ALLOW_MMAP with libfuse 3.14, and read the write flags it
 * drops.  See fuse_compat.h for what they buy; this file goes when libfuse
 * >= 3.17 is required.
 *
 * How: libfuse 3.14 sends every message to the kernel through
 * se->io->writev once fuse_session_custom_io() installed one.  The hooks
 * below are the plain system calls libfuse makes without them (read,
 * writev, and splice, whose hooks must exist or libfuse turns splice off),
 * plus two looks at the traffic: the first request read is the kernel's
 * INIT (nothing else is sent before it is answered), whose flags say what
 * the kernel offers; the reply with that request's id is the INIT reply,
 * a struct fuse_init_out built by libfuse's do_init(), to whose flags the
 * wanted bits the kernel offered are added.  Nothing else is touched.
 *
 * Why this is sound with 3.14 (tests/integration/test_perf_semantics.c
 * compares every case with tmpfs):
 *  - Both bits are plain INIT flags the kernel interprets by itself; 3.14
 *    keeps no state that depends on them.
 *  - KILLPRIV_V2 hands set-id clearing to the daemon; ops.c clears with
 *    Linux's rule (fuse_compat_setid_to_clear) when the kernel says so:
 *     - SETATTR with FATTR_KILL_SUIDGID: a truncate (O_TRUNC too, as memfs
 *       turns atomic_o_trunc off) by a caller without CAP_FSETID, and every
 *       chown.  3.14 passes the bit on in to_set (FUSE_SET_ATTR_KILL_SUID,
 *       the same bit 11).
 *     - An empty SETATTR: the kernel still runs file_remove_privs() before
 *       a write, fallocate or copy_file_range by a caller without
 *       CAP_FSETID (and for chown(-1, -1)); with KILLPRIV_V2 fuse_setattr()
 *       strips the mode from it and sends what is left, nothing.  No
 *       protocol flag marks fallocate or copy_file_range, so this is the
 *       only way to know.
 *     - WRITE with FUSE_WRITE_KILL_SUIDGID: what 3.14 drops but the
 *       request header, right before the data, still holds
 *       (fuse_compat_write_kills_suidgid).  Always set for O_DIRECT writes.
 *    The kernel caches the mode and does not refresh it after a write, so
 *    a write that clears bits invalidates the kernel's attributes (ops.c).
 *  - security.capability: the kernel still asks (GETXATTR) and removes it
 *    (REMOVEXATTR) itself, where it may be: SB_NOSEC lets it mark an inode
 *    S_NOSEC once it found none, until the attributes are refreshed or a
 *    security.* xattr is set.  That is the GETXATTR saved on each write.
 *  - Where the kernel does not say whether the caller has CAP_FSETID
 *    (chown, the empty SETATTR), uid 0 is taken to have it; it only
 *    matters for a set-group-ID file without group execute (below).
 *  - Left different from tmpfs (README "Differences from tmpfs"): a file
 *    with both set-id bits and a security.capability loses the set-id bits
 *    to a write by root, which on tmpfs loses only the capability; root
 *    without CAP_FSETID keeps a set-group-ID bit without group execute on
 *    fallocate and copy_file_range.  And with a max_write below 1 MiB,
 *    writes of 4 KiB or more may arrive spliced, flags unreadable: a write
 *    by root then clears set-id bits, as one by any other user would.
 *  - PARALLEL_DIROPS lets lookups and readdirs of one directory run at
 *    once; the core serialises what it must itself (fs.h: ns_lock).
 *  - DIRECT_IO_ALLOW_MMAP (flags2, asked for with cache=none only) lets a
 *    direct-I/O file be mapped MAP_SHARED through the page cache, which
 *    the kernel keeps coherent with direct reads and writes itself.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ops.h"
#include "uring.h"

/* <linux/fuse.h> of Debian 12 is protocol 7.38; this came in 7.39 */
#ifndef FUSE_DIRECT_IO_ALLOW_MMAP
#define FUSE_DIRECT_IO_ALLOW_MMAP (1ULL << 36)
#endif
/* and this in 7.42 */
#ifndef FUSE_OVER_IO_URING
#define FUSE_OVER_IO_URING (1ULL << 41)
#endif

static struct fuse_compat *compat_of(void *userdata)
{
	return &((struct memfs *)userdata)->compat;
}

static ssize_t compat_read(int fd, void *buf, size_t len, void *userdata)
{
	struct fuse_compat *c = compat_of(userdata);
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *in = buf;

	/* INIT is the first request and nothing runs beside it */
	if (!atomic_load_explicit(&c->init_seen, memory_order_acquire) &&
	    n >= (ssize_t)(sizeof(*in) + offsetof(struct fuse_init_in, flags2)) &&
	    in->opcode == FUSE_INIT) {
		const struct fuse_init_in *arg = (const void *)(in + 1);
		c->init_unique = in->unique;
		c->offered = arg->major == 7 ? arg->flags : 0;
		if (c->offered & FUSE_INIT_EXT)
			c->offered |= (uint64_t)arg->flags2 << 32;
	}
	return n;
}

static void edit_init_reply(struct fuse_compat *c, struct iovec *iov, int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_init_out *arg;
	uint64_t add;

	if (out->unique != c->init_unique || out->error != 0 || count != 2 ||
	    iov[1].iov_len < offsetof(struct fuse_init_out, unused))
		return;
	arg = iov[1].iov_base;
	if (arg->major != 7) /* libfuse asks for a second INIT */
		return;
	add = c->want & c->offered;
	if (!(arg->flags & FUSE_INIT_EXT)) /* no flags2 in this reply */
		add &= 0xffffffffu;
	arg->flags |= (uint32_t)add;
	arg->flags2 |= (uint32_t)(add >> 32);
	atomic_store(&c->granted, add);
	/* the ring buffers must hold the largest request the kernel may send */
	c->max_payload = arg->max_write;
	if ((arg->flags & FUSE_MAX_PAGES) && (size_t)arg->max_pages * 4096 > c->max_payload)
		c->max_payload = (size_t)arg->max_pages * 4096;
	if (c->max_payload < 8192) /* the kernel's FUSE_MIN_READ_BUFFER */
		c->max_payload = 8192;
	atomic_store_explicit(&c->init_seen, 1, memory_order_release);
	if (c->debug)
		fprintf(stderr, "   memfs: INIT reply flags |= 0x%016llx (%s%s%s%s)\n",
			(unsigned long long)add,
			add & FUSE_HANDLE_KILLPRIV_V2 ? "HANDLE_KILLPRIV_V2 " : "",
			add & FUSE_PARALLEL_DIROPS ? "PARALLEL_DIROPS " : "",
			add & FUSE_DIRECT_IO_ALLOW_MMAP ? "DIRECT_IO_ALLOW_MMAP " : "",
			add & FUSE_OVER_IO_URING ? "OVER_IO_URING" : "");
}

/*
 * The INIT reply asked for FUSE over io_uring: the kernel takes ring
 * registrations from now on.  If the rings cannot be set up, nothing is
 * registered and every request keeps coming through /dev/fuse.
 */
static void start_uring(struct fuse_compat *c, void *userdata)
{
	struct memfs *m = userdata;
	int err = memfs_uring_start(m->se, c->max_payload, &c->uring);

	if (err)
		fprintf(stderr, "memfs: FUSE over io_uring not used: %s\n", strerror(-err));
	else if (c->debug)
		fprintf(stderr, "   memfs: serving FUSE over io_uring\n");
}

static ssize_t compat_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fuse_compat *c = compat_of(userdata);
	ssize_t n;

	if (memfs_uring_take_reply(iov, count, &n)) /* a ring request's reply */
		return n;
	if (!atomic_load_explicit(&c->init_seen, memory_order_acquire) && count >= 1 &&
	    iov[0].iov_len == sizeof(struct fuse_out_header)) {
		edit_init_reply(c, iov, count);
		n = writev(fd, iov, count);
		if (n > 0 && (atomic_load(&c->granted) & FUSE_OVER_IO_URING))
			start_uring(c, userdata);
		return n;
	}
	return writev(fd, iov, count);
}

static ssize_t compat_splice_receive(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
				     unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

static ssize_t compat_splice_send(int fdin, off_t *offin, int fdout, off_t *offout, size_t len,
				  unsigned int flags, void *userdata)
{
	(void)userdata;
	return splice(fdin, offin, fdout, offout, len, flags);
}

int fuse_compat_attach(struct fuse_session *se, struct fuse_compat *c, unsigned want, int debug)
{
	static const struct fuse_custom_io io = {
	    .read = compat_read,
	    .writev = compat_writev,
	    .splice_receive = compat_splice_receive,
	    .splice_send = compat_splice_send,
	};

	memset(c, 0, sizeof(*c));
	if (want & FUSE_COMPAT_KILLPRIV_V2)
		c->want |= FUSE_HANDLE_KILLPRIV_V2;
	if (want & FUSE_COMPAT_PARALLEL_DIROPS)
		c->want |= FUSE_PARALLEL_DIROPS;
	if (want & FUSE_COMPAT_DIRECT_IO_ALLOW_MMAP)
		c->want |= FUSE_DIRECT_IO_ALLOW_MMAP;
	if ((want & FUSE_COMPAT_OVER_IO_URING) && memfs_uring_available())
		c->want |= FUSE_OVER_IO_URING;
	c->debug = debug;
	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

int fuse_compat_killpriv_v2(const struct fuse_compat *c)
{
	return (atomic_load(&c->granted) & FUSE_HANDLE_KILLPRIV_V2) != 0;
}

int fuse_compat_direct_io_mmap(const struct fuse_compat *c)
{
	return (atomic_load(&c->granted) & FUSE_DIRECT_IO_ALLOW_MMAP) != 0;
}

int fuse_compat_write_kills_suidgid(const struct fuse_bufvec *buf, off_t off)
{
	const struct fuse_write_in *w;

	/*
	 * libfuse's do_write_buf() points buf[0].mem at PARAM(arg): the data
	 * follows struct fuse_write_in in the buffer the request was read
	 * into (by read(), or copied out of the splice pipe when small).
	 */
	if (buf->count != 1 || (buf->buf[0].flags & FUSE_BUF_IS_FD) || !buf->buf[0].mem)
		return -1;
	w = (const void *)((const char *)buf->buf[0].mem - sizeof(*w));
	if (w->offset != (uint64_t)off || w->size != buf->buf[0].size)
		return -1;
	return (w->write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
}

int fuse_compat_setattr_kills_suidgid(int to_set)
{
	_Static_assert(FUSE_SET_ATTR_KILL_SUID == FATTR_KILL_SUIDGID,
		       "libfuse 3.14 passes FATTR_KILL_SUIDGID on as FUSE_SET_ATTR_KILL_SUID");
	/*
	 * An empty SETATTR is what is left of the kernel's own set-id clearing
	 * (file_remove_privs() before fallocate, copy_file_range and write;
	 * chown(-1, -1)) once fuse_setattr() strips ATTR_KILL_SUID/SGID and
	 * ATTR_MODE, as it does with KILLPRIV_V2.  With the writeback cache
	 * chown(-1, -1) also carries the ctime.  Nothing else sends one:
	 * utimensat() with two UTIME_OMITs returns before, and the writeback
	 * cache's time updates carry the mtime too.
	 */
	return (to_set & FUSE_SET_ATTR_KILL_SUID) != 0 || (to_set & ~FUSE_SET_ATTR_CTIME) == 0;
}

/* Whether req's caller (its fsgid or a supplementary group) is in gid. */
static int caller_in_group(fuse_req_t req, gid_t gid)
{
	gid_t groups[64];
	int n;

	if (fuse_req_ctx(req)->gid == gid)
		return 1;
	n = fuse_req_getgroups(req, 64, groups); /* reads /proc: rare path */
	for (int i = 0; i < n && i < 64; i++)
		if (groups[i] == gid)
			return 1;
	return 0; /* unknown counts as outside: the bit goes, the safe side */
}

mode_t fuse_compat_setid_to_clear(fuse_req_t req, mode_t mode, gid_t gid, int no_fsetid)
{
	mode_t kill = mode & S_ISUID;

	/* set-group-ID without group execute is a mandatory-locking mark,
	 * except for a writer outside the group (Linux 6.x) */
	if ((mode & S_ISGID) && ((mode & S_IXGRP) || (no_fsetid && !caller_in_group(req, gid))))
		kill |= S_ISGID;
	return kill;
}
