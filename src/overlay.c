/*
 * overlay.c — merging read-only lower layers into the memory tree: listing
 * a lower directory into stubs, turning a stub into an inode, lower hard
 * links, lower xattrs (the semantics are in overlay.h; contents are
 * copyup.c).
 *
 * Every stub becomes an inode in two steps: fetch (read what lower says of
 * the entry: lstat, readlink, or the merged listing of a directory; no lock
 * held, so a directory of a million entries does not stall the
 * filesystem) and commit (under the namespace write lock: build the inode
 * with the stub's number and put it in place of the stub).  A commit is all
 * or nothing: if an allocation fails, everything it made is undone and the
 * stub stays, so the next lookup simply tries again.
 */
#include "overlay.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/xattr.h>

#include "inode.h"

/* uthash reports a failed allocation here; the item is then not added. */
#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (*oomp = 1)

/* ---- paths ---- */

/* parent's relpath + "/" + name ("" + name for the root): malloc'd, or NULL. */
static char *join_relpath(const char *parent, const char *name, int *err)
{
	size_t plen = strlen(parent), nlen = strlen(name);
	char *p;

	if (plen + 1 + nlen >= PATH_MAX) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	p = mfs_malloc(plen + 1 + nlen + 1);
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	if (plen) {
		memcpy(p, parent, plen);
		p[plen++] = '/';
	}
	memcpy(p + plen, name, nlen + 1);
	return p;
}

/* ---- a listing, read without locks ---- */

/* One merged name of a lower directory. */
struct listed {
	UT_hash_handle hh; /* by name, only while merging several layers */
	char *name;
	uint16_t namelen;
	uint8_t layer;	 /* topmost layer holding the name */
	mode_t type;	 /* S_IFMT bits */
	struct stat *st; /* lower hard links only: the lstat to build the inode from */
};

struct listing {
	struct listed *v;
	size_t n, cap;
	struct listed *by_name; /* uthash over v, while merging */
	bool merging;		/* more than one layer: skip names seen above */
	unsigned layer;		/* the layer being read */
	size_t nlinks;		/* entries with st (hard links) */
	int err;		/* first allocation failure */
};

static void listing_free(struct listing *l)
{
	HASH_CLEAR(hh, l->by_name);
	for (size_t i = 0; i < l->n; i++) {
		mfs_free(l->v[i].name);
		mfs_free(l->v[i].st);
	}
	mfs_free(l->v);
	memset(l, 0, sizeof(*l));
}

static bool is_hard_link(const struct stat *st)
{
	return !S_ISDIR(st->st_mode) && st->st_nlink > 1;
}

static int listed_one(void *ctx, const char *name, const struct stat *lst)
{
	struct listing *l = ctx;
	size_t len = strlen(name);
	struct listed *e;
	int oom = 0, *oomp = &oom;

	if (len == 0 || len > MFS_NAME_MAX)
		return 0; /* no Linux filesystem makes these; never shown */
	if (l->merging) {
		HASH_FIND(hh, l->by_name, name, (unsigned)len, e);
		if (e)
			return 0; /* a layer above holds the name: this one is hidden */
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct listed *v;

		/* the hash lives in v's entries: drop it before they move, and
		 * rebuild it after */
		HASH_CLEAR(hh, l->by_name);
		v = mfs_realloc(l->v, cap * sizeof(*v));
		if (!v)
			goto oom;
		l->v = v;
		l->cap = cap;
		for (size_t i = 0; l->merging && i < l->n; i++) {
			HASH_ADD_KEYPTR(hh, l->by_name, v[i].name, v[i].namelen, &v[i]);
			if (oom)
				goto oom;
		}
	}
	e = &l->v[l->n];
	memset(e, 0, sizeof(*e));
	e->name = mfs_malloc(len + 1);
	if (!e->name)
		goto oom;
	memcpy(e->name, name, len + 1);
	e->namelen = (uint16_t)len;
	e->layer = (uint8_t)l->layer;
	e->type = lst->st_mode & S_IFMT;
	if (is_hard_link(lst)) {
		e->st = mfs_malloc(sizeof(*e->st));
		if (!e->st) {
			mfs_free(e->name);
			goto oom;
		}
		*e->st = *lst;
		l->nlinks++;
	}
	if (l->merging) {
		HASH_ADD_KEYPTR(hh, l->by_name, e->name, e->namelen, e);
		if (oom) {
			mfs_free(e->name);
			mfs_free(e->st);
			goto oom;
		}
	}
	l->n++;
	return 0;
oom:
	l->err = -ENOMEM;
	return 1; /* stop the listing */
}

/* Read the directory relpath of every layer in mask, topmost first, merged. */
static int list_layers(struct mfs_fs *fs, const char *relpath, uint64_t mask, struct listing *l)
{
	memset(l, 0, sizeof(*l));
	l->merging = (mask & (mask - 1)) != 0;
	for (unsigned i = 0; i < fs->nlayers; i++) {
		int err;

		if (!(mask >> i & 1))
			continue;
		l->layer = i;
		err = mfs_lower_list(fs->layers[i], relpath, listed_one, l);
		if (err > 0)
			err = l->err;
		if (err) {
			listing_free(l);
			/* a directory that became something else underneath */
			return err == -ENOTDIR || err == -ELOOP ? -EIO : err;
		}
	}
	HASH_CLEAR(hh, l->by_name);
	l->merging = false;
	return 0;
}

/*
 * The layers a directory at relpath merges, given the topmost one that has
 * it and the layers its parent merges: each lower one that also has a
 * directory there, down to the first that has something else.
 */
static uint64_t dir_layers(struct mfs_fs *fs, const char *relpath, unsigned top,
			   uint64_t parent_layers)
{
	uint64_t mask = (uint64_t)1 << top;

	for (unsigned j = top + 1; j < fs->nlayers; j++) {
		struct stat st;

		if (!(parent_layers >> j & 1) || mfs_lower_lstat(fs->layers[j], relpath, &st))
			continue;
		if (!S_ISDIR(st.st_mode))
			break;
		mask |= (uint64_t)1 << j;
	}
	return mask;
}

/* ---- inodes from lower ---- */

/*
 * A new inode numbered ino from a lower lstat, owning relpath, in the table
 * (not named, not charged).  NULL on -ENOMEM (relpath is then freed).
 */
static struct mfs_inode *lower_inode_new(struct mfs_fs *fs, uint64_t ino, const struct stat *st,
					 char *relpath, unsigned layer, uint64_t layers)
{
	struct mfs_inode *inode = mfs_calloc(1, sizeof(*inode));
	struct mfs_ovl *o = mfs_calloc(1, sizeof(*o));

	if (!inode || !o || mfs_inode_init_fields(inode, st->st_mode & (S_IFMT | 07777))) {
		mfs_free(inode);
		goto fail_ovl;
	}
	inode->ino = ino;
	inode->uid = fs->lower_uid_set ? fs->lower_uid : st->st_uid;
	inode->gid = fs->lower_gid_set ? fs->lower_gid : st->st_gid;
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
		inode->u.rdev = st->st_rdev;
	mfs_time_set(&inode->atime, st->st_atim);
	mfs_time_set(&inode->mtime, st->st_mtim);
	mfs_time_set(&inode->ctime, st->st_ctim);
	inode->btime = inode->ctime; /* the closest a lower lstat tells */
	o->relpath = relpath;
	o->layer = (uint8_t)layer;
	o->layers = S_ISDIR(st->st_mode) ? layers : (uint64_t)1 << layer;
	o->base_links = 1;
	if (S_ISREG(st->st_mode)) {
		inode->size = (uint64_t)st->st_size;
		o->end = inode->size;
	}
	inode->ovl = o;
	if (mfs_inode_add_table(fs, inode)) {
		mfs_inode_discard(inode);
		goto fail_ovl;
	}
	return inode;
fail_ovl:
	mfs_free(o);
	mfs_free(relpath);
	return NULL;
}

/* What undoing a failed commit must revert for each real entry it added. */
struct undo {
	struct mfs_inode *inode;
	bool created;	    /* made by this commit: free it */
	bool took_unlisted; /* else: gave back one of hl->unlisted, or added a link */
};

static void undo_entries(struct mfs_fs *fs, struct undo *u, size_t n)
{
	while (n-- > 0) {
		struct mfs_inode *inode = u[n].inode;

		if (u[n].created) {
			mfs_inode_free(fs, inode);
		} else if (u[n].took_unlisted) {
			inode->ovl->hl->unlisted++;
		} else {
			inode->nlink--;
			inode->ovl->base_links--;
		}
	}
}

/* Another name of a lower hard link: the inode it already is, or a new one. */
static int add_hard_link(struct mfs_fs *fs, struct mfs_inode *dir, struct listed *le,
			 struct undo *u)
{
	struct mfs_hardlink *hl, key;
	struct mfs_inode *inode;
	int oom = 0, *oomp = &oom, err = 0;
	char *relpath;

	memset(&key, 0, sizeof(key));
	key.key.dev = le->st->st_dev;
	key.key.ino = le->st->st_ino;
	HASH_FIND(hh, fs->links, &key.key, sizeof(key.key), hl);
	if (hl) {
		inode = hl->inode;
		err = mfs_dir_add(&dir->u.dir->entries, le->name, le->namelen, inode, NULL);
		if (err)
			return err;
		*u = (struct undo){.inode = inode, .took_unlisted = hl->unlisted > 0};
		if (hl->unlisted > 0) {
			hl->unlisted--;
		} else {
			/* more names than lower counted (it changed underneath, or
			 * layers overlap): the extra one is free too */
			inode->nlink++;
			inode->ovl->base_links++;
		}
		return 0;
	}
	relpath = join_relpath(dir->ovl->relpath, le->name, &err);
	if (!relpath)
		return err;
	hl = mfs_calloc(1, sizeof(*hl));
	inode = hl ? lower_inode_new(fs, fs->next_ino, le->st, relpath, le->layer, 0) : NULL;
	if (!inode) {
		if (!hl)
			mfs_free(relpath);
		mfs_free(hl);
		return -ENOMEM;
	}
	fs->next_ino++;
	inode->nlink = (uint32_t)le->st->st_nlink;
	inode->ovl->base_links = inode->nlink;
	hl->key = key.key;
	hl->inode = inode;
	hl->unlisted = inode->nlink - 1;
	HASH_ADD(hh, fs->links, key, sizeof(hl->key), hl);
	if (oom) {
		mfs_free(hl);
		mfs_inode_free(fs, inode);
		return -ENOMEM;
	}
	inode->ovl->hl = hl;
	*u = (struct undo){.inode = inode, .created = true};
	err = mfs_dir_add(&dir->u.dir->entries, le->name, le->namelen, inode, NULL);
	if (err)
		mfs_inode_free(fs, inode); /* takes hl out of fs->links too */
	return err;
}

/*
 * Put a listing into the (empty, new) directory dir: stubs, and inodes for
 * hard links.  All or nothing.  ns write lock held.
 */
static int commit_listing(struct mfs_fs *fs, struct mfs_inode *dir, struct listing *l)
{
	struct undo *undo = NULL;
	size_t nundo = 0;
	uint32_t subdirs = 0;
	int err = 0;

	if (l->nlinks) {
		undo = mfs_calloc(l->nlinks, sizeof(*undo));
		if (!undo)
			return -ENOMEM;
	}
	for (size_t i = 0; i < l->n && !err; i++) {
		struct listed *le = &l->v[i];

		if (le->st) {
			err = add_hard_link(fs, dir, le, &undo[nundo]);
			if (!err)
				nundo++;
		} else {
			err = mfs_dir_add_stub(&dir->u.dir->entries, le->name, le->namelen,
					       fs->next_ino++, le->type, le->layer, NULL);
			subdirs += S_ISDIR(le->type);
		}
	}
	if (err) {
		undo_entries(fs, undo, nundo);
		mfs_dir_free(&dir->u.dir->entries);
	} else {
		dir->nlink += subdirs;
	}
	mfs_free(undo);
	return err;
}

/* ---- stubs become inodes: fetch without locks, commit under the write lock ---- */

struct fetch {
	/* the stub */
	uint64_t ino;
	mode_t type;
	unsigned layer;
	uint64_t parent_layers;
	char *relpath;
	/* what lower says */
	struct stat st;
	uint64_t layers;      /* directories */
	char *target;	      /* symlinks */
	struct listing list;  /* directories */
};

static void fetch_free(struct fetch *f)
{
	mfs_free(f->relpath);
	mfs_free(f->target);
	listing_free(&f->list);
}

/* What the stub e of dir names.  0 or -ENOMEM / -ENAMETOOLONG. */
static int fetch_init(struct fetch *f, const struct mfs_inode *dir, const struct mfs_dirent *e)
{
	int err = 0;

	memset(f, 0, sizeof(*f));
	f->ino = e->stub_ino;
	f->type = mfs_dirent_stub_mode(e);
	f->layer = e->stub_layer;
	f->parent_layers = dir->ovl->layers;
	f->relpath = join_relpath(dir->ovl->relpath, e->name, &err);
	return err;
}

static int fetch(struct mfs_fs *fs, struct fetch *f)
{
	struct mfs_lower *l = fs->layers[f->layer];
	int err = mfs_lower_lstat(l, f->relpath, &f->st);

	if (err)
		return err == -ENOTDIR || err == -ELOOP ? -ENOENT : err;
	if ((f->st.st_mode & S_IFMT) != f->type)
		return -EIO; /* replaced by another kind of file underneath */
	if (S_ISDIR(f->type)) {
		f->layers = dir_layers(fs, f->relpath, f->layer, f->parent_layers);
		return list_layers(fs, f->relpath, f->layers, &f->list);
	}
	if (S_ISLNK(f->type)) {
		char buf[PATH_MAX];
		ssize_t n = mfs_lower_readlink(l, f->relpath, buf, sizeof(buf));

		if (n < 0)
			return n == -EINVAL ? -EIO : (int)n;
		if (n == 0)
			return -EIO;
		f->target = mfs_malloc((size_t)n + 1);
		if (!f->target)
			return -ENOMEM;
		memcpy(f->target, buf, (size_t)n);
		f->target[n] = '\0';
	}
	return 0;
}

/* Turn the stub e of dir into the inode f describes.  ns write lock held. */
static int commit(struct mfs_fs *fs, struct mfs_inode *dir, struct mfs_dirent *e, struct fetch *f)
{
	struct mfs_inode *inode;
	int err;

	inode = lower_inode_new(fs, f->ino, &f->st, f->relpath, f->layer, f->layers);
	f->relpath = NULL; /* the inode owns it now, or it was freed */
	if (!inode)
		return -ENOMEM;
	if (S_ISDIR(f->type)) {
		inode->nlink = 2;
		inode->u.dir->parent = dir;
		err = commit_listing(fs, inode, &f->list);
		if (err) {
			mfs_inode_free(fs, inode);
			return err;
		}
	} else {
		inode->nlink = 1;
	}
	if (S_ISLNK(f->type)) {
		inode->u.target = f->target;
		inode->size = strlen(f->target);
		f->target = NULL;
	}
	mfs_dirent_set_inode(e, inode);
	return 0;
}

/*
 * The lower entry of stub e was removed underneath: the name goes, so that
 * it can be made again through the mount.  Returns 0.  ns write lock held.
 */
static int drop_stub(struct mfs_inode *dir, struct mfs_dirent *e)
{
	if (S_ISDIR(mfs_dirent_stub_mode(e)))
		dir->nlink--;
	mfs_dir_remove(&dir->u.dir->entries, e);
	return 0;
}

int mfs_ovl_prepare(struct mfs_fs *fs, uint64_t parent, const char *name)
{
	struct mfs_inode *dir;
	struct mfs_dirent *e;
	struct fetch f;
	size_t len;
	int err;

	if (mfs_check_name(name, &len) || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return 0;
	ns_read(fs);
	dir = mfs_inode_get(fs, parent);
	e = dir && mfs_is_dir(dir) ? mfs_dir_find(&dir->u.dir->entries, name, len) : NULL;
	if (!e || !mfs_dirent_is_stub(e)) {
		ns_unlock(fs);
		return 0;
	}
	err = fetch_init(&f, dir, e);
	ns_unlock(fs);
	if (!err)
		err = fetch(fs, &f);

	ns_write(fs);
	dir = mfs_inode_get(fs, parent);
	e = dir && mfs_is_dir(dir) ? mfs_dir_find(&dir->u.dir->entries, name, len) : NULL;
	if (e && mfs_dirent_is_stub(e) && e->stub_ino == f.ino) {
		if (err == -ENOENT)
			err = drop_stub(dir, e); /* the name is free: as if never listed */
		else if (!err)
			err = commit(fs, dir, e, &f);
	} else {
		err = 0; /* someone else made the inode meanwhile, or removed the name */
	}
	ns_unlock(fs);
	fetch_free(&f);
	return err;
}

int mfs_ovl_resolve_locked(struct mfs_fs *fs, struct mfs_inode *dir, struct mfs_dirent *e)
{
	struct fetch f;
	int err = fetch_init(&f, dir, e);

	if (!err)
		err = fetch(fs, &f);
	if (!err)
		err = commit(fs, dir, e, &f);
	else if (err == -ENOENT)
		drop_stub(dir, e);
	fetch_free(&f);
	return err;
}

/* ---- the layers ---- */

int mfs_ovl_setup(struct mfs_fs *fs)
{
	struct mfs_inode *root = fs->root;
	struct listing l;
	int err;

	root->ovl = mfs_calloc(1, sizeof(*root->ovl));
	if (!root->ovl)
		return -ENOMEM;
	root->ovl->relpath = mfs_calloc(1, 1);
	if (!root->ovl->relpath)
		return -ENOMEM; /* mfs_ovl_free frees the rest */
	root->ovl->layers = fs->nlayers == 64 ? UINT64_MAX : ((uint64_t)1 << fs->nlayers) - 1;
	root->ovl->base_links = 1;
	err = list_layers(fs, "", root->ovl->layers, &l);
	if (err)
		return err;
	ns_write(fs);
	err = commit_listing(fs, root, &l);
	ns_unlock(fs);
	listing_free(&l);
	return err;
}

void mfs_ovl_teardown(struct mfs_fs *fs)
{
	struct mfs_hardlink *hl, *tmp;

	HASH_ITER(hh, fs->links, hl, tmp) {
		HASH_DEL(fs->links, hl);
		mfs_free(hl);
	}
	for (unsigned i = 0; i < fs->nlayers; i++)
		mfs_lower_close(fs->layers[i]);
	mfs_free(fs->layers);
	fs->layers = NULL;
	fs->nlayers = 0;
}

void mfs_ovl_unlink_hardlink(struct mfs_fs *fs, struct mfs_inode *inode)
{
	struct mfs_ovl *o = inode->ovl;

	if (o->hl) {
		HASH_DEL(fs->links, o->hl);
		mfs_free(o->hl);
		o->hl = NULL;
	}
}

void mfs_ovl_free(struct mfs_fs *fs, struct mfs_inode *inode)
{
	struct mfs_ovl *o = inode->ovl;

	mfs_ovl_unlink_hardlink(fs, inode);
	if (S_ISREG(inode->type))
		mfs_copyup_close(fs, inode);
	mfs_free(o->masks);
	mfs_free(o->relpath);
	mfs_free(o);
	inode->ovl = NULL;
}

/* ---- xattrs ---- */

/* Copy one lower xattr in, unless memfs does not offer its namespace or has it already. */
static int load_one_xattr(struct mfs_fs *fs, struct mfs_inode *inode, const char *name)
{
	struct mfs_ovl *o = inode->ovl;
	struct mfs_lower *l = fs->layers[o->layer];
	ssize_t n = mfs_lower_getxattr(l, o->relpath, name, NULL, 0);
	char *value;
	int err;

	if (n == -ENODATA)
		return 0; /* removed underneath between list and get */
	if (n < 0)
		return (int)n;
	value = mfs_malloc(n ? (size_t)n : 1);
	if (!value)
		return -ENOMEM;
	n = mfs_lower_getxattr(l, o->relpath, name, value, (size_t)n);
	err = n == -ENODATA ? 0 : n < 0 ? (int)n
			  : mfs_xattr_set(&inode->xattrs, name, value, (size_t)n, XATTR_CREATE);
	mfs_free(value);
	/* system.* (ACLs) and the like have no place here; a name already
	 * copied by an earlier, failed load stays as it is */
	return err == -EOPNOTSUPP || err == -EINVAL || err == -EEXIST || err == -ERANGE ? 0 : err;
}

int mfs_ovl_load_xattrs(struct mfs_fs *fs, struct mfs_inode *inode)
{
	struct mfs_ovl *o = inode->ovl;
	struct mfs_lower *l = fs->layers[o->layer];
	char *list = NULL;
	ssize_t n;
	int err = 0;

	if (o->xattrs_loaded)
		return 0;
	n = mfs_lower_listxattr(l, o->relpath, NULL, 0);
	while (n > 0) {
		char *bigger = mfs_realloc(list, (size_t)n);
		if (!bigger) {
			err = -ENOMEM;
			goto out;
		}
		list = bigger;
		ssize_t got = mfs_lower_listxattr(l, o->relpath, list, (size_t)n);
		if (got != -ERANGE) {
			n = got;
			break;
		}
		n = mfs_lower_listxattr(l, o->relpath, NULL, 0); /* grew underneath */
	}
	if (n == -EOPNOTSUPP || n == 0) {
		n = 0;
	} else if (n < 0) {
		err = n == -ENOTDIR || n == -ELOOP ? -ENOENT : (int)n;
		goto out;
	}
	for (ssize_t at = 0; at < n && !err; at += (ssize_t)strlen(list + at) + 1)
		err = load_one_xattr(fs, inode, list + at);
	if (!err)
		o->xattrs_loaded = true;
out:
	mfs_free(list);
	return err;
}
