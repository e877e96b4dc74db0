/*
 * copyup.h — the contents of a regular file that came from a lower layer.
 *
 * Such a file's bytes come from two places, chunk by chunk (MFS_CHUNK_SIZE):
 *  - a memory chunk of its own (inode->u.data, data.h) wins where present;
 *  - otherwise, below ovl->end and outside ovl->masks, the lower file,
 *    read straight from an mmap of it and never copied to be read;
 *  - anything else is a hole.
 * So writing one byte into a 10 GiB lower file copies one chunk ("copy-up"
 * per chunk), truncating lowers `end` without reading anything, and
 * punching a hole masks whole chunks (the partial chunks at its edges are
 * copied up first, then punched like any memory chunk).  Every operation
 * that would make a memory chunk over lower bytes copies that chunk up
 * first, so a memory chunk always holds the chunk's whole truth.
 *
 * Mappings: a lower file is mapped on its first open and unmapped when its
 * last handle closes; at most fs->maps.max mappings exist at once (the least
 * recently used one is dropped, and mapped again if read again).  A mapping
 * is reference-counted, so it stays valid while a reader replies from it
 * even if it is dropped meanwhile.
 *
 * A lower file truncated underneath while mapped: the reply from the
 * mapping fails inside the kernel (the reader gets EIO, lower.h), and a
 * copy-up or a copy through mfs_copyup_copy_out gets -EIO; the daemon never
 * takes a fatal SIGBUS.
 *
 * Accounting: lower bytes are not charged against size=; st_blocks counts
 * the memory chunks and the chunks still read from lower.  SEEK_DATA /
 * SEEK_HOLE see every chunk read from lower as data (holes in the lower
 * file itself are not looked for).
 *
 * All functions take the inode's lock as noted (fs.h level 2) and may take
 * fs->maps.lock inside it.  Errors are negative errno values.
 */
#ifndef MFS_COPYUP_H
#define MFS_COPYUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

struct mfs_fs;
struct mfs_inode;
struct mfs_map;

/* Whether any lower bytes can still show in this regular file. */
bool mfs_copyup_active(const struct mfs_inode *inode);

/* Map the lower file if it has lower bytes (open).  Inode locked (either mode). */
int mfs_copyup_open(struct mfs_fs *fs, struct mfs_inode *inode);
/* Drop the mapping (last close, or the inode is freed). */
void mfs_copyup_close(struct mfs_fs *fs, struct mfs_inode *inode);

/* iovec entries mfs_copyup_read_iov may need for [off, off+len). */
int mfs_copyup_iov_max(uint64_t off, size_t len);

/*
 * Describe [off, off+len) (clamped to the size by the caller) as an iovec:
 * memory chunks, windows of the lower mapping, the zero page.  *held gets
 * the mapping the iovec points into (NULL if none), which the caller puts
 * back with mfs_copyup_put once done with the iovec.  Returns the number of
 * entries, or -EIO (the lower file is shorter than it was), -ENOENT (gone),
 * -ENOMEM.  Inode read-locked.
 */
int mfs_copyup_read_iov(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t off, size_t len,
			struct iovec *iov, int max_iov, struct mfs_map **held);
void mfs_copyup_put(struct mfs_fs *fs, struct mfs_map *map);

/*
 * Copy up every chunk in [off, off+len) that still reads from lower (all:
 * true) or only the first and last chunks if the range covers them partly
 * (all: false).  Returns 0, or -ENOSPC / -ENOMEM / -EIO with *done_chunks
 * (may be NULL) set to the chunks from off's chunk on that are in memory
 * now.  Inode write-locked.
 */
int mfs_copyup_range(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t off, uint64_t len,
		     bool all, uint64_t *done_chunks);

/* The file is cut to size: lower bytes stop there.  Inode write-locked. */
void mfs_copyup_truncate(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t size);

/*
 * Lower bytes stop showing in the chunks wholly inside [off, off+len)
 * (PUNCH_HOLE; the caller copies up the edges first).  0 or -ENOMEM.
 * Inode write-locked.
 */
int mfs_copyup_mask(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t off, uint64_t len);

/* SEEK_DATA / SEEK_HOLE over memory chunks and lower chunks.  Inode locked. */
int64_t mfs_copyup_seek(const struct mfs_inode *inode, uint64_t off, int whence);

/* st_blocks: memory chunks plus chunks read from lower, in 512-byte units. */
uint64_t mfs_copyup_blocks(const struct mfs_inode *inode);

/* Whether chunk idx reads from lower (no memory chunk, below end, not masked). */
bool mfs_copyup_chunk_is_lower(const struct mfs_inode *inode, uint64_t idx);

/*
 * Copy bytes from an iovec that may point into a lower mapping
 * (mfs_copyup_read_iov's) into buf: -EIO instead of a SIGBUS if the lower
 * file was truncated underneath.
 */
int mfs_copyup_copy_out(void *buf, const struct iovec *iov, int n);

/* Set up / free fs->maps (max mappings at once; 0: the default). */
void mfs_maps_init(struct mfs_fs *fs, unsigned max);
void mfs_maps_destroy(struct mfs_fs *fs);

#endif
