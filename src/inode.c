/*
 * inode.c — inode lifecycle and attributes: allocation with the owner
 * rules, freeing when the last reference goes, stat, setattr and the
 * extended-attribute entry points.
 */
#include <errno.h>
#include <string.h>

#include "inode.h"

/* Every empty file costs one of these: keep it in malloc's 128-byte class (inode.h). */
_Static_assert(sizeof(void *) != 8 || sizeof(struct mfs_inode) <= 120,
	       "struct mfs_inode outgrew 120 bytes");
_Static_assert(sizeof(struct mfs_time) == 12, "struct mfs_time is not 12 bytes");

void mfs_now(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
}

/* The inode numbered ino, or NULL.  ns_lock held (either mode). */
struct mfs_inode *mfs_inode_get(struct mfs_fs *fs, uint64_t ino)
{
	if (ino == MFS_ROOT_INO)
		return fs->root;
	return mfs_itable_find(&fs->table, ino);
}

/*
 * A name must be 1..255 bytes without '/'; "." and ".." are never created.
 * The kernel checks most of this for FUSE, but not the length, and other
 * callers of the core (tests, fuzzers) check nothing.
 */
int mfs_check_name(const char *name, size_t *len)
{
	size_t n = strnlen(name, MFS_NAME_MAX + 1);

	if (n > MFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (n == 0 || memchr(name, '/', n))
		return -EINVAL;
	*len = n;
	return 0;
}

/*
 * Type, times and the empty contents of a new inode (not yet numbered).
 * 0, or -ENOMEM (nothing to undo).
 */
int mfs_inode_init_fields(struct mfs_inode *inode, mode_t mode)
{
	if (S_ISDIR(mode)) {
		inode->u.dir = mfs_calloc(1, sizeof(*inode->u.dir));
		if (!inode->u.dir)
			return -ENOMEM;
		mfs_dir_init(&inode->u.dir->entries);
	} else if (S_ISREG(mode)) {
		mfs_data_init(&inode->u.data);
	}
	inode->mode = mode;
	inode->type = mode & S_IFMT;
	mfs_time_now(&inode->btime);
	inode->atime = inode->mtime = inode->ctime = inode->btime;
	mfs_xattrs_init(&inode->xattrs);
	return 0;
}

/* Free what mfs_inode_init_fields made, for an inode never put in the table. */
void mfs_inode_discard(struct mfs_inode *inode)
{
	if (S_ISDIR(inode->type))
		mfs_free(inode->u.dir);
	mfs_free(inode);
}

/* Put a numbered inode into the table.  0, or -ENOMEM (not added).  ns write lock. */
int mfs_inode_add_table(struct mfs_fs *fs, struct mfs_inode *inode)
{
	return mfs_itable_add(&fs->table, inode);
}

/*
 * A new inode owned by cred, placed in the table.  The group comes from a
 * setgid parent, which also passes S_ISGID on to directories (as
 * inode_init_owner() in Linux).  ns write lock held.
 */
int mfs_inode_new(struct mfs_fs *fs, const struct mfs_cred *cred, struct mfs_inode *parent,
		  mode_t mode, struct mfs_inode **out)
{
	struct mfs_inode *inode;

	if (fs->ninodes >= fs->max_inodes)
		return -ENOSPC;
	inode = mfs_calloc(1, sizeof(*inode));
	if (!inode)
		return -ENOMEM;
	if (mfs_inode_init_fields(inode, mode)) {
		mfs_free(inode);
		return -ENOMEM;
	}
	inode->ino = fs->next_ino;
	inode->uid = cred->uid;
	inode->gid = cred->gid;
	if (parent && (parent->mode & S_ISGID)) {
		inode->gid = parent->gid;
		if (S_ISDIR(mode))
			inode->mode |= S_ISGID;
	}
	if (mfs_inode_add_table(fs, inode)) {
		mfs_inode_discard(inode);
		return -ENOMEM;
	}
	fs->next_ino++;
	/* charged from birth: it gets its name (or is the root) at once */
	inode->charge = 1;
	fs->ninodes++;
	*out = inode;
	return 0;
}

/*
 * What an inode should hold of nr_inodes: one for an inode memfs made,
 * while it has a name or an open handle (tmpfs gives it back when the last
 * name and handle go, not when the kernel forgets the inode), plus one per
 * link of a file beyond the links it was made with (as tmpfs charges hard
 * links).  Inodes from lower come with their links free.  The root always
 * holds one.
 */
uint32_t mfs_inode_charge_due(const struct mfs_inode *inode)
{
	uint32_t base = inode->ovl ? inode->ovl->base_links : 1, due = 0;

	if (inode->ino == MFS_ROOT_INO)
		return 1;
	if (!inode->ovl && !inode->orphaned)
		due = 1;
	if (!S_ISDIR(inode->type) && inode->nlink > base)
		due += inode->nlink - base;
	return due;
}

/*
 * Bring the inode's charge and fs->ninodes up to date after its names or
 * handles changed.  ns write lock held.
 */
void mfs_inode_recharge(struct mfs_fs *fs, struct mfs_inode *inode)
{
	uint32_t due;
	/* Without open counts, only the kernel's last FORGET proves a file
	 * closed; a removed directory holds nothing to read either way. */
	bool closed = atomic_load(&inode->nopen) == 0 &&
		      (!fs->opens_untracked || S_ISDIR(inode->type) ||
		       atomic_load(&inode->nlookup) == 0);

	if (!inode->orphaned && inode->nlink == 0 && closed && inode != fs->root) {
		/* Nothing can read it again (no name, no handle): its contents
		 * go now, as on tmpfs, not when the kernel forgets the inode. */
		inode->orphaned = true;
		if (S_ISREG(inode->type))
			mfs_data_free(&inode->u.data, &fs->space);
		if (inode->ovl)
			mfs_ovl_unlink_hardlink(fs, inode);
	}
	due = mfs_inode_charge_due(inode);

	fs->ninodes = fs->ninodes - inode->charge + due;
	inode->charge = due;
}

/* Release an inode's memory.  ns write lock held; the inode is in the table. */
void mfs_inode_free(struct mfs_fs *fs, struct mfs_inode *inode)
{
	mfs_itable_remove(&fs->table, inode);
	mfs_inode_release(fs, inode);
}

/* Free an inode no longer in the table (mfs_inode_free, teardown). */
void mfs_inode_release(struct mfs_fs *fs, struct mfs_inode *inode)
{
	fs->ninodes -= inode->charge;
	atomic_fetch_add_explicit(&fs->inodes_freed, 1, memory_order_relaxed);
	if (S_ISREG(inode->type)) {
		mfs_data_free(&inode->u.data, &fs->space);
	} else if (S_ISDIR(inode->type)) {
		mfs_dir_free(&inode->u.dir->entries);
		mfs_free(inode->u.dir);
	} else if (S_ISLNK(inode->type)) {
		if (mfs_symlink_charged(inode))
			mfs_space_release(&fs->space, MFS_CHUNK_SIZE);
		mfs_free(inode->u.target);
	}
	if (inode->ovl)
		mfs_ovl_free(fs, inode);
	mfs_xattrs_free(&inode->xattrs);
	mfs_free(inode);
}

/* Free the inode if nothing refers to it any more.  ns write lock held. */
void mfs_inode_maybe_free(struct mfs_fs *fs, struct mfs_inode *inode)
{
	if (inode == fs->root || inode->nlink > 0 || atomic_load(&inode->nlookup) > 0 ||
	    atomic_load(&inode->nopen) > 0)
		return;
	mfs_inode_free(fs, inode);
}

/* stat of an inode whose fields are stable (inode lock or ns write lock held). */
void mfs_inode_fill(const struct mfs_inode *inode, struct mfs_attr *out)
{
	struct stat *st = &out->st;

	memset(out, 0, sizeof(*out));
	st->st_ino = inode->ino;
	st->st_mode = inode->mode;
	st->st_nlink = inode->nlink;
	st->st_uid = inode->uid;
	st->st_gid = inode->gid;
	st->st_rdev = mfs_inode_rdev(inode);
	st->st_blksize = MFS_CHUNK_SIZE;
	st->st_atim = mfs_time_get(&inode->atime);
	st->st_mtim = mfs_time_get(&inode->mtime);
	st->st_ctim = mfs_time_get(&inode->ctime);
	out->btime = mfs_time_get(&inode->btime);
	if (S_ISREG(inode->type)) {
		st->st_size = (off_t)inode->size;
		st->st_blocks = (blkcnt_t)(mfs_copyup_active(inode)
						   ? mfs_copyup_blocks(inode)
						   : mfs_data_blocks(&inode->u.data));
	} else if (S_ISDIR(inode->type)) {
		st->st_size = (off_t)((mfs_dir_count(&inode->u.dir->entries) + 2) * MFS_BOGO_DIRENT_SIZE);
	} else if (S_ISLNK(inode->type)) {
		st->st_size = (off_t)inode->size;
		if (inode->size > MFS_SHORT_SYMLINK_LEN)
			st->st_blocks = MFS_CHUNK_SIZE / 512; /* as tmpfs, lower or not */
	}
}

/* mfs_inode_fill under the inode's read lock (ns_lock held in read mode). */
void mfs_inode_fill_locked(struct mfs_fs *fs, struct mfs_inode *inode, struct mfs_attr *out)
{
	ilock_read(fs, inode);
	mfs_inode_fill(inode, out);
	ilock_unlock(fs, inode);
}

/*
 * A write by someone else than root clears S_ISUID, and S_ISGID when the
 * group may execute (otherwise S_ISGID means mandatory locking and stays),
 * as file_remove_privs() does.  Inode write-locked.
 */
void mfs_inode_kill_priv(struct mfs_inode *inode)
{
	mode_t kill = S_ISUID;

	if ((inode->mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP))
		kill |= S_ISGID;
	if (inode->mode & kill) {
		inode->mode &= ~kill;
		mfs_time_now(&inode->ctime);
	}
}

int mfs_getattr(struct mfs_fs *fs, uint64_t ino, struct mfs_attr *out)
{
	struct mfs_inode *inode;
	int err = 0;

	ns_read(fs);
	inode = mfs_inode_get(fs, ino);
	if (!inode)
		err = -ENOENT;
	else
		mfs_inode_fill_locked(fs, inode, out);
	ns_unlock(fs);
	return err;
}

/* Size change of a regular file; inode write-locked. */
static int set_size(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t size)
{
	if (S_ISDIR(inode->type))
		return -EISDIR;
	if (!S_ISREG(inode->type))
		return -EINVAL;
	if (size > MFS_MAX_FILE_SIZE)
		return -EFBIG;
	mfs_file_truncate(fs, inode, size);
	return 0;
}

/*
 * A regular file's size becomes size.  As tmpfs, a truncate that does not
 * grow the file also frees blocks preallocated past the end (fallocate
 * KEEP_SIZE); lower bytes past size stop showing, without being read.
 * Inode write-locked (or ns write lock).
 */
void mfs_file_truncate(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t size)
{
	if (size <= inode->size)
		mfs_data_truncate(&inode->u.data, &fs->space, size);
	if (inode->ovl)
		mfs_copyup_truncate(fs, inode, size);
	inode->size = size;
}

int mfs_setattr(struct mfs_fs *fs, uint64_t ino, const struct mfs_setattr *sa,
		struct mfs_attr *out)
{
	struct mfs_inode *inode;
	struct timespec now;
	int err = 0;

	mfs_now(&now);
	ns_read(fs);
	inode = mfs_inode_get(fs, ino);
	if (!inode) {
		ns_unlock(fs);
		return -ENOENT;
	}
	ilock_write(fs, inode);
	if (sa->valid & MFS_SET_SIZE) {
		err = set_size(fs, inode, sa->size);
		if (err)
			goto out;
		/* truncate(2) and ftruncate(2) always touch mtime, as tmpfs. */
		mfs_time_set(&inode->mtime, now);
	}
	if (sa->valid & MFS_SET_MODE)
		inode->mode = (inode->mode & S_IFMT) | (sa->mode & 07777);
	if (sa->valid & MFS_SET_UID)
		inode->uid = sa->uid;
	if (sa->valid & MFS_SET_GID)
		inode->gid = sa->gid;
	if (sa->valid & MFS_SET_ATIME_NOW)
		mfs_time_set(&inode->atime, now);
	else if (sa->valid & MFS_SET_ATIME)
		mfs_time_set(&inode->atime, sa->atime);
	if (sa->valid & MFS_SET_MTIME_NOW)
		mfs_time_set(&inode->mtime, now);
	else if (sa->valid & MFS_SET_MTIME)
		mfs_time_set(&inode->mtime, sa->mtime);
	if (sa->valid & MFS_SET_CTIME)
		mfs_time_set(&inode->ctime, sa->ctime);
	else
		mfs_time_set(&inode->ctime, now); /* also for an empty set: chown(f, -1, -1) */
	if (out)
		mfs_inode_fill(inode, out);
out:
	ilock_unlock(fs, inode);
	ns_unlock(fs);
	return err;
}

/* ---- extended attributes: the rules live in xattr.c ---- */

/*
 * Run op on ino's xattrs with the inode locked for writing (set/remove) or
 * reading.  An inode from lower gets its lower xattrs first, once (under
 * the write lock).  NULL and *err set if that fails or ino is unknown.
 */
static struct mfs_inode *xattr_begin(struct mfs_fs *fs, uint64_t ino, int write, int *err)
{
	struct mfs_inode *inode;

	ns_read(fs);
	inode = mfs_inode_get(fs, ino);
	if (!inode) {
		ns_unlock(fs);
		*err = -ENOENT;
		return NULL;
	}
	if (inode->ovl && !write) {
		ilock_read(fs, inode);
		if (inode->ovl->xattrs_loaded)
			return inode;
		ilock_unlock(fs, inode);
		write = 1;
	}
	if (write)
		ilock_write(fs, inode);
	else
		ilock_read(fs, inode);
	*err = inode->ovl ? mfs_ovl_load_xattrs(fs, inode) : 0;
	if (*err) {
		ilock_unlock(fs, inode);
		ns_unlock(fs);
		return NULL;
	}
	return inode;
}

static void xattr_end(struct mfs_fs *fs, struct mfs_inode *inode, int changed)
{
	if (changed)
		mfs_time_now(&inode->ctime);
	ilock_unlock(fs, inode);
	ns_unlock(fs);
}

int mfs_setxattr(struct mfs_fs *fs, uint64_t ino, const char *name, const void *value,
		 size_t size, int flags)
{
	int err;
	struct mfs_inode *inode = xattr_begin(fs, ino, 1, &err);

	if (!inode)
		return err;
	err = mfs_xattr_set(&inode->xattrs, name, value, size, flags);
	xattr_end(fs, inode, err == 0);
	return err;
}

ssize_t mfs_getxattr(struct mfs_fs *fs, uint64_t ino, const char *name, void *buf, size_t size)
{
	/* a name no inode can have (system.posix_acl_access, asked by ls -l)
	 * needs no lower xattrs read to be refused */
	int err = fs->nlayers ? mfs_xattr_name_ok(name) : 0;
	struct mfs_inode *inode = err ? NULL : xattr_begin(fs, ino, 0, &err);
	ssize_t n;

	if (!inode)
		return err;
	n = mfs_xattr_get(&inode->xattrs, name, buf, size);
	xattr_end(fs, inode, 0);
	return n;
}

ssize_t mfs_listxattr(struct mfs_fs *fs, uint64_t ino, char *buf, size_t size)
{
	int err;
	struct mfs_inode *inode = xattr_begin(fs, ino, 0, &err);
	ssize_t n;

	if (!inode)
		return err;
	n = mfs_xattr_list(&inode->xattrs, buf, size);
	xattr_end(fs, inode, 0);
	return n;
}

int mfs_removexattr(struct mfs_fs *fs, uint64_t ino, const char *name)
{
	int err;
	struct mfs_inode *inode = xattr_begin(fs, ino, 1, &err);

	if (!inode)
		return err;
	err = mfs_xattr_remove(&inode->xattrs, name);
	xattr_end(fs, inode, err == 0);
	return err;
}
