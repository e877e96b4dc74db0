/*
 * dir.c — the entries of one directory (contract in dir.h).
 *
 * An entry lives in uthash's table keyed on its name (lookups), and in
 * uthash's insertion-order list, which is position order because a new
 * entry always gets the next position and goes to the end (readdir).
 * Finding where a listing resumes (the first entry after a position) starts
 * from a mark: a pos-ordered array names the head and about every
 * MFS_DIR_MARK_EVERY-th entry after it, so a binary search and at most that
 * many steps along the list find any position.  Removing a marked entry
 * passes its mark to the entry after it (or drops it at the end of the
 * list), which never lengthens a run between marks; marks that pile up that
 * way are laid out afresh once there are twice as many as the entries need
 * (amortised O(1) per removal).
 *
 * Memory, measured with mallinfo2 for a million 8-byte names: 104.9 bytes
 * per entry = 96 for the entry (56 of it uthash's handle), 8.4 for uthash's
 * buckets (2^19 of 16 bytes) and half a byte for the marks.  (An array of
 * every entry's position and address, before, took 16 to 32 bytes more.)
 *
 * Allocation failures: an add allocates the entry, maybe a larger mark
 * array, and maybe the hash table or a bigger bucket array.  Each failure
 * undoes what came before it, so the directory is never left half-changed.
 * Removal may shrink the mark array; if that realloc fails the old, larger
 * array simply stays.
 */

/*
 * With HASH_NONFATAL_OOM, uthash calls this when it could not allocate the
 * table (first entry) or a bigger bucket array (expansion).  It expands
 * inside add_to_hash(), which declares hash_oomed: a per-call flag, not a
 * global, so adds to different directories may run in parallel.
 */
#define uthash_nonfatal_oom(obj) ((void)(obj), hash_oomed = 1)

#include "dir.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"

/* Smallest mark array worth allocating. */
#define MIN_MARKS 4

static size_t dirent_size(size_t namelen)
{
	return offsetof(struct mfs_dirent, name) + namelen + 1;
}

/* The entry after e in position order (uthash's insertion order), or NULL. */
static struct mfs_dirent *next_of(const struct mfs_dirent *e)
{
	return e->hh.next;
}

/* ---- lifecycle ---- */

void mfs_dir_init(struct mfs_dir *dir)
{
	memset(dir, 0, sizeof(*dir));
	dir->next_pos = MFS_DIR_FIRST_POS;
}

void mfs_dir_free(struct mfs_dir *dir)
{
	/* HASH_CLEAR drops the table but leaves the entries' list links. */
	struct mfs_dirent *e = dir->by_name, *next;

	HASH_CLEAR(hh, dir->by_name);
	for (; e; e = next) {
		next = next_of(e);
		mfs_free(e);
	}
	mfs_free(dir->marks);
	mfs_dir_init(dir);
}

/* ---- by name ---- */

struct mfs_dirent *mfs_dir_find(const struct mfs_dir *dir, const char *name, size_t namelen)
{
	struct mfs_dirent *head = dir->by_name;
	struct mfs_dirent *e;

	/* No entry is longer than MFS_NAME_MAX; this also keeps the length cast below exact. */
	if (namelen == 0 || namelen > MFS_NAME_MAX)
		return NULL;
	HASH_FIND(hh, head, name, (unsigned)namelen, e);
	return e;
}

/*
 * Put e into the name table.  0, or -ENOMEM with the table as it was.
 *
 * uthash 2.3.0 already takes the item back out both when the first table and
 * when a bigger bucket array cannot be allocated (HASH_ADD_TO_BKT unlinks it,
 * HASH_ADD_TO_TABLE rolls the count back and sets hh.tbl to NULL).  Should a
 * uthash version keep the item after a failed expansion instead, it is taken
 * out here, so the caller sees -ENOMEM and an unchanged table either way.
 */
static int add_to_hash(struct mfs_dir *dir, struct mfs_dirent *e)
{
	int hash_oomed = 0;
	struct mfs_dirent *found;

	HASH_ADD_KEYPTR(hh, dir->by_name, e->name, e->namelen, e);
	if (!hash_oomed)
		return 0;
	HASH_FIND(hh, dir->by_name, e->name, e->namelen, found);
	if (found == e)
		HASH_DELETE(hh, dir->by_name, e);
	return -ENOMEM;
}

/* ---- marks: where a search for a position starts ---- */

/* Room for one more mark.  0, or -ENOMEM with the array as it was. */
static int reserve_mark(struct mfs_dir *dir)
{
	struct mfs_dirmark *marks;
	size_t cap;

	if (dir->nmarks < dir->cap)
		return 0;
	if (dir->cap > SIZE_MAX / 2 / sizeof(*marks))
		return -ENOMEM;
	cap = dir->cap ? dir->cap * 2 : MIN_MARKS;
	marks = mfs_realloc(dir->marks, cap * sizeof(*marks));
	if (!marks)
		return -ENOMEM;
	dir->marks = marks;
	dir->cap = cap;
	return 0;
}

/* Index of the first mark whose position is greater than pos (nmarks if none). */
static size_t first_mark_after(const struct mfs_dir *dir, uint64_t pos)
{
	size_t lo = 0, hi = dir->nmarks;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (dir->marks[mid].pos <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Most marks a directory of n entries keeps before they are laid out afresh. */
static size_t marks_allowed(size_t n)
{
	return 2 * (n / MFS_DIR_MARK_EVERY) + 2;
}

/*
 * Mark every MFS_DIR_MARK_EVERY-th entry from the head again, once removals
 * left too many marks for the entries (each removal of a marked entry passes
 * its mark on, so the marks thin out only here): O(n) after at least n/2
 * removals since the last time, amortised O(1).  Only called with entries
 * left (tidy_marks), so at least the head is marked.  The array was big
 * enough before and only shrinks; if the smaller array cannot be had, the
 * larger one stays.
 */
static void remark(struct mfs_dir *dir)
{
	size_t n = 0, i = 0, cap;
	struct mfs_dirmark *marks;

	for (struct mfs_dirent *e = dir->by_name; e; e = next_of(e), i++) {
		if (i % MFS_DIR_MARK_EVERY == 0)
			dir->marks[n++] = (struct mfs_dirmark){e->pos, e};
	}
	dir->nmarks = n;
	dir->since_mark = (unsigned)(i % MFS_DIR_MARK_EVERY);
	cap = n < MIN_MARKS ? MIN_MARKS : n;
	if (cap < dir->cap / 2 && (marks = mfs_realloc(dir->marks, cap * sizeof(*marks)))) {
		dir->marks = marks;
		dir->cap = cap;
	}
}

/* After an add or a removal: no marks for an empty directory, and never more than allowed. */
static void tidy_marks(struct mfs_dir *dir)
{
	if (dir->nlive == 0) {
		mfs_free(dir->marks);
		dir->marks = NULL;
		dir->nmarks = dir->cap = 0;
		dir->since_mark = 0;
	} else if (dir->nmarks > marks_allowed(dir->nlive)) {
		remark(dir);
	}
}

/*
 * entry is about to go: the marks that name it name the entry after it
 * instead, or, at the end of the list, go too (they are the last ones).
 */
static void unmark(struct mfs_dir *dir, const struct mfs_dirent *entry)
{
	struct mfs_dirent *next = next_of(entry);
	size_t i = first_mark_after(dir, entry->pos);

	while (i > 0 && dir->marks[i - 1].entry == entry) {
		i--;
		if (next) {
			dir->marks[i] = (struct mfs_dirmark){next->pos, next};
		} else {
			assert(i == dir->nmarks - 1);
			dir->nmarks--;
			/* the entries before it now end the list unmarked: the
			 * next one added gets a mark, lest that run grow past
			 * MFS_DIR_MARK_EVERY */
			dir->since_mark = 0;
		}
	}
}

/* ---- add, remove, iterate ---- */

/* Add a new entry whose inode or stub fields the caller sets in *out. */
static int add_entry(struct mfs_dir *dir, const char *name, size_t namelen,
		     struct mfs_dirent **out)
{
	/* A new entry goes at the end of the list; every so many get a mark. */
	bool mark = dir->since_mark == 0;
	struct mfs_dirent *e;
	int err;

	assert(namelen >= 1 && namelen <= MFS_NAME_MAX);
	e = mfs_malloc(dirent_size(namelen));
	if (!e)
		return -ENOMEM;
	e->inode = NULL;
	e->stub_type = 0;
	e->stub_layer = 0;
	e->pos = dir->next_pos;
	e->namelen = (uint16_t)namelen;
	memcpy(e->name, name, namelen);
	e->name[namelen] = '\0';

	/* Mark room first: a grown array is harmless if the hash fails, a hash entry is not. */
	err = mark ? reserve_mark(dir) : 0;
	if (err == 0)
		err = add_to_hash(dir, e);
	if (err) {
		mfs_free(e);
		return err;
	}

	if (mark)
		dir->marks[dir->nmarks++] = (struct mfs_dirmark){e->pos, e};
	dir->since_mark = (dir->since_mark + 1) % MFS_DIR_MARK_EVERY;
	dir->nlive++;
	dir->next_pos++;
	tidy_marks(dir);
	*out = e;
	return 0;
}

int mfs_dir_add(struct mfs_dir *dir, const char *name, size_t namelen, struct mfs_inode *inode,
		struct mfs_dirent **out)
{
	struct mfs_dirent *e;
	int err = add_entry(dir, name, namelen, &e);

	if (err)
		return err;
	e->inode = inode;
	if (out)
		*out = e;
	return 0;
}

int mfs_dir_add_stub(struct mfs_dir *dir, const char *name, size_t namelen, uint64_t ino,
		     unsigned type, unsigned layer, struct mfs_dirent **out)
{
	struct mfs_dirent *e;
	int err;

	assert((type & ~(unsigned)S_IFMT) == 0 && type != 0 && layer <= UINT8_MAX);
	err = add_entry(dir, name, namelen, &e);
	if (err)
		return err;
	e->stub_ino = ino;
	e->stub_type = (uint8_t)(type >> 12);
	e->stub_layer = (uint8_t)layer;
	if (out)
		*out = e;
	return 0;
}

void mfs_dir_remove(struct mfs_dir *dir, struct mfs_dirent *entry)
{
	unmark(dir, entry);
	HASH_DELETE(hh, dir->by_name, entry);
	if (dir->by_name)
		mfs_hash_shrink(dir->by_name->hh.tbl);
	dir->nlive--;
	mfs_free(entry);
	tidy_marks(dir);
}

struct mfs_dirent *mfs_dir_next(const struct mfs_dir *dir, uint64_t pos)
{
	size_t i = first_mark_after(dir, pos);
	/* The last mark at or before pos, or the head (marks[0] names it). */
	struct mfs_dirent *e = i > 0 ? dir->marks[i - 1].entry : dir->by_name;

	while (e && e->pos <= pos)
		e = next_of(e);
	return e;
}

struct mfs_dirent *mfs_dir_after(const struct mfs_dirent *e)
{
	return next_of(e);
}

/* ---- consistency ---- */

/* One entry: well formed, and what the hash finds by its name. */
static const char *check_entry(const struct mfs_dir *dir, const struct mfs_dirent *e)
{
	if (e->namelen < 1 || e->namelen > MFS_NAME_MAX || e->name[e->namelen] != '\0')
		return "entry name length out of range or name not NUL-terminated";
	if (e->pos < MFS_DIR_FIRST_POS || e->pos >= dir->next_pos)
		return "entry position outside [MFS_DIR_FIRST_POS, next_pos)";
	if (e->hh.key != (const void *)e->name || e->hh.keylen != e->namelen)
		return "hash key is not the entry's name";
	if (mfs_dir_find(dir, e->name, e->namelen) != e)
		return "listed entry is not in the name table";
	return NULL;
}

/*
 * The list and the marks together, in one pass: positions strictly
 * increase along the list, every mark names a listed entry at its
 * position, in order, the first one the head, and no position is more than
 * MFS_DIR_MARK_EVERY steps past the mark before it.
 */
static const char *check_list_and_marks(const struct mfs_dir *dir)
{
	size_t live = 0, m = 0, steps = 0;
	uint64_t last = 0;
	const char *why;

	if (dir->nmarks > dir->cap || (dir->cap > 0 && !dir->marks))
		return "mark count exceeds the allocated array";
	if (dir->nmarks > marks_allowed(dir->nlive))
		return "more marks than the entries allow (remark missed)";
	if (dir->by_name && (dir->nmarks == 0 || dir->marks[0].entry != dir->by_name))
		return "first mark does not name the head";
	for (const struct mfs_dirent *e = dir->by_name; e; e = next_of(e)) {
		why = check_entry(dir, e);
		if (why)
			return why;
		if (live > 0 && e->pos <= last)
			return "positions not strictly increasing along the list";
		if (m < dir->nmarks && dir->marks[m].entry == e) {
			while (m < dir->nmarks && dir->marks[m].entry == e) {
				if (dir->marks[m].pos != e->pos)
					return "mark position differs from its entry's";
				m++;
			}
			steps = 0;
		} else if (++steps >= MFS_DIR_MARK_EVERY + 1) {
			return "an entry lies too many steps past the mark before it";
		}
		last = e->pos;
		live++;
	}
	if (m != dir->nmarks)
		return "a mark names an entry not in the list, or out of order";
	if (live != dir->nlive)
		return "listed entries differ from nlive";
	return NULL;
}

int mfs_dir_check(const struct mfs_dir *dir, const char **why)
{
	const char *problem = NULL;

	if ((size_t)HASH_COUNT(dir->by_name) != dir->nlive)
		problem = "name table count differs from nlive";
	if (!problem)
		problem = check_list_and_marks(dir);
	if (why)
		*why = problem;
	return problem ? -EUCLEAN : 0;
}
