/*
 * test_memory.c — the core gives back what it took: after creating and
 * removing many inodes (or many names in one directory) the bytes the core
 * has allocated are back to what they were, within a few KiB.  Measured
 * with the allocator's own count: AddressSanitizer's under ASan, glibc's
 * mallinfo2 otherwise (under valgrind, which replaces both, the test says
 * so and only checks what it can).  And what a small file costs while it
 * exists: under half a kilobyte for a 100-byte one.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "fs.h"

#if defined(__SANITIZE_ADDRESS__)
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ASAN 1
#endif
#endif
#ifdef HAVE_ASAN
/* from the sanitizer runtime (sanitizer/allocator_interface.h, not shipped with every gcc) */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif

#define N 200000
#define SLACK_BYTES (64 * 1024)

static const struct mfs_cred cred = {0, 0};

/* Bytes allocated now, by whatever allocator runs; 0 if it cannot tell. */
static size_t allocated(void)
{
#ifdef HAVE_ASAN
	return __sanitizer_get_current_allocated_bytes();
#else
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
#endif
}

static struct mfs_fs *new_fs(void)
{
	struct mfs_params p = {.size_bytes = 1u << 30, .max_inodes = 4 * N, .root_mode = 0755};
	struct mfs_fs *fs = NULL;

	ck_assert_int_eq(mfs_fs_new(&p, &fs), 0);
	return fs;
}

static void make_and_remove(struct mfs_fs *fs, uint64_t dir, long n)
{
	char name[32];
	struct mfs_attr a;

	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "file-%ld", i);
		if (mfs_mknod(fs, &cred, dir, name, S_IFREG | 0644, 0, &a) != 0)
			ck_abort_msg("mknod %s", name);
		mfs_forget(fs, a.st.st_ino, 1);
	}
	for (long i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "file-%ld", i);
		if (mfs_unlink(fs, dir, name) != 0)
			ck_abort_msg("unlink %s", name);
	}
}

START_TEST(creating_and_removing_many_inodes_gives_all_their_memory_back)
{
	struct mfs_fs *fs = new_fs();
	struct mfs_attr d, a;
	struct statvfs sv;
	const char *why;

	/* the names go from a directory that keeps one: its name table and the
	 * inode table shrink back */
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "d", 0755, &d), 0);
	ck_assert_int_eq(mfs_mknod(fs, &cred, d.st.st_ino, "stays", S_IFREG | 0644, 0, &a), 0);
	mfs_forget(fs, a.st.st_ino, 1);
	make_and_remove(fs, MFS_ROOT_INO, 1000); /* whatever grows once, grows now */
	size_t before = allocated();
	make_and_remove(fs, d.st.st_ino, N);
	size_t after = allocated();

	ck_assert_int_eq(mfs_check(fs, &why), 0);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_files - sv.f_ffree, 3);
	if (before == 0 && after == 0) {
		printf("memory: the allocator does not count (valgrind?): not checked\n");
	} else {
		printf("memory: %zu bytes allocated before %d inodes came and went, %zu after\n",
		       before, N, after);
		ck_assert_msg(after <= before + SLACK_BYTES,
			      "%zu bytes more allocated after creating and removing %d inodes",
			      after - before, N);
	}
	fflush(stdout);
	mfs_forget(fs, d.st.st_ino, 1);
	mfs_fs_destroy(fs);
}
END_TEST

/*
 * What a small file costs the core: its inode, its name and one chunk sized
 * to its bytes (a 100-byte file: a 128-byte buffer), and no 64-slot node
 * for a tree of one chunk.  With the node this was about 900 bytes a file.
 */
START_TEST(a_100_byte_file_costs_under_half_a_kilobyte)
{
	enum { FILES = 20000 };
	static const char bytes[100] = "a small file";
	struct mfs_fs *fs = new_fs();
	struct mfs_attr d, a;
	char name[32];
	size_t before, after;

	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "d", 0755, &d), 0);
	before = allocated();
	for (long i = 0; i < FILES; i++) {
		snprintf(name, sizeof(name), "f%ld", i);
		if (mfs_create(fs, &cred, d.st.st_ino, name, 0644, O_CREAT | O_EXCL | O_WRONLY, &a) ||
		    mfs_pwrite(fs, a.st.st_ino, bytes, sizeof(bytes), 0, 0) != sizeof(bytes) ||
		    mfs_release(fs, a.st.st_ino))
			ck_abort_msg("file %s", name);
		mfs_forget(fs, a.st.st_ino, 1);
	}
	after = allocated();
	if (before == 0 && after == 0) {
		printf("memory: the allocator does not count (valgrind?): not checked\n");
	} else {
		printf("memory: %zu bytes per 100-byte file\n", (after - before) / FILES);
		ck_assert_msg(after - before <= (size_t)FILES * 512,
			      "%zu bytes per 100-byte file", (after - before) / FILES);
	}
	fflush(stdout);
	for (long i = 0; i < FILES; i++) {
		snprintf(name, sizeof(name), "f%ld", i);
		ck_assert_int_eq(mfs_unlink(fs, d.st.st_ino, name), 0);
	}
	mfs_forget(fs, d.st.st_ino, 1);
	mfs_fs_destroy(fs);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("memory");
	TCase *tc = tcase_create("memory");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, creating_and_removing_many_inodes_gives_all_their_memory_back);
	tcase_add_test(tc, a_100_byte_file_costs_under_half_a_kilobyte);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
