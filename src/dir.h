/*
 * dir.h — the entries of one directory.
 *
 * Two views of the same entries:
 *  - by name: a uthash table, so lookup, add and remove cost O(1) whatever
 *    the directory's size;
 *  - by position: every entry gets a readdir position when it is added
 *    (pos, strictly increasing within the directory, never reused).  New
 *    entries go to the end of uthash's insertion-order list, so that list
 *    is in position order: a listing walks it.  A readdir cursor is just
 *    the last position returned: continuing finds the first entry with a
 *    larger position, so an entry that exists for a whole listing is
 *    returned exactly once, and a cursor stays valid when other entries
 *    (even the one it points at) are removed.  To find a position without
 *    walking from the start, a small pos-ordered array of marks points at
 *    about every MFS_DIR_MARK_EVERY-th entry: a search in it, then at most
 *    that many steps along the list.
 *
 * Positions 1 and 2 are reserved for "." and "..", which are not stored;
 * stored entries start at MFS_DIR_FIRST_POS.
 *
 * An entry is either real (it points at its inode) or a stub: a name listed
 * from a lower layer that nobody has looked up yet (overlay.c).  A stub has
 * no inode, only the number its inode will get, its file type and the
 * lower layer it comes from, so a listed lower entry costs no more than an
 * entry.
 *
 * Not thread-safe: the caller holds the locks fs.h describes.  Entries point
 * at inodes but never own or free them.
 */
#ifndef MFS_DIR_H
#define MFS_DIR_H

#include <stddef.h>
#include <stdint.h>

#include "uthash_cfg.h"

#define MFS_DIR_FIRST_POS 3
#define MFS_NAME_MAX 255

struct mfs_inode;

struct mfs_dirent {
	UT_hash_handle hh; /* by-name table; key is name[0..namelen) */
	union {
		struct mfs_inode *inode; /* real entry: its inode (not owned) */
		uint64_t stub_ino;       /* stub: the number its inode will have */
	};
	/* Its readdir position: unique in its directory, never reused there.
	 * 76 bytes come before the name: an entry with a name of up to 11
	 * bytes fits malloc's 96-byte class. */
	uint64_t pos;
	uint16_t namelen;   /* 1..MFS_NAME_MAX */
	uint8_t stub_type;  /* 0: real entry; stub: its S_IFMT >> 12 (never 0) */
	uint8_t stub_layer; /* stub: index of the topmost lower layer holding it */
	char name[];        /* NUL-terminated */
};

static inline int mfs_dirent_is_stub(const struct mfs_dirent *e)
{
	return e->stub_type != 0;
}

/* The S_IFMT bits of a stub. */
static inline unsigned mfs_dirent_stub_mode(const struct mfs_dirent *e)
{
	return (unsigned)e->stub_type << 12;
}

/* A stub becomes a real entry of inode (its inode number must be stub_ino). */
static inline void mfs_dirent_set_inode(struct mfs_dirent *e, struct mfs_inode *inode)
{
	e->inode = inode;
	e->stub_type = 0;
	e->stub_layer = 0;
}

/* At most this many steps along the list lead from a mark to any entry before the next mark. */
#define MFS_DIR_MARK_EVERY 32

/* An entry a search for a position may start from (dir.c). */
struct mfs_dirmark {
	uint64_t pos;		  /* the entry's */
	struct mfs_dirent *entry; /* live; two marks may name the same entry */
};

struct mfs_dir {
	struct mfs_dirent *by_name; /* uthash head: the entry with the smallest position */
	struct mfs_dirmark *marks;  /* pos-ordered; marks[0] names the head */
	size_t nmarks;		    /* marks used */
	size_t cap;		    /* marks allocated */
	size_t nlive;		    /* live entries */
	uint64_t next_pos;	    /* position the next entry gets */
	unsigned since_mark;	    /* entries added since the last mark went to the end */
};

void mfs_dir_init(struct mfs_dir *dir);

/* Free every entry (not the inodes they point at) and the index. */
void mfs_dir_free(struct mfs_dir *dir);

static inline size_t mfs_dir_count(const struct mfs_dir *dir)
{
	return dir->nlive;
}

/* The entry called name (namelen bytes, no NUL needed), or NULL. */
struct mfs_dirent *mfs_dir_find(const struct mfs_dir *dir, const char *name, size_t namelen);

/*
 * Add an entry name -> inode at the next position.  The caller has checked
 * that the name is absent and 1..MFS_NAME_MAX bytes long.  Returns 0 and the
 * entry in *out (may be NULL), or -ENOMEM with the directory unchanged.
 */
int mfs_dir_add(struct mfs_dir *dir, const char *name, size_t namelen, struct mfs_inode *inode,
		struct mfs_dirent **out);

/*
 * Add a stub name -> (ino, type, layer), as mfs_dir_add; type is the S_IFMT
 * bits of a file type (not 0).
 */
int mfs_dir_add_stub(struct mfs_dir *dir, const char *name, size_t namelen, uint64_t ino,
		     unsigned type, unsigned layer, struct mfs_dirent **out);

/* Remove and free an entry of this directory.  Never fails. */
void mfs_dir_remove(struct mfs_dir *dir, struct mfs_dirent *entry);

/*
 * The live entry with the smallest position greater than pos, or NULL at the
 * end.  O(log n) plus at most MFS_DIR_MARK_EVERY steps: where a listing
 * resumes at a position.
 */
struct mfs_dirent *mfs_dir_next(const struct mfs_dir *dir, uint64_t pos);

/*
 * The live entry after e, or NULL at the end: what mfs_dir_next(dir, e->pos)
 * returns for e's directory, one step along the list, so a whole listing
 * costs O(n).
 */
struct mfs_dirent *mfs_dir_after(const struct mfs_dirent *e);

/* Check both views agree.  0, or -EUCLEAN with a description in why. */
int mfs_dir_check(const struct mfs_dir *dir, const char **why);

#endif
