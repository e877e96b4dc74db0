/*
 * inode.h — the core's private types: the filesystem object and an inode.
 * Only core files include this; the rest of the world sees fs.h.
 */
#ifndef MFS_INODE_H
#define MFS_INODE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "copyup.h"
#include "data.h"
#include "dir.h"
#include "fs.h"
#include "itable.h"
#include "overlay.h"
#include "space.h"
#include "uthash_cfg.h"
#include "xattr.h"

/* tmpfs reports directory sizes in these units: 2 for "." and "..", 1 per entry. */
#define MFS_BOGO_DIRENT_SIZE 20
/* tmpfs keeps symlink targets up to this long inside the inode (no block). */
#define MFS_SHORT_SYMLINK_LEN 128

/*
 * A timestamp in 12 bytes: a struct timespec takes 16 with its padding and
 * every inode has four (with them the inode fits malloc's 128-byte class).
 * Read and written whole through mfs_time_get() / mfs_time_set().
 */
struct mfs_time {
	int64_t sec;
	uint32_t nsec;
} __attribute__((packed, aligned(4)));

static inline struct timespec mfs_time_get(const struct mfs_time *t)
{
	return (struct timespec){.tv_sec = (time_t)t->sec, .tv_nsec = (long)t->nsec};
}

static inline void mfs_time_set(struct mfs_time *t, struct timespec ts)
{
	t->sec = (int64_t)ts.tv_sec;
	t->nsec = (uint32_t)ts.tv_nsec;
}

struct mfs_inode {
	uint64_t ino; /* FUSE node id and st_ino; never reused; key of fs->table */

	mode_t mode; /* type and permission bits */
	uid_t uid;
	gid_t gid;
	/* Names in the tree; for a directory 2 + subdirectories while linked,
	 * 0 once removed.  Changed only under the namespace write lock. */
	uint32_t nlink;
	/* Units of nr_inodes this inode holds now (mfs_inode_recharge). */
	uint32_t charge;
	_Atomic uint32_t nopen; /* open handles */
	/* The S_IFMT bits of mode (they fit 16 bits), set once at creation:
	 * read without the inode lock (setattr rewrites mode under it). */
	uint16_t type;
	/* It has had no name and no open handle at some point: nothing can
	 * reach it again but the kernel's references, and it no longer
	 * counts against nr_inodes (ns write lock).  (Next to the 32-bit
	 * counts, not between 64-bit fields: no padding.) */
	bool orphaned;
	/* References the kernel (the core's caller) holds; the inode is freed
	 * when this, nlink and nopen are all zero.  32 bits, saturating
	 * (mfs_inode_ref): it fills the word after the flag above. */
	_Atomic uint32_t nlookup;
	uint64_t size;          /* regular files and symlinks; dirs compute theirs */
	struct mfs_time atime, mtime, ctime, btime;
	struct mfs_xattrs xattrs;
	struct mfs_ovl *ovl; /* what it came from in a lower layer, or NULL */

	union {
		struct mfs_data data;	 /* S_IFREG */
		struct mfs_dirnode *dir; /* S_IFDIR: allocated apart, files need no room for it */
		char *target;		 /* S_IFLNK: NUL-terminated, size bytes */
		dev_t rdev;		 /* S_IFCHR, S_IFBLK: the device (mfs_inode_rdev) */
	} u;
};

/* What a directory inode holds besides the common fields. */
struct mfs_dirnode {
	struct mfs_dir entries;
	/* The directory holding this one ("..").  Valid while nlink > 0; the
	 * root is its own parent. */
	struct mfs_inode *parent;
};

/* Inode locks are striped: an inode's is one of these, chosen by its number. */
#define MFS_ILOCK_BITS 10
#define MFS_ILOCKS (1u << MFS_ILOCK_BITS)

struct mfs_fs {
	pthread_rwlock_t ns_lock;  /* the namespace and the table (fs.h, level 1) */
	struct mfs_itable table;   /* every live inode, by ino */
	struct mfs_inode *root;
	uint64_t next_ino;         /* next number to hand out (stubs get theirs too) */
	/* Sum of every inode's charge: what counts against nr_inodes (ns
	 * write lock). */
	uint64_t ninodes;
	uint64_t max_inodes;       /* nr_inodes= */
	_Atomic uint64_t inodes_freed; /* ever; only grows (mfs_freed_units) */
	bool opens_untracked;      /* mfs_fs_opens_untracked: nopen says nothing */
	struct mfs_space space;    /* file contents against size= */
	/* contents, size, attributes and xattrs of the inodes whose numbers
	 * hash to each (fs.h, level 2) */
	pthread_rwlock_t ilocks[MFS_ILOCKS];

	/* Lower layers (overlay.h), topmost first; immutable after mfs_fs_new. */
	struct mfs_lower **layers;
	unsigned nlayers;
	int lower_uid_set, lower_gid_set;
	uid_t lower_uid;
	gid_t lower_gid;
	struct mfs_hardlink *links; /* lower inodes with several names (ns write lock) */
	struct mfs_maps maps;       /* lower mappings (copyup.h) */
};

/* inode.c */
void mfs_now(struct timespec *ts);

static inline void mfs_time_now(struct mfs_time *t)
{
	struct timespec ts;

	mfs_now(&ts);
	mfs_time_set(t, ts);
}
struct mfs_inode *mfs_inode_get(struct mfs_fs *fs, uint64_t ino);
int mfs_inode_new(struct mfs_fs *fs, const struct mfs_cred *cred, struct mfs_inode *parent,
		  mode_t mode, struct mfs_inode **out);
void mfs_inode_free(struct mfs_fs *fs, struct mfs_inode *inode);
void mfs_inode_release(struct mfs_fs *fs, struct mfs_inode *inode);
void mfs_inode_maybe_free(struct mfs_fs *fs, struct mfs_inode *inode);
void mfs_inode_fill(const struct mfs_inode *inode, struct mfs_attr *out);
void mfs_inode_fill_locked(struct mfs_fs *fs, struct mfs_inode *inode, struct mfs_attr *out);
void mfs_inode_kill_priv(struct mfs_inode *inode);
uint32_t mfs_inode_charge_due(const struct mfs_inode *inode);
void mfs_inode_recharge(struct mfs_fs *fs, struct mfs_inode *inode);
int mfs_inode_add_table(struct mfs_fs *fs, struct mfs_inode *inode);
int mfs_inode_init_fields(struct mfs_inode *inode, mode_t mode);
void mfs_inode_discard(struct mfs_inode *inode);
int mfs_check_name(const char *name, size_t *len);
void mfs_file_truncate(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t size);

/* A symlink target over MFS_SHORT_SYMLINK_LEN takes a chunk of size=, as on
 * tmpfs, unless it came from lower (then it is not memfs's to count). */
static inline int mfs_symlink_charged(const struct mfs_inode *i)
{
	return i->size > MFS_SHORT_SYMLINK_LEN && !i->ovl;
}

static inline int mfs_is_dir(const struct mfs_inode *i)
{
	return S_ISDIR(i->type);
}

static inline int mfs_is_reg(const struct mfs_inode *i)
{
	return S_ISREG(i->type);
}

/*
 * One more reference from the kernel (a reply that carries an entry).  The
 * count stops at UINT32_MAX instead of wrapping: an inode the kernel looked
 * up four billion times without a FORGET then stays for good (its memory,
 * no harm), where a wrapped count would free it under the kernel's feet.
 */
static inline void mfs_inode_ref(struct mfs_inode *inode)
{
	uint32_t n = atomic_load_explicit(&inode->nlookup, memory_order_relaxed);

	while (n != UINT32_MAX && !atomic_compare_exchange_weak(&inode->nlookup, &n, n + 1))
		;
}

/* st_rdev: the device of a device node, 0 for every other type. */
static inline dev_t mfs_inode_rdev(const struct mfs_inode *i)
{
	return S_ISCHR(i->type) || S_ISBLK(i->type) ? i->u.rdev : 0;
}

/* The lock of an inode's contents and attributes (fs.h, level 2). */
static inline pthread_rwlock_t *mfs_ilock(struct mfs_fs *fs, const struct mfs_inode *inode)
{
	return &fs->ilocks[mfs_ino_hash(inode->ino) >> (64 - MFS_ILOCK_BITS)];
}

static inline void ilock_read(struct mfs_fs *fs, const struct mfs_inode *inode)
{
	pthread_rwlock_rdlock(mfs_ilock(fs, inode));
}

static inline void ilock_write(struct mfs_fs *fs, const struct mfs_inode *inode)
{
	pthread_rwlock_wrlock(mfs_ilock(fs, inode));
}

static inline void ilock_unlock(struct mfs_fs *fs, const struct mfs_inode *inode)
{
	pthread_rwlock_unlock(mfs_ilock(fs, inode));
}

/* ns_lock helpers: every entry point takes exactly one of these. */
static inline void ns_read(struct mfs_fs *fs)
{
	pthread_rwlock_rdlock(&fs->ns_lock);
}

static inline void ns_write(struct mfs_fs *fs)
{
	pthread_rwlock_wrlock(&fs->ns_lock);
}

static inline void ns_unlock(struct mfs_fs *fs)
{
	pthread_rwlock_unlock(&fs->ns_lock);
}

#endif
