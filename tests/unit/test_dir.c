/*
 * test_dir.c — unit tests of src/dir.c: the by-name and by-position views of
 * one directory, readdir cursors, compaction, scale, and allocation failure.
 *
 * Entries only carry inode pointers, never follow them, so the tests use fake
 * pointers.  Every test ends with mfs_dir_check() and mfs_dir_free(), so
 * AddressSanitizer or valgrind also prove nothing leaks.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "dir.h"

/* ---- helpers ---- */

/*
 * For checks inside loops of up to a million steps: Check's ck_assert_*
 * report a mark point to the parent process on every success (a write(2)
 * each), which made the large tests spend most of their time in the kernel.
 */
#define require(cond)                                                                              \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg("requirement failed: %s", #cond);                             \
	} while (0)

static struct mfs_inode *fake_inode(size_t i)
{
	return (struct mfs_inode *)(uintptr_t)(0x10000 + i * 16);
}

/* A 10-byte name for index i ("n000000042"). */
static size_t name_of(char *buf, size_t i)
{
	return (size_t)snprintf(buf, 16, "n%09zu", i);
}

#define assert_consistent(dir)                                                                     \
	do {                                                                                       \
		const char *why_ = NULL;                                                           \
		int err_ = mfs_dir_check(dir, &why_);                                              \
		if (err_ != 0)                                                                     \
			ck_abort_msg("mfs_dir_check: %s", why_ ? why_ : "(no reason)");            \
	} while (0)

static struct mfs_dirent *add_str(struct mfs_dir *dir, const char *name, size_t ino)
{
	struct mfs_dirent *e = NULL;

	ck_assert_int_eq(mfs_dir_add(dir, name, strlen(name), fake_inode(ino), &e), 0);
	ck_assert_ptr_nonnull(e);
	return e;
}

static struct mfs_dirent *add_nth(struct mfs_dir *dir, size_t i)
{
	char name[16];
	struct mfs_dirent *e = NULL;

	require(mfs_dir_add(dir, name, name_of(name, i), fake_inode(i), &e) == 0);
	return e;
}

static struct mfs_dirent *find_str(const struct mfs_dir *dir, const char *name)
{
	return mfs_dir_find(dir, name, strlen(name));
}

static struct mfs_dirent *find_nth(const struct mfs_dir *dir, size_t i)
{
	char name[16];

	return mfs_dir_find(dir, name, name_of(name, i));
}

static void remove_str(struct mfs_dir *dir, const char *name)
{
	struct mfs_dirent *e = find_str(dir, name);

	ck_assert_ptr_nonnull(e);
	mfs_dir_remove(dir, e);
}

static void remove_nth(struct mfs_dir *dir, size_t i)
{
	struct mfs_dirent *e = find_nth(dir, i);

	require(e != NULL);
	mfs_dir_remove(dir, e);
}

static size_t count_listing(const struct mfs_dir *dir)
{
	size_t n = 0;
	uint64_t last = 0;

	for (struct mfs_dirent *e = mfs_dir_next(dir, 0); e; e = mfs_dir_next(dir, e->pos)) {
		require(e->pos > last);
		/* the O(1) successor the listings use is the searched one */
		require(mfs_dir_after(e) == mfs_dir_next(dir, e->pos));
		last = e->pos;
		n++;
	}
	return n;
}

/* Small deterministic generator, so a failing random test can be replayed. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- basics ---- */

START_TEST(empty_directory_has_no_entries_and_passes_the_check)
{
	struct mfs_dir dir;

	mfs_dir_init(&dir);
	ck_assert_uint_eq(mfs_dir_count(&dir), 0);
	ck_assert_ptr_null(mfs_dir_next(&dir, 0));
	ck_assert_ptr_null(find_str(&dir, "a"));
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(added_entry_is_found_with_its_inode_and_the_first_position)
{
	struct mfs_dir dir;
	struct mfs_dirent *e;

	mfs_dir_init(&dir);
	e = add_str(&dir, "hello", 7);
	ck_assert_ptr_eq(find_str(&dir, "hello"), e);
	ck_assert_ptr_eq(e->inode, fake_inode(7));
	ck_assert_uint_eq(e->pos, MFS_DIR_FIRST_POS);
	ck_assert_uint_eq(e->namelen, 5);
	ck_assert_str_eq(e->name, "hello");
	ck_assert_uint_eq(mfs_dir_count(&dir), 1);
	ck_assert_ptr_eq(mfs_dir_next(&dir, 0), e);
	ck_assert_ptr_eq(mfs_dir_next(&dir, 2), e);
	ck_assert_ptr_null(mfs_dir_next(&dir, e->pos));
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(add_accepts_a_null_out_pointer)
{
	struct mfs_dir dir;

	mfs_dir_init(&dir);
	ck_assert_int_eq(mfs_dir_add(&dir, "x", 1, fake_inode(1), NULL), 0);
	ck_assert_ptr_nonnull(find_str(&dir, "x"));
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(find_matches_whole_names_only_and_needs_no_nul)
{
	struct mfs_dir dir;
	struct mfs_dirent *e;

	mfs_dir_init(&dir);
	e = add_str(&dir, "abc", 1);
	ck_assert_ptr_null(mfs_dir_find(&dir, "ab", 2));
	ck_assert_ptr_null(mfs_dir_find(&dir, "abcd", 4));
	ck_assert_ptr_null(mfs_dir_find(&dir, "ABC", 3));
	ck_assert_ptr_eq(mfs_dir_find(&dir, "abcdef", 3), e);
	ck_assert_ptr_null(mfs_dir_find(&dir, "", 0));
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(names_of_255_bytes_and_arbitrary_bytes_are_kept_exactly)
{
	struct mfs_dir dir;
	char longname[MFS_NAME_MAX];
	const char binary[] = {'\x01', '\xff', '\x80', ' ', '.'};
	struct mfs_dirent *e1 = NULL, *e2 = NULL;

	mfs_dir_init(&dir);
	memset(longname, 'z', sizeof(longname));
	ck_assert_int_eq(mfs_dir_add(&dir, longname, sizeof(longname), fake_inode(1), &e1), 0);
	ck_assert_int_eq(mfs_dir_add(&dir, binary, sizeof(binary), fake_inode(2), &e2), 0);
	ck_assert_uint_eq(e1->namelen, MFS_NAME_MAX);
	ck_assert_int_eq(memcmp(e1->name, longname, sizeof(longname)), 0);
	ck_assert_int_eq(e1->name[MFS_NAME_MAX], '\0');
	ck_assert_ptr_eq(mfs_dir_find(&dir, longname, sizeof(longname)), e1);
	ck_assert_ptr_null(mfs_dir_find(&dir, longname, sizeof(longname) - 1));
	ck_assert_ptr_eq(mfs_dir_find(&dir, binary, sizeof(binary)), e2);
	ck_assert_ptr_null(mfs_dir_find(&dir, longname, MFS_NAME_MAX + 1));
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(positions_strictly_increase_and_are_never_reused)
{
	struct mfs_dir dir;
	uint64_t a, b, c, d;

	mfs_dir_init(&dir);
	a = (add_str(&dir, "a", 1))->pos;
	b = (add_str(&dir, "b", 2))->pos;
	ck_assert_uint_gt(b, a);
	remove_str(&dir, "b"); /* the last entry, and marked: its mark goes too */
	c = (add_str(&dir, "b", 2))->pos;
	ck_assert_uint_gt(c, b);
	remove_str(&dir, "a");
	remove_str(&dir, "b"); /* now empty: mark array released */
	ck_assert_uint_eq(mfs_dir_count(&dir), 0);
	d = (add_str(&dir, "a", 1))->pos;
	ck_assert_uint_gt(d, c);
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(removed_entry_is_gone_and_others_stay)
{
	struct mfs_dir dir;

	mfs_dir_init(&dir);
	for (size_t i = 0; i < 50; i++)
		add_nth(&dir, i);
	for (size_t i = 0; i < 50; i += 3)
		remove_nth(&dir, i);
	for (size_t i = 0; i < 50; i++) {
		struct mfs_dirent *e = find_nth(&dir, i);
		if (i % 3 == 0) {
			ck_assert_ptr_null(e);
		} else {
			ck_assert_ptr_nonnull(e);
			ck_assert_ptr_eq(e->inode, fake_inode(i));
		}
	}
	ck_assert_uint_eq(mfs_dir_count(&dir), 50 - 17);
	ck_assert_uint_eq(count_listing(&dir), 50 - 17);
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

/* ---- cursors ---- */

START_TEST(cursor_survives_removal_of_the_entry_it_points_at)
{
	struct mfs_dir dir;
	struct mfs_dirent *e;
	uint64_t cursor;

	mfs_dir_init(&dir);
	add_str(&dir, "a", 1);
	add_str(&dir, "b", 2);
	add_str(&dir, "c", 3);
	add_str(&dir, "d", 4);

	e = mfs_dir_next(&dir, 0);
	ck_assert_str_eq(e->name, "a");
	cursor = e->pos;
	mfs_dir_remove(&dir, e);
	e = mfs_dir_next(&dir, cursor);
	ck_assert_str_eq(e->name, "b");
	cursor = e->pos;
	mfs_dir_remove(&dir, e);
	remove_str(&dir, "c"); /* the next one too: the cursor skips both */
	e = mfs_dir_next(&dir, cursor);
	ck_assert_str_eq(e->name, "d");
	cursor = e->pos;
	mfs_dir_remove(&dir, e);
	ck_assert_ptr_null(mfs_dir_next(&dir, cursor));
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(cursor_survives_the_removal_of_its_entry_and_of_the_marks_around_it)
{
	struct mfs_dir dir;
	uint64_t cursor;
	struct mfs_dirent *e;

	mfs_dir_init(&dir);
	for (size_t i = 0; i < 100; i++)
		add_nth(&dir, i);
	cursor = (find_nth(&dir, 50))->pos;
	for (size_t i = 0; i <= 80; i++)
		remove_nth(&dir, i);
	/* 81 removed of 100: the marks were laid out afresh, none is at the cursor. */
	ck_assert_uint_le(dir.nmarks, 2);
	for (size_t i = 0; i < dir.nmarks; i++)
		ck_assert_uint_ne(dir.marks[i].pos, cursor);
	e = mfs_dir_next(&dir, cursor);
	ck_assert_ptr_eq(e, find_nth(&dir, 81));
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(cursor_past_every_position_gives_the_end)
{
	struct mfs_dir dir;

	mfs_dir_init(&dir);
	for (size_t i = 0; i < 10; i++)
		add_nth(&dir, i);
	ck_assert_ptr_null(mfs_dir_next(&dir, dir.next_pos));
	ck_assert_ptr_null(mfs_dir_next(&dir, UINT64_MAX));
	ck_assert_ptr_eq(mfs_dir_next(&dir, 1), find_nth(&dir, 0));
	mfs_dir_free(&dir);
}
END_TEST

/*
 * Stable entries ("s") stay for the whole listing; between every two steps
 * some volatile entries ("v", listed or not) are removed and new ones added,
 * enough to lay the marks out afresh several times.  Each stable entry must come
 * out exactly once, and nothing twice.
 */
START_TEST(entry_present_for_whole_listing_is_returned_once_while_others_are_removed)
{
	enum { NSTABLE = 500, NVOL = 3000 };
	struct mfs_dir dir;
	unsigned *seen_stable = calloc(NSTABLE, sizeof(unsigned));
	uint64_t rng = 0x9e3779b97f4a7c15u, last = 0;
	size_t next_vol = 0, remarks = 0, prev_nmarks = 0;
	char name[32];

	mfs_dir_init(&dir);
	for (size_t i = 0; i < NVOL; i++) {
		if (i % (NVOL / NSTABLE) == 0) {
			snprintf(name, sizeof(name), "s%zu", i / (NVOL / NSTABLE));
			add_str(&dir, name, 0);
		}
		snprintf(name, sizeof(name), "v%zu", next_vol++);
		add_str(&dir, name, 1);
	}
	for (struct mfs_dirent *e = mfs_dir_next(&dir, 0); e; e = mfs_dir_next(&dir, last)) {
		ck_assert_uint_gt(e->pos, last);
		last = e->pos;
		if (e->name[0] == 's')
			seen_stable[atoi(e->name + 1)]++;
		/* Remove up to 8 random volatile entries, including possibly e itself. */
		for (int k = 0; k < 8; k++) {
			struct mfs_dirent *v;
			snprintf(name, sizeof(name), "v%zu", (size_t)(rng_next(&rng) % next_vol));
			v = find_str(&dir, name);
			if (v)
				mfs_dir_remove(&dir, v);
		}
		if (rng_next(&rng) % 4 == 0) {
			snprintf(name, sizeof(name), "v%zu", next_vol++);
			add_str(&dir, name, 1);
		}
		if (dir.nmarks + 1 < prev_nmarks)
			remarks++;
		prev_nmarks = dir.nmarks;
		assert_consistent(&dir);
	}
	for (size_t i = 0; i < NSTABLE; i++)
		ck_assert_msg(seen_stable[i] == 1, "s%zu listed %u times", i, seen_stable[i]);
	ck_assert_uint_ge(remarks, 2);
	free(seen_stable);
	mfs_dir_free(&dir);
}
END_TEST

/* ---- marks and memory ---- */

START_TEST(removals_keep_positions_and_order)
{
	struct mfs_dir dir;
	uint64_t pos[100];
	size_t prev = 0;

	mfs_dir_init(&dir);
	for (size_t i = 0; i < 100; i++)
		pos[i] = (add_nth(&dir, i))->pos;
	for (size_t i = 0; i < 100; i++)
		if (i % 4 != 3)
			remove_nth(&dir, i);
	ck_assert_uint_eq(mfs_dir_count(&dir), 25);
	ck_assert_uint_le(dir.nmarks, 2 * (dir.nlive / MFS_DIR_MARK_EVERY) + 2);
	for (size_t i = 3; i < 100; i += 4)
		ck_assert_uint_eq((find_nth(&dir, i))->pos, pos[i]);
	/* And the listing still runs in the order the entries were added. */
	for (struct mfs_dirent *e = mfs_dir_next(&dir, 0); e; e = mfs_dir_next(&dir, e->pos)) {
		size_t i = (size_t)atol(e->name + 1);
		ck_assert_uint_eq(e->pos, pos[i]);
		ck_assert_uint_ge(i, prev);
		prev = i;
	}
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(marks_never_outnumber_what_the_entries_need)
{
	struct mfs_dir dir;

	mfs_dir_init(&dir);
	for (size_t i = 0; i < 1000; i++)
		add_nth(&dir, i);
	/* Remove from the front: every removal passes the head's mark on. */
	for (size_t i = 0; i < 999; i++) {
		remove_nth(&dir, i);
		ck_assert_uint_le(dir.nmarks, 2 * (dir.nlive / MFS_DIR_MARK_EVERY) + 2);
		ck_assert_ptr_eq(dir.marks[0].entry, dir.by_name);
	}
	ck_assert_uint_eq(count_listing(&dir), 1);
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(mark_array_shrinks_after_mass_removal_and_is_released_when_empty)
{
	struct mfs_dir dir;

	mfs_dir_init(&dir);
	for (size_t i = 0; i < 10000; i++)
		add_nth(&dir, i);
	ck_assert_uint_ge(dir.cap, 10000 / MFS_DIR_MARK_EVERY);
	ck_assert_uint_le(dir.cap, 2 * (10000 / MFS_DIR_MARK_EVERY + 1));
	for (size_t i = 0; i < 9990; i++)
		remove_nth(&dir, i);
	ck_assert_uint_le(dir.cap, 8);
	assert_consistent(&dir);
	for (size_t i = 9990; i < 10000; i++)
		remove_nth(&dir, i);
	ck_assert_ptr_null(dir.marks);
	ck_assert_uint_eq(dir.cap, 0);
	ck_assert_ptr_null(dir.by_name);
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(free_releases_everything_and_leaves_a_reusable_directory)
{
	struct mfs_dir dir;

	mfs_dir_init(&dir);
	for (size_t i = 0; i < 300; i++)
		add_nth(&dir, i);
	for (size_t i = 0; i < 300; i += 7)
		remove_nth(&dir, i); /* leave tombstones behind */
	mfs_dir_free(&dir);
	ck_assert_uint_eq(mfs_dir_count(&dir), 0);
	ck_assert_ptr_null(mfs_dir_next(&dir, 0));
	add_str(&dir, "again", 1);
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

/* ---- the checker itself ---- */

START_TEST(check_reports_views_that_disagree)
{
	struct mfs_dir dir;
	struct mfs_dirent *e;
	const char *why = NULL;
	uint64_t saved;

	mfs_dir_init(&dir);
	for (size_t i = 0; i < 20; i++)
		add_nth(&dir, i);
	e = find_nth(&dir, 5);

	/* an entry out of position order */
	saved = e->pos;
	e->pos = (find_nth(&dir, 4))->pos;
	ck_assert_int_eq(mfs_dir_check(&dir, &why), -EUCLEAN);
	ck_assert_ptr_nonnull(why);
	e->pos = saved;

	/* a mark whose position is not its entry's */
	saved = dir.marks[0].pos;
	dir.marks[0].pos++;
	ck_assert_int_eq(mfs_dir_check(&dir, &why), -EUCLEAN);
	dir.marks[0].pos = saved;

	/* a mark naming an entry the search would not find it at */
	ck_assert_uint_ge(dir.nmarks, 1);
	dir.marks[0].entry = e;
	ck_assert_int_eq(mfs_dir_check(&dir, &why), -EUCLEAN);
	dir.marks[0].entry = dir.by_name;

	dir.nlive++;
	ck_assert_int_eq(mfs_dir_check(&dir, &why), -EUCLEAN);
	dir.nlive--;

	/* an entry the hash finds under another name than its own */
	e->name[0] ^= 1;
	ck_assert_int_eq(mfs_dir_check(&dir, &why), -EUCLEAN);
	e->name[0] ^= 1;

	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

/* ---- scale ---- */

START_TEST(million_entries_add_find_remove)
{
	enum { N = 1000000 };
	struct mfs_dir dir;
	const size_t stride = 7919; /* prime, so i * stride mod N visits every index once */

	mfs_dir_init(&dir);
	for (size_t i = 0; i < N; i++)
		require(add_nth(&dir, i) != NULL);
	ck_assert_uint_eq(mfs_dir_count(&dir), N);
	/* uthash stops growing its bucket array if the hash spreads names badly: it must not. */
	ck_assert_uint_eq(dir.by_name->hh.tbl->noexpand, 0);
	for (size_t i = 0; i < N; i++) {
		struct mfs_dirent *e = find_nth(&dir, i);
		require(e != NULL);
		require(e->pos == MFS_DIR_FIRST_POS + i);
	}
	ck_assert_uint_eq(count_listing(&dir), N);
	assert_consistent(&dir);
	for (size_t k = 0; k < N / 2; k++)
		remove_nth(&dir, (k * stride) % N);
	ck_assert_uint_eq(mfs_dir_count(&dir), N / 2);
	ck_assert_uint_eq(count_listing(&dir), N / 2);
	assert_consistent(&dir);
	for (size_t k = N / 2; k < N; k++)
		remove_nth(&dir, (k * stride) % N);
	ck_assert_uint_eq(mfs_dir_count(&dir), 0);
	ck_assert_ptr_null(dir.marks);
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

/* ---- a reference model ---- */

enum { MODEL_NAMES = 400 };

struct model {
	char name[MODEL_NAMES][MFS_NAME_MAX + 1];
	size_t len[MODEL_NAMES];
	int present[MODEL_NAMES];
	uint64_t pos[MODEL_NAMES];
	uint64_t next_pos;
	size_t count;
};

/* Names of varied lengths (1..255) and bytes, all distinct (the index is spelled out first). */
static void model_init(struct model *m, uint64_t *rng)
{
	memset(m, 0, sizeof(*m));
	m->next_pos = MFS_DIR_FIRST_POS;
	for (size_t i = 0; i < MODEL_NAMES; i++) {
		size_t len = (size_t)snprintf(m->name[i], sizeof(m->name[i]), "%zu.", i);
		size_t want = 1 + rng_next(rng) % MFS_NAME_MAX;
		while (len < want)
			m->name[i][len++] = (char)(1 + rng_next(rng) % 255);
		m->len[i] = len;
	}
}

/* The index of the present name with the smallest position above pos, or -1. */
static long model_next(const struct model *m, uint64_t pos)
{
	long best = -1;

	for (size_t i = 0; i < MODEL_NAMES; i++)
		if (m->present[i] && m->pos[i] > pos && (best < 0 || m->pos[i] < m->pos[best]))
			best = (long)i;
	return best;
}

static void model_step(struct model *m, struct mfs_dir *dir, uint64_t *rng, unsigned add_pct)
{
	size_t i = rng_next(rng) % MODEL_NAMES;
	struct mfs_dirent *e = mfs_dir_find(dir, m->name[i], m->len[i]);
	unsigned op = (unsigned)(rng_next(rng) % 100);

	require((e != NULL) == m->present[i]);
	if (e)
		require(e->pos == m->pos[i]);
	if (op < add_pct && !m->present[i]) {
		require(mfs_dir_add(dir, m->name[i], m->len[i], fake_inode(i), &e) == 0);
		require(e->pos == m->next_pos);
		m->present[i] = 1;
		m->pos[i] = m->next_pos++;
		m->count++;
	} else if (op >= add_pct && m->present[i]) {
		mfs_dir_remove(dir, e);
		m->present[i] = 0;
		m->count--;
	}
	/* A cursor anywhere, including positions that were removed or never used. */
	{
		uint64_t cursor = rng_next(rng) % (m->next_pos + 2);
		long want = model_next(m, cursor);
		struct mfs_dirent *got = mfs_dir_next(dir, cursor);
		if (want < 0)
			require(got == NULL);
		else
			require(got == mfs_dir_find(dir, m->name[want], m->len[want]));
		/* and from that entry on, the O(1) successor steps as the model does */
		if (got) {
			long after = model_next(m, got->pos);
			struct mfs_dirent *next = mfs_dir_after(got);
			if (after < 0)
				require(next == NULL);
			else
				require(next == mfs_dir_find(dir, m->name[after], m->len[after]));
		}
	}
	require(mfs_dir_count(dir) == m->count);
	assert_consistent(dir);
}

START_TEST(random_operations_agree_with_a_reference_model)
{
	static struct model m;
	struct mfs_dir dir;
	uint64_t rng = 0x2545f4914f6cdd1du;
	/* Phases: grow, churn, drain to empty, grow again: every path of the marks. */
	const unsigned add_pct[] = {80, 50, 5, 90, 30, 50};

	model_init(&m, &rng);
	mfs_dir_init(&dir);
	for (size_t phase = 0; phase < sizeof(add_pct) / sizeof(add_pct[0]); phase++)
		for (int step = 0; step < 4000; step++)
			model_step(&m, &dir, &rng, add_pct[phase]);
	mfs_dir_free(&dir);
}
END_TEST

/* ---- allocation failure ---- */

#ifdef MFS_FAULT_INJECTION

/* What a directory looks like from outside: names, inodes and positions in order. */
struct snapshot {
	size_t n;
	uint64_t next_pos;
	char (*names)[MFS_NAME_MAX + 1];
	uint64_t *pos;
	struct mfs_inode **inodes;
};

/* Plain malloc on purpose: the test's own bookkeeping must not consume injected failures. */
static void snapshot_take(const struct mfs_dir *dir, struct snapshot *s)
{
	size_t i = 0;

	s->n = mfs_dir_count(dir);
	s->next_pos = dir->next_pos;
	s->names = malloc((s->n + 1) * sizeof(*s->names));
	s->pos = malloc((s->n + 1) * sizeof(*s->pos));
	s->inodes = malloc((s->n + 1) * sizeof(*s->inodes));
	for (struct mfs_dirent *e = mfs_dir_next(dir, 0); e; e = mfs_dir_next(dir, e->pos), i++) {
		ck_assert_uint_lt(i, s->n);
		memcpy(s->names[i], e->name, e->namelen + 1u);
		s->pos[i] = e->pos;
		s->inodes[i] = e->inode;
	}
	ck_assert_uint_eq(i, s->n);
}

static void snapshot_free(struct snapshot *s)
{
	free(s->names);
	free(s->pos);
	free(s->inodes);
}

static void assert_unchanged(const struct mfs_dir *dir, const struct snapshot *before)
{
	struct snapshot now;

	assert_consistent(dir);
	snapshot_take(dir, &now);
	ck_assert_uint_eq(now.n, before->n);
	ck_assert_uint_eq(now.next_pos, before->next_pos);
	for (size_t i = 0; i < now.n; i++) {
		ck_assert_str_eq(now.names[i], before->names[i]);
		ck_assert_uint_eq(now.pos[i], before->pos[i]);
		ck_assert_ptr_eq(now.inodes[i], before->inodes[i]);
		ck_assert_ptr_eq(mfs_dir_find(dir, now.names[i], strlen(now.names[i]))->inode,
				 now.inodes[i]);
	}
	snapshot_free(&now);
}

/*
 * Add entry i; if the injected failure hits, it must be -ENOMEM with the
 * directory unchanged, and the retry (injection is one-shot) must succeed.
 * Cheap checks here (the full comparison is against the reference at the
 * end of the workload, where failed adds have been retried): the count,
 * the next position, the name's absence, and mfs_dir_check.
 * Returns 1 if a failure was seen.
 */
static int add_checked(struct mfs_dir *dir, size_t i)
{
	char name[16];
	size_t len = name_of(name, i);
	size_t count = mfs_dir_count(dir);
	uint64_t next_pos = dir->next_pos;
	int err;

	err = mfs_dir_add(dir, name, len, fake_inode(i), NULL);
	if (err == 0)
		return 0;
	ck_assert_int_eq(err, -ENOMEM);
	ck_assert_ptr_null(mfs_dir_find(dir, name, len));
	ck_assert_uint_eq(mfs_dir_count(dir), count);
	ck_assert_uint_eq(dir->next_pos, next_pos);
	assert_consistent(dir);
	ck_assert_int_eq(mfs_dir_add(dir, name, len, fake_inode(i), NULL), 0);
	return 1;
}

/* Crosses every allocation dir.c makes: table, expansions, growth, shrink, release, re-creation. */
static int workload(struct mfs_dir *dir)
{
	int failures = 0;

	for (size_t i = 0; i < 400; i++)
		failures += add_checked(dir, i);
	for (size_t i = 0; i < 350; i++)
		remove_nth(dir, (i * 7) % 400);
	assert_consistent(dir);
	for (size_t i = 400; i < 450; i++)
		failures += add_checked(dir, i);
	while (mfs_dir_count(dir) > 0)
		mfs_dir_remove(dir, mfs_dir_next(dir, 0));
	assert_consistent(dir);
	for (size_t i = 450; i < 455; i++)
		failures += add_checked(dir, i);
	return failures;
}

START_TEST(each_failed_allocation_in_a_workload_gives_enomem_and_an_unchanged_directory)
{
	struct mfs_dir dir, ref;
	struct snapshot want;
	unsigned long nth, total, failures = 0;

	mfs_dir_init(&ref);
	mfs_alloc_fail_at(0, 0);
	ck_assert_int_eq(workload(&ref), 0);
	total = mfs_alloc_count();
	ck_assert_uint_gt(total, 20);
	snapshot_take(&ref, &want);

	for (nth = 1; nth <= total; nth++) {
		mfs_dir_init(&dir);
		mfs_alloc_fail_at(nth, 0);
		failures += workload(&dir);
		mfs_alloc_fail_at(0, 0);
		/* Failed adds were retried, so the end state is the reference's. */
		assert_unchanged(&dir, &want);
		mfs_dir_free(&dir);
	}
	/* Allocations in removals (shrinking) fail silently; every other one was an -ENOMEM. */
	ck_assert_uint_gt(failures, total / 2);
	snapshot_free(&want);
	mfs_dir_free(&ref);
}
END_TEST

START_TEST(failed_first_table_allocation_leaves_the_directory_empty)
{
	struct mfs_dir dir;
	unsigned long total;

	mfs_dir_init(&dir);
	mfs_alloc_fail_at(0, 0);
	add_str(&dir, "probe", 1);
	total = mfs_alloc_count(); /* entry, mark array, table, buckets */
	ck_assert_uint_ge(total, 4);
	mfs_dir_free(&dir);

	for (unsigned long nth = 1; nth <= total; nth++) {
		mfs_dir_init(&dir);
		mfs_alloc_fail_at(nth, 0);
		ck_assert_int_eq(mfs_dir_add(&dir, "probe", 5, fake_inode(1), NULL), -ENOMEM);
		mfs_alloc_fail_at(0, 0);
		ck_assert_ptr_null(dir.by_name);
		ck_assert_uint_eq(mfs_dir_count(&dir), 0);
		ck_assert_uint_eq(dir.next_pos, MFS_DIR_FIRST_POS);
		ck_assert_ptr_null(mfs_dir_next(&dir, 0));
		assert_consistent(&dir);
		add_str(&dir, "probe", 1);
		assert_consistent(&dir);
		mfs_dir_free(&dir);
	}
}
END_TEST

START_TEST(failed_bucket_expansion_leaves_the_entry_out_and_the_directory_unchanged)
{
	struct mfs_dir dir;
	struct snapshot before;
	size_t expanding = 0;
	unsigned long allocs = 0, buckets = 0;
	char name[16];
	size_t len;

	/* Find an add that expands the bucket array, and how many allocations it makes. */
	mfs_dir_init(&dir);
	for (size_t i = 0; i < 5000 && !expanding; i++) {
		unsigned before_buckets = dir.by_name ? dir.by_name->hh.tbl->num_buckets : 0;
		mfs_alloc_fail_at(0, 0);
		add_nth(&dir, i);
		if (before_buckets && dir.by_name->hh.tbl->num_buckets != before_buckets) {
			expanding = i;
			allocs = mfs_alloc_count();
			buckets = before_buckets;
		}
	}
	ck_assert_uint_gt(expanding, 0);
	mfs_dir_free(&dir);

	/* Replay up to it, then fail the last allocation of that add: the expansion. */
	mfs_dir_init(&dir);
	for (size_t i = 0; i < expanding; i++)
		add_nth(&dir, i);
	snapshot_take(&dir, &before);
	len = name_of(name, expanding);
	mfs_alloc_fail_at(allocs, 0);
	ck_assert_int_eq(mfs_dir_add(&dir, name, len, fake_inode(expanding), NULL), -ENOMEM);
	mfs_alloc_fail_at(0, 0);
	ck_assert_uint_eq(dir.by_name->hh.tbl->num_buckets, buckets);
	ck_assert_ptr_null(mfs_dir_find(&dir, name, len));
	assert_unchanged(&dir, &before);

	ck_assert_ptr_nonnull(add_nth(&dir, expanding));
	ck_assert_uint_eq(dir.by_name->hh.tbl->num_buckets, buckets * 2);
	assert_consistent(&dir);
	snapshot_free(&before);
	mfs_dir_free(&dir);
}
END_TEST

START_TEST(removal_succeeds_when_every_allocation_fails)
{
	struct mfs_dir dir;

	mfs_dir_init(&dir);
	for (size_t i = 0; i < 2000; i++)
		add_nth(&dir, i);
	mfs_alloc_fail_at(1, 1); /* shrinking reallocs fail from now on */
	for (size_t i = 0; i < 1990; i++)
		remove_nth(&dir, i);
	ck_assert_int_eq(mfs_dir_add(&dir, "x", 1, fake_inode(0), NULL), -ENOMEM);
	mfs_alloc_fail_at(0, 0);
	ck_assert_uint_eq(mfs_dir_count(&dir), 10);
	ck_assert_uint_eq(count_listing(&dir), 10);
	assert_consistent(&dir);
	mfs_dir_free(&dir);
}
END_TEST

#endif /* MFS_FAULT_INJECTION */

static Suite *dir_suite(void)
{
	Suite *s = suite_create("dir");
	TCase *basics = tcase_create("basics");
	TCase *cursors = tcase_create("cursors");
	TCase *heavy = tcase_create("heavy");

	tcase_add_test(basics, empty_directory_has_no_entries_and_passes_the_check);
	tcase_add_test(basics, added_entry_is_found_with_its_inode_and_the_first_position);
	tcase_add_test(basics, add_accepts_a_null_out_pointer);
	tcase_add_test(basics, find_matches_whole_names_only_and_needs_no_nul);
	tcase_add_test(basics, names_of_255_bytes_and_arbitrary_bytes_are_kept_exactly);
	tcase_add_test(basics, positions_strictly_increase_and_are_never_reused);
	tcase_add_test(basics, removed_entry_is_gone_and_others_stay);
	tcase_add_test(basics, removals_keep_positions_and_order);
	tcase_add_test(basics, marks_never_outnumber_what_the_entries_need);
	tcase_add_test(basics, mark_array_shrinks_after_mass_removal_and_is_released_when_empty);
	tcase_add_test(basics, free_releases_everything_and_leaves_a_reusable_directory);
	tcase_add_test(basics, check_reports_views_that_disagree);
	suite_add_tcase(s, basics);

	tcase_add_test(cursors, cursor_survives_removal_of_the_entry_it_points_at);
	tcase_add_test(cursors, cursor_survives_the_removal_of_its_entry_and_of_the_marks_around_it);
	tcase_add_test(cursors, cursor_past_every_position_gives_the_end);
	tcase_add_test(cursors,
		       entry_present_for_whole_listing_is_returned_once_while_others_are_removed);
	suite_add_tcase(s, cursors);

	/* Sized for valgrind and sanitizers, not for a bare build. */
	tcase_set_timeout(heavy, 600);
	tcase_add_test(heavy, million_entries_add_find_remove);
	tcase_add_test(heavy, random_operations_agree_with_a_reference_model);
#ifdef MFS_FAULT_INJECTION
	tcase_add_test(
	    heavy, each_failed_allocation_in_a_workload_gives_enomem_and_an_unchanged_directory);
	tcase_add_test(heavy, failed_first_table_allocation_leaves_the_directory_empty);
	tcase_add_test(heavy,
		       failed_bucket_expansion_leaves_the_entry_out_and_the_directory_unchanged);
	tcase_add_test(heavy, removal_succeeds_when_every_allocation_fails);
#endif
	suite_add_tcase(s, heavy);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(dir_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
