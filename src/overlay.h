/*
 * overlay.h — the in-memory tree laid over read-only lower layers.
 *
 * With -o lower=DIR[:DIR2...] the tree starts as the merge of the lower
 * directories (layer 0 on top) and every change lands in memory; nothing is
 * ever written to a lower layer.  The pieces:
 *
 *  - Listing.  A lower directory is read once, when its inode is made (the
 *    root at mount, any other when it is first looked up), and its merged
 *    entries go into the memory directory as stubs (dir.h): a name, a file
 *    type, the layer it comes from and the inode number it will have.
 *    From then on the directory lives in memory like any other; the lower
 *    layers are read again only for the contents and attributes of entries.
 *  - Stubs become inodes when looked up: one lstat of the lower entry (a
 *    readlink for a symlink, a listing for a directory) fills a full inode
 *    with the stub's number, so readdir's d_ino is the st_ino a later stat
 *    shows.  Inodes from lower are never demoted back to stubs: a number
 *    once shown stays the file's for the life of the mount.
 *  - Whiteouts and opaque directories need no marker: a removed lower name
 *    is simply no longer in its (already listed) memory directory, for every
 *    layer at once, and a directory made by mkdir has no lower source, so
 *    nothing shows through it.  No name, file or xattr is reserved.
 *  - Merging.  For a name, the topmost layer holding it decides its type.
 *    A directory merges every lower layer below it that also has a
 *    directory there, down to the first layer that has a non-directory of
 *    that name (which hides the rest, as in overlayfs).
 *  - Hard links.  Lower non-directories with st_nlink > 1 are full inodes
 *    from the first listing that meets them, found again by (st_dev,
 *    st_ino) in fs->links, so every listed name of one lower inode is one
 *    memfs inode.  nlink starts at the lower st_nlink; names of it in
 *    directories not listed yet are counted in `unlisted`, so the
 *    consistency check can still count every name.
 *  - Attributes and xattrs: copied into the inode when it is made (xattrs
 *    lazily, on the first xattr request) and changed in memory only:
 *    chmod, chown, utimens and xattr changes never touch data.
 *  - Contents of regular files: copyup.h.
 *
 * Accounting: an inode that came from lower is not charged against
 * nr_inodes, except for links added to it beyond the ones it came with;
 * lower bytes are not charged against size=.  A lower layer that changes
 * underneath is read as it is when first reached; a lower entry removed
 * underneath gives ENOENT (or EIO for a changed type) for that entry only.
 *
 * Locks: the functions named *_locked run under the namespace write lock;
 * mfs_ovl_prepare takes the locks itself and does its lower I/O without
 * holding any, so a long listing never stalls the rest of the filesystem.
 */
#ifndef MFS_OVERLAY_H
#define MFS_OVERLAY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lower.h"
#include "uthash_cfg.h"

/* Most lower layers in one mount (a directory's layers are a 64-bit mask). */
#define MFS_MAX_LAYERS 64

struct mfs_fs;
struct mfs_inode;
struct mfs_dirent;
struct mfs_map;

/* Chunks [first, end) of a lower file where the lower bytes never show. */
struct mfs_chunk_range {
	uint64_t first, end;
};

/* A lower inode with several names, found by its lower identity (fs->links). */
struct mfs_hardlink {
	UT_hash_handle hh;
	struct {
		dev_t dev;
		ino_t ino;
	} key;
	struct mfs_inode *inode;
	/* Lower names of it not listed yet: nlink = names in the tree + this. */
	uint32_t unlisted;
};

/* What an inode from a lower layer remembers of it (inode->ovl). */
struct mfs_ovl {
	/* Path below the layer roots where it was found ("" for the root);
	 * kept across renames: it names the lower source, not the name. */
	char *relpath;
	/* Directories: bit i set for every layer merged into it.  Others: the
	 * bit of `layer`. */
	uint64_t layers;
	uint8_t layer;	     /* topmost layer holding it: attributes, xattrs, contents */
	bool xattrs_loaded;  /* lower xattrs copied into inode->xattrs (inode lock) */
	uint32_t base_links; /* links it came with; more are charged as inodes */
	struct mfs_hardlink *hl; /* in fs->links, or NULL */

	/*
	 * Regular files (copyup.h).  Lower bytes show below `end` (<= the
	 * file size) in chunks with no memory chunk of their own and outside
	 * `masks`.  Changed under the inode's write lock.
	 */
	uint64_t end;
	struct mfs_chunk_range *masks; /* sorted, disjoint, not adjacent */
	size_t nmasks, masks_cap;
	struct mfs_map *map; /* the lower file's mapping, if any (fs->maps.lock) */
};

/* The lower mappings in use, most recently used first, at most max of them. */
struct mfs_maps {
	pthread_mutex_t lock; /* innermost lock: guards the list and every ovl->map */
	struct mfs_map *head, *tail;
	unsigned count, max;
};

/*
 * Set up the layers given to mfs_fs_new (fs->layers): the root merges every
 * layer and is listed now.  0, or -errno from the listing.
 */
int mfs_ovl_setup(struct mfs_fs *fs);

/* Free every hard-link record, the mappings and close the layers (teardown). */
void mfs_ovl_teardown(struct mfs_fs *fs);

/*
 * Make sure parent/name is not a stub: if it is, turn it into an inode
 * (one lower lstat, and a listing for a directory).  A stub whose lower
 * entry was removed underneath is dropped: the name is then free, as if it
 * had never been listed.  0 also when parent or name do not exist or are
 * not from lower; -EIO / -EACCES / -ENOMEM when the lower entry cannot be
 * read (the stub stays).  Takes and drops the namespace lock itself: call
 * it before the operation takes its own.
 */
int mfs_ovl_prepare(struct mfs_fs *fs, uint64_t parent, const char *name);

/*
 * The same with the namespace write lock held (does its lower I/O under
 * it), for the stub e of dir; -ENOENT when e was dropped (e is freed).
 */
int mfs_ovl_resolve_locked(struct mfs_fs *fs, struct mfs_inode *dir, struct mfs_dirent *e);

/*
 * Copy the lower xattrs of inode into inode->xattrs, once.  Inode
 * write-locked.  Names outside the namespaces memfs offers (xattr.h) are
 * skipped.  0 or -errno (the lower entry is gone, -ENOMEM).
 */
int mfs_ovl_load_xattrs(struct mfs_fs *fs, struct mfs_inode *inode);

/*
 * The inode has no name left: a name of its lower inode found by a later
 * listing (more names than lower counted) is then a new inode, not this
 * one.  ns write lock held.
 */
void mfs_ovl_unlink_hardlink(struct mfs_fs *fs, struct mfs_inode *inode);

/* Release what inode->ovl holds (hard-link record, mapping, masks, path). */
void mfs_ovl_free(struct mfs_fs *fs, struct mfs_inode *inode);

#endif
