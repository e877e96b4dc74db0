/*
 * ops.c — the FUSE low-level adapter.  Each handler decodes a request,
 * makes one core call and replies exactly once; the filesystem logic is in
 * the core (fs.h).  Read it as a table from kernel request to core call.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/xattr.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ops.h"

static struct memfs *M(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct mfs_cred cred_of(fuse_req_t req)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);

	return (struct mfs_cred){.uid = ctx->uid, .gid = ctx->gid};
}

static void reply_entry(fuse_req_t req, int err, const struct mfs_attr *a)
{
	const struct memfs_config *cfg = M(req)->cfg;
	struct fuse_entry_param e = {0};

	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	e.ino = a->st.st_ino;
	e.attr = a->st;
	e.attr_timeout = cfg->attr_timeout_s;
	e.entry_timeout = cfg->entry_timeout_s;
	fuse_reply_entry(req, &e);
}

/* Reply with a byte count or an error. */
static void reply_size(fuse_req_t req, ssize_t n)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

/* File handles carry nothing: the inode is the handle.  Set the cache flags. */
static void set_file_flags(fuse_req_t req, struct fuse_file_info *fi)
{
	const struct memfs_config *cfg = M(req)->cfg;

	fi->fh = 0;
	fi->keep_cache = cfg->keep_cache;
	/* cache=none: reads and writes bypass the page cache */
	fi->direct_io = cfg->cache == MEMFS_CACHE_NONE;
	/* Written through, every byte is already here: close needs no FLUSH
	 * (with the writeback cache the kernel ignores noflush and writes the
	 * dirty pages back at close, which reports an error such as ENOSPC). */
	fi->noflush = !cfg->writeback;
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct memfs *m = userdata;
	const struct memfs_config *cfg = m->cfg;

	/* truncation comes as SETATTR, which also carries the setuid clearing
	 * the kernel computes; an O_TRUNC open would lose it */
	conn->want &= ~FUSE_CAP_ATOMIC_O_TRUNC;
	/* memfs is the only writer of its tree: no need to compare mtimes */
	if (cfg->keep_cache)
		conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
	if (cfg->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	if (cfg->splice)
		conn->want |= conn->capable &
			      (FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_SPLICE_READ);
	else
		conn->want &= ~(FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE | FUSE_CAP_SPLICE_READ);
	if (!cfg->readdirplus)
		conn->want &= ~(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
	if (cfg->cache_symlinks && (conn->capable & FUSE_CAP_CACHE_SYMLINKS))
		conn->want |= FUSE_CAP_CACHE_SYMLINKS;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->max_write = cfg->max_write_bytes;
	/*
	 * memfs keeps no per-open state (the kernel holds a lookup reference
	 * on every open inode), and what the kernel assumes when it opens
	 * without asking is keep_cache (and cache_readdir for directories):
	 * then open and close cost no request.  op_open, op_create and
	 * op_opendir say so with ENOSYS, once.
	 */
	m->open_without_request =
		cfg->cache == MEMFS_CACHE_ALWAYS && (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT);
	/* over lower layers a file is mapped while it is open: that needs the
	 * opens and closes (issue 3: mapped at open, unmapped after) */
	if (cfg->nlower)
		m->open_without_request = 0;
	if (m->open_without_request)
		mfs_fs_opens_untracked(m->fs); /* a removed file may still be open */
	m->opendir_without_request =
		cfg->cache_readdir && (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct mfs_attr a;
	int err = mfs_lookup(M(req)->fs, parent, name, &a);

	if (err == -ENOENT && M(req)->cfg->negative_timeout_s > 0) {
		/* a negative entry: the kernel remembers the name is absent */
		struct fuse_entry_param e = {.entry_timeout = M(req)->cfg->negative_timeout_s};
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry(req, err, &a);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	mfs_forget(M(req)->fs, ino, nlookup);
	fuse_reply_none(req);
}

_Static_assert(sizeof(struct fuse_forget_data) == sizeof(struct mfs_forget) &&
		       offsetof(struct fuse_forget_data, ino) == offsetof(struct mfs_forget, ino) &&
		       offsetof(struct fuse_forget_data, nlookup) ==
			       offsetof(struct mfs_forget, nlookup),
	       "fuse_forget_data and mfs_forget must share a layout");

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	mfs_forget_many(M(req)->fs, (const struct mfs_forget *)forgets, count);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct mfs_attr a;
	int err = mfs_getattr(M(req)->fs, ino, &a);

	(void)fi;
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &a.st, M(req)->cfg->attr_timeout_s);
}

/*
 * FUSE_HANDLE_KILLPRIV_V2 made clearing set-id bits ours (fuse_compat.h):
 * the mode ino must get, or 0 if nothing goes.  no_fsetid: the kernel
 * said the caller lacks CAP_FSETID; otherwise uid 0 is taken to have it.
 * The kernel holds the inode lock across the request, so the mode cannot
 * change between this look and the change.
 */
static mode_t mode_without_setid(fuse_req_t req, fuse_ino_t ino, int no_fsetid)
{
	struct mfs_attr a;
	mode_t kill;

	/* chown clears them on every non-directory (devices, sockets...), as tmpfs */
	if (mfs_getattr(M(req)->fs, ino, &a) != 0 || S_ISDIR(a.st.st_mode))
		return 0;
	if (!no_fsetid)
		no_fsetid = fuse_req_ctx(req)->uid != 0;
	kill = fuse_compat_setid_to_clear(req, a.st.st_mode, a.st.st_gid, no_fsetid);
	return kill ? (a.st.st_mode & 07777 & ~kill) | (a.st.st_mode & S_IFMT) : 0;
}

/* Truncate (the kernel's flag says: no CAP_FSETID), chown, or the rest of
 * the kernel's own clearing (an empty SETATTR): the mode goes with the rest. */
static void add_setid_clearing(fuse_req_t req, fuse_ino_t ino, int to_set, struct mfs_setattr *sa)
{
	mode_t mode = mode_without_setid(req, ino, (to_set & FUSE_SET_ATTR_SIZE) != 0);

	if (mode) {
		sa->valid |= MFS_SET_MODE;
		sa->mode = mode;
	}
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		       struct fuse_file_info *fi)
{
	static const struct {
		int fuse;
		unsigned mfs;
	} map[] = {
		{FUSE_SET_ATTR_MODE, MFS_SET_MODE},       {FUSE_SET_ATTR_UID, MFS_SET_UID},
		{FUSE_SET_ATTR_GID, MFS_SET_GID},         {FUSE_SET_ATTR_SIZE, MFS_SET_SIZE},
		{FUSE_SET_ATTR_ATIME, MFS_SET_ATIME},     {FUSE_SET_ATTR_MTIME, MFS_SET_MTIME},
		{FUSE_SET_ATTR_ATIME_NOW, MFS_SET_ATIME_NOW},
		{FUSE_SET_ATTR_MTIME_NOW, MFS_SET_MTIME_NOW},
		{FUSE_SET_ATTR_CTIME, MFS_SET_CTIME},
	};
	struct mfs_setattr sa = {
		.mode = attr->st_mode,
		.uid = attr->st_uid,
		.gid = attr->st_gid,
		.size = (uint64_t)attr->st_size,
		.atime = attr->st_atim,
		.mtime = attr->st_mtim,
		.ctime = attr->st_ctim,
	};
	struct mfs_attr a;
	int err;

	(void)fi;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (to_set & map[i].fuse)
			sa.valid |= map[i].mfs;
	if (fuse_compat_killpriv_v2(&M(req)->compat) && !(to_set & FUSE_SET_ATTR_MODE) &&
	    fuse_compat_setattr_kills_suidgid(to_set))
		add_setid_clearing(req, ino, to_set, &sa);
	err = mfs_setattr(M(req)->fs, ino, &sa, &a);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &a.st, M(req)->cfg->attr_timeout_s);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PATH_MAX];
	ssize_t n = mfs_readlink(M(req)->fs, ino, buf, sizeof(buf) - 1);

	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct mfs_cred c = cred_of(req);
	struct mfs_attr a;

	reply_entry(req, mfs_mknod(M(req)->fs, &c, parent, name, mode, rdev, &a), &a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct mfs_cred c = cred_of(req);
	struct mfs_attr a;

	reply_entry(req, mfs_mkdir(M(req)->fs, &c, parent, name, mode, &a), &a);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct mfs_cred c = cred_of(req);
	struct mfs_attr a;

	reply_entry(req, mfs_symlink(M(req)->fs, &c, parent, name, target, &a), &a);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct mfs_attr a;

	reply_entry(req, mfs_link(M(req)->fs, ino, newparent, newname, &a), &a);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -mfs_unlink(M(req)->fs, parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -mfs_rmdir(M(req)->fs, parent, name));
}

/*
 * The kernel's cached listing of a directory holds its ".." entry and is
 * revalidated only against that directory's own mtime, which a move to
 * another parent does not change: drop it.  A directory has no dirty
 * pages, so the notification never blocks, even sent while the kernel
 * waits for the rename's reply.
 */
static void forget_listing_if_dir(struct memfs *m, fuse_ino_t parent, const char *name)
{
	struct mfs_attr a;

	if (mfs_peek(m->fs, parent, name, &a) == 0 && S_ISDIR(a.st.st_mode))
		fuse_lowlevel_notify_inval_inode(m->se, a.st.st_ino, 0, 0);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	struct memfs *m = M(req);
	int err = mfs_rename(m->fs, parent, name, newparent, newname, flags);

	/* before the reply, so no listing after rename(2) returns is stale */
	if (!err && parent != newparent && m->cfg->cache_readdir) {
		forget_listing_if_dir(m, newparent, newname);
		if (flags & RENAME_EXCHANGE)
			forget_listing_if_dir(m, parent, name);
	}
	fuse_reply_err(req, -err);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int err;

	if (M(req)->open_without_request) {
		fuse_reply_err(req, ENOSYS); /* the kernel opens by itself from now on */
		return;
	}
	err = mfs_open(M(req)->fs, ino, fi->flags);

	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	set_file_flags(req, fi);
	if (fuse_reply_open(req, fi) == -ENOENT)
		mfs_release(M(req)->fs, ino); /* the opener was interrupted */
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct mfs_cred c = cred_of(req);
	struct fuse_entry_param e = {0};
	struct mfs_attr a;
	int err;

	/* without CREATE the kernel makes the file with MKNOD and then opens
	 * it without asking: no RELEASE follows */
	if (M(req)->open_without_request) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	err = mfs_create(M(req)->fs, &c, parent, name, mode, fi->flags, &a);
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	set_file_flags(req, fi);
	e.ino = a.st.st_ino;
	e.attr = a.st;
	e.attr_timeout = M(req)->cfg->attr_timeout_s;
	e.entry_timeout = M(req)->cfg->entry_timeout_s;
	fuse_reply_create(req, &e, fi);
}

static int reply_read_iov(void *ctx, const struct iovec *iov, int n)
{
	fuse_req_t req = ctx;

	if (n == 0)
		fuse_reply_buf(req, NULL, 0);
	else
		fuse_reply_iov(req, iov, n);
	return 0; /* replied either way: the caller must not reply again */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	int err;

	(void)fi;
	/* the reply is sent from inside the core, straight from file memory */
	err = mfs_read(M(req)->fs, ino, (uint64_t)off, size, reply_read_iov, req);
	if (err)
		fuse_reply_err(req, -err);
}

/*
 * With splice the request's data waits in a pipe: one readv() moves it
 * into every chunk of the write at once.  fuse_buf_copy() would issue one
 * read() per 4 KiB chunk.
 */
static ssize_t fill_from_pipe(int fd, const struct iovec *iov, int n)
{
	struct iovec rest[n];
	size_t total = 0;
	int i = 0;

	memcpy(rest, iov, sizeof(rest));
	while (i < n) {
		ssize_t got = readv(fd, rest + i, n - i);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return total ? (ssize_t)total : got < 0 ? -errno : 0;
		total += (size_t)got;
		while (i < n && (size_t)got >= rest[i].iov_len)
			got -= (ssize_t)rest[i++].iov_len;
		if (i < n) {
			rest[i].iov_base = (char *)rest[i].iov_base + got;
			rest[i].iov_len -= (size_t)got;
		}
	}
	return (ssize_t)total;
}

/* Copy the request's data (memory, or a pipe with splice) into file memory. */
static ssize_t fill_from_bufvec(void *ctx, const struct iovec *iov, int n)
{
	struct fuse_bufvec *src = ctx;
	size_t total = 0;

	if (src->count == 1 && (src->buf[0].flags & FUSE_BUF_IS_FD) &&
	    !(src->buf[0].flags & FUSE_BUF_FD_SEEK))
		return fill_from_pipe(src->buf[0].fd, iov, n);
	for (int i = 0; i < n; i++) {
		struct fuse_bufvec dst = FUSE_BUFVEC_INIT(iov[i].iov_len);
		dst.buf[0].mem = iov[i].iov_base;
		ssize_t got = fuse_buf_copy(&dst, src, 0);
		if (got < 0)
			return total ? (ssize_t)total : got;
		total += (size_t)got;
		if ((size_t)got < iov[i].iov_len)
			break;
	}
	return (ssize_t)total;
}

/*
 * The kernel caches the mode, does not refresh it after a write, and would
 * let exec(2) honour a bit that is gone: have it ask again.
 */
static void clear_setid_for_write(fuse_req_t req, fuse_ino_t ino, int no_fsetid)
{
	struct mfs_setattr sa = {.valid = MFS_SET_MODE};

	sa.mode = mode_without_setid(req, ino, no_fsetid);
	if (sa.mode && mfs_setattr(M(req)->fs, ino, &sa, NULL) == 0)
		fuse_lowlevel_notify_inval_inode(M(req)->se, ino, -1, 0);
}

static void op_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in_buf, off_t off,
			 struct fuse_file_info *fi)
{
	struct memfs *m = M(req);
	int kill = fuse_compat_write_kills_suidgid(in_buf, off);

	/*
	 * FUSE_WRITE_KILL_SUIDGID (the writer lacks CAP_FSETID): clear the
	 * set-id bits first, as Linux does.  The kernel sets it on O_DIRECT
	 * writes whatever was negotiated; with KILLPRIV_V2 on every write, and
	 * where it cannot be read (spliced data) the bits go, the safe side.
	 */
	if (kill > 0 || (kill < 0 && fuse_compat_killpriv_v2(&m->compat)))
		clear_setid_for_write(req, ino, kill > 0);
	/* cache=none: a direct-I/O write skips the kernel's file_remove_privs(),
	 * which would remove the file's capabilities, whoever writes (a
	 * write-back of a shared mapping's page does not, as on tmpfs) */
	if (m->cfg->cache == MEMFS_CACHE_NONE && !fi->writepage)
		mfs_removexattr(m->fs, ino, "security.capability");
	/* O_APPEND offsets are the kernel's: it holds the inode lock and the
	 * size; honouring fi->flags here would misplace mmap write-backs. */
	reply_size(req, mfs_write(m->fs, ino, (uint64_t)off, fuse_buf_size(in_buf), 0,
				  fill_from_bufvec, in_buf));
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	fuse_reply_err(req, -mfs_release(M(req)->fs, ino));
}

/* Contents live only in memory: there is nothing to make durable. */
static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int err;

	if (M(req)->opendir_without_request) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	err = mfs_opendir(M(req)->fs, ino);

	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fi->fh = 0;
	fi->cache_readdir = M(req)->cfg->cache_readdir;
	fi->keep_cache = M(req)->cfg->cache_readdir;
	if (fuse_reply_open(req, fi) == -ENOENT)
		mfs_releasedir(M(req)->fs, ino);
}

struct dir_buf {
	fuse_req_t req;
	char *buf;
	size_t size, used;
	int plus;
};

static int add_dirent(void *ctx, const char *name, const struct stat *st, uint64_t next_off)
{
	struct dir_buf *d = ctx;
	size_t room = d->size - d->used, need;

	if (d->plus) {
		const struct memfs_config *cfg = M(d->req)->cfg;
		struct fuse_entry_param e = {
			.attr = *st,
			.attr_timeout = cfg->attr_timeout_s,
			.entry_timeout = cfg->entry_timeout_s,
		};
		/* "." and "..", and names from lower not looked up yet
		 * (st_nlink 0), carry no reference: the kernel only lists them */
		int dot = name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
		e.ino = dot || st->st_nlink == 0 ? 0 : st->st_ino;
		need = fuse_add_direntry_plus(d->req, d->buf + d->used, room, name, &e,
					      (off_t)next_off);
	} else {
		need = fuse_add_direntry(d->req, d->buf + d->used, room, name, st, (off_t)next_off);
	}
	if (need > room)
		return 1;
	d->used += need;
	return 0;
}

static void readdir_common(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, int plus)
{
	struct dir_buf d = {.req = req, .size = size, .plus = plus};
	int err;

	d.buf = malloc(size);
	if (!d.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	err = mfs_readdir(M(req)->fs, ino, (uint64_t)off, plus, add_dirent, &d);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, d.buf, d.used);
	free(d.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	readdir_common(req, ino, size, off, 1);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)fi;
	fuse_reply_err(req, -mfs_releasedir(M(req)->fs, ino));
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	(void)ino;
	mfs_statfs(M(req)->fs, &st);
	fuse_reply_statfs(req, &st);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	fuse_reply_err(req, -mfs_setxattr(M(req)->fs, ino, name, value, size, flags));
}

/* getxattr and listxattr: a size-0 probe gets the length, otherwise the bytes. */
static void reply_xattr(fuse_req_t req, ssize_t n, const char *buf, size_t size)
{
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else if (size == 0)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = size ? malloc(size) : NULL;

	if (size && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	reply_xattr(req, mfs_getxattr(M(req)->fs, ino, name, buf, size), buf, size);
	free(buf);
}

/* Take the trusted.* names out of a listxattr list of n bytes; the new length. */
static ssize_t drop_trusted(char *list, ssize_t n)
{
	ssize_t kept = 0;

	for (ssize_t i = 0; i < n;) {
		size_t len = strlen(list + i) + 1;
		if (strncmp(list + i, XATTR_TRUSTED_PREFIX, XATTR_TRUSTED_PREFIX_LEN) != 0) {
			memmove(list + kept, list + i, len);
			kept += (ssize_t)len;
		}
		i += (ssize_t)len;
	}
	return kept;
}

/*
 * tmpfs lists trusted.* names only to callers with CAP_SYS_ADMIN, and the
 * kernel leaves that filter to a FUSE server (it does refuse to get or set
 * them).  memfs cannot see the caller's capabilities: it lists them to
 * uid 0 only.  The filtered list needs the whole list first.
 */
static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	int privileged = fuse_req_ctx(req)->uid == 0;
	size_t cap = privileged ? size : XATTR_LIST_MAX;
	char *buf = cap ? malloc(cap) : NULL;
	ssize_t n;

	if (cap && !buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = mfs_listxattr(M(req)->fs, ino, buf, cap);
	if (!privileged && n >= 0) {
		n = drop_trusted(buf, n);
		if (size && (size_t)n > size)
			n = -ERANGE;
	}
	reply_xattr(req, n, buf, size);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	fuse_reply_err(req, -mfs_removexattr(M(req)->fs, ino, name));
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	(void)fi;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	fuse_reply_err(req, -mfs_fallocate(M(req)->fs, ino, mode, (uint64_t)off, (uint64_t)len));
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	int64_t r;

	(void)fi;
	/*
	 * With the writeback cache, written data may still sit in dirty pages
	 * the kernel has not sent us, and the kernel does not flush them before
	 * asking (fs/fuse/file.c, fuse_lseek).  An exact answer from our view
	 * could call that data a hole and make cp skip it.  ENOSYS makes the
	 * kernel answer itself from then on: all data up to i_size, which is
	 * always safe.  Without writeback every byte is here: exact holes.
	 */
	if (M(req)->cfg->writeback) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	r = mfs_lseek(M(req)->fs, ino, (uint64_t)off, whence);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, (off_t)r);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	(void)fi_in;
	(void)fi_out;
	if (flags || off_in < 0 || off_out < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	reply_size(req, mfs_copy_range(M(req)->fs, ino_in, (uint64_t)off_in, ino_out,
				       (uint64_t)off_out, len));
}

const struct fuse_lowlevel_ops memfs_ops = {
	.init = op_init,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write_buf = op_write_buf,
	/* no .flush: written through, or written back by the kernel before it
	 * would send FLUSH, nothing waits in memfs; libfuse answers ENOSYS and
	 * the kernel stops asking */
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsync,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.copy_file_range = op_copy_file_range,
};
