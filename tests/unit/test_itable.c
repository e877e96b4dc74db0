/*
 * test_itable.c — unit tests of src/itable.c, the radix tree of inodes by
 * number: random adds and removes against a plain array as the model, with
 * lookups, ordered walks and the tree giving its memory back.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "inode.h"
#include "itable.h"

#define N 5000

/* Check's ck_assert_* report every success to the parent process: too slow in loops. */
#define require(cond)                                                                              \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg("%s:%d: requirement failed: %s", __FILE__, __LINE__, #cond);  \
	} while (0)

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Numbers as the counter hands them out, plus a few far away. */
static uint64_t number(int i)
{
	if (i % 97 == 0)
		return ((uint64_t)1 << (40 + i % 23)) + (uint64_t)i; /* unique: i differs */
	return (uint64_t)i * 3 + 1;
}

static void assert_walk_matches(const struct mfs_itable *t, struct mfs_inode *inodes, const int *in)
{
	uint64_t at = 0, prev = 0;
	size_t seen = 0, want = 0;
	struct mfs_inode *inode;

	for (int i = 0; i < N; i++)
		want += in[i];
	while ((inode = mfs_itable_next(t, &at))) {
		require(seen == 0 || inode->ino > prev);
		require(inode >= inodes && inode < inodes + N && in[inode - inodes]);
		prev = inode->ino;
		seen++;
	}
	ck_assert_uint_eq(seen, want);
	ck_assert_uint_eq(t->count, want);
}

START_TEST(random_adds_and_removes_keep_every_inode_findable_and_walked_in_order)
{
	struct mfs_inode *inodes = calloc(N, sizeof(*inodes));
	int *in = calloc(N, sizeof(*in));
	struct mfs_itable t;

	mfs_itable_init(&t);
	for (int i = 0; i < N; i++)
		inodes[i].ino = number(i);
	for (int step = 0; step < 20 * N; step++) {
		int i = (int)(rnd() % N);

		if (in[i]) {
			mfs_itable_remove(&t, &inodes[i]);
			in[i] = 0;
		} else {
			require(mfs_itable_add(&t, &inodes[i]) == 0);
			in[i] = 1;
		}
		if (step % 1000 == 0) {
			for (int j = 0; j < N; j++)
				require(mfs_itable_find(&t, inodes[j].ino) == (in[j] ? &inodes[j] : NULL));
			assert_walk_matches(&t, inodes, in);
		}
	}
	ck_assert_ptr_null(mfs_itable_find(&t, 2));
	ck_assert_ptr_null(mfs_itable_find(&t, UINT64_MAX));
	for (int i = 0; i < N; i++)
		if (in[i])
			mfs_itable_remove(&t, &inodes[i]);
	ck_assert_ptr_null(t.root);
	ck_assert_uint_eq(t.height, 0);
	mfs_itable_free(&t);
	free(inodes);
	free(in);
}
END_TEST

START_TEST(free_releases_a_full_table_and_a_walk_of_an_empty_one_finds_nothing)
{
	struct mfs_inode *inodes = calloc(N, sizeof(*inodes));
	struct mfs_itable t;
	uint64_t at = 0;

	mfs_itable_init(&t);
	ck_assert_ptr_null(mfs_itable_next(&t, &at));
	for (int i = 0; i < N; i++) {
		inodes[i].ino = number(i);
		require(mfs_itable_add(&t, &inodes[i]) == 0);
	}
	mfs_itable_free(&t); /* ASan/valgrind: no node leaks */
	ck_assert_ptr_null(t.root);
	free(inodes);
}
END_TEST

#ifdef MFS_FAULT_INJECTION
START_TEST(a_failed_add_leaves_the_table_as_it_was)
{
	struct mfs_inode *inodes = calloc(N, sizeof(*inodes));
	int *in = calloc(N, sizeof(*in));
	struct mfs_itable t;

	mfs_itable_init(&t);
	for (int i = 0; i < N; i++) {
		inodes[i].ino = number(i);
		mfs_alloc_fail_at(1 + (unsigned long)(rnd() % 3), 0);
		int err = mfs_itable_add(&t, &inodes[i]);
		mfs_alloc_fail_at(0, 0);
		require(err == 0 || err == -ENOMEM);
		in[i] = err == 0;
		require(mfs_itable_find(&t, inodes[i].ino) == (in[i] ? &inodes[i] : NULL));
	}
	assert_walk_matches(&t, inodes, in);
	mfs_itable_free(&t);
	free(inodes);
	free(in);
}
END_TEST
#endif

int main(void)
{
	Suite *s = suite_create("itable");
	TCase *tc = tcase_create("itable");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, random_adds_and_removes_keep_every_inode_findable_and_walked_in_order);
	tcase_add_test(tc, free_releases_a_full_table_and_a_walk_of_an_empty_one_finds_nothing);
#ifdef MFS_FAULT_INJECTION
	tcase_add_test(tc, a_failed_add_leaves_the_table_as_it_was);
#endif
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
