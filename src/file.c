/*
 * file.c — open files and their contents: open/release, read and write
 * (handing out iovecs into the chunk map so bytes are copied once),
 * fallocate, SEEK_DATA/SEEK_HOLE and copy_file_range.  The chunk map itself
 * is data.c; this file adds sizes, times, locks and limits.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "inode.h"

/* Stack room for the iovec of one request up to 1 MiB (max_write). */
#define IOV_ON_STACK (((1u << 20) >> MFS_CHUNK_SHIFT) + 2)

/*
 * Find a regular file for a data operation and take its lock; ns_lock is
 * held in read mode until file_end().  -EISDIR / -EINVAL for other types.
 */
static int file_begin(struct mfs_fs *fs, uint64_t ino, int write, struct mfs_inode **out)
{
	struct mfs_inode *inode;

	ns_read(fs);
	inode = mfs_inode_get(fs, ino);
	if (!inode || !mfs_is_reg(inode)) {
		ns_unlock(fs);
		return !inode ? -ENOENT : mfs_is_dir(inode) ? -EISDIR : -EINVAL;
	}
	if (write)
		ilock_write(fs, inode);
	else
		ilock_read(fs, inode);
	*out = inode;
	return 0;
}

static void file_end(struct mfs_fs *fs, struct mfs_inode *inode)
{
	ilock_unlock(fs, inode);
	ns_unlock(fs);
}

/* Contents changed: mtime and ctime move (inode write-locked). */
static void file_modified(struct mfs_inode *inode)
{
	mfs_time_now(&inode->mtime);
	inode->ctime = inode->mtime;
}

int mfs_open(struct mfs_fs *fs, uint64_t ino, int flags)
{
	struct mfs_inode *inode;
	int err = 0;

	ns_read(fs);
	inode = mfs_inode_get(fs, ino);
	if (!inode) {
		err = -ENOENT;
		goto out;
	}
	if ((flags & O_TRUNC) && mfs_is_reg(inode) && (flags & O_ACCMODE) != O_RDONLY) {
		ilock_write(fs, inode);
		mfs_file_truncate(fs, inode, 0);
		file_modified(inode);
		ilock_unlock(fs, inode);
	}
	if (mfs_is_reg(inode) && inode->ovl) {
		/* a lower file is mapped on open: it is read from there */
		ilock_read(fs, inode);
		err = mfs_copyup_open(fs, inode);
		ilock_unlock(fs, inode);
		if (err)
			goto out;
	}
	atomic_fetch_add(&inode->nopen, 1);
out:
	ns_unlock(fs);
	return err;
}

/*
 * The last handle of an inode with no names gives its nr_inodes charge back
 * and, with no lookups either, frees it; that needs the write lock, taken
 * only in that rare case.  The last handle of a lower file unmaps it.
 */
static int release(struct mfs_fs *fs, uint64_t ino)
{
	struct mfs_inode *inode;
	int last = 0, orphan = 0;

	ns_read(fs);
	inode = mfs_inode_get(fs, ino);
	if (inode && atomic_load(&inode->nopen) > 0)
		last = atomic_fetch_sub(&inode->nopen, 1) == 1;
	if (last && inode->ovl && mfs_is_reg(inode))
		mfs_copyup_close(fs, inode);
	orphan = last && inode->nlink == 0;
	ns_unlock(fs);
	if (!inode)
		return -ENOENT;
	if (orphan) {
		ns_write(fs);
		inode = mfs_inode_get(fs, ino); /* may be gone already */
		if (inode) {
			mfs_inode_recharge(fs, inode);
			mfs_inode_maybe_free(fs, inode);
		}
		ns_unlock(fs);
	}
	return 0;
}

int mfs_release(struct mfs_fs *fs, uint64_t ino)
{
	return release(fs, ino);
}

int mfs_releasedir(struct mfs_fs *fs, uint64_t ino)
{
	return release(fs, ino);
}

/*
 * relatime, as Linux mounts tmpfs by default: reading moves atime only if
 * it is not newer than mtime and ctime, or is a day old.
 */
static int need_atime(const struct mfs_inode *inode, const struct timespec *now)
{
	return !(inode->atime.sec > inode->mtime.sec && inode->atime.sec > inode->ctime.sec &&
		 now->tv_sec - inode->atime.sec < 24 * 3600);
}

int mfs_read(struct mfs_fs *fs, uint64_t ino, uint64_t off, size_t size, mfs_read_sink sink,
	     void *ctx)
{
	struct iovec stack_iov[IOV_ON_STACK], *iov = stack_iov;
	struct mfs_map *held = NULL;
	struct mfs_inode *inode;
	struct timespec now;
	int n = 0, err, want_atime;

	err = file_begin(fs, ino, 0, &inode);
	if (err)
		return err;
	if (off < inode->size) {
		bool lower = mfs_copyup_active(inode);

		if (size > inode->size - off)
			size = (size_t)(inode->size - off);
		int max = lower ? mfs_copyup_iov_max(off, size) : mfs_data_iov_max(off, size);
		if (max > (int)IOV_ON_STACK) {
			iov = mfs_malloc(sizeof(*iov) * (size_t)max);
			if (!iov) {
				file_end(fs, inode);
				return -ENOMEM;
			}
		}
		n = lower ? mfs_copyup_read_iov(fs, inode, off, size, iov, max, &held)
			  : mfs_data_read_iov(&inode->u.data, off, size, iov, max);
	}
	err = n < 0 ? n : sink(ctx, iov, n);
	mfs_copyup_put(fs, held);
	mfs_now(&now);
	want_atime = err == 0 && need_atime(inode, &now);
	if (iov != stack_iov)
		mfs_free(iov);
	ilock_unlock(fs, inode);
	if (want_atime) {
		ilock_write(fs, inode);
		mfs_time_set(&inode->atime, now);
		ilock_unlock(fs, inode);
	}
	ns_unlock(fs);
	return err;
}

struct buf_sink {
	char *buf;
	size_t done;
};

/* The iovec may point into a lower mapping: copied with the SIGBUS guard. */
static int copy_out(void *ctx, const struct iovec *iov, int n)
{
	struct buf_sink *b = ctx;
	int err = mfs_copyup_copy_out(b->buf, iov, n);

	for (int i = 0; i < n && !err; i++)
		b->done += iov[i].iov_len;
	return err;
}

ssize_t mfs_pread(struct mfs_fs *fs, uint64_t ino, void *buf, size_t size, uint64_t off)
{
	struct buf_sink b = {.buf = buf};
	int err = mfs_read(fs, ino, off, size, copy_out, &b);

	return err ? err : (ssize_t)b.done;
}

/*
 * Write one piece [off, off+len) through fill.  Returns bytes written or
 * -errno.  Inode write-locked.
 */
static ssize_t write_piece(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t off, size_t len,
			   mfs_write_fill fill, void *ctx)
{
	struct iovec stack_iov[IOV_ON_STACK], *iov = stack_iov;
	int max = mfs_data_iov_max(off, len), n;
	ssize_t done;

	if (max > (int)IOV_ON_STACK) {
		iov = mfs_malloc(sizeof(*iov) * (size_t)max);
		if (!iov)
			return -ENOMEM;
	}
	n = mfs_data_write_iov(&inode->u.data, &fs->space, off, len, iov, max);
	done = n < 0 ? n : fill(ctx, iov, n);
	if (iov != stack_iov)
		mfs_free(iov);
	if (done > 0 && off + (uint64_t)done > inode->size)
		inode->size = off + (uint64_t)done;
	return done;
}

/*
 * Near the space limit a write is cut into chunk-sized pieces so it stops
 * within one chunk of the limit, as a short write(2), instead of failing
 * whole.  fill is then called once per piece.
 */
static ssize_t write_near_full(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t off,
			       size_t len, mfs_write_fill fill, void *ctx)
{
	size_t total = 0;

	while (total < len) {
		uint64_t pos = off + total;
		size_t piece = MFS_CHUNK_SIZE - (size_t)(pos & (MFS_CHUNK_SIZE - 1));
		if (piece > len - total)
			piece = len - total;
		ssize_t n = write_piece(fs, inode, pos, piece, fill, ctx);
		if (n <= 0)
			return total ? (ssize_t)total : n;
		total += (size_t)n;
		if ((size_t)n < piece)
			break;
	}
	return (ssize_t)total;
}

ssize_t mfs_write(struct mfs_fs *fs, uint64_t ino, uint64_t off, size_t len, unsigned flags,
		  mfs_write_fill fill, void *ctx)
{
	struct mfs_inode *inode;
	ssize_t n;
	int err;

	err = file_begin(fs, ino, 1, &inode);
	if (err)
		return err;
	if (flags & MFS_WRITE_APPEND)
		off = inode->size;
	if (len == 0) {
		n = 0;
		goto out;
	}
	if (off >= MFS_MAX_FILE_SIZE || len > MFS_MAX_FILE_SIZE - off) {
		n = -EFBIG;
		goto out;
	}
	if (mfs_copyup_active(inode)) {
		/* every lower chunk written into is copied up first; if the
		 * filesystem fills up on the way, the write stops short there */
		uint64_t done, upto;
		err = mfs_copyup_range(fs, inode, off, len, true, &done);
		upto = ((off >> MFS_CHUNK_SHIFT) + done) << MFS_CHUNK_SHIFT;
		if (err && upto <= off) {
			n = err;
			goto out;
		}
		if (err)
			len = (size_t)(upto - off);
	}
	n = write_piece(fs, inode, off, len, fill, ctx);
	if (n == -ENOSPC && (off & (MFS_CHUNK_SIZE - 1)) + len > MFS_CHUNK_SIZE)
		n = write_near_full(fs, inode, off, len, fill, ctx);
	if (n > 0) {
		file_modified(inode);
		if (flags & MFS_WRITE_KILL_PRIV)
			mfs_inode_kill_priv(inode);
	}
out:
	file_end(fs, inode);
	return n;
}

struct buf_fill {
	const char *buf;
	size_t done;
};

static ssize_t copy_in(void *ctx, const struct iovec *iov, int n)
{
	struct buf_fill *b = ctx;
	size_t start = b->done;

	for (int i = 0; i < n; i++) {
		memcpy(iov[i].iov_base, b->buf + b->done, iov[i].iov_len);
		b->done += iov[i].iov_len;
	}
	return (ssize_t)(b->done - start);
}

ssize_t mfs_pwrite(struct mfs_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off,
		   unsigned flags)
{
	struct buf_fill b = {.buf = buf};

	return mfs_write(fs, ino, off, len, flags, copy_in, &b);
}

/*
 * FALLOC_FL_PUNCH_HOLE over [off, off+len), past EOF too (blocks
 * preallocated with KEEP_SIZE are freed).  In a lower file the edge chunks
 * are copied up and the chunks inside masked first.  Inode write-locked.
 */
static int punch_locked(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t off, uint64_t len)
{
	int err = mfs_copyup_range(fs, inode, off, len, false, NULL);

	if (!err)
		err = mfs_copyup_mask(fs, inode, off, len);
	if (!err)
		mfs_data_punch(&inode->u.data, &fs->space, off, len);
	return err;
}

int mfs_fallocate(struct mfs_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	struct mfs_inode *inode;
	int keep = mode & FALLOC_FL_KEEP_SIZE, err;

	if (len == 0)
		return -EINVAL;
	if (off > MFS_MAX_FILE_SIZE || len > MFS_MAX_FILE_SIZE - off)
		return -EFBIG;
	switch (mode & ~FALLOC_FL_KEEP_SIZE) {
	case 0:
	case FALLOC_FL_ZERO_RANGE:
		break;
	case FALLOC_FL_PUNCH_HOLE:
		if (!keep)
			return -EOPNOTSUPP;
		break;
	default:
		return -EOPNOTSUPP;
	}
	err = file_begin(fs, ino, 1, &inode);
	if (err)
		return err;
	if (mode & FALLOC_FL_PUNCH_HOLE) {
		err = punch_locked(fs, inode, off, len);
	} else if (mode & FALLOC_FL_ZERO_RANGE) {
		/* lower bytes around the range stay: copy up the edge chunks */
		err = mfs_copyup_range(fs, inode, off, len, false, NULL);
		if (!err)
			err = mfs_data_zero_range(&inode->u.data, &fs->space, off, len);
	} else {
		/* reserving over lower bytes reserves their copies */
		err = mfs_copyup_range(fs, inode, off, len, true, NULL);
		if (!err)
			err = mfs_data_allocate(&inode->u.data, &fs->space, off, len);
	}
	if (!err) {
		if (!keep && off + len > inode->size)
			inode->size = off + len;
		file_modified(inode);
	}
	file_end(fs, inode);
	return err;
}

int64_t mfs_lseek(struct mfs_fs *fs, uint64_t ino, uint64_t off, int whence)
{
	struct mfs_inode *inode;
	int64_t r;
	int err;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	err = file_begin(fs, ino, 0, &inode);
	if (err)
		return err;
	r = mfs_copyup_active(inode) ? mfs_copyup_seek(inode, off, whence)
				     : mfs_data_seek(&inode->u.data, inode->size, off, whence);
	file_end(fs, inode);
	return r;
}

/*
 * mfs_data_copy where either file reads from lower: chunk by chunk through
 * a buffer, holes of in punched into out (as mfs_data_copy keeps them).
 * Both inodes write-locked; the ranges do not overlap if in == out.
 */
static int copy_with_lower(struct mfs_fs *fs, struct mfs_inode *out, uint64_t off_out,
			   struct mfs_inode *in, uint64_t off_in, uint64_t len)
{
	unsigned char buf[MFS_CHUNK_SIZE];
	struct iovec iov[12]; /* mfs_copyup_iov_max of one chunk */
	uint64_t done = 0;
	int err = 0;

	while (done < len && !err) {
		uint64_t at = off_in + done, to = off_out + done, idx = at >> MFS_CHUNK_SHIFT;
		size_t piece = MFS_CHUNK_SIZE - (size_t)(at & (MFS_CHUNK_SIZE - 1));
		struct mfs_map *held = NULL;
		int n;

		if (piece > len - done)
			piece = (size_t)(len - done);
		if (!mfs_data_is_written(&in->u.data, idx) && !mfs_copyup_chunk_is_lower(in, idx)) {
			err = punch_locked(fs, out, to, piece);
		} else {
			n = mfs_copyup_active(in)
				? mfs_copyup_read_iov(fs, in, at, piece, iov, 12, &held)
				: mfs_data_read_iov(&in->u.data, at, piece, iov, 12);
			err = n < 0 ? n : mfs_copyup_copy_out(buf, iov, n);
			mfs_copyup_put(fs, held);
			if (!err)
				err = mfs_copyup_range(fs, out, to, piece, true, NULL);
			if (!err)
				err = mfs_data_write(&out->u.data, &fs->space, to, buf, piece);
		}
		done += piece;
	}
	return err;
}

ssize_t mfs_copy_range(struct mfs_fs *fs, uint64_t ino_in, uint64_t off_in, uint64_t ino_out,
		       uint64_t off_out, size_t len)
{
	struct mfs_inode *in, *out;
	pthread_rwlock_t *first, *second;
	ssize_t r = 0;
	int err;

	ns_read(fs);
	in = mfs_inode_get(fs, ino_in);
	out = mfs_inode_get(fs, ino_out);
	if (!in || !out) {
		ns_unlock(fs);
		return -ENOENT;
	}
	if (!mfs_is_reg(in) || !mfs_is_reg(out)) {
		ns_unlock(fs);
		return mfs_is_dir(in) || mfs_is_dir(out) ? -EISDIR : -EINVAL;
	}
	/* Two inode locks: lower address first, one if they share it (fs.h). */
	first = mfs_ilock(fs, in);
	second = mfs_ilock(fs, out);
	if (first > second) {
		pthread_rwlock_t *t = first;
		first = second;
		second = t;
	}
	pthread_rwlock_wrlock(first);
	if (second != first)
		pthread_rwlock_wrlock(second);
	if (off_in >= in->size || len == 0)
		goto out;
	if (len > in->size - off_in)
		len = (size_t)(in->size - off_in);
	if (off_out > MFS_MAX_FILE_SIZE || len > MFS_MAX_FILE_SIZE - off_out) {
		r = -EFBIG;
		goto out;
	}
	if (in == out && off_in < off_out + len && off_out < off_in + len) {
		r = -EINVAL;
		goto out;
	}
	if (mfs_copyup_active(in) || mfs_copyup_active(out))
		err = copy_with_lower(fs, out, off_out, in, off_in, len);
	else
		err = mfs_data_copy(&out->u.data, &fs->space, off_out, &in->u.data, off_in, len);
	if (err) {
		/* Bytes may have landed past the size, where the file must read
		 * as zeros: punch them away.  Inside the size, the destination
		 * may be partly written, as after a failed write(2). */
		if (off_out + len > out->size) {
			uint64_t from = off_out > out->size ? off_out : out->size;
			mfs_data_punch(&out->u.data, &fs->space, from, off_out + len - from);
		}
		r = err;
		goto out;
	}
	if (off_out + len > out->size)
		out->size = off_out + len;
	file_modified(out);
	r = (ssize_t)len;
out:
	if (second != first)
		pthread_rwlock_unlock(second);
	pthread_rwlock_unlock(first);
	ns_unlock(fs);
	return r;
}
