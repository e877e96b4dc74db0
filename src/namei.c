/*
 * namei.c — the namespace: lookup, creating and removing names, links,
 * rename, symlinks and reading directories.  Every change to a directory
 * happens here, under the namespace write lock (fs.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>

#include "inode.h"

/* The directory numbered ino: -ENOENT if absent, -ENOTDIR if not one. */
static int get_dir(struct mfs_fs *fs, uint64_t ino, struct mfs_inode **out)
{
	struct mfs_inode *dir = mfs_inode_get(fs, ino);

	if (!dir)
		return -ENOENT;
	if (!mfs_is_dir(dir))
		return -ENOTDIR;
	*out = dir;
	return 0;
}

/* A directory changed: its mtime and ctime move (ns write lock held). */
static void dir_touch(struct mfs_inode *dir, const struct timespec *now)
{
	mfs_time_set(&dir->mtime, *now);
	dir->ctime = dir->mtime;
}

static void take_ref(struct mfs_inode *inode, struct mfs_attr *out)
{
	mfs_inode_ref(inode);
	if (out)
		mfs_inode_fill(inode, out);
}

static int lookup(struct mfs_fs *fs, uint64_t parent, const char *name, int take_ref,
		  struct mfs_attr *out)
{
	struct mfs_inode *dir, *inode = NULL;
	struct mfs_dirent *e;
	size_t len;
	int err;

	/* a name listed from lower becomes an inode on its first lookup */
	if (fs->nlayers && (err = mfs_ovl_prepare(fs, parent, name)))
		return err;
	ns_read(fs);
	err = get_dir(fs, parent, &dir);
	if (err)
		goto out;
	if (strcmp(name, ".") == 0) {
		inode = dir;
	} else if (strcmp(name, "..") == 0) {
		inode = dir->nlink ? dir->u.dir->parent : NULL;
	} else {
		err = mfs_check_name(name, &len);
		if (err)
			goto out;
		e = mfs_dir_find(&dir->u.dir->entries, name, len);
		if (e && mfs_dirent_is_stub(e)) {
			err = -EIO; /* cannot happen: prepared above, and entries never revert */
			goto out;
		}
		inode = e ? e->inode : NULL;
	}
	if (!inode) {
		err = -ENOENT;
		goto out;
	}
	if (take_ref)
		mfs_inode_ref(inode);
	mfs_inode_fill_locked(fs, inode, out);
out:
	ns_unlock(fs);
	return err;
}

int mfs_lookup(struct mfs_fs *fs, uint64_t parent, const char *name, struct mfs_attr *out)
{
	return lookup(fs, parent, name, 1, out);
}

int mfs_peek(struct mfs_fs *fs, uint64_t parent, const char *name, struct mfs_attr *out)
{
	return lookup(fs, parent, name, 0, out);
}

/*
 * Check that name can be added to the directory parent: it exists, is a
 * live directory, the name is valid and absent.  ns write lock held.
 */
static int prepare_new_name(struct mfs_fs *fs, uint64_t parent, const char *name,
			    struct mfs_inode **dirp, size_t *lenp)
{
	int err = get_dir(fs, parent, dirp);

	if (err)
		return err;
	if ((*dirp)->nlink == 0)
		return -ENOENT; /* removed directory, as Linux's IS_DEADDIR */
	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return -EEXIST;
	err = mfs_check_name(name, lenp);
	if (err)
		return err;
	if (mfs_dir_find(&(*dirp)->u.dir->entries, name, *lenp))
		return -EEXIST;
	return 0;
}

/*
 * Create an inode of the given mode under parent/name and take one lookup
 * reference.  ns write lock held.  If fill_new is given it completes the
 * inode (symlink target) before it becomes visible.
 */
static int make_node(struct mfs_fs *fs, const struct mfs_cred *cred, uint64_t parent,
		     const char *name, mode_t mode, dev_t rdev, const char *target,
		     struct mfs_inode **out)
{
	struct mfs_inode *dir, *inode;
	struct timespec now;
	size_t len, tlen = 0;
	int err;

	err = prepare_new_name(fs, parent, name, &dir, &len);
	if (err)
		return err;
	if (target) {
		tlen = strnlen(target, PATH_MAX);
		if (tlen >= PATH_MAX)
			return -ENAMETOOLONG;
		if (tlen == 0)
			return -ENOENT;
	}
	err = mfs_inode_new(fs, cred, dir, mode, &inode);
	if (err)
		return err;
	if (target) {
		if (tlen > MFS_SHORT_SYMLINK_LEN) {
			err = mfs_space_reserve(&fs->space, MFS_CHUNK_SIZE);
			if (err)
				goto fail;
		}
		inode->size = tlen;
		inode->u.target = mfs_malloc(tlen + 1);
		if (!inode->u.target) {
			err = -ENOMEM;
			goto fail;
		}
		memcpy(inode->u.target, target, tlen + 1);
	}
	if (S_ISCHR(mode) || S_ISBLK(mode))
		inode->u.rdev = rdev;
	err = mfs_dir_add(&dir->u.dir->entries, name, len, inode, NULL);
	if (err)
		goto fail;
	if (S_ISDIR(mode)) {
		inode->nlink = 2;
		inode->u.dir->parent = dir;
		dir->nlink++;
	} else {
		inode->nlink = 1;
	}
	mfs_now(&now);
	dir_touch(dir, &now);
	mfs_inode_ref(inode);
	*out = inode;
	return 0;
fail:
	mfs_inode_free(fs, inode); /* gives back the symlink's space too */
	return err;
}

static int make_and_fill(struct mfs_fs *fs, const struct mfs_cred *cred, uint64_t parent,
			 const char *name, mode_t mode, dev_t rdev, const char *target,
			 struct mfs_attr *out)
{
	struct mfs_inode *inode;
	int err;

	/* a stub of a name removed from lower underneath frees the name */
	if (fs->nlayers && (err = mfs_ovl_prepare(fs, parent, name)))
		return err;
	ns_write(fs);
	err = make_node(fs, cred, parent, name, mode, rdev, target, &inode);
	if (!err && out)
		mfs_inode_fill(inode, out);
	ns_unlock(fs);
	return err;
}

int mfs_mknod(struct mfs_fs *fs, const struct mfs_cred *cred, uint64_t parent, const char *name,
	      mode_t mode, dev_t rdev, struct mfs_attr *out)
{
	switch (mode & S_IFMT) {
	case 0:
		mode |= S_IFREG;
		break;
	case S_IFREG:
	case S_IFIFO:
	case S_IFSOCK:
	case S_IFCHR:
	case S_IFBLK:
		break;
	default:
		return -EINVAL;
	}
	if (!S_ISCHR(mode) && !S_ISBLK(mode))
		rdev = 0;
	return make_and_fill(fs, cred, parent, name, mode & (S_IFMT | 07777), rdev, NULL, out);
}

int mfs_mkdir(struct mfs_fs *fs, const struct mfs_cred *cred, uint64_t parent, const char *name,
	      mode_t mode, struct mfs_attr *out)
{
	return make_and_fill(fs, cred, parent, name, S_IFDIR | (mode & 07777), 0, NULL, out);
}

int mfs_symlink(struct mfs_fs *fs, const struct mfs_cred *cred, uint64_t parent,
		const char *name, const char *target, struct mfs_attr *out)
{
	return make_and_fill(fs, cred, parent, name, S_IFLNK | 0777, 0, target, out);
}

int mfs_create(struct mfs_fs *fs, const struct mfs_cred *cred, uint64_t parent, const char *name,
	       mode_t mode, int flags, struct mfs_attr *out)
{
	struct mfs_inode *dir, *inode;
	struct mfs_dirent *e;
	size_t len;
	int err;

	if (fs->nlayers && (err = mfs_ovl_prepare(fs, parent, name)))
		return err;
	ns_write(fs);
	err = get_dir(fs, parent, &dir);
	if (err)
		goto out;
	err = mfs_check_name(name, &len);
	if (err)
		goto out;
	e = mfs_dir_find(&dir->u.dir->entries, name, len);
	if (e && mfs_dirent_is_stub(e) && (err = mfs_ovl_resolve_locked(fs, dir, e))) {
		if (err != -ENOENT)
			goto out;
		e = NULL; /* gone from lower: the name is free */
		err = 0;
	}
	if (e) {
		/* The kernel's view was stale: O_CREAT on an existing name opens it. */
		inode = e->inode;
		if (flags & O_EXCL) {
			err = -EEXIST;
			goto out;
		}
		if (mfs_is_dir(inode)) {
			err = -EISDIR;
			goto out;
		}
		if ((flags & O_TRUNC) && mfs_is_reg(inode)) {
			mfs_file_truncate(fs, inode, 0);
			mfs_time_now(&inode->mtime);
			inode->ctime = inode->mtime;
		}
		if (mfs_is_reg(inode) && (err = mfs_copyup_open(fs, inode)))
			goto out;
		mfs_inode_ref(inode);
	} else {
		err = make_node(fs, cred, parent, name, S_IFREG | (mode & 07777), 0, NULL, &inode);
		if (err)
			goto out;
	}
	atomic_fetch_add(&inode->nopen, 1);
	mfs_inode_fill(inode, out);
out:
	ns_unlock(fs);
	return err;
}

int mfs_link(struct mfs_fs *fs, uint64_t ino, uint64_t newparent, const char *newname,
	     struct mfs_attr *out)
{
	struct mfs_inode *dir, *inode;
	struct timespec now;
	uint32_t due;
	size_t len;
	int err;

	if (fs->nlayers && (err = mfs_ovl_prepare(fs, newparent, newname)))
		return err;
	ns_write(fs);
	inode = mfs_inode_get(fs, ino);
	err = -ENOENT;
	if (!inode)
		goto out;
	err = -EPERM;
	if (mfs_is_dir(inode))
		goto out;
	err = -ENOENT; /* no linking back a file whose last name is gone */
	if (inode->nlink == 0)
		goto out;
	err = -EMLINK;
	if (inode->nlink >= UINT32_MAX)
		goto out;
	err = prepare_new_name(fs, newparent, newname, &dir, &len);
	if (err)
		goto out;
	/* an extra link costs an inode, as on tmpfs (but not the links a
	 * lower file came with) */
	inode->nlink++;
	due = mfs_inode_charge_due(inode);
	inode->nlink--;
	err = -ENOSPC;
	if (due > inode->charge && fs->ninodes + (due - inode->charge) > fs->max_inodes)
		goto out;
	err = mfs_dir_add(&dir->u.dir->entries, newname, len, inode, NULL);
	if (err)
		goto out;
	inode->nlink++;
	mfs_inode_recharge(fs, inode);
	mfs_now(&now);
	mfs_time_set(&inode->ctime, now);
	dir_touch(dir, &now);
	take_ref(inode, out);
out:
	ns_unlock(fs);
	return err;
}

/* Find parent/name for removal or rename; ns write lock held. */
static int find_entry(struct mfs_fs *fs, uint64_t parent, const char *name,
		      struct mfs_inode **dirp, struct mfs_dirent **ep)
{
	size_t len;
	int err = get_dir(fs, parent, dirp);

	if (err)
		return err;
	if (strcmp(name, ".") == 0)
		return -EINVAL;
	if (strcmp(name, "..") == 0)
		return -ENOTEMPTY;
	err = mfs_check_name(name, &len);
	if (err)
		return err;
	*ep = mfs_dir_find(&(*dirp)->u.dir->entries, name, len);
	if (!*ep)
		return -ENOENT;
	return mfs_dirent_is_stub(*ep) ? mfs_ovl_resolve_locked(fs, *dirp, *ep) : 0;
}

/* A file loses one of its names; an extra link gives its inode charge back. */
static void drop_link(struct mfs_fs *fs, struct mfs_inode *inode)
{
	inode->nlink--;
	mfs_inode_recharge(fs, inode);
}

/*
 * Drop the name e from dir: the inode loses a link (a directory all of
 * them) and is freed if nothing else holds it.  ns write lock held.
 */
static void drop_name(struct mfs_fs *fs, struct mfs_inode *dir, struct mfs_dirent *e,
		      const struct timespec *now)
{
	struct mfs_inode *inode = e->inode;

	mfs_dir_remove(&dir->u.dir->entries, e);
	if (mfs_is_dir(inode)) {
		inode->nlink = 0;
		dir->nlink--;
		mfs_inode_recharge(fs, inode);
	} else {
		drop_link(fs, inode);
	}
	mfs_time_set(&inode->ctime, *now);
	dir_touch(dir, now);
	mfs_inode_maybe_free(fs, inode);
}

static int remove_name(struct mfs_fs *fs, uint64_t parent, const char *name, int want_dir)
{
	struct mfs_inode *dir;
	struct mfs_dirent *e;
	struct timespec now;
	int err;

	if (fs->nlayers && (err = mfs_ovl_prepare(fs, parent, name)))
		return err;
	ns_write(fs);
	err = find_entry(fs, parent, name, &dir, &e);
	if (err)
		goto out;
	if (want_dir) {
		err = -ENOTDIR;
		if (!mfs_is_dir(e->inode))
			goto out;
		err = -EBUSY;
		if (e->inode == fs->root)
			goto out;
		err = -ENOTEMPTY;
		if (mfs_dir_count(&e->inode->u.dir->entries))
			goto out;
	} else if (mfs_is_dir(e->inode)) {
		err = -EISDIR;
		goto out;
	}
	err = 0;
	mfs_now(&now);
	drop_name(fs, dir, e, &now);
out:
	ns_unlock(fs);
	return err;
}

int mfs_unlink(struct mfs_fs *fs, uint64_t parent, const char *name)
{
	return remove_name(fs, parent, name, 0);
}

int mfs_rmdir(struct mfs_fs *fs, uint64_t parent, const char *name)
{
	return remove_name(fs, parent, name, 1);
}

/* Is dir the directory anc or below it?  Walks up: O(depth), no recursion. */
static int is_within(struct mfs_fs *fs, struct mfs_inode *dir, struct mfs_inode *anc)
{
	for (;;) {
		if (dir == anc)
			return 1;
		if (dir == fs->root || dir->nlink == 0)
			return 0;
		dir = dir->u.dir->parent;
	}
}

/* A directory moved from one parent to another: fix "..", link counts. */
static void reparent(struct mfs_inode *inode, struct mfs_inode *from, struct mfs_inode *to)
{
	if (!mfs_is_dir(inode) || from == to)
		return;
	inode->u.dir->parent = to;
	from->nlink--;
	to->nlink++;
}

static int rename_exchange(struct mfs_fs *fs, struct mfs_inode *odir, struct mfs_dirent *oe,
			   struct mfs_inode *ndir, struct mfs_dirent *ne)
{
	struct mfs_inode *a = oe->inode, *b = ne->inode;
	struct timespec now;

	if (mfs_is_dir(a) && is_within(fs, ndir, a))
		return -EINVAL;
	if (mfs_is_dir(b) && is_within(fs, odir, b))
		return -EINVAL;
	oe->inode = b;
	ne->inode = a;
	reparent(a, odir, ndir);
	reparent(b, ndir, odir);
	mfs_now(&now);
	mfs_time_set(&a->ctime, now);
	b->ctime = a->ctime;
	dir_touch(odir, &now);
	dir_touch(ndir, &now);
	return 0;
}

static int rename_move(struct mfs_fs *fs, struct mfs_inode *odir, struct mfs_dirent *oe,
		       struct mfs_inode *ndir, struct mfs_dirent *ne, const char *newname)
{
	struct mfs_inode *src = oe->inode, *dst = ne ? ne->inode : NULL;
	struct timespec now;
	size_t len;
	int err;

	if (mfs_is_dir(src) && is_within(fs, ndir, src))
		return -EINVAL;
	if (dst) {
		if (mfs_is_dir(src) && !mfs_is_dir(dst))
			return -ENOTDIR;
		if (!mfs_is_dir(src) && mfs_is_dir(dst))
			return -EISDIR;
		if (mfs_is_dir(dst) && mfs_dir_count(&dst->u.dir->entries))
			return -ENOTEMPTY;
	}
	if (ndir->nlink == 0)
		return -ENOENT;
	mfs_now(&now);
	if (dst) {
		/* Replace in place: the only step that could fail (adding a
		 * name) is avoided, so the rename is all or nothing. */
		ne->inode = src;
		if (mfs_is_dir(dst)) {
			dst->nlink = 0;
			ndir->nlink--;
			mfs_inode_recharge(fs, dst);
		} else {
			drop_link(fs, dst);
		}
		mfs_time_set(&dst->ctime, now);
	} else {
		err = mfs_check_name(newname, &len);
		if (!err)
			err = mfs_dir_add(&ndir->u.dir->entries, newname, len, src, NULL);
		if (err)
			return err;
	}
	mfs_dir_remove(&odir->u.dir->entries, oe);
	reparent(src, odir, ndir);
	mfs_time_set(&src->ctime, now);
	dir_touch(odir, &now);
	dir_touch(ndir, &now);
	if (dst)
		mfs_inode_maybe_free(fs, dst);
	return 0;
}

int mfs_rename(struct mfs_fs *fs, uint64_t parent, const char *name, uint64_t newparent,
	       const char *newname, unsigned flags)
{
	struct mfs_inode *odir, *ndir;
	struct mfs_dirent *oe, *ne = NULL;
	size_t len;
	int err;

	if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE))
		return -EINVAL;
	if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE))
		return -EINVAL;
	if (fs->nlayers && ((err = mfs_ovl_prepare(fs, parent, name)) ||
			    (err = mfs_ovl_prepare(fs, newparent, newname))))
		return err;
	ns_write(fs);
	err = find_entry(fs, parent, name, &odir, &oe);
	if (err)
		goto out;
	err = get_dir(fs, newparent, &ndir);
	if (err)
		goto out;
	err = -EBUSY;
	if (strcmp(newname, ".") == 0 || strcmp(newname, "..") == 0)
		goto out;
	err = mfs_check_name(newname, &len);
	if (err)
		goto out;
	ne = mfs_dir_find(&ndir->u.dir->entries, newname, len);
	if (ne && mfs_dirent_is_stub(ne) && (err = mfs_ovl_resolve_locked(fs, ndir, ne))) {
		if (err != -ENOENT)
			goto out;
		ne = NULL; /* gone from lower: the name is free */
		err = 0;
	}
	if (flags & RENAME_EXCHANGE) {
		err = ne ? 0 : -ENOENT;
		if (!err && ne->inode != oe->inode)
			err = rename_exchange(fs, odir, oe, ndir, ne);
		goto out;
	}
	if (ne && (flags & RENAME_NOREPLACE)) {
		err = -EEXIST;
		goto out;
	}
	err = 0;
	/* Two names of one inode: POSIX says do nothing. */
	if (ne && ne->inode == oe->inode)
		goto out;
	err = rename_move(fs, odir, oe, ndir, ne, newname);
out:
	ns_unlock(fs);
	return err;
}

ssize_t mfs_readlink(struct mfs_fs *fs, uint64_t ino, char *buf, size_t size)
{
	struct mfs_inode *inode;
	ssize_t n;

	ns_read(fs);
	inode = mfs_inode_get(fs, ino);
	if (!inode)
		n = -ENOENT;
	else if (!S_ISLNK(inode->type))
		n = -EINVAL;
	else if (size < inode->size)
		n = -ERANGE;
	else {
		memcpy(buf, inode->u.target, inode->size);
		n = (ssize_t)inode->size;
	}
	ns_unlock(fs);
	return n;
}

/* ---- reading directories ---- */

static int fill_one(struct mfs_fs *fs, struct mfs_inode *inode, const char *name, uint64_t next,
		    int plus, int dot, mfs_dir_fill fill, void *ctx)
{
	struct mfs_attr a;

	if (plus) {
		mfs_inode_fill_locked(fs, inode, &a);
	} else {
		memset(&a, 0, sizeof(a));
		a.st.st_ino = inode->ino;
		a.st.st_mode = inode->type;
	}
	if (fill(ctx, name, &a.st, next))
		return 1;
	if (plus && !dot)
		mfs_inode_ref(inode);
	return 0;
}

/* A stub: its number and type, no attributes and no reference (fs.h). */
static int fill_stub(const struct mfs_dirent *e, mfs_dir_fill fill, void *ctx)
{
	struct stat st;

	memset(&st, 0, sizeof(st));
	st.st_ino = e->stub_ino;
	st.st_mode = mfs_dirent_stub_mode(e);
	return fill(ctx, e->name, &st, e->pos);
}

int mfs_readdir(struct mfs_fs *fs, uint64_t ino, uint64_t off, int plus, mfs_dir_fill fill,
		void *ctx)
{
	struct mfs_inode *dir;
	struct mfs_dirent *e;
	int err;

	ns_read(fs);
	err = get_dir(fs, ino, &dir);
	if (err)
		goto out;
	if (off < 1 && fill_one(fs, dir, ".", 1, plus, 1, fill, ctx))
		goto out;
	/* a removed directory's parent may be gone: ".." is itself then */
	if (off < 2 && fill_one(fs, dir->nlink ? dir->u.dir->parent : dir, "..", 2, plus, 1, fill, ctx))
		goto out;
	for (e = mfs_dir_next(&dir->u.dir->entries, off < 2 ? 2 : off); e; e = mfs_dir_after(e)) {
		if (mfs_dirent_is_stub(e) ? fill_stub(e, fill, ctx)
					  : fill_one(fs, e->inode, e->name, e->pos, plus, 0, fill, ctx))
			break;
	}
out:
	ns_unlock(fs);
	return err;
}

int mfs_opendir(struct mfs_fs *fs, uint64_t ino)
{
	struct mfs_inode *dir;
	int err;

	ns_read(fs);
	err = get_dir(fs, ino, &dir);
	if (!err)
		atomic_fetch_add(&dir->nopen, 1);
	ns_unlock(fs);
	return err;
}
