/*
 * fs.c — the filesystem object: creation with its root, limits, the
 * kernel's references (forget), statfs, the consistency check and the
 * final teardown.
 */
#include <errno.h>
#include <string.h>

#include "inode.h"

int mfs_fs_new(const struct mfs_params *p, struct mfs_fs **out)
{
	struct mfs_cred owner = {.uid = p->root_uid, .gid = p->root_gid};
	struct mfs_fs *fs;
	int err;

	err = -EINVAL;
	if (p->size_bytes == 0 || p->max_inodes == 0 || p->nlowers > MFS_MAX_LAYERS)
		goto out_lowers;
	err = -ENOMEM;
	fs = mfs_calloc(1, sizeof(*fs));
	if (!fs)
		goto out_lowers;
	/* Writers first: a stream of readers must not starve create/unlink.
	 * Safe because no thread ever takes ns_lock twice. */
	pthread_rwlockattr_t attr;
	pthread_rwlockattr_init(&attr);
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&fs->ns_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	for (unsigned i = 0; i < MFS_ILOCKS; i++)
		pthread_rwlock_init(&fs->ilocks[i], NULL);
	mfs_itable_init(&fs->table);
	fs->next_ino = MFS_ROOT_INO;
	fs->max_inodes = p->max_inodes;
	fs->space.limit_bytes = p->size_bytes;
	mfs_maps_init(fs, p->max_lower_maps);
	err = mfs_inode_new(fs, &owner, NULL, S_IFDIR | (p->root_mode & 07777), &fs->root);
	if (err) {
		mfs_fs_destroy(fs);
		goto out_lowers;
	}
	fs->root->nlink = 2;
	fs->root->u.dir->parent = fs->root;
	if (p->nlowers) {
		fs->layers = mfs_calloc(p->nlowers, sizeof(*fs->layers));
		if (!fs->layers) {
			mfs_fs_destroy(fs);
			err = -ENOMEM;
			goto out_lowers;
		}
		memcpy(fs->layers, p->lowers, p->nlowers * sizeof(*fs->layers));
		fs->nlayers = p->nlowers;
		fs->lower_uid_set = p->lower_uid_set;
		fs->lower_gid_set = p->lower_gid_set;
		fs->lower_uid = p->lower_uid;
		fs->lower_gid = p->lower_gid;
		err = mfs_ovl_setup(fs);
		if (err) {
			mfs_fs_destroy(fs); /* closes the layers */
			return err;
		}
	}
	*out = fs;
	return 0;
out_lowers:
	for (unsigned i = 0; i < p->nlowers; i++)
		mfs_lower_close(p->lowers[i]);
	return err;
}

void mfs_fs_opens_untracked(struct mfs_fs *fs)
{
	fs->opens_untracked = true;
}

/* Every inode is in the table, so teardown is one flat loop: no recursion. */
void mfs_fs_destroy(struct mfs_fs *fs)
{
	if (!fs)
		return;
	struct mfs_inode *inode;

	/* the walk reads only the table, which releasing inodes leaves alone */
	for (uint64_t i = 0; (inode = mfs_itable_next(&fs->table, &i));)
		mfs_inode_release(fs, inode);
	mfs_itable_free(&fs->table);
	mfs_ovl_teardown(fs);
	mfs_maps_destroy(fs);
	for (unsigned i = 0; i < MFS_ILOCKS; i++)
		pthread_rwlock_destroy(&fs->ilocks[i]);
	pthread_rwlock_destroy(&fs->ns_lock);
	mfs_free(fs);
}

static void forget_one(struct mfs_fs *fs, uint64_t ino, uint64_t nlookup)
{
	struct mfs_inode *inode = mfs_inode_get(fs, ino);
	uint32_t held;

	if (!inode)
		return;
	held = atomic_load(&inode->nlookup);
	if (held == UINT32_MAX) /* saturated (mfs_inode_ref): the count is lost, keep it */
		return;
	atomic_store(&inode->nlookup, nlookup >= held ? 0 : (uint32_t)(held - nlookup));
	mfs_inode_maybe_free(fs, inode);
}

void mfs_forget(struct mfs_fs *fs, uint64_t ino, uint64_t nlookup)
{
	ns_write(fs);
	forget_one(fs, ino, nlookup);
	ns_unlock(fs);
}

void mfs_forget_many(struct mfs_fs *fs, const struct mfs_forget *list, size_t n)
{
	ns_write(fs);
	for (size_t i = 0; i < n; i++)
		forget_one(fs, list[i].ino, list[i].nlookup);
	ns_unlock(fs);
}

void mfs_statfs(struct mfs_fs *fs, struct statvfs *out)
{
	uint64_t used = mfs_space_used(&fs->space);
	uint64_t limit = fs->space.limit_bytes;

	memset(out, 0, sizeof(*out));
	ns_read(fs);
	out->f_bsize = MFS_CHUNK_SIZE;
	out->f_frsize = MFS_CHUNK_SIZE;
	out->f_blocks = limit / MFS_CHUNK_SIZE;
	out->f_bfree = used >= limit ? 0 : (limit - used) / MFS_CHUNK_SIZE;
	out->f_bavail = out->f_bfree;
	out->f_files = fs->max_inodes;
	out->f_ffree = fs->max_inodes - fs->ninodes;
	out->f_favail = out->f_ffree;
	out->f_namemax = MFS_NAME_MAX;
	ns_unlock(fs);
}

uint64_t mfs_freed_units(struct mfs_fs *fs)
{
	return atomic_load_explicit(&fs->inodes_freed, memory_order_relaxed) +
	       atomic_load_explicit(&fs->space.released_bytes, memory_order_relaxed) /
		       MFS_CHUNK_SIZE;
}

/* ---- consistency check ---- */

/* What inode->ovl says must agree with the inode and fs->links. */
static const char *check_ovl(struct mfs_fs *fs, const struct mfs_inode *inode)
{
	const struct mfs_ovl *o = inode->ovl;
	struct mfs_hardlink *hl;

	if (!o->relpath || o->layer >= fs->nlayers || !(o->layers >> o->layer & 1))
		return "inode from lower has no path or names a layer that does not exist";
	if (!S_ISDIR(inode->type) && o->layers != (uint64_t)1 << o->layer)
		return "non-directory from lower merges more than one layer";
	if (o->hl) {
		HASH_FIND(hh, fs->links, &o->hl->key, sizeof(o->hl->key), hl);
		if (hl != o->hl || hl->inode != inode)
			return "hard-link record and its inode disagree";
		if (S_ISDIR(inode->type))
			return "directory merged by inode number";
	}
	if (!S_ISREG(inode->type))
		return o->end || o->nmasks ? "non-file from lower has lower contents" : NULL;
	if (o->end > inode->size)
		return "lower bytes show past the file size";
	for (size_t i = 0; i < o->nmasks; i++) {
		if (o->masks[i].first >= o->masks[i].end)
			return "empty masked range";
		if (i > 0 && o->masks[i].first <= o->masks[i - 1].end)
			return "masked ranges unsorted, overlapping or adjacent";
		if (o->masks[i].first << MFS_CHUNK_SHIFT >= o->end)
			return "masked range past the lower bytes";
	}
	return NULL;
}

/*
 * The check counts, for every inode, the directory entries that name it
 * (and, for directories, the subdirectories they hold) in a hash of its
 * own, then compares with nlink: checking must not change what it checks.
 */
struct link_count {
	UT_hash_handle hh;
	const struct mfs_inode *inode;
	uint64_t names;  /* entries naming it */
	uint64_t subdirs; /* for directories: entries that are directories */
};

#undef uthash_nonfatal_oom
#define uthash_nonfatal_oom(obj) (oom = 1)

static struct link_count *count_for(struct link_count **counts, const struct mfs_inode *inode,
				    int *oomp)
{
	struct link_count *c;
	int oom = 0;

	HASH_FIND_PTR(*counts, &inode, c);
	if (c)
		return c;
	c = mfs_calloc(1, sizeof(*c));
	if (!c) {
		*oomp = 1;
		return NULL;
	}
	c->inode = inode;
	HASH_ADD_PTR(*counts, inode, c);
	if (oom) {
		mfs_free(c);
		*oomp = 1;
		return NULL;
	}
	return c;
}

static const char *check_inode(struct mfs_fs *fs, struct mfs_inode *inode,
			       struct link_count **counts, uint64_t *space, int *oom)
{
	const char *why = NULL;

	if (inode->charge != mfs_inode_charge_due(inode))
		return "inode's nr_inodes charge differs from what it should hold";
	if (inode->ovl && (why = check_ovl(fs, inode)))
		return why;
	if (S_ISREG(inode->type)) {
		if (mfs_data_check(&inode->u.data, &why))
			return why;
		*space += mfs_data_chunks(&inode->u.data) * MFS_CHUNK_SIZE;
		return NULL;
	}
	if (S_ISLNK(inode->type)) {
		if (!inode->u.target || strlen(inode->u.target) != inode->size)
			return "symlink target length differs from its size";
		if (mfs_symlink_charged(inode))
			*space += MFS_CHUNK_SIZE;
		return NULL;
	}
	if (!S_ISDIR(inode->type))
		return NULL;
	if (mfs_dir_check(&inode->u.dir->entries, &why))
		return why;
	if (inode->nlink == 0 && mfs_dir_count(&inode->u.dir->entries))
		return "removed directory still has entries";
	struct link_count *self = count_for(counts, inode, oom);
	for (struct mfs_dirent *e = mfs_dir_next(&inode->u.dir->entries, 0); e;
	     e = mfs_dir_after(e)) {
		if (mfs_dirent_is_stub(e)) {
			if (!inode->ovl)
				return "a directory not from lower holds a stub";
			if (e->stub_layer >= fs->nlayers || !(inode->ovl->layers >> e->stub_layer & 1))
				return "stub names a layer its directory does not merge";
			if (e->stub_ino >= fs->next_ino || mfs_inode_get(fs, e->stub_ino))
				return "stub's inode number is not its own";
			if (self && S_ISDIR(mfs_dirent_stub_mode(e)))
				self->subdirs++;
			continue;
		}
		struct link_count *c = count_for(counts, e->inode, oom);
		if (!c || !self)
			return NULL;
		if (mfs_inode_get(fs, e->inode->ino) != e->inode)
			return "directory entry names an inode missing from the table";
		c->names++;
		if (S_ISDIR(e->inode->type)) {
			self->subdirs++;
			if (e->inode->u.dir->parent != inode)
				return "subdirectory's parent pointer is wrong";
		}
	}
	return NULL;
}

int mfs_check(struct mfs_fs *fs, const char **why)
{
	struct link_count *counts = NULL, *c, *tmp;
	struct mfs_inode *inode;
	uint64_t space = 0, n = 0, walked = 0;
	const char *bad = NULL;
	int oom = 0;

	ns_write(fs);
	for (uint64_t i = 0; (inode = mfs_itable_next(&fs->table, &i));) {
		walked++;
		if (!bad && mfs_itable_find(&fs->table, inode->ino) != inode)
			bad = "inode table walk and lookup disagree";
		n += mfs_inode_charge_due(inode);
		if (!bad)
			bad = check_inode(fs, inode, &counts, &space, &oom);
	}
	if (!bad && walked != fs->table.count)
		bad = "inode table count differs from its walk";
	if (!bad && n != fs->ninodes)
		bad = "inode counter differs from what the inodes are charged";
	if (!bad && fs->ninodes > fs->max_inodes)
		bad = "more inodes than nr_inodes";
	if (!bad && !oom && space != mfs_space_used(&fs->space))
		bad = "space counter differs from the chunks held";
	for (uint64_t i = 0; !bad && !oom && (inode = mfs_itable_next(&fs->table, &i));) {
		HASH_FIND_PTR(counts, &inode, c);
		uint64_t names = c ? c->names : 0, subdirs = c ? c->subdirs : 0;
		if (S_ISDIR(inode->type)) {
			uint64_t want = inode->nlink ? 2 + subdirs : 0;
			if (inode == fs->root ? inode->nlink != 2 + subdirs : inode->nlink != want)
				bad = "directory link count is not 2 + subdirectories";
			else if (inode != fs->root && names != (inode->nlink ? 1 : 0))
				bad = "directory has a name count other than one";
		} else if (names + (inode->ovl && inode->ovl->hl ? inode->ovl->hl->unlisted : 0) !=
			   inode->nlink) {
			bad = "link count differs from the names in the tree";
		}
	}
	HASH_ITER(hh, counts, c, tmp) {
		HASH_DEL(counts, c);
		mfs_free(c);
	}
	ns_unlock(fs);
	if (why)
		*why = bad;
	return bad ? -EUCLEAN : 0;
}
