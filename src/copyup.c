/*
 * copyup.c — a lower file's contents: read from its mapping until written,
 * copied up one chunk at a time (contract in copyup.h).
 *
 * Which place a chunk's bytes come from is decided by one predicate,
 * chunk_is_lower(): no memory chunk, below ovl->end, not masked.  Reads
 * walk a range in runs of chunks of one kind, so a lower run of any length
 * is one iovec entry pointing into the mapping.
 *
 * Mappings are shared by reference count: the list in fs->maps holds one
 * reference for as long as a mapping is attached to its inode, and every
 * reader holds one while its iovec is in use.  Dropping a mapping (last
 * close, eviction past maps.max) detaches it and gives the list's
 * reference back; the munmap happens when the last reference goes, so a
 * reply in flight never loses its bytes.
 */
#include "copyup.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "inode.h"

#define CHUNK_MASK ((uint64_t)MFS_CHUNK_SIZE - 1)
#define DEFAULT_MAX_MAPS 4096

struct mfs_map {
	struct mfs_lower_map m;
	unsigned refs;		   /* the list's (while attached) + readers' */
	struct mfs_map *prev, *next; /* in fs->maps, most recent first, while attached */
	struct mfs_inode *owner;   /* while attached: owner->ovl->map == this */
};

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static uint64_t chunks_below(uint64_t off)
{
	return (off >> MFS_CHUNK_SHIFT) + ((off & CHUNK_MASK) != 0);
}

bool mfs_copyup_active(const struct mfs_inode *inode)
{
	return inode->ovl && inode->ovl->end > 0 && S_ISREG(inode->type);
}

/* ---- masks: sorted, disjoint, non-adjacent chunk ranges ---- */

/* Index of the first range that ends after idx (nmasks if none). */
static size_t mask_find(const struct mfs_ovl *o, uint64_t idx)
{
	size_t lo = 0, hi = o->nmasks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (o->masks[mid].end <= idx)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool is_masked(const struct mfs_ovl *o, uint64_t idx)
{
	size_t i = mask_find(o, idx);

	return i < o->nmasks && o->masks[i].first <= idx;
}

/* The first masked chunk after idx (which is not masked), or UINT64_MAX. */
static uint64_t next_mask(const struct mfs_ovl *o, uint64_t idx)
{
	size_t i = mask_find(o, idx);

	return i < o->nmasks ? o->masks[i].first : UINT64_MAX;
}

static int mask_add(struct mfs_ovl *o, uint64_t first, uint64_t end)
{
	size_t lo = mask_find(o, first), hi = lo;

	/* ranges touching [first, end) are merged into it */
	if (lo > 0 && o->masks[lo - 1].end == first)
		lo--;
	while (hi < o->nmasks && o->masks[hi].first <= end)
		hi++;
	if (lo < hi) {
		first = min_u64(first, o->masks[lo].first);
		end = max_u64(end, o->masks[hi - 1].end);
	} else if (o->nmasks == o->masks_cap) {
		size_t cap = o->masks_cap ? o->masks_cap * 2 : 4;
		struct mfs_chunk_range *m = mfs_realloc(o->masks, cap * sizeof(*m));
		if (!m)
			return -ENOMEM;
		o->masks = m;
		o->masks_cap = cap;
	}
	/* replace [lo, hi) by the one merged range */
	if (lo == hi) {
		memmove(o->masks + lo + 1, o->masks + lo, (o->nmasks - lo) * sizeof(*o->masks));
		o->nmasks++;
	} else if (hi - lo > 1) {
		memmove(o->masks + lo + 1, o->masks + hi, (o->nmasks - hi) * sizeof(*o->masks));
		o->nmasks -= hi - lo - 1;
	}
	o->masks[lo] = (struct mfs_chunk_range){first, end};
	return 0;
}

/* Keep only the masks below chunk lim. */
static void mask_trim(struct mfs_ovl *o, uint64_t lim)
{
	while (o->nmasks > 0 && o->masks[o->nmasks - 1].first >= lim)
		o->nmasks--;
	if (o->nmasks > 0 && o->masks[o->nmasks - 1].end > lim)
		o->masks[o->nmasks - 1].end = lim;
}

/* ---- which place a chunk reads from ---- */

static bool chunk_is_lower(const struct mfs_inode *inode, uint64_t idx)
{
	const struct mfs_ovl *o = inode->ovl;

	return idx < chunks_below(o->end) && !mfs_data_has(&inode->u.data, idx) &&
	       !is_masked(o, idx);
}

bool mfs_copyup_chunk_is_lower(const struct mfs_inode *inode, uint64_t idx)
{
	return mfs_copyup_active(inode) && chunk_is_lower(inode, idx);
}

/* The end of the run of lower chunks that starts at idx (a lower chunk). */
static uint64_t lower_run_end(const struct mfs_inode *inode, uint64_t idx)
{
	uint64_t end = min_u64(chunks_below(inode->ovl->end), next_mask(inode->ovl, idx)), next;

	if (mfs_data_next(&inode->u.data, idx + 1, 0, &next))
		end = min_u64(end, next);
	return end;
}

/* ---- mappings ---- */

void mfs_maps_init(struct mfs_fs *fs, unsigned max)
{
	memset(&fs->maps, 0, sizeof(fs->maps));
	pthread_mutex_init(&fs->maps.lock, NULL);
	fs->maps.max = max ? max : DEFAULT_MAX_MAPS;
}

void mfs_maps_destroy(struct mfs_fs *fs)
{
	/* every inode has dropped its mapping by now (mfs_ovl_free) */
	pthread_mutex_destroy(&fs->maps.lock);
}

static void map_free(struct mfs_map *m)
{
	mfs_lower_unmap(&m->m);
	mfs_free(m);
}

/* Take m off the list and its inode; returns m if that was its last reference.  maps.lock held. */
static struct mfs_map *detach(struct mfs_maps *ms, struct mfs_map *m)
{
	if (m->prev)
		m->prev->next = m->next;
	else
		ms->head = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		ms->tail = m->prev;
	m->prev = m->next = NULL;
	m->owner->ovl->map = NULL;
	m->owner = NULL;
	ms->count--;
	return --m->refs == 0 ? m : NULL;
}

static void push_front(struct mfs_maps *ms, struct mfs_map *m)
{
	m->prev = NULL;
	m->next = ms->head;
	if (ms->head)
		ms->head->prev = m;
	ms->head = m;
	if (!ms->tail)
		ms->tail = m;
}

static void move_front(struct mfs_maps *ms, struct mfs_map *m)
{
	if (ms->head == m)
		return;
	m->prev->next = m->next;
	if (m->next)
		m->next->prev = m->prev;
	else
		ms->tail = m->prev;
	push_front(ms, m);
}

/* The inode's mapping with a reference for the caller, made if missing. */
static int map_get(struct mfs_fs *fs, struct mfs_inode *inode, struct mfs_map **out)
{
	struct mfs_maps *ms = &fs->maps;
	struct mfs_map *m, *fresh, *dead[2];
	int err, ndead = 0;

	pthread_mutex_lock(&ms->lock);
	m = inode->ovl->map;
	if (m) {
		m->refs++;
		move_front(ms, m);
		pthread_mutex_unlock(&ms->lock);
		*out = m;
		return 0;
	}
	pthread_mutex_unlock(&ms->lock);

	/* map without the lock: mmap may wait on the lower filesystem */
	fresh = mfs_calloc(1, sizeof(*fresh));
	if (!fresh)
		return -ENOMEM;
	err = mfs_lower_map(fs->layers[inode->ovl->layer], inode->ovl->relpath, &fresh->m);
	if (err) {
		mfs_free(fresh);
		/* a file that became something else underneath */
		return err == -EISDIR || err == -EINVAL || err == -ELOOP || err == -ENOTDIR ? -EIO
											    : err;
	}

	pthread_mutex_lock(&ms->lock);
	m = inode->ovl->map;
	if (m) { /* another thread mapped it meanwhile: use that one */
		m->refs++;
		move_front(ms, m);
		dead[ndead++] = fresh;
	} else {
		m = fresh;
		m->refs = 2; /* the list's and the caller's */
		m->owner = inode;
		inode->ovl->map = m;
		push_front(ms, m);
		ms->count++;
		if (ms->count > ms->max && ms->tail != m && (dead[ndead] = detach(ms, ms->tail)))
			ndead++;
	}
	pthread_mutex_unlock(&ms->lock);
	while (ndead > 0)
		map_free(dead[--ndead]);
	*out = m;
	return 0;
}

void mfs_copyup_put(struct mfs_fs *fs, struct mfs_map *m)
{
	bool last;

	if (!m)
		return;
	pthread_mutex_lock(&fs->maps.lock);
	last = --m->refs == 0;
	pthread_mutex_unlock(&fs->maps.lock);
	if (last)
		map_free(m);
}

int mfs_copyup_open(struct mfs_fs *fs, struct mfs_inode *inode)
{
	struct mfs_map *m;
	int err;

	if (!mfs_copyup_active(inode))
		return 0;
	err = map_get(fs, inode, &m);
	if (!err)
		mfs_copyup_put(fs, m);
	return err;
}

void mfs_copyup_close(struct mfs_fs *fs, struct mfs_inode *inode)
{
	struct mfs_map *dead = NULL;

	if (!inode->ovl)
		return;
	pthread_mutex_lock(&fs->maps.lock);
	if (inode->ovl->map)
		dead = detach(&fs->maps, inode->ovl->map);
	pthread_mutex_unlock(&fs->maps.lock);
	if (dead)
		map_free(dead);
}

/* ---- reading ---- */

int mfs_copyup_iov_max(uint64_t off, size_t len)
{
	/* a memory run costs its chunks + 2, a lower run 2, a hole chunk 1 */
	return (int)(3 * (((off & CHUNK_MASK) + len) / MFS_CHUNK_SIZE + 1) + 3);
}

int mfs_copyup_read_iov(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t off, size_t len,
			struct iovec *iov, int max_iov, struct mfs_map **held)
{
	const struct mfs_data *d = &inode->u.data;
	const struct mfs_ovl *o = inode->ovl;
	struct mfs_map *map = NULL;
	uint64_t stop = off + len;
	int n = 0, err = 0;

	*held = NULL;
	if (max_iov < mfs_copyup_iov_max(off, len))
		return -EINVAL;
	while (off < stop) {
		uint64_t idx = off >> MFS_CHUNK_SHIFT, run_end, upto, next;

		if (mfs_data_has(d, idx)) {
			/* a run of memory chunks */
			for (run_end = idx + 1;
			     run_end << MFS_CHUNK_SHIFT < stop && mfs_data_has(d, run_end); run_end++)
				;
			upto = min_u64(stop, run_end << MFS_CHUNK_SHIFT);
			int k = mfs_data_read_iov(d, off, upto - off, iov + n, max_iov - n);
			if (k < 0) {
				err = k;
				break;
			}
			n += k;
		} else if (chunk_is_lower(inode, idx)) {
			upto = min_u64(stop, lower_run_end(inode, idx) << MFS_CHUNK_SHIFT);
			next = min_u64(upto, o->end); /* lower bytes end here */
			if (next > off) {
				if (!map && (err = map_get(fs, inode, &map)))
					break;
				if (next > map->m.size_bytes) {
					err = -EIO; /* the lower file shrank underneath */
					break;
				}
				iov[n++] = (struct iovec){(char *)map->m.addr + off, next - off};
			}
			next = max_u64(next, off);
			if (upto > next) /* past end, inside its last chunk */
				iov[n++] = (struct iovec){(void *)mfs_data_zero_page, upto - next};
		} else {
			upto = min_u64(stop, (idx + 1) << MFS_CHUNK_SHIFT);
			iov[n++] = (struct iovec){(void *)mfs_data_zero_page, upto - off};
		}
		off = upto;
	}
	if (err) {
		mfs_copyup_put(fs, map);
		return err;
	}
	*held = map;
	return n;
}

int mfs_copyup_copy_out(void *buf, const struct iovec *iov, int n)
{
	char *out = buf;

	for (int i = 0; i < n; i++) {
		int err = mfs_lower_copy(out, iov[i].iov_base, iov[i].iov_len);
		if (err)
			return err;
		out += iov[i].iov_len;
	}
	return 0;
}

/* ---- changing ---- */

/* Copy chunk idx (a lower chunk) into a memory chunk of its own. */
static int copy_chunk(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t idx,
		      struct mfs_map **map)
{
	unsigned char buf[MFS_CHUNK_SIZE];
	uint64_t start = idx << MFS_CHUNK_SHIFT;
	size_t n = (size_t)min_u64(MFS_CHUNK_SIZE, inode->ovl->end - start);
	int err;

	if (!*map && (err = map_get(fs, inode, map)))
		return err;
	if (start + n > (*map)->m.size_bytes)
		return -EIO; /* the lower file shrank underneath */
	err = mfs_lower_copy(buf, (const char *)(*map)->m.addr + start, n);
	if (err)
		return err;
	return mfs_data_write(&inode->u.data, &fs->space, start, buf, n);
}

int mfs_copyup_range(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t off, uint64_t len,
		     bool all, uint64_t *done_chunks)
{
	struct mfs_map *map = NULL;
	uint64_t first, last, idx;
	int err = 0;

	if (done_chunks)
		*done_chunks = 0;
	if (len == 0 || !mfs_copyup_active(inode))
		return 0;
	first = off >> MFS_CHUNK_SHIFT;
	last = (off + len - 1) >> MFS_CHUNK_SHIFT;
	for (idx = first; idx <= last && idx < chunks_below(inode->ovl->end); idx++) {
		uint64_t start = idx << MFS_CHUNK_SHIFT;
		bool partial = start < off || start + MFS_CHUNK_SIZE > off + len;

		if (!all && !partial) {
			if (idx >= last)
				break;
			idx = last - 1; /* only the last chunk is left to look at */
			continue;
		}
		if (chunk_is_lower(inode, idx) && (err = copy_chunk(fs, inode, idx, &map)))
			break;
	}
	mfs_copyup_put(fs, map);
	if (done_chunks)
		*done_chunks = err ? idx - first : last - first + 1;
	return err;
}

void mfs_copyup_truncate(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t size)
{
	struct mfs_ovl *o = inode->ovl;

	if (!S_ISREG(inode->type) || size >= o->end)
		return;
	o->end = size;
	mask_trim(o, chunks_below(size));
	if (o->end == 0) {
		/* nothing of lower shows any more: never read it again */
		mfs_copyup_close(fs, inode);
		mfs_free(o->masks);
		o->masks = NULL;
		o->nmasks = o->masks_cap = 0;
	}
}

int mfs_copyup_mask(struct mfs_fs *fs, struct mfs_inode *inode, uint64_t off, uint64_t len)
{
	uint64_t first = chunks_below(off), end;

	(void)fs;
	if (!mfs_copyup_active(inode))
		return 0;
	end = min_u64((off + len) >> MFS_CHUNK_SHIFT, chunks_below(inode->ovl->end));
	return first < end ? mask_add(inode->ovl, first, end) : 0;
}

/* ---- holes and blocks ---- */

int64_t mfs_copyup_seek(const struct mfs_inode *inode, uint64_t off, int whence)
{
	const struct mfs_data *d = &inode->u.data;
	uint64_t size = inode->size, lim = chunks_below(size), c = off >> MFS_CHUNK_SHIFT, w;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off >= size)
		return -ENXIO;
	if (whence == SEEK_DATA) {
		/* the first written memory chunk or lower chunk from c on */
		if (!mfs_data_next(d, c, 1, &w))
			w = UINT64_MAX;
		while (c < w && c < chunks_below(inode->ovl->end)) {
			if (is_masked(inode->ovl, c))
				c = inode->ovl->masks[mask_find(inode->ovl, c)].end;
			else if (mfs_data_has(d, c))
				c++; /* an unwritten memory chunk hides lower: a hole */
			else
				break;
		}
		if (c >= chunks_below(inode->ovl->end))
			c = w;
		c = min_u64(c, w);
		if (c >= lim)
			return -ENXIO;
		return (int64_t)max_u64(off, c << MFS_CHUNK_SHIFT);
	}
	while (c < lim) {
		if (mfs_data_is_written(d, c))
			c++;
		else if (chunk_is_lower(inode, c))
			c = lower_run_end(inode, c);
		else
			break;
	}
	return (int64_t)min_u64(size, max_u64(off, c << MFS_CHUNK_SHIFT));
}

uint64_t mfs_copyup_blocks(const struct mfs_inode *inode)
{
	const struct mfs_data *d = &inode->u.data;
	const struct mfs_ovl *o = inode->ovl;
	uint64_t lim = chunks_below(o->end), masked = 0, memory_in_masks = 0, lower;

	for (size_t i = 0; i < o->nmasks; i++) {
		masked += o->masks[i].end - o->masks[i].first;
		memory_in_masks += mfs_data_count(d, o->masks[i].first, o->masks[i].end);
	}
	lower = lim - masked - (mfs_data_count(d, 0, lim) - memory_in_masks);
	return (mfs_data_chunks(d) + lower) * (MFS_CHUNK_SIZE / 512);
}
