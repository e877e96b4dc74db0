/*
 * itable.h — every live inode by number.
 *
 * Inode numbers come from a counter, so the table is a radix tree indexed
 * by number (64 slots a node, like a file's chunk map in data.c) rather
 * than a hash: about 8 bytes per inode where numbers are dense, nothing
 * for ranges with no inode (the numbers of lower stubs, freed inodes), and
 * no handle inside each inode (uthash's took 56 bytes).
 *
 * Not thread-safe: the caller holds the namespace lock (fs.h): write mode
 * to add or remove, either mode to find or walk.
 */
#ifndef MFS_ITABLE_H
#define MFS_ITABLE_H

#include <stddef.h>
#include <stdint.h>

struct mfs_inode;

struct mfs_itable {
	void *root;	 /* opaque nodes */
	unsigned height; /* levels; 0 = empty */
	size_t count;	 /* inodes held */
};

/* Fibonacci hashing of an inode number (picks its lock stripe, inode.h). */
static inline uint64_t mfs_ino_hash(uint64_t ino)
{
	return ino * 0x9e3779b97f4a7c15ull;
}

void mfs_itable_init(struct mfs_itable *t);
/* Free the table itself (not the inodes). */
void mfs_itable_free(struct mfs_itable *t);
struct mfs_inode *mfs_itable_find(const struct mfs_itable *t, uint64_t ino);
/* Add an inode whose number is not in the table.  0, or -ENOMEM (not added). */
int mfs_itable_add(struct mfs_itable *t, struct mfs_inode *inode);
/* Remove an inode that is in the table.  Never fails. */
void mfs_itable_remove(struct mfs_itable *t, struct mfs_inode *inode);
/*
 * The inode with the smallest number >= *ino, or NULL; *ino is then set
 * past it.  Walk: for (uint64_t i = 0; (inode = mfs_itable_next(t, &i));)
 * (no adds or removes meanwhile).
 */
struct mfs_inode *mfs_itable_next(const struct mfs_itable *t, uint64_t *ino);

#endif
