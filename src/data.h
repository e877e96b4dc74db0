/*
 * data.h — the contents of one regular file: a sparse map of chunks.
 *
 * A file's bytes are cut into chunks of MFS_CHUNK_SIZE, held in a radix tree
 * indexed by chunk number (offset >> MFS_CHUNK_SHIFT).  An absent chunk is a
 * hole: it reads as zeros and costs no memory, so a 1 TiB file with three
 * small writes holds three chunks, and appending never moves existing chunks.
 *
 * A chunk's buffer may be shorter than MFS_CHUNK_SIZE ("cap"): bytes past cap
 * read as zeros.  A buffer is allocated with the smallest power of two
 * (at least 64 bytes) that holds what was written into it and grows by
 * doubling up to MFS_CHUNK_SIZE, so the tail of a small file costs about its
 * size in memory; a file of one chunk (up to 4 KiB) has no tree node.
 *
 * Accounting follows tmpfs pages: every present chunk, whatever its cap,
 * reserves MFS_CHUNK_SIZE bytes of the mfs_space budget before it is
 * allocated and gives them back when freed; st_blocks is
 * nchunks * (MFS_CHUNK_SIZE / 512).
 *
 * Chunks made by mfs_data_allocate() (fallocate) and not written since are
 * "unwritten": allocated and counted, read as zeros, and treated as holes by
 * SEEK_DATA / SEEK_HOLE (as tmpfs treats fallocated pages).
 *
 * The file size is not stored here; the inode owns it and passes it in where
 * it matters.  Invariant kept by the callers: no chunk holds a nonzero byte
 * at or past the file size (truncate zeroes/frees past the new size).
 *
 * Not thread-safe: the caller holds the inode's lock.  Errors are negative
 * errno values.  Nothing here recurses more deeply than the tree height
 * (at most 9 levels for 2^63 bytes).
 */
#ifndef MFS_DATA_H
#define MFS_DATA_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "space.h"

#define MFS_CHUNK_SHIFT 12
#define MFS_CHUNK_SIZE (1u << MFS_CHUNK_SHIFT)
/* Largest file offset + 1 (as Linux MAX_LFS_FILESIZE). */
#define MFS_MAX_FILE_SIZE ((uint64_t)INT64_MAX)

struct mfs_data {
	/* The radix tree's root (opaque to users; it also holds the tree's
	 * height and chunk count, so that an inode's union stays 8 bytes), or
	 * the file's only chunk if that is chunk 0, with no node at all. */
	void *root;
};

void mfs_data_init(struct mfs_data *d);

/* Free every chunk and node, giving their space back. */
void mfs_data_free(struct mfs_data *d, struct mfs_space *sp);

/* Chunks present (each counts MFS_CHUNK_SIZE). */
uint64_t mfs_data_chunks(const struct mfs_data *d);
/* Levels of the tree, 0 when it is empty (for mfs_data_check's tests). */
unsigned mfs_data_height(const struct mfs_data *d);

/* 512-byte blocks held, for st_blocks. */
static inline uint64_t mfs_data_blocks(const struct mfs_data *d)
{
	return mfs_data_chunks(d) * (MFS_CHUNK_SIZE / 512);
}

/*
 * Number of iovec entries that mfs_data_read_iov / mfs_data_write_iov may
 * need for a range of len bytes starting at off.
 */
static inline int mfs_data_iov_max(uint64_t off, size_t len)
{
	return (int)(((off & (MFS_CHUNK_SIZE - 1)) + len) / MFS_CHUNK_SIZE + 2);
}

/*
 * Describe [off, off+len) for reading without copying: fills iov with
 * pointers into chunk memory, or into a shared read-only zero page for holes
 * and for the part of a chunk past its cap.  Adjacent pieces are not merged.
 * The caller has clamped len to the file size.  Returns the number of
 * entries used (<= max_iov, which must be >= mfs_data_iov_max(off, len)),
 * or -EINVAL if max_iov is too small.  The pointers stay valid while the
 * caller holds the inode lock.
 */
int mfs_data_read_iov(const struct mfs_data *d, uint64_t off, size_t len, struct iovec *iov,
		      int max_iov);

/* Copy [off, off+len) into buf (holes as zeros).  The caller clamps len. */
void mfs_data_read(const struct mfs_data *d, uint64_t off, void *buf, size_t len);

/*
 * Make [off, off+len) writable: allocate or grow the chunks it covers and
 * fill iov with pointers to exactly those bytes, in order, so the caller
 * copies the data in once.  Chunks written become "written" (no longer
 * unwritten).  Returns the number of entries, or -ENOSPC (budget), -ENOMEM,
 * -EFBIG (off + len > MFS_MAX_FILE_SIZE), -EINVAL (max_iov too small).  On
 * error no space is leaked; chunks already made stay, filled with zeros,
 * which changes nothing visible.
 */
int mfs_data_write_iov(struct mfs_data *d, struct mfs_space *sp, uint64_t off, size_t len,
		       struct iovec *iov, int max_iov);

/* mfs_data_write_iov + memcpy from buf.  0 or -errno as above. */
int mfs_data_write(struct mfs_data *d, struct mfs_space *sp, uint64_t off, const void *buf,
		   size_t len);

/*
 * The file shrinks or grows to new_size: chunks wholly at or past new_size
 * are freed; in the chunk holding new_size, bytes from new_size on are zeroed
 * (the buffer may shrink).  Growing allocates nothing.
 */
void mfs_data_truncate(struct mfs_data *d, struct mfs_space *sp, uint64_t new_size);

/*
 * Deallocate [off, off+len) (FALLOC_FL_PUNCH_HOLE): chunks wholly inside are
 * freed, partial ones zeroed over the range.  Never fails.
 */
void mfs_data_punch(struct mfs_data *d, struct mfs_space *sp, uint64_t off, uint64_t len);

/*
 * Reserve [off, off+len) (fallocate mode 0 / KEEP_SIZE): every hole chunk in
 * the range gets a zeroed, unwritten chunk.  All or nothing: on -ENOSPC or
 * -ENOMEM the chunks this call added are freed again.  -EFBIG past
 * MFS_MAX_FILE_SIZE.
 */
int mfs_data_allocate(struct mfs_data *d, struct mfs_space *sp, uint64_t off, uint64_t len);

/*
 * FALLOC_FL_ZERO_RANGE: afterwards [off, off+len) reads as zeros and is
 * allocated (chunks wholly inside become unwritten, partial ones are zeroed
 * over the range).  -ENOSPC / -ENOMEM / -EFBIG as mfs_data_allocate; on error
 * the range may be partly zeroed but no space is leaked.
 */
int mfs_data_zero_range(struct mfs_data *d, struct mfs_space *sp, uint64_t off, uint64_t len);

/*
 * lseek SEEK_DATA / SEEK_HOLE (whence) from off in a file of `size` bytes,
 * with tmpfs's answers: data is any present, written chunk; the end of the
 * file is a hole.  Returns the offset, or -ENXIO if off >= size or no data
 * follows off (SEEK_DATA), -EINVAL for another whence.
 */
int64_t mfs_data_seek(const struct mfs_data *d, uint64_t size, uint64_t off, int whence);

/*
 * Copy len bytes from src at src_off to dst at dst_off (copy_file_range).
 * Holes in src stay holes in dst (the destination range is punched there).
 * src and dst may be the same object only if the ranges do not overlap
 * (-EINVAL otherwise).  The caller clamps len to the source size.  -ENOSPC,
 * -ENOMEM, -EFBIG: the destination may be partly written.
 */
int mfs_data_copy(struct mfs_data *dst, struct mfs_space *sp, uint64_t dst_off,
		  const struct mfs_data *src, uint64_t src_off, uint64_t len);

/* ---- queries by chunk number (the overlay combines them with a lower file) ---- */

/* What holes read as: MFS_CHUNK_SIZE zero bytes. */
extern const unsigned char mfs_data_zero_page[MFS_CHUNK_SIZE];

/* 1 if chunk idx is present (written or not), else 0. */
int mfs_data_has(const struct mfs_data *d, uint64_t idx);

/* 1 if chunk idx is present and written (data to SEEK_DATA), else 0. */
int mfs_data_is_written(const struct mfs_data *d, uint64_t idx);

/*
 * The first chunk numbered >= idx that is present (written_only: and
 * written): 1 and its number in *found, or 0 if there is none.
 */
int mfs_data_next(const struct mfs_data *d, uint64_t idx, int written_only, uint64_t *found);

/* Number of present chunks numbered in [from, to).  O(leaves in the range). */
uint64_t mfs_data_count(const struct mfs_data *d, uint64_t from, uint64_t to);

/*
 * Check the tree's invariants (counts in every node, nchunks, heights).
 * Returns 0, or -EUCLEAN and a description in why (may be NULL).
 */
int mfs_data_check(const struct mfs_data *d, const char **why);

#endif
