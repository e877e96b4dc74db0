/*
 * data.c — the contents of one regular file as a sparse radix tree of chunks (see data.h).
 *
 * The tree has 64 slots per node.  Leaves (level 1) hold chunk pointers; the nodes above hold
 * nodes.  A tree of height h holds chunk numbers below 64^h, so 9 levels cover the 2^51 chunks of
 * a 2^63-byte file.  Invariants, all verified by mfs_data_check():
 *  - every node has count > 0 non-NULL slots: an emptied node is freed at once, so a walk that
 *    meets a non-NULL slot knows data lies below it and sparse files are searched quickly;
 *  - the height is minimal: the root never has slot 0 as its only used slot (when height > 1);
 *  - a chunk's cap is a power of two from MIN_CAP to MFS_CHUNK_SIZE; unwritten chunks are zero;
 *  - only the last present chunk (highest number) may be written and shorter than a full chunk.
 *    Everywhere else a chunk is full or unwritten (which reads as one run of zeros), so a range
 *    needs at most one iovec per chunk plus one: what mfs_data_iov_max() promises.
 *
 * A file whose only chunk is chunk 0 (every file of up to 4 KiB) keeps no node at all: struct
 * mfs_data points at the chunk itself, tagged in its low bit, and a public function that loads
 * such a tree works on a node in its own stack frame instead (struct tree's `lone`).
 *
 * Walks are iterative; the only recursion is mfs_data_check's, bounded by the height.
 */
#include "data.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

#define FANOUT_SHIFT 6
#define FANOUT (1u << FANOUT_SHIFT)
#define FANOUT_MASK ((uint64_t)FANOUT - 1)
#define CHUNK_MASK ((uint64_t)MFS_CHUNK_SIZE - 1)
#define MAX_HEIGHT 9
#define MIN_CAP 64u
/* Set in mfs_data.root when it points at a lone chunk 0 rather than a node (malloc aligns to 16). */
#define LONE_TAG ((uintptr_t)1)
/* Offsets are clamped here (2^63): no byte at or past it can exist. */
#define OFFSET_LIMIT (MFS_MAX_FILE_SIZE + 1)

enum {
	CHUNK_UNWRITTEN = 1u << 0, /* from fallocate, not written since: zeros, a SEEK_DATA hole */
	CHUNK_NEW = 1u << 1,	   /* made by the running mfs_data_allocate, undone if it fails */
};

struct chunk {
	uint32_t cap;	/* bytes in data[]; bytes of the chunk past cap read as zeros */
	uint32_t flags; /* CHUNK_* */
	unsigned char data[];
};

struct node {
	unsigned count; /* non-NULL slots; a node reaching 0 is freed */
	/* The tree's height and chunk count, kept in its root node (and stale
	 * in every other), so that struct mfs_data is one pointer in the
	 * inode: see tree_load(). */
	unsigned height;
	uint64_t nchunks;
	void *slot[FANOUT]; /* leaves: struct chunk *; higher levels: struct node * */
};

/*
 * The tree as the code below works on it.  A public function loads it from
 * the struct mfs_data it was given, works on the copy, and stores it back if
 * it changed anything: the height and count go into whatever node is the
 * root by then.  An empty tree (no root) has height 0 and no chunks.
 *
 * A stored lone chunk 0 loads as `lone`, a leaf holding just that chunk,
 * and the root points at it.  While it does, only its slot 0 may be used:
 * add_chunk() and raise_root() move it to a real node (lone_to_node())
 * before they put anything next to it or above it, so that storing never
 * needs memory, and prune() never frees it.  tree_store() turns any root
 * leaf holding only chunk 0 back into a tagged chunk pointer.
 */
struct tree {
	void *root;	  /* struct node * (maybe &lone), or NULL */
	unsigned height;  /* levels; 0 = empty */
	uint64_t nchunks; /* chunks present (each counts MFS_CHUNK_SIZE) */
	struct node lone; /* valid only while root points at it */
};

static bool is_lone(const void *root)
{
	return (uintptr_t)root & LONE_TAG;
}

static struct chunk *lone_chunk(const void *root)
{
	return (struct chunk *)((uintptr_t)root & ~LONE_TAG);
}

/* Start t->lone as an empty leaf, the root of a tree of height 1. */
static void lone_start(struct tree *t)
{
	memset(&t->lone, 0, sizeof(t->lone));
	t->root = &t->lone;
	t->height = 1;
}

static void tree_load(const struct mfs_data *d, struct tree *t)
{
	const struct node *root = d->root;

	if (!root) {
		t->root = NULL;
		t->height = 0;
		t->nchunks = 0;
	} else if (is_lone(root)) {
		lone_start(t);
		t->lone.slot[0] = lone_chunk(root);
		t->lone.count = 1;
		t->nchunks = 1;
	} else {
		t->root = d->root;
		t->height = root->height;
		t->nchunks = root->nchunks;
	}
}

/* Is root, a node of a tree of this height, a leaf that holds chunk 0 and nothing else? */
static bool holds_only_chunk0(const struct node *root, unsigned height)
{
	return root && height == 1 && root->count == 1 && root->slot[0];
}

static void tree_store(struct mfs_data *d, const struct tree *t)
{
	struct node *root = t->root;

	if (holds_only_chunk0(root, t->height)) {
		d->root = (void *)((uintptr_t)root->slot[0] | LONE_TAG);
		if (root != &t->lone)
			mfs_free(root);
		return;
	}
	d->root = root; /* never &t->lone here: it only ever holds chunk 0 (above) */
	if (root) {
		root->height = t->height;
		root->nchunks = t->nchunks;
	}
}

/* Move t->lone, if it is the root, into a node of its own: 0 or -ENOMEM (nothing changed). */
static int lone_to_node(struct tree *t)
{
	struct node *n;

	if (t->root != &t->lone)
		return 0;
	n = mfs_malloc(sizeof(*n));
	if (!n)
		return -ENOMEM;
	memcpy(n, &t->lone, sizeof(*n));
	t->root = n;
	return 0;
}

static void node_free(struct tree *t, struct node *n)
{
	if (n != &t->lone)
		mfs_free(n);
}

/* Remembers the leaf of the last chunk looked up, so walking a range descends once per leaf. */
struct cursor {
	bool valid;
	uint64_t leaf_no; /* chunk number >> FANOUT_SHIFT */
	struct node *leaf;
};

/* What holes and the part of a chunk past its cap read as. */
const unsigned char mfs_data_zero_page[MFS_CHUNK_SIZE];

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* Number of chunks that start below offset off: ceil(off / MFS_CHUNK_SIZE). */
static uint64_t chunks_below(uint64_t off)
{
	return (off >> MFS_CHUNK_SHIFT) + ((off & CHUNK_MASK) != 0);
}

static unsigned level_shift(unsigned level)
{
	return (level - 1) * FANOUT_SHIFT;
}

static unsigned slot_of(uint64_t idx, unsigned level)
{
	return (unsigned)((idx >> level_shift(level)) & FANOUT_MASK);
}

/* idx moved to slot s at this level: lower levels start from 0 if the slot changed. */
static uint64_t with_slot(uint64_t idx, unsigned level, unsigned s)
{
	unsigned shift = level_shift(level);

	if (slot_of(idx, level) == s)
		return idx;
	return (idx & ~(((uint64_t)FANOUT << shift) - 1)) | ((uint64_t)s << shift);
}

static bool in_tree(const struct tree *d, uint64_t idx)
{
	return d->height > 0 && (idx >> (d->height * FANOUT_SHIFT)) == 0;
}

/* Smallest height whose tree holds chunk idx. */
static unsigned height_for(uint64_t idx)
{
	unsigned h = 1;

	while (h < MAX_HEIGHT && (idx >> (h * FANOUT_SHIFT)) != 0)
		h++;
	return h;
}

static uint32_t cap_for(uint64_t need)
{
	uint32_t cap = MIN_CAP;

	while (cap < need)
		cap <<= 1;
	return cap;
}

static bool is_written(const struct chunk *c)
{
	return c && !(c->flags & CHUNK_UNWRITTEN);
}

static struct node *find_leaf(const struct tree *d, uint64_t idx)
{
	struct node *n;

	if (!in_tree(d, idx))
		return NULL;
	n = d->root;
	for (unsigned level = d->height; n && level > 1; level--)
		n = n->slot[slot_of(idx, level)];
	return n;
}

static struct node *cursor_leaf(const struct tree *d, struct cursor *cur, uint64_t idx)
{
	uint64_t leaf_no = idx >> FANOUT_SHIFT;

	if (!cur->valid || cur->leaf_no != leaf_no) {
		cur->leaf = find_leaf(d, idx);
		cur->leaf_no = leaf_no;
		cur->valid = true;
	}
	return cur->leaf;
}

static struct chunk *cursor_chunk(const struct tree *d, struct cursor *cur, uint64_t idx)
{
	struct node *leaf = cursor_leaf(d, cur, idx);

	return leaf ? leaf->slot[idx & FANOUT_MASK] : NULL;
}

/* ---- tree shape ---- */

static void lower_root(struct tree *d)
{
	while (d->height > 1) {
		struct node *root = d->root;

		if (root->count != 1 || !root->slot[0])
			break;
		d->root = root->slot[0];
		d->height--;
		node_free(d, root);
	}
}

/*
 * Free the empty nodes on the path to chunk idx, bottom up, then lower the root: restores the
 * shape invariants after a removal or after a failed leaf_get().
 */
static void prune(struct tree *d, uint64_t idx)
{
	struct node *path[MAX_HEIGHT + 1];
	unsigned low = d->height + 1;
	struct node *n = d->root;

	if (!n) {
		d->height = 0;
		return;
	}
	if (!in_tree(d, idx))
		goto out;
	for (unsigned level = d->height; n; level--) {
		path[level] = n;
		low = level;
		n = level > 1 ? n->slot[slot_of(idx, level)] : NULL;
	}
	for (unsigned level = low; path[level]->count == 0; level++) {
		node_free(d, path[level]);
		if (level == d->height) {
			d->root = NULL;
			d->height = 0;
			return;
		}
		path[level + 1]->slot[slot_of(idx, level + 1)] = NULL;
		path[level + 1]->count--;
	}
out:
	lower_root(d);
}

static int raise_root(struct tree *d, unsigned height)
{
	if (!d->root) {
		d->height = height; /* leaf_get() makes the root along with the path */
		return 0;
	}
	while (d->height < height) {
		struct node *root;

		if (lone_to_node(d))
			return -ENOMEM;
		root = mfs_calloc(1, sizeof(*root));
		if (!root)
			return -ENOMEM;
		root->slot[0] = d->root;
		root->count = 1;
		d->root = root;
		d->height++;
	}
	return 0;
}

/* The leaf for chunk idx, made (with the nodes above it) if missing.  0 or -ENOMEM. */
static int leaf_get(struct tree *d, uint64_t idx, struct node **leafp)
{
	struct node *parent = NULL;
	void **link = &d->root;
	int ret = 0;

	if (height_for(idx) > d->height) {
		ret = raise_root(d, height_for(idx));
		if (ret)
			goto out;
	}
	if (!d->root && idx == 0) {
		/* The file's first chunk is chunk 0: no node until another comes. */
		lone_start(d);
		*leafp = d->root;
		return 0;
	}
	for (unsigned level = d->height;; level--) {
		if (!*link) {
			*link = mfs_calloc(1, sizeof(struct node));
			if (!*link) {
				ret = -ENOMEM;
				goto out;
			}
			if (parent)
				parent->count++;
		}
		if (level == 1) {
			*leafp = *link;
			return 0;
		}
		parent = *link;
		link = &parent->slot[slot_of(idx, level)];
	}
out:
	prune(d, idx);
	return ret;
}

/* ---- chunks ---- */

/* Make hole idx a zeroed chunk of cap bytes.  Space is reserved before anything is allocated. */
static int add_chunk(struct tree *d, struct mfs_space *sp, struct cursor *cur, uint64_t idx,
		     uint32_t cap, uint32_t flags)
{
	struct chunk *c = NULL;
	struct node *leaf;
	int ret = mfs_space_reserve(sp, MFS_CHUNK_SIZE);

	if (ret)
		return ret;
	c = mfs_calloc(1, sizeof(*c) + cap);
	if (!c) {
		ret = -ENOMEM;
		goto out;
	}
	c->cap = cap;
	c->flags = flags;
	if (cap == MFS_CHUNK_SIZE) /* bulk data: the daemon may fault the heap in ahead */
		mfs_heap_grew(mfs_space_used(sp));
	leaf = cursor_leaf(d, cur, idx);
	if (!leaf) {
		ret = leaf_get(d, idx, &leaf);
		if (ret)
			goto out;
		cur->leaf = leaf;
	}
	if (leaf == &d->lone && idx != 0) {
		ret = lone_to_node(d);
		if (ret)
			goto out;
		leaf = cur->leaf = d->root;
	}
	leaf->slot[idx & FANOUT_MASK] = c;
	leaf->count++;
	d->nchunks++;
	return 0;
out:
	mfs_free(c);
	mfs_space_release(sp, MFS_CHUNK_SIZE);
	return ret;
}

static void remove_chunk(struct tree *d, struct mfs_space *sp, struct node *leaf, uint64_t idx)
{
	mfs_free(leaf->slot[idx & FANOUT_MASK]);
	leaf->slot[idx & FANOUT_MASK] = NULL;
	leaf->count--;
	d->nchunks--;
	mfs_space_release(sp, MFS_CHUNK_SIZE);
	if (leaf->count == 0)
		prune(d, idx);
}

/* Resize the chunk in leaf slot s to cap bytes, zeroing what is new.  0 or -ENOMEM. */
static int resize_chunk(struct node *leaf, unsigned s, uint32_t cap)
{
	struct chunk *c = leaf->slot[s];
	uint32_t old_cap = c->cap;

	c = mfs_realloc(c, sizeof(*c) + cap);
	if (!c)
		return -ENOMEM;
	if (cap > old_cap)
		memset(c->data + old_cap, 0, cap - old_cap);
	c->cap = cap;
	leaf->slot[s] = c;
	return 0;
}

static int grow_chunk(struct node *leaf, unsigned s, uint64_t need)
{
	struct chunk *c = leaf->slot[s];
	uint32_t cap = cap_for(need);

	return cap > c->cap ? resize_chunk(leaf, s, cap) : 0;
}

/* Zero bytes [from, to) of a chunk, as far as its buffer goes. */
static void zero_chunk_bytes(struct chunk *c, uint64_t from, uint64_t to)
{
	to = min_u64(to, c->cap);
	if (from < to)
		memset(c->data + from, 0, to - from);
}

/* Shrinking a buffer is only to give memory back: if realloc fails the chunk stays as it is. */
static void shrink_chunk(struct node *leaf, unsigned s, uint64_t need)
{
	struct chunk *c = leaf->slot[s];
	uint32_t cap = cap_for(need);

	if (cap < c->cap)
		(void)resize_chunk(leaf, s, cap);
}

/* The present chunk with the highest number: its leaf (NULL if none) and number. */
static struct node *last_chunk(const struct tree *d, uint64_t *idx)
{
	struct node *n = d->root;
	uint64_t i = 0;

	if (!n)
		return NULL;
	for (unsigned level = d->height;; level--) {
		unsigned s = FANOUT;

		while (!n->slot[--s])
			;
		i = (i << FANOUT_SHIFT) | s;
		if (level == 1) {
			*idx = i;
			return n;
		}
		n = n->slot[s];
	}
}

/*
 * About to make chunk new_idx: if it lands after the last chunk and that one is written but
 * short, fill it out so that only the last chunk is ever short.  *last gets the last chunk's
 * number before the call, or -1.  0 or -ENOMEM.
 */
static int keep_short_last(struct tree *d, uint64_t new_idx, int64_t *last)
{
	uint64_t idx;
	struct node *leaf = last_chunk(d, &idx);
	struct chunk *c;

	*last = -1;
	if (!leaf)
		return 0;
	*last = (int64_t)idx;
	c = leaf->slot[idx & FANOUT_MASK];
	if (idx >= new_idx || !is_written(c) || c->cap == MFS_CHUNK_SIZE)
		return 0;
	return resize_chunk(leaf, idx & FANOUT_MASK, MFS_CHUNK_SIZE);
}

/*
 * The first present chunk numbered >= idx (written ones only if written_only): returns its leaf
 * and sets *found, or NULL.  Subtrees with nothing in them are skipped whole.
 */
static struct node *next_chunk(const struct tree *d, uint64_t idx, bool written_only,
			       uint64_t *found)
{
	struct node *path[MAX_HEIGHT + 1];
	unsigned level = d->height;
	struct node *n = d->root;
	unsigned s;

	if (!in_tree(d, idx))
		return NULL;
	s = slot_of(idx, level);
	for (;;) {
		while (s < FANOUT &&
		       (!n->slot[s] || (level == 1 && written_only && !is_written(n->slot[s]))))
			s++;
		if (s == FANOUT) {
			/* Nothing left below n: go on after n in its parent. */
			if (level == d->height)
				return NULL;
			level++;
			n = path[level];
			s = slot_of(idx, level) + 1;
			continue;
		}
		idx = with_slot(idx, level, s);
		if (level == 1) {
			*found = idx;
			return n;
		}
		path[level] = n;
		n = n->slot[s];
		level--;
		s = slot_of(idx, level);
	}
}

/* The first chunk numbered in [idx, lim) that is a hole or unwritten, or lim. */
static uint64_t next_hole(const struct tree *d, uint64_t idx, uint64_t lim)
{
	struct cursor cur = {0};

	for (; idx < lim; idx++)
		if (!is_written(cursor_chunk(d, &cur, idx)))
			return idx;
	return lim;
}

/* Free the chunks numbered in [from, to). */
static void remove_range(struct tree *d, struct mfs_space *sp, uint64_t from, uint64_t to)
{
	uint64_t idx;
	struct node *leaf;

	while (from < to && (leaf = next_chunk(d, from, false, &idx)) && idx < to) {
		remove_chunk(d, sp, leaf, idx);
		from = idx + 1;
	}
}

/* Zero [off, end) in the chunks that hold it only partly (the first and the last). */
static void zero_partial_chunks(struct tree *d, uint64_t off, uint64_t end)
{
	struct cursor cur = {0};
	uint64_t tail = end & ~CHUNK_MASK;
	struct chunk *c;

	if (off & CHUNK_MASK) {
		c = cursor_chunk(d, &cur, off >> MFS_CHUNK_SHIFT);
		if (c)
			zero_chunk_bytes(c, off & CHUNK_MASK,
					 min_u64(end - (off & ~CHUNK_MASK), MFS_CHUNK_SIZE));
	}
	/* The last chunk, unless it is the first one and was just handled. */
	if ((end & CHUNK_MASK) && tail >= off) {
		c = cursor_chunk(d, &cur, tail >> MFS_CHUNK_SHIFT);
		if (c)
			zero_chunk_bytes(c, 0, end & CHUNK_MASK);
	}
}

/* ---- public API ---- */

static void tree_free(struct tree *d, struct mfs_space *sp)
{
	remove_range(d, sp, 0, UINT64_MAX);
}

/* How many bytes from `in` on chunk c really holds (0 for holes and unwritten chunks). */
static size_t readable_bytes(const struct chunk *c, size_t in, size_t piece)
{
	if (!is_written(c) || in >= c->cap)
		return 0;
	return min_u64(piece, c->cap - in);
}

static int tree_read_iov(const struct tree *d, uint64_t off, size_t len, struct iovec *iov,
		      int max_iov)
{
	struct cursor cur = {0};
	int n = 0;

	if (max_iov < mfs_data_iov_max(off, len))
		return -EINVAL;
	while (len > 0) {
		size_t in = off & CHUNK_MASK;
		size_t piece = min_u64(len, MFS_CHUNK_SIZE - in);
		struct chunk *c = cursor_chunk(d, &cur, off >> MFS_CHUNK_SHIFT);
		size_t have = readable_bytes(c, in, piece);

		if (have > 0)
			iov[n++] = (struct iovec){.iov_base = c->data + in, .iov_len = have};
		if (have < piece)
			iov[n++] =
			    (struct iovec){.iov_base = (void *)mfs_data_zero_page, .iov_len = piece - have};
		off += piece;
		len -= piece;
	}
	return n;
}

static void tree_read(const struct tree *d, uint64_t off, void *buf, size_t len)
{
	struct cursor cur = {0};
	unsigned char *out = buf;

	while (len > 0) {
		size_t in = off & CHUNK_MASK;
		size_t piece = min_u64(len, MFS_CHUNK_SIZE - in);
		struct chunk *c = cursor_chunk(d, &cur, off >> MFS_CHUNK_SHIFT);
		size_t have = readable_bytes(c, in, piece);

		if (have > 0)
			memcpy(out, c->data + in, have);
		memset(out + have, 0, piece - have);
		out += piece;
		off += piece;
		len -= piece;
	}
}

/* Chunk idx present with at least `need` bytes of buffer.  New chunks stay unwritten for now. */
static int ensure_chunk(struct tree *d, struct mfs_space *sp, struct cursor *cur, uint64_t idx,
			uint64_t need)
{
	struct node *leaf = cursor_leaf(d, cur, idx);

	if (!leaf || !leaf->slot[idx & FANOUT_MASK])
		return add_chunk(d, sp, cur, idx, cap_for(need), CHUNK_UNWRITTEN | CHUNK_NEW);
	return grow_chunk(leaf, idx & FANOUT_MASK, need);
}

/*
 * First half of a write: every chunk of [off, off+len) present and big enough.  Chunks made here
 * are unwritten (zeros, a hole to SEEK) until the second half, so a failure changes nothing seen.
 */
static void settle_new_chunks(struct tree *d, struct mfs_space *sp, uint64_t from, uint64_t to,
			      bool drop);

static int prepare_write(struct tree *d, struct mfs_space *sp, uint64_t off, size_t len)
{
	uint64_t first = off >> MFS_CHUNK_SHIFT;
	uint64_t final = (off + len - 1) >> MFS_CHUNK_SHIFT;
	struct cursor cur = {0};
	int64_t last;
	int ret = keep_short_last(d, final, &last);

	for (uint64_t idx = first; ret == 0 && idx <= final; idx++) {
		/* Every chunk but the final one is written to its end; that one may stay short
		 * only if no chunk follows it. */
		uint64_t need = MFS_CHUNK_SIZE;

		if (idx == final && (int64_t) final >= last)
			need = ((off + len - 1) & CHUNK_MASK) + 1;
		ret = ensure_chunk(d, sp, &cur, idx, need);
	}
	/* All or nothing: a write that cannot get every chunk it needs keeps
	 * none of the ones it added, so no block is held for bytes never
	 * written. */
	settle_new_chunks(d, sp, first, final + 1, ret != 0);
	return ret;
}

/*
 * Second half: mark the chunks of [off, off+len) written and either describe their bytes in iov
 * or copy src into them.  Returns the number of pieces.
 */
static int finish_write(struct tree *d, uint64_t off, size_t len, struct iovec *iov,
			const unsigned char *src)
{
	struct cursor cur = {0};
	int n = 0;

	while (len > 0) {
		size_t in = off & CHUNK_MASK;
		size_t piece = min_u64(len, MFS_CHUNK_SIZE - in);
		struct chunk *c = cursor_chunk(d, &cur, off >> MFS_CHUNK_SHIFT);

		c->flags &= ~CHUNK_UNWRITTEN;
		if (iov)
			iov[n] = (struct iovec){.iov_base = c->data + in, .iov_len = piece};
		if (src) {
			memcpy(c->data + in, src, piece);
			src += piece;
		}
		n++;
		off += piece;
		len -= piece;
	}
	return n;
}

static bool past_limit(uint64_t off, uint64_t len)
{
	return off > MFS_MAX_FILE_SIZE || len > MFS_MAX_FILE_SIZE - off;
}

static int tree_write_iov(struct tree *d, struct mfs_space *sp, uint64_t off, size_t len,
		       struct iovec *iov, int max_iov)
{
	int ret;

	if (past_limit(off, len))
		return -EFBIG;
	if (max_iov < mfs_data_iov_max(off, len))
		return -EINVAL;
	if (len == 0)
		return 0;
	ret = prepare_write(d, sp, off, len);
	return ret ? ret : finish_write(d, off, len, iov, NULL);
}

static int tree_write(struct tree *d, struct mfs_space *sp, uint64_t off, const void *buf,
		   size_t len)
{
	int ret;

	if (past_limit(off, len))
		return -EFBIG;
	if (len == 0)
		return 0;
	ret = prepare_write(d, sp, off, len);
	if (ret)
		return ret;
	finish_write(d, off, len, NULL, buf);
	return 0;
}

static void tree_truncate(struct tree *d, struct mfs_space *sp, uint64_t new_size)
{
	uint64_t in = new_size & CHUNK_MASK;
	uint64_t idx = new_size >> MFS_CHUNK_SHIFT;
	struct node *leaf;

	remove_range(d, sp, chunks_below(new_size), UINT64_MAX);
	leaf = in ? find_leaf(d, idx) : NULL;
	if (!leaf || !leaf->slot[idx & FANOUT_MASK])
		return;
	/* This chunk is now the last one, so it may become short. */
	zero_chunk_bytes(leaf->slot[idx & FANOUT_MASK], in, MFS_CHUNK_SIZE);
	shrink_chunk(leaf, idx & FANOUT_MASK, in);
}

/* End of [off, off+len), clamped to the largest possible offset. */
static uint64_t clamped_end(uint64_t off, uint64_t len)
{
	return len > OFFSET_LIMIT - min_u64(off, OFFSET_LIMIT) ? OFFSET_LIMIT : off + len;
}

static void tree_punch(struct tree *d, struct mfs_space *sp, uint64_t off, uint64_t len)
{
	uint64_t end = clamped_end(off, len);

	if (off >= end)
		return;
	remove_range(d, sp, chunks_below(off), end >> MFS_CHUNK_SHIFT);
	zero_partial_chunks(d, off, end);
}

/* After mfs_data_allocate: drop (failed) or keep (succeeded) the chunks it made in [from, to). */
static void settle_new_chunks(struct tree *d, struct mfs_space *sp, uint64_t from, uint64_t to,
			      bool drop)
{
	uint64_t idx;
	struct node *leaf;

	while (from < to && (leaf = next_chunk(d, from, false, &idx)) && idx < to) {
		struct chunk *c = leaf->slot[idx & FANOUT_MASK];

		if ((c->flags & CHUNK_NEW) && drop)
			remove_chunk(d, sp, leaf, idx);
		else
			c->flags &= ~CHUNK_NEW;
		from = idx + 1;
	}
}

static int tree_allocate(struct tree *d, struct mfs_space *sp, uint64_t off, uint64_t len)
{
	uint64_t first = off >> MFS_CHUNK_SHIFT;
	uint64_t final, idx;
	struct cursor cur = {0};
	int64_t last;
	int ret;

	if (past_limit(off, len))
		return -EFBIG;
	if (len == 0)
		return 0;
	final = (off + len - 1) >> MFS_CHUNK_SHIFT;
	ret = keep_short_last(d, final, &last);
	if (ret)
		return ret;
	for (idx = first; idx <= final; idx++) {
		struct chunk *c = cursor_chunk(d, &cur, idx);

		if (c) {
			/* As tmpfs (shmem_get_folio with SGP_FALLOC): a second
			 * fallocate over a chunk fallocated earlier initialises
			 * it, and from then on SEEK_DATA sees it as data. */
			if (c->flags & CHUNK_UNWRITTEN) {
				ret = grow_chunk(cur.leaf, idx & FANOUT_MASK, MFS_CHUNK_SIZE);
				if (ret)
					break;
				c = cur.leaf->slot[idx & FANOUT_MASK];
				c->flags &= ~CHUNK_UNWRITTEN;
			}
			continue;
		}
		/* Unwritten chunks read as zeros whatever their cap: the smallest will do. */
		ret = add_chunk(d, sp, &cur, idx, MIN_CAP, CHUNK_UNWRITTEN | CHUNK_NEW);
		if (ret)
			break;
	}
	settle_new_chunks(d, sp, first, idx, ret != 0);
	return ret;
}

/* A written chunk wholly inside a zeroed range becomes unwritten, and gives its buffer back. */
static void make_unwritten(struct node *leaf, unsigned s)
{
	struct chunk *c = leaf->slot[s];

	if (c->flags & CHUNK_UNWRITTEN)
		return;
	memset(c->data, 0, c->cap);
	c->flags |= CHUNK_UNWRITTEN;
	shrink_chunk(leaf, s, MIN_CAP);
}

static int tree_zero_range(struct tree *d, struct mfs_space *sp, uint64_t off, uint64_t len)
{
	/* Allocating first makes failure all or nothing: no byte is zeroed before it succeeds. */
	int ret = tree_allocate(d, sp, off, len);
	uint64_t end = off + len;
	uint64_t from = chunks_below(off), to = end >> MFS_CHUNK_SHIFT, idx;
	struct node *leaf;

	if (ret || len == 0)
		return ret;
	while (from < to && (leaf = next_chunk(d, from, false, &idx)) && idx < to) {
		make_unwritten(leaf, idx & FANOUT_MASK);
		from = idx + 1;
	}
	zero_partial_chunks(d, off, end);
	return 0;
}

static int64_t tree_seek(const struct tree *d, uint64_t size, uint64_t off, int whence)
{
	uint64_t idx, limit = chunks_below(size);

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	if (off >= size)
		return -ENXIO;
	if (whence == SEEK_DATA) {
		if (!next_chunk(d, off >> MFS_CHUNK_SHIFT, true, &idx) || idx >= limit)
			return -ENXIO;
		return (int64_t)max_u64(off, idx << MFS_CHUNK_SHIFT);
	}
	idx = next_hole(d, off >> MFS_CHUNK_SHIFT, limit);
	return (int64_t)min_u64(size, max_u64(off, idx << MFS_CHUNK_SHIFT));
}

/* Where the next written data of d starts at or after off, or `end` if not before it. */
static uint64_t next_data_offset(const struct tree *d, uint64_t off, uint64_t end)
{
	uint64_t idx;

	if (!next_chunk(d, off >> MFS_CHUNK_SHIFT, true, &idx))
		return end;
	return min_u64(end, max_u64(off, idx << MFS_CHUNK_SHIFT));
}

static int tree_copy(struct tree *dst, struct mfs_space *sp, uint64_t dst_off,
		  const struct tree *src, uint64_t src_off, uint64_t len)
{
	/* Through a bounce buffer: writing dst may move a chunk src shares (same object). */
	unsigned char buf[MFS_CHUNK_SIZE];
	uint64_t done = 0, end = src_off + len, shared = UINT64_MAX;

	if (past_limit(dst_off, len))
		return -EFBIG;
	if (past_limit(src_off, len))
		return -EINVAL;
	if (dst == src && len > 0 && src_off < dst_off + len && dst_off < src_off + len)
		return -EINVAL;
	/* Within one file, the chunk where the source ends may be where the
	 * destination starts, and is written first: if the source holds no
	 * data there, that must be decided before, not read back after. */
	if (dst == src && len > 0 && dst_off > src_off &&
	    ((end - 1) & ~CHUNK_MASK) == (dst_off & ~CHUNK_MASK)) {
		uint64_t from = max_u64(src_off, (end - 1) & ~CHUNK_MASK);
		if (next_data_offset(src, from, end) == end)
			shared = from;
	}
	while (done < len) {
		uint64_t at = src_off + done;
		uint64_t data = at >= shared ? end : next_data_offset(src, at, end);
		size_t piece;
		int ret;

		if (data > at) {
			tree_punch(dst, sp, dst_off + done, data - at);
			done += data - at;
			continue;
		}
		piece = min_u64(len - done, MFS_CHUNK_SIZE - (at & CHUNK_MASK));
		tree_read(src, at, buf, piece);
		ret = tree_write(dst, sp, dst_off + done, buf, piece);
		if (ret)
			return ret;
		done += piece;
	}
	return 0;
}

/* ---- queries by chunk number ---- */

static int tree_has(const struct tree *d, uint64_t idx)
{
	struct node *leaf = find_leaf(d, idx);

	return leaf && leaf->slot[idx & FANOUT_MASK];
}

static int tree_is_written(const struct tree *d, uint64_t idx)
{
	struct node *leaf = find_leaf(d, idx);

	return leaf && is_written(leaf->slot[idx & FANOUT_MASK]);
}

static int tree_next(const struct tree *d, uint64_t idx, int written_only, uint64_t *found)
{
	return next_chunk(d, idx, written_only, found) != NULL;
}

static uint64_t tree_count(const struct tree *d, uint64_t from, uint64_t to)
{
	uint64_t n = 0, idx;
	struct node *leaf;

	while (from < to && (leaf = next_chunk(d, from, false, &idx)) && idx < to) {
		uint64_t leaf_first = idx & ~FANOUT_MASK, leaf_end = leaf_first + FANOUT;

		if (from <= leaf_first && leaf_end <= to) {
			n += leaf->count; /* the whole leaf is in the range */
		} else {
			for (uint64_t i = idx; i < leaf_end && i < to; i++)
				n += leaf->slot[i & FANOUT_MASK] != NULL;
		}
		from = leaf_end;
	}
	return n;
}

/* ---- consistency check ---- */

struct check_state {
	uint64_t chunks;
	bool short_seen; /* a written short chunk was met: it must be the last one */
	const char *why;
};

static int check_fail(struct check_state *st, const char *why)
{
	st->why = why;
	return -EUCLEAN;
}

static int check_chunk(const struct chunk *c, struct check_state *st)
{
	if (c->cap < MIN_CAP || c->cap > MFS_CHUNK_SIZE || (c->cap & (c->cap - 1)))
		return check_fail(st, "chunk cap is not a power of two in range");
	if (c->flags & ~CHUNK_UNWRITTEN)
		return check_fail(st, "chunk has a stray flag");
	if ((c->flags & CHUNK_UNWRITTEN) && memcmp(c->data, mfs_data_zero_page, c->cap) != 0)
		return check_fail(st, "unwritten chunk holds nonzero bytes");
	if (st->short_seen)
		return check_fail(st, "a written chunk shorter than a full chunk is not the last");
	st->short_seen = is_written(c) && c->cap < MFS_CHUNK_SIZE;
	st->chunks++;
	return 0;
}

/* Recursion is bounded by the tree height (at most MAX_HEIGHT). */
static int check_node(const struct node *n, unsigned level, struct check_state *st)
{
	unsigned used = 0;

	for (unsigned s = 0; s < FANOUT; s++) {
		int ret;

		if (!n->slot[s])
			continue;
		used++;
		ret = level == 1 ? check_chunk(n->slot[s], st)
				 : check_node(n->slot[s], level - 1, st);
		if (ret)
			return ret;
	}
	if (used == 0)
		return check_fail(st, "empty node left in the tree");
	if (used != n->count)
		return check_fail(st, "node count differs from its used slots");
	return 0;
}

static int tree_check(const struct tree *d, const char **why)
{
	struct check_state st = {0};
	const struct node *root = d->root;
	int ret = 0;

	if (d->height > MAX_HEIGHT)
		ret = check_fail(&st, "tree higher than 2^63 bytes need");
	else if (!root != (d->height == 0))
		ret = check_fail(&st, "root and height disagree");
	else if (root && d->height > 1 && root->count == 1 && root->slot[0])
		ret = check_fail(&st, "tree higher than its chunks need");
	else if (root)
		ret = check_node(root, d->height, &st);
	if (ret == 0 && st.chunks != d->nchunks)
		ret = check_fail(&st, "nchunks differs from the chunks in the tree");
	if (ret && why)
		*why = st.why;
	return ret;
}

/* ---- the public functions: each loads the tree, works on it, and stores it if it changed ---- */

void mfs_data_init(struct mfs_data *d)
{
	d->root = NULL;
}

uint64_t mfs_data_chunks(const struct mfs_data *d)
{
	const struct node *root = d->root;

	return !root ? 0 : is_lone(root) ? 1 : root->nchunks;
}

unsigned mfs_data_height(const struct mfs_data *d)
{
	const struct node *root = d->root;

	return !root ? 0 : is_lone(root) ? 1 : root->height;
}

void mfs_data_free(struct mfs_data *d, struct mfs_space *sp)
{
	struct tree t;

	tree_load(d, &t);
	tree_free(&t, sp);
	tree_store(d, &t);
}

int mfs_data_read_iov(const struct mfs_data *d, uint64_t off, size_t len, struct iovec *iov,
		      int max_iov)
{
	struct tree t;

	tree_load(d, &t);
	return tree_read_iov(&t, off, len, iov, max_iov);
}

void mfs_data_read(const struct mfs_data *d, uint64_t off, void *buf, size_t len)
{
	struct tree t;

	tree_load(d, &t);
	tree_read(&t, off, buf, len);
}

int mfs_data_write_iov(struct mfs_data *d, struct mfs_space *sp, uint64_t off, size_t len,
		       struct iovec *iov, int max_iov)
{
	struct tree t;
	int ret;

	tree_load(d, &t);
	ret = tree_write_iov(&t, sp, off, len, iov, max_iov);
	tree_store(d, &t);
	return ret;
}

int mfs_data_write(struct mfs_data *d, struct mfs_space *sp, uint64_t off, const void *buf,
		   size_t len)
{
	struct tree t;
	int ret;

	tree_load(d, &t);
	ret = tree_write(&t, sp, off, buf, len);
	tree_store(d, &t);
	return ret;
}

void mfs_data_truncate(struct mfs_data *d, struct mfs_space *sp, uint64_t new_size)
{
	struct tree t;

	tree_load(d, &t);
	tree_truncate(&t, sp, new_size);
	tree_store(d, &t);
}

void mfs_data_punch(struct mfs_data *d, struct mfs_space *sp, uint64_t off, uint64_t len)
{
	struct tree t;

	tree_load(d, &t);
	tree_punch(&t, sp, off, len);
	tree_store(d, &t);
}

int mfs_data_allocate(struct mfs_data *d, struct mfs_space *sp, uint64_t off, uint64_t len)
{
	struct tree t;
	int ret;

	tree_load(d, &t);
	ret = tree_allocate(&t, sp, off, len);
	tree_store(d, &t);
	return ret;
}

int mfs_data_zero_range(struct mfs_data *d, struct mfs_space *sp, uint64_t off, uint64_t len)
{
	struct tree t;
	int ret;

	tree_load(d, &t);
	ret = tree_zero_range(&t, sp, off, len);
	tree_store(d, &t);
	return ret;
}

int64_t mfs_data_seek(const struct mfs_data *d, uint64_t size, uint64_t off, int whence)
{
	struct tree t;

	tree_load(d, &t);
	return tree_seek(&t, size, off, whence);
}

int mfs_data_copy(struct mfs_data *dst, struct mfs_space *sp, uint64_t dst_off,
		  const struct mfs_data *src, uint64_t src_off, uint64_t len)
{
	/* Within one file both sides must be the same tree: writing moves its root. */
	struct tree td, ts;
	int ret;

	tree_load(dst, &td);
	tree_load(src, &ts);
	ret = tree_copy(&td, sp, dst_off, dst == src ? &td : &ts, src_off, len);
	tree_store(dst, &td);
	return ret;
}

int mfs_data_has(const struct mfs_data *d, uint64_t idx)
{
	struct tree t;

	tree_load(d, &t);
	return tree_has(&t, idx);
}

int mfs_data_is_written(const struct mfs_data *d, uint64_t idx)
{
	struct tree t;

	tree_load(d, &t);
	return tree_is_written(&t, idx);
}

int mfs_data_next(const struct mfs_data *d, uint64_t idx, int written_only, uint64_t *found)
{
	struct tree t;

	tree_load(d, &t);
	return tree_next(&t, idx, written_only, found);
}

uint64_t mfs_data_count(const struct mfs_data *d, uint64_t from, uint64_t to)
{
	struct tree t;

	tree_load(d, &t);
	return tree_count(&t, from, to);
}

int mfs_data_check(const struct mfs_data *d, const char **why)
{
	const struct node *root = d->root;
	struct tree t;

	if (root && !is_lone(root) && holds_only_chunk0(root, root->height)) {
		if (why)
			*why = "a lone chunk 0 kept in a node";
		return -EUCLEAN;
	}
	tree_load(d, &t);
	return tree_check(&t, why);
}
