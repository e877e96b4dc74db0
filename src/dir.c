/*
 * dir.c — the entries of one directory (contract in dir.h).
 *
 * An entry lives in two places at once: the uthash table keyed on its name
 * (lookups) and one slot of the pos-ordered array (readdir).  Adding appends
 * a slot, so the array stays sorted without ever being sorted.  Removing
 * turns the entry's slot into a tombstone instead of shifting the array, and
 * the tombstones are squeezed out in one pass once they outnumber the live
 * entries, which keeps every removal amortised O(1) and the array at most
 * twice the live count.
 *
 * To find its slot in O(1) on removal, and its position, every entry
 * carries the index of its slot (e->slot); compaction moves slots and
 * rewrites those indexes.  The position itself lives only in the slot.
 *
 * Memory, measured with mallinfo2 for a million 10-byte names: 129.6
 * bytes per entry = 96 for the entry (56 of it uthash's handle) + 17 for
 * its slot + 17 for uthash's buckets, which it grows to about one per
 * entry.
 *
 * Allocation failures: an add allocates the entry, maybe a larger slot
 * array, and maybe the hash table or a bigger bucket array.  Each failure
 * undoes what came before it, so the directory is never left half-changed.
 * Removal may shrink the slot array; if that realloc fails the old, larger
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
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#include "alloc.h"

/* Smallest slot array worth allocating, and the floor below which it is never shrunk. */
#define MIN_SLOTS 8

/* ---- an entry's slot ---- */

static size_t dirent_size(size_t namelen)
{
	return offsetof(struct mfs_dirent, name) + namelen + 1;
}

static size_t slot_of(const struct mfs_dirent *e)
{
	return e->slot;
}

static void set_slot_of(struct mfs_dirent *e, size_t i)
{
	e->slot = (uint32_t)i;
}

/* ---- lifecycle ---- */

void mfs_dir_init(struct mfs_dir *dir)
{
	memset(dir, 0, sizeof(*dir));
	dir->next_pos = MFS_DIR_FIRST_POS;
}

void mfs_dir_free(struct mfs_dir *dir)
{
	/*
	 * The hash is dropped wholesale first (HASH_CLEAR reads the head entry to
	 * find the table); then the slots reach every live entry exactly once.
	 */
	HASH_CLEAR(hh, dir->by_name);
	for (size_t i = 0; i < dir->nslots; i++)
		mfs_free(dir->slots[i].entry);
	mfs_free(dir->slots);
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

/* ---- by position ---- */

/* Make room for one more slot.  0, or -ENOMEM with the array as it was. */
static int reserve_slot(struct mfs_dir *dir)
{
	struct mfs_dirslot *slots;
	size_t cap;

	if (dir->nslots < dir->cap)
		return 0;
	/* slot numbers are 32-bit (mfs_dirent.slot): 4 billion names would take 400 GB anyway */
	if (dir->cap > UINT32_MAX / 2 || dir->cap > SIZE_MAX / 2 / sizeof(*slots))
		return -ENOMEM;
	cap = dir->cap ? dir->cap * 2 : MIN_SLOTS;
	slots = mfs_realloc(dir->slots, cap * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	dir->slots = slots;
	dir->cap = cap;
	return 0;
}

/* Squeeze the tombstones out, keeping order and positions; rewrite moved entries' trailers. */
static void compact(struct mfs_dir *dir)
{
	size_t to = 0;

	for (size_t from = 0; from < dir->nslots; from++) {
		struct mfs_dirent *e = dir->slots[from].entry;
		if (!e)
			continue;
		if (to != from) {
			dir->slots[to] = dir->slots[from];
			set_slot_of(e, to);
		}
		to++;
	}
	dir->nslots = to;
}

/*
 * Give memory back after many removals: halve the array while it is at most
 * a quarter full (never at half, so alternating adds and removes cannot make
 * it realloc on every call).  A failed shrink keeps the larger array:
 * removal never fails.
 */
static void maybe_shrink(struct mfs_dir *dir)
{
	struct mfs_dirslot *slots;
	size_t cap = dir->cap;

	if (dir->nslots == 0) {
		mfs_free(dir->slots);
		dir->slots = NULL;
		dir->cap = 0;
		return;
	}
	while (cap > MIN_SLOTS && dir->nslots <= cap / 4)
		cap /= 2;
	if (cap == dir->cap)
		return;
	slots = mfs_realloc(dir->slots, cap * sizeof(*slots));
	if (!slots)
		return;
	dir->slots = slots;
	dir->cap = cap;
}

/*
 * After a slot became a tombstone: drop tombstones at the end (nothing
 * follows them, so the array stays ordered; common for create-then-delete
 * patterns), and compact once tombstones outnumber live entries.
 */
static void tidy_slots(struct mfs_dir *dir)
{
	while (dir->nslots > 0 && !dir->slots[dir->nslots - 1].entry)
		dir->nslots--;
	if (dir->nslots - dir->nlive > dir->nlive)
		compact(dir);
	maybe_shrink(dir);
}

/* ---- add, remove, iterate ---- */

/* Add a new entry whose inode or stub fields the caller sets in *out. */
static int add_entry(struct mfs_dir *dir, const char *name, size_t namelen,
		     struct mfs_dirent **out)
{
	struct mfs_dirent *e;
	int err;

	assert(namelen >= 1 && namelen <= MFS_NAME_MAX);
	e = mfs_malloc(dirent_size(namelen));
	if (!e)
		return -ENOMEM;
	e->inode = NULL;
	e->stub_type = 0;
	e->stub_layer = 0;
	e->namelen = (uint16_t)namelen;
	memcpy(e->name, name, namelen);
	e->name[namelen] = '\0';

	/* Slot first: a grown array is harmless if the hash then fails, a hash entry is not. */
	err = reserve_slot(dir);
	if (err == 0)
		err = add_to_hash(dir, e);
	if (err) {
		mfs_free(e);
		return err;
	}

	set_slot_of(e, dir->nslots);
	dir->slots[dir->nslots].pos = dir->next_pos;
	dir->slots[dir->nslots].entry = e;
	dir->nslots++;
	dir->nlive++;
	dir->next_pos++;
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
	size_t i = slot_of(entry);

	assert(i < dir->nslots && dir->slots[i].entry == entry);
	HASH_DELETE(hh, dir->by_name, entry);
	if (dir->by_name)
		mfs_hash_shrink(dir->by_name->hh.tbl);
	dir->slots[i].entry = NULL;
	dir->nlive--;
	mfs_free(entry);
	tidy_slots(dir);
}

/* Index of the first slot whose position is greater than pos (nslots if none). */
static size_t first_slot_after(const struct mfs_dir *dir, uint64_t pos)
{
	size_t lo = 0, hi = dir->nslots;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (dir->slots[mid].pos <= pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Tombstones after the found slot are skipped one by one; there are never
 * more of them than live entries, and a whole listing steps over each once.
 */
static struct mfs_dirent *first_live_from(const struct mfs_dir *dir, size_t i)
{
	for (; i < dir->nslots; i++)
		if (dir->slots[i].entry)
			return dir->slots[i].entry;
	return NULL;
}

struct mfs_dirent *mfs_dir_next(const struct mfs_dir *dir, uint64_t pos)
{
	return first_live_from(dir, first_slot_after(dir, pos));
}

struct mfs_dirent *mfs_dir_after(const struct mfs_dir *dir, const struct mfs_dirent *e)
{
	return first_live_from(dir, slot_of(e) + 1);
}

/* ---- consistency ---- */

/* One live slot: its entry is well formed, knows its slot, and is what the hash finds. */
static const char *check_live_slot(const struct mfs_dir *dir, size_t i)
{
	const struct mfs_dirent *e = dir->slots[i].entry;

	if (e->namelen < 1 || e->namelen > MFS_NAME_MAX || e->name[e->namelen] != '\0')
		return "entry name length out of range or name not NUL-terminated";
	if (slot_of(e) != i)
		return "entry's slot index does not point back at its slot";
	if (e->hh.key != (const void *)e->name || e->hh.keylen != e->namelen)
		return "hash key is not the entry's name";
	if (mfs_dir_find(dir, e->name, e->namelen) != e)
		return "live slot's entry is not in the name table";
	return NULL;
}

static const char *check_slots(const struct mfs_dir *dir)
{
	size_t live = 0;
	const char *why;

	if (dir->nslots > dir->cap || (dir->cap > 0 && !dir->slots))
		return "slot count exceeds the allocated array";
	for (size_t i = 0; i < dir->nslots; i++) {
		uint64_t pos = dir->slots[i].pos;
		if (pos < MFS_DIR_FIRST_POS || pos >= dir->next_pos)
			return "slot position outside [MFS_DIR_FIRST_POS, next_pos)";
		if (i > 0 && pos <= dir->slots[i - 1].pos)
			return "slot positions not strictly increasing";
		if (!dir->slots[i].entry)
			continue;
		why = check_live_slot(dir, i);
		if (why)
			return why;
		live++;
	}
	if (live != dir->nlive)
		return "live slots differ from nlive";
	if (dir->nslots - dir->nlive > dir->nlive)
		return "tombstones outnumber live entries (compaction missed)";
	if (dir->nslots > 0 && !dir->slots[dir->nslots - 1].entry)
		return "trailing tombstone left in place";
	return NULL;
}

/* Every hashed entry sits in the slot its trailer names (catches entries only the hash has). */
static const char *check_hash(const struct mfs_dir *dir)
{
	struct mfs_dirent *e, *tmp;

	if ((size_t)HASH_COUNT(dir->by_name) != dir->nlive)
		return "name table count differs from nlive";
	HASH_ITER(hh, dir->by_name, e, tmp)
	{
		size_t i = slot_of(e);
		if (i >= dir->nslots || dir->slots[i].entry != e)
			return "hashed entry is not in the slot it names";
	}
	return NULL;
}

int mfs_dir_check(const struct mfs_dir *dir, const char **why)
{
	const char *problem = check_slots(dir);

	if (!problem)
		problem = check_hash(dir);
	if (why)
		*why = problem;
	return problem ? -EUCLEAN : 0;
}
