/*
 * test_fs.c — unit tests of the memfs core through its public API (src/fs.h),
 * with no mount: reference counting, the namespace (mknod, mkdir, symlink,
 * link, unlink, rmdir, rename), readdir, attributes, file contents, limits,
 * deep trees, a random history and allocation-failure injection.
 *
 * Every test builds its own filesystem with new_fs(), ends with mfs_check()
 * (link counts, counters, parent pointers, indexes) and mfs_fs_destroy(), so
 * AddressSanitizer or valgrind also prove nothing leaks or is touched after
 * being freed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "fs.h"

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define TiB (1024 * GiB)
#define CHUNK ((uint64_t)4096)

/* ---- helpers ---- */

/*
 * For checks inside long loops: Check's ck_assert_* report a mark point to
 * the parent process on every success, which is slow over many steps.
 */
#define require(cond)                                                                              \
	do {                                                                                       \
		if (!(cond))                                                                       \
			ck_abort_msg("%s:%d: requirement failed: %s", __FILE__, __LINE__, #cond);  \
	} while (0)

static const struct mfs_cred cred = {.uid = 0, .gid = 0};

static struct mfs_fs *new_fs(uint64_t size_bytes, uint64_t max_inodes)
{
	struct mfs_params p = {.size_bytes = size_bytes,
			       .max_inodes = max_inodes,
			       .root_mode = 0755,
			       .root_uid = 0,
			       .root_gid = 0};
	struct mfs_fs *fs = NULL;

	ck_assert_int_eq(mfs_fs_new(&p, &fs), 0);
	ck_assert_ptr_nonnull(fs);
	return fs;
}

static struct mfs_fs *default_fs(void)
{
	return new_fs(64 * MiB, 10000);
}

#define check_ok(fs)                                                                               \
	do {                                                                                       \
		const char *why_ = NULL;                                                           \
		int err_ = mfs_check((fs), &why_);                                                 \
		if (err_ != 0)                                                                     \
			ck_abort_msg("%s:%d: mfs_check: %d %s", __FILE__, __LINE__, err_,          \
				     why_ ? why_ : "(no reason)");                                 \
	} while (0)

/* mfs_check, then mfs_fs_destroy: how every test ends. */
#define finish(fs)                                                                                 \
	do {                                                                                       \
		check_ok(fs);                                                                      \
		mfs_fs_destroy(fs);                                                                \
	} while (0)

static uint64_t mk_file(struct mfs_fs *fs, uint64_t parent, const char *name)
{
	struct mfs_attr a;

	ck_assert_int_eq(mfs_mknod(fs, &cred, parent, name, S_IFREG | 0644, 0, &a), 0);
	return a.st.st_ino;
}

static uint64_t mk_dir(struct mfs_fs *fs, uint64_t parent, const char *name)
{
	struct mfs_attr a;

	ck_assert_int_eq(mfs_mkdir(fs, &cred, parent, name, 0755, &a), 0);
	ck_assert(S_ISDIR(a.st.st_mode));
	return a.st.st_ino;
}

static struct stat stat_of(struct mfs_fs *fs, uint64_t ino)
{
	struct mfs_attr a;

	ck_assert_int_eq(mfs_getattr(fs, ino, &a), 0);
	return a.st;
}

static nlink_t nlink_of(struct mfs_fs *fs, uint64_t ino)
{
	return stat_of(fs, ino).st_nlink;
}

/* The inode number parent/name leads to without taking a reference, or 0. */
static uint64_t ino_at(struct mfs_fs *fs, uint64_t parent, const char *name)
{
	struct mfs_attr a;

	if (mfs_peek(fs, parent, name, &a) != 0)
		return 0;
	return a.st.st_ino;
}

static int gone(struct mfs_fs *fs, uint64_t ino)
{
	struct mfs_attr a;

	return mfs_getattr(fs, ino, &a) == -ENOENT;
}

static void write_str(struct mfs_fs *fs, uint64_t ino, const char *s, uint64_t off)
{
	ck_assert_int_eq(mfs_pwrite(fs, ino, s, strlen(s), off, 0), (ssize_t)strlen(s));
}

/* A name of n bytes of 'x'. */
static char *long_name(size_t n)
{
	char *s = malloc(n + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, 'x', n);
	s[n] = '\0';
	return s;
}

/* ---- readdir collection ---- */

#define MAX_LISTED 4096

struct listing {
	size_t n;
	size_t limit; /* stop after this many entries (0: no limit) */
	char *names[MAX_LISTED];
	struct stat st[MAX_LISTED];
	uint64_t next[MAX_LISTED];
};

static int collect(void *ctx, const char *name, const struct stat *st, uint64_t next_off)
{
	struct listing *l = ctx;

	if ((l->limit && l->n >= l->limit) || l->n >= MAX_LISTED)
		return 1;
	l->names[l->n] = strdup(name);
	l->st[l->n] = *st;
	l->next[l->n] = next_off;
	l->n++;
	return 0;
}

static void listing_free(struct listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->names[i]);
	l->n = 0;
}

static int listed(const struct listing *l, const char *name)
{
	int count = 0;

	for (size_t i = 0; i < l->n; i++)
		count += strcmp(l->names[i], name) == 0;
	return count;
}

/* ---- reference counting ---- */

START_TEST(lookup_adds_a_reference_that_forget_drops)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t ino = mk_file(fs, MFS_ROOT_INO, "f"); /* one reference from mknod */

	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, "f", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, ino);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	check_ok(fs);
	mfs_forget(fs, ino, 1);
	ck_assert(!gone(fs, ino)); /* one reference left */
	check_ok(fs);
	mfs_forget(fs, ino, 1);
	ck_assert(gone(fs, ino));
	finish(fs);
}
END_TEST

START_TEST(peek_takes_no_reference)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t ino = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_peek(fs, MFS_ROOT_INO, "f", &a), 0);
	ck_assert_int_eq(mfs_peek(fs, MFS_ROOT_INO, "f", &a), 0);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	mfs_forget(fs, ino, 1); /* the mknod reference only */
	ck_assert(gone(fs, ino));
	finish(fs);
}
END_TEST

START_TEST(unlink_of_open_file_keeps_data_readable_until_release)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	char buf[16] = {0};
	uint64_t ino;

	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, "f", 0644, O_RDWR, &a), 0);
	ino = a.st.st_ino;
	write_str(fs, ino, "hello", 0);
	mfs_forget(fs, ino, 1); /* the caller keeps only the open handle */
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	ck_assert_uint_eq(nlink_of(fs, ino), 0);
	ck_assert_int_eq(mfs_pread(fs, ino, buf, sizeof(buf), 0), 5);
	ck_assert_str_eq(buf, "hello");
	check_ok(fs);
	ck_assert_int_eq(mfs_release(fs, ino), 0);
	ck_assert(gone(fs, ino));
	ck_assert_int_eq(mfs_pread(fs, ino, buf, sizeof(buf), 0), -ENOENT);
	finish(fs);
}
END_TEST

START_TEST(looked_up_unlinked_file_survives_until_forget)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t ino = mk_file(fs, MFS_ROOT_INO, "f");

	write_str(fs, ino, "data", 0);
	ck_assert_int_eq(mfs_open(fs, ino, O_RDONLY), 0);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	ck_assert_int_eq(mfs_release(fs, ino), 0);
	ck_assert_int_eq(mfs_getattr(fs, ino, &a), 0); /* the lookup still holds it */
	ck_assert_uint_eq(a.st.st_nlink, 0);
	ck_assert_uint_eq(a.st.st_size, 4);
	ck_assert_int_eq(mfs_peek(fs, MFS_ROOT_INO, "f", &a), -ENOENT);
	check_ok(fs);
	mfs_forget(fs, ino, 1);
	ck_assert_int_eq(mfs_getattr(fs, ino, &a), -ENOENT);
	finish(fs);
}
END_TEST

START_TEST(inode_is_freed_only_when_links_lookups_and_opens_are_all_gone)
{
	struct mfs_fs *fs = default_fs();
	struct statvfs sv;
	uint64_t ino = mk_file(fs, MFS_ROOT_INO, "f");

	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_files - sv.f_ffree, 2); /* root and f */
	ck_assert_int_eq(mfs_open(fs, ino, O_RDONLY), 0);
	/* open, lookup, link: drop them in every order but the last one */
	mfs_forget(fs, ino, 1);
	ck_assert(!gone(fs, ino));
	ck_assert_int_eq(mfs_release(fs, ino), 0);
	ck_assert(!gone(fs, ino)); /* still linked */
	ck_assert_int_eq(mfs_open(fs, ino, O_RDONLY), 0);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	ck_assert(!gone(fs, ino)); /* still open */
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_files - sv.f_ffree, 2);
	ck_assert_int_eq(mfs_release(fs, ino), 0);
	ck_assert(gone(fs, ino));
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_files - sv.f_ffree, 1);
	finish(fs);
}
END_TEST

START_TEST(forget_of_more_than_held_or_of_an_unknown_inode_is_harmless)
{
	struct mfs_fs *fs = default_fs();
	uint64_t ino = mk_file(fs, MFS_ROOT_INO, "f");

	mfs_forget(fs, ino, 1000); /* still linked: stays */
	ck_assert(!gone(fs, ino));
	mfs_forget(fs, 123456, 1);
	mfs_forget(fs, MFS_ROOT_INO, 1000);
	ck_assert(!gone(fs, MFS_ROOT_INO));
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	ck_assert(gone(fs, ino)); /* no reference left at the unlink */
	mfs_forget(fs, ino, 1);   /* a late forget of a freed number */
	finish(fs);
}
END_TEST

START_TEST(forget_many_drops_several_references_at_once)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t x = mk_file(fs, MFS_ROOT_INO, "x"), y = mk_file(fs, MFS_ROOT_INO, "y");

	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, "x", &a), 0);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "x"), 0);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "y"), 0);
	struct mfs_forget list[] = {{x, 1}, {y, 1}};
	mfs_forget_many(fs, list, 2);
	ck_assert(!gone(fs, x));
	ck_assert(gone(fs, y));
	struct mfs_forget rest[] = {{x, 1}};
	mfs_forget_many(fs, rest, 1);
	ck_assert(gone(fs, x));
	finish(fs);
}
END_TEST

START_TEST(inode_numbers_are_never_reused)
{
	struct mfs_fs *fs = default_fs();
	uint64_t a = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	mfs_forget(fs, a, 1);
	uint64_t b = mk_file(fs, MFS_ROOT_INO, "f");
	ck_assert_uint_ne(a, b);
	ck_assert_uint_ne(b, MFS_ROOT_INO);
	finish(fs);
}
END_TEST

/* ---- mknod, mkdir, rmdir ---- */

START_TEST(mknod_creates_every_file_type)
{
	struct mfs_fs *fs = default_fs();
	struct {
		const char *name;
		mode_t mode;
		dev_t rdev, want_rdev;
		mode_t want_type;
	} cases[] = {
	    {"plain", 0644, 0, 0, S_IFREG},
	    {"reg", S_IFREG | 0600, makedev(1, 2), 0, S_IFREG},
	    {"fifo", S_IFIFO | 0644, makedev(1, 2), 0, S_IFIFO},
	    {"sock", S_IFSOCK | 0755, 0, 0, S_IFSOCK},
	    {"chr", S_IFCHR | 0600, makedev(1, 3), makedev(1, 3), S_IFCHR},
	    {"blk", S_IFBLK | 0660, makedev(8, 1), makedev(8, 1), S_IFBLK},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mfs_attr a, b;
		ck_assert_int_eq(
		    mfs_mknod(fs, &cred, MFS_ROOT_INO, cases[i].name, cases[i].mode, cases[i].rdev, &a),
		    0);
		ck_assert_uint_eq(a.st.st_mode & S_IFMT, cases[i].want_type);
		ck_assert_uint_eq(a.st.st_mode & 07777, cases[i].mode & 07777);
		ck_assert_uint_eq(a.st.st_rdev, cases[i].want_rdev);
		ck_assert_uint_eq(a.st.st_nlink, 1);
		ck_assert_uint_eq(a.st.st_size, 0);
		ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, cases[i].name, &b), 0);
		ck_assert_uint_eq(b.st.st_ino, a.st.st_ino);
		ck_assert_uint_eq(b.st.st_mode, a.st.st_mode);
	}
	ck_assert_uint_eq(stat_of(fs, MFS_ROOT_INO).st_size, (2 + 6) * 20);
	finish(fs);
}
END_TEST

START_TEST(mknod_of_a_directory_or_symlink_type_gives_einval)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;

	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, "d", S_IFDIR | 0755, 0, &a), -EINVAL);
	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, "l", S_IFLNK | 0777, 0, &a), -EINVAL);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "d"), 0);
	finish(fs);
}
END_TEST

START_TEST(creating_an_existing_name_gives_eexist)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;

	mk_file(fs, MFS_ROOT_INO, "f");
	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, "f", 0644, 0, &a), -EEXIST);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "f", 0755, &a), -EEXIST);
	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "f", "t", &a), -EEXIST);
	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, "f", 0644, O_CREAT | O_EXCL, &a),
			 -EEXIST);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, ".", 0755, &a), -EEXIST);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "..", 0755, &a), -EEXIST);
	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, "a/b", 0644, 0, &a), -EINVAL);
	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, "", 0644, 0, &a), -EINVAL);
	finish(fs);
}
END_TEST

START_TEST(creating_inside_a_file_gives_enotdir_and_in_a_missing_parent_enoent)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_mknod(fs, &cred, f, "x", 0644, 0, &a), -ENOTDIR);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, f, "x", 0755, &a), -ENOTDIR);
	ck_assert_int_eq(mfs_lookup(fs, f, "x", &a), -ENOTDIR);
	ck_assert_int_eq(mfs_mknod(fs, &cred, 9999, "x", 0644, 0, &a), -ENOENT);
	ck_assert_int_eq(mfs_lookup(fs, 9999, "x", &a), -ENOENT);
	finish(fs);
}
END_TEST

START_TEST(directory_link_count_is_two_plus_subdirectories)
{
	struct mfs_fs *fs = default_fs();
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");

	ck_assert_uint_eq(nlink_of(fs, MFS_ROOT_INO), 3);
	ck_assert_uint_eq(nlink_of(fs, d), 2);
	mk_dir(fs, d, "s1");
	mk_dir(fs, d, "s2");
	mk_file(fs, d, "f");
	ck_assert_uint_eq(nlink_of(fs, d), 4);
	ck_assert_uint_eq(stat_of(fs, d).st_size, (2 + 3) * 20);
	ck_assert_int_eq(mfs_rmdir(fs, d, "s1"), 0);
	ck_assert_uint_eq(nlink_of(fs, d), 3);
	check_ok(fs);
	ck_assert_int_eq(mfs_unlink(fs, d, "f"), 0);
	ck_assert_int_eq(mfs_rmdir(fs, d, "s2"), 0);
	ck_assert_uint_eq(nlink_of(fs, d), 2);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "d"), 0);
	ck_assert_uint_eq(nlink_of(fs, MFS_ROOT_INO), 2);
	ck_assert_uint_eq(nlink_of(fs, d), 0); /* held by the mkdir lookup */
	finish(fs);
}
END_TEST

START_TEST(rmdir_of_a_nonempty_directory_gives_enotempty)
{
	struct mfs_fs *fs = default_fs();
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");

	mk_file(fs, d, "f");
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "d"), -ENOTEMPTY);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "d"), d);
	ck_assert_int_eq(mfs_unlink(fs, d, "f"), 0);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "d"), 0);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "d"), 0);
	finish(fs);
}
END_TEST

START_TEST(rmdir_of_a_file_gives_enotdir_and_unlink_of_a_directory_eisdir)
{
	struct mfs_fs *fs = default_fs();

	mk_file(fs, MFS_ROOT_INO, "f");
	mk_dir(fs, MFS_ROOT_INO, "d");
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "f"), -ENOTDIR);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "d"), -EISDIR);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "missing"), -ENOENT);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "missing"), -ENOENT);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "."), -EINVAL);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, ".."), -ENOTEMPTY);
	ck_assert_uint_ne(ino_at(fs, MFS_ROOT_INO, "f"), 0);
	ck_assert_uint_ne(ino_at(fs, MFS_ROOT_INO, "d"), 0);
	finish(fs);
}
END_TEST

START_TEST(creating_inside_a_removed_directory_gives_enoent)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d"); /* the mkdir reference keeps it */
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "d"), 0);
	ck_assert_int_eq(mfs_mknod(fs, &cred, d, "x", 0644, 0, &a), -ENOENT);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, d, "x", 0755, &a), -ENOENT);
	ck_assert_int_eq(mfs_symlink(fs, &cred, d, "x", "t", &a), -ENOENT);
	ck_assert_int_eq(mfs_create(fs, &cred, d, "x", 0644, O_CREAT | O_RDWR, &a), -ENOENT);
	ck_assert_int_eq(mfs_link(fs, f, d, "x", &a), -ENOENT);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "f", d, "x", 0), -ENOENT);
	ck_assert_int_eq(mfs_lookup(fs, d, "..", &a), -ENOENT);
	ck_assert_int_eq(mfs_lookup(fs, d, ".", &a), 0);
	ck_assert_uint_eq(a.st.st_nlink, 0);
	mfs_forget(fs, d, 1);
	check_ok(fs);
	mfs_forget(fs, d, 1);
	ck_assert(gone(fs, d));
	finish(fs);
}
END_TEST

START_TEST(dot_and_dotdot_lookups_give_the_directory_and_its_parent)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	uint64_t s = mk_dir(fs, d, "s");

	ck_assert_int_eq(mfs_lookup(fs, s, "..", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, d);
	ck_assert_int_eq(mfs_lookup(fs, s, ".", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, s);
	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, "..", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, MFS_ROOT_INO);
	finish(fs);
}
END_TEST

/* ---- symlinks ---- */

START_TEST(symlink_target_reads_back_exactly)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	char buf[64];
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "l", "../some/where", &a), 0);
	ck_assert(S_ISLNK(a.st.st_mode));
	ck_assert_uint_eq(a.st.st_mode & 07777, 0777);
	ck_assert_uint_eq(a.st.st_size, 13);
	ck_assert_uint_eq(a.st.st_nlink, 1);
	ck_assert_int_eq(mfs_readlink(fs, a.st.st_ino, buf, sizeof(buf)), 13);
	ck_assert_int_eq(memcmp(buf, "../some/where", 13), 0);
	ck_assert_int_eq(mfs_readlink(fs, a.st.st_ino, buf, 12), -ERANGE);
	ck_assert_int_eq(mfs_readlink(fs, a.st.st_ino, buf, 13), 13);
	ck_assert_int_eq(mfs_readlink(fs, f, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(mfs_readlink(fs, MFS_ROOT_INO, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(mfs_readlink(fs, 9999, buf, sizeof(buf)), -ENOENT);
	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "e", "", &a), -ENOENT);
	finish(fs);
}
END_TEST

START_TEST(symlink_target_of_4095_bytes_is_accepted_and_4096_gives_enametoolong)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	char *t4095 = long_name(4095), *t4096 = long_name(4096);
	char *buf = malloc(8192);
	struct statvfs before, after;

	mfs_statfs(fs, &before);
	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "ok", t4095, &a), 0);
	ck_assert_uint_eq(a.st.st_size, 4095);
	ck_assert_int_eq(mfs_readlink(fs, a.st.st_ino, buf, 8192), 4095);
	ck_assert_int_eq(memcmp(buf, t4095, 4095), 0);
	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "long", t4096, &a), -ENAMETOOLONG);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "long"), 0);
	mfs_statfs(fs, &after);
	ck_assert_uint_eq(before.f_ffree - after.f_ffree, 1);
	ck_assert_uint_eq(before.f_bfree - after.f_bfree, 1); /* a long target takes a block */
	free(t4095);
	free(t4096);
	free(buf);
	finish(fs);
}
END_TEST

/* ---- hard links ---- */

START_TEST(link_adds_a_name_and_a_link_count)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	write_str(fs, f, "shared", 0);
	ck_assert_int_eq(mfs_link(fs, f, d, "g", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, f);
	ck_assert_uint_eq(a.st.st_nlink, 2);
	ck_assert_uint_eq(ino_at(fs, d, "g"), f);
	ck_assert_int_eq(mfs_link(fs, f, d, "g", &a), -EEXIST);
	check_ok(fs);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	ck_assert_uint_eq(nlink_of(fs, f), 1);
	char buf[8] = {0};
	ck_assert_int_eq(mfs_pread(fs, f, buf, sizeof(buf), 0), 6);
	ck_assert_str_eq(buf, "shared");
	finish(fs);
}
END_TEST

START_TEST(link_of_a_directory_gives_eperm)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");

	ck_assert_int_eq(mfs_link(fs, d, MFS_ROOT_INO, "d2", &a), -EPERM);
	ck_assert_int_eq(mfs_link(fs, MFS_ROOT_INO, d, "root", &a), -EPERM);
	ck_assert_uint_eq(nlink_of(fs, d), 2);
	finish(fs);
}
END_TEST

START_TEST(link_of_an_unlinked_file_gives_enoent)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	ck_assert_int_eq(mfs_link(fs, f, MFS_ROOT_INO, "back", &a), -ENOENT);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "back"), 0);
	ck_assert_int_eq(mfs_link(fs, 9999, MFS_ROOT_INO, "x", &a), -ENOENT);
	mfs_forget(fs, f, 1);
	finish(fs);
}
END_TEST

START_TEST(each_extra_link_costs_an_inode_and_the_limit_gives_enospc)
{
	struct mfs_fs *fs = new_fs(1 * MiB, 5); /* root + f + 3 */
	struct mfs_attr a;
	struct statvfs sv;
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_link(fs, f, MFS_ROOT_INO, "l1", &a), 0);
	ck_assert_int_eq(mfs_link(fs, f, MFS_ROOT_INO, "l2", &a), 0);
	ck_assert_int_eq(mfs_link(fs, f, MFS_ROOT_INO, "l3", &a), 0);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_files, 5);
	ck_assert_uint_eq(sv.f_ffree, 0);
	ck_assert_int_eq(mfs_link(fs, f, MFS_ROOT_INO, "l4", &a), -ENOSPC);
	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, "g", 0644, 0, &a), -ENOSPC);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "l4"), 0);
	ck_assert_uint_eq(nlink_of(fs, f), 4);
	check_ok(fs);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "l2"), 0);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_ffree, 1);
	ck_assert_int_eq(mfs_link(fs, f, MFS_ROOT_INO, "l4", &a), 0);
	/* renaming one link over another gives the charge back */
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "l4", MFS_ROOT_INO, "l1", 0), 0);
	ck_assert_uint_eq(nlink_of(fs, f), 4); /* two names of one inode: nothing happens */
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "l4"), 0);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "l3"), 0);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_ffree, 2);
	finish(fs);
}
END_TEST

/* ---- rename ---- */

START_TEST(rename_moves_a_file_within_and_across_directories)
{
	struct mfs_fs *fs = default_fs();
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "f", MFS_ROOT_INO, "g", 0), 0);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "f"), 0);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "g"), f);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "g", d, "h", 0), 0);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "g"), 0);
	ck_assert_uint_eq(ino_at(fs, d, "h"), f);
	ck_assert_uint_eq(nlink_of(fs, f), 1);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "missing", d, "x", 0), -ENOENT);
	finish(fs);
}
END_TEST

START_TEST(rename_of_a_directory_across_parents_moves_its_dotdot_and_link_counts)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t p = mk_dir(fs, MFS_ROOT_INO, "p"), q = mk_dir(fs, MFS_ROOT_INO, "q");
	uint64_t s = mk_dir(fs, p, "s");

	ck_assert_int_eq(mfs_rename(fs, p, "s", q, "t", 0), 0);
	ck_assert_uint_eq(nlink_of(fs, p), 2);
	ck_assert_uint_eq(nlink_of(fs, q), 3);
	ck_assert_uint_eq(nlink_of(fs, s), 2);
	ck_assert_int_eq(mfs_lookup(fs, s, "..", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, q);
	finish(fs);
}
END_TEST

START_TEST(rename_over_a_file_replaces_it_and_frees_the_old_inode)
{
	struct mfs_fs *fs = default_fs();
	struct statvfs before, after;
	uint64_t a = mk_file(fs, MFS_ROOT_INO, "a"), b = mk_file(fs, MFS_ROOT_INO, "b");

	write_str(fs, b, "old contents", 0);
	mfs_forget(fs, b, 1);
	mfs_statfs(fs, &before);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", MFS_ROOT_INO, "b", 0), 0);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "b"), a);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "a"), 0);
	ck_assert(gone(fs, b));
	mfs_statfs(fs, &after);
	ck_assert_uint_eq(after.f_ffree, before.f_ffree + 1);
	ck_assert_uint_eq(after.f_bfree, before.f_bfree + 1);
	finish(fs);
}
END_TEST

START_TEST(rename_over_an_empty_directory_replaces_it)
{
	struct mfs_fs *fs = default_fs();
	uint64_t p = mk_dir(fs, MFS_ROOT_INO, "p");
	uint64_t src = mk_dir(fs, MFS_ROOT_INO, "src"), dst = mk_dir(fs, p, "dst");

	ck_assert_uint_eq(nlink_of(fs, MFS_ROOT_INO), 4);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "src", p, "dst", 0), 0);
	ck_assert_uint_eq(ino_at(fs, p, "dst"), src);
	ck_assert_uint_eq(nlink_of(fs, dst), 0); /* held by the mkdir lookup */
	ck_assert_uint_eq(nlink_of(fs, p), 3);
	ck_assert_uint_eq(nlink_of(fs, MFS_ROOT_INO), 3);
	check_ok(fs);
	mfs_forget(fs, dst, 1);
	ck_assert(gone(fs, dst));
	finish(fs);
}
END_TEST

START_TEST(rename_over_a_nonempty_directory_gives_enotempty)
{
	struct mfs_fs *fs = default_fs();
	uint64_t src = mk_dir(fs, MFS_ROOT_INO, "src"), dst = mk_dir(fs, MFS_ROOT_INO, "dst");

	mk_file(fs, dst, "f");
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "src", MFS_ROOT_INO, "dst", 0), -ENOTEMPTY);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "src"), src);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "dst"), dst);
	finish(fs);
}
END_TEST

START_TEST(rename_of_a_directory_over_a_file_gives_enotdir)
{
	struct mfs_fs *fs = default_fs();

	mk_dir(fs, MFS_ROOT_INO, "d");
	mk_file(fs, MFS_ROOT_INO, "f");
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "d", MFS_ROOT_INO, "f", 0), -ENOTDIR);
	ck_assert(S_ISREG(stat_of(fs, ino_at(fs, MFS_ROOT_INO, "f")).st_mode));
	finish(fs);
}
END_TEST

START_TEST(rename_of_a_file_over_a_directory_gives_eisdir)
{
	struct mfs_fs *fs = default_fs();

	mk_dir(fs, MFS_ROOT_INO, "d");
	mk_file(fs, MFS_ROOT_INO, "f");
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "f", MFS_ROOT_INO, "d", 0), -EISDIR);
	ck_assert(S_ISDIR(stat_of(fs, ino_at(fs, MFS_ROOT_INO, "d")).st_mode));
	finish(fs);
}
END_TEST

START_TEST(rename_of_a_directory_into_its_own_subtree_gives_einval)
{
	struct mfs_fs *fs = default_fs();
	uint64_t a = mk_dir(fs, MFS_ROOT_INO, "a");
	uint64_t b = mk_dir(fs, a, "b");
	uint64_t cur = b;
	char name[16];

	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", a, "x", 0), -EINVAL);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", b, "x", 0), -EINVAL);
	for (int i = 0; i < 1000; i++) { /* a deep chain under b */
		snprintf(name, sizeof(name), "c%d", i);
		uint64_t next = mk_dir(fs, cur, name);
		mfs_forget(fs, next, 1);
		cur = next;
	}
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", cur, "x", 0), -EINVAL);
	ck_assert_int_eq(mfs_rename(fs, a, "b", cur, "x", 0), -EINVAL);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", cur, "x", RENAME_NOREPLACE), -EINVAL);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "a"), a);
	ck_assert_uint_eq(ino_at(fs, cur, "x"), 0);
	/* the other way round is fine: the deepest moves up to the root */
	ck_assert_int_eq(mfs_rename(fs, a, "b", MFS_ROOT_INO, "b", 0), 0);
	ck_assert_uint_eq(nlink_of(fs, a), 2);
	finish(fs);
}
END_TEST

START_TEST(rename_noreplace_over_an_existing_name_gives_eexist)
{
	struct mfs_fs *fs = default_fs();
	uint64_t a = mk_file(fs, MFS_ROOT_INO, "a"), b = mk_file(fs, MFS_ROOT_INO, "b");

	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", MFS_ROOT_INO, "b", RENAME_NOREPLACE),
			 -EEXIST);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "a"), a);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "b"), b);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", MFS_ROOT_INO, "c", RENAME_NOREPLACE), 0);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "c"), a);
	finish(fs);
}
END_TEST

START_TEST(rename_exchange_swaps_a_file_and_a_directory_across_parents)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t p = mk_dir(fs, MFS_ROOT_INO, "p"), q = mk_dir(fs, MFS_ROOT_INO, "q");
	uint64_t f = mk_file(fs, p, "f");
	uint64_t d = mk_dir(fs, q, "d");

	mk_file(fs, d, "inside");
	ck_assert_uint_eq(nlink_of(fs, p), 2);
	ck_assert_uint_eq(nlink_of(fs, q), 3);
	ck_assert_int_eq(mfs_rename(fs, p, "f", q, "d", RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(ino_at(fs, p, "f"), d);
	ck_assert_uint_eq(ino_at(fs, q, "d"), f);
	ck_assert_uint_eq(nlink_of(fs, p), 3);
	ck_assert_uint_eq(nlink_of(fs, q), 2);
	ck_assert_uint_eq(nlink_of(fs, d), 2);
	ck_assert_uint_eq(nlink_of(fs, f), 1);
	ck_assert_int_eq(mfs_lookup(fs, d, "..", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, p);
	ck_assert_uint_ne(ino_at(fs, d, "inside"), 0);
	check_ok(fs);
	/* and back */
	ck_assert_int_eq(mfs_rename(fs, q, "d", p, "f", RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(ino_at(fs, p, "f"), f);
	ck_assert_uint_eq(ino_at(fs, q, "d"), d);
	ck_assert_int_eq(mfs_lookup(fs, d, "..", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, q);
	ck_assert_uint_eq(nlink_of(fs, p), 2);
	ck_assert_uint_eq(nlink_of(fs, q), 3);
	finish(fs);
}
END_TEST

START_TEST(rename_exchange_of_two_directories_swaps_their_parents)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t p = mk_dir(fs, MFS_ROOT_INO, "p"), q = mk_dir(fs, MFS_ROOT_INO, "q");
	uint64_t x = mk_dir(fs, p, "x"), y = mk_dir(fs, q, "y");

	mk_dir(fs, q, "z");
	ck_assert_int_eq(mfs_rename(fs, p, "x", q, "y", RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(ino_at(fs, p, "x"), y);
	ck_assert_uint_eq(ino_at(fs, q, "y"), x);
	ck_assert_uint_eq(nlink_of(fs, p), 3);
	ck_assert_uint_eq(nlink_of(fs, q), 4);
	ck_assert_int_eq(mfs_lookup(fs, x, "..", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, q);
	ck_assert_int_eq(mfs_lookup(fs, y, "..", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, p);
	/* a directory exchanged with something inside itself */
	uint64_t in = mk_dir(fs, x, "in");
	(void)in;
	ck_assert_int_eq(mfs_rename(fs, q, "y", x, "in", RENAME_EXCHANGE), -EINVAL);
	ck_assert_int_eq(mfs_rename(fs, x, "in", q, "y", RENAME_EXCHANGE), -EINVAL);
	finish(fs);
}
END_TEST

START_TEST(rename_exchange_with_a_missing_target_gives_enoent)
{
	struct mfs_fs *fs = default_fs();
	uint64_t a = mk_file(fs, MFS_ROOT_INO, "a");

	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", MFS_ROOT_INO, "b", RENAME_EXCHANGE),
			 -ENOENT);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "a"), a);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", MFS_ROOT_INO, "b",
				    RENAME_EXCHANGE | RENAME_NOREPLACE),
			 -EINVAL);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", MFS_ROOT_INO, "b", 1u << 7), -EINVAL);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "a"), a);
	finish(fs);
}
END_TEST

START_TEST(rename_between_two_names_of_one_inode_changes_nothing)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_link(fs, f, MFS_ROOT_INO, "g", &a), 0);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "f", MFS_ROOT_INO, "g", 0), 0);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "f"), f);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "g"), f);
	ck_assert_uint_eq(nlink_of(fs, f), 2);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "f", MFS_ROOT_INO, "g", RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(nlink_of(fs, f), 2);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "f", MFS_ROOT_INO, "f", 0), 0);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "f"), f);
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "d", MFS_ROOT_INO, "d", 0), 0);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "d"), d);
	ck_assert_uint_eq(nlink_of(fs, MFS_ROOT_INO), 3);
	finish(fs);
}
END_TEST

/* ---- name length ---- */

START_TEST(names_of_255_bytes_are_accepted_and_256_give_enametoolong)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	char *n255 = long_name(255), *n256 = long_name(256);
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");

	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, n256, 0644, 0, &a), -ENAMETOOLONG);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, n256, 0755, &a), -ENAMETOOLONG);
	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, n256, "t", &a), -ENAMETOOLONG);
	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, n256, 0644, O_CREAT | O_RDWR, &a),
			 -ENAMETOOLONG);
	ck_assert_int_eq(mfs_link(fs, f, MFS_ROOT_INO, n256, &a), -ENAMETOOLONG);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "f", MFS_ROOT_INO, n256, 0), -ENAMETOOLONG);
	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, n256, &a), -ENAMETOOLONG);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, n256), -ENAMETOOLONG);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, n256), -ENAMETOOLONG);

	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, n255, 0644, 0, &a), 0);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, d, n255, 0755, &a), 0);
	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, n255, &a), 0);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, n255), 0);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "f", MFS_ROOT_INO, n255, 0), 0);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, n255), f);
	ck_assert_int_eq(mfs_link(fs, f, d, "f", &a), 0);
	ck_assert_int_eq(mfs_rmdir(fs, d, n255), 0);
	ck_assert_int_eq(mfs_symlink(fs, &cred, d, n255, "t", &a), 0);
	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, n255, 0644, O_CREAT | O_RDWR, &a), 0);
	ck_assert_uint_eq(a.st.st_ino, f); /* opened the existing one */
	ck_assert_int_eq(mfs_release(fs, f), 0);

	struct listing *l = calloc(1, sizeof(*l));
	ck_assert_int_eq(mfs_readdir(fs, d, 0, 0, collect, l), 0);
	ck_assert_int_eq(listed(l, n255), 1);
	listing_free(l);
	free(l);
	free(n255);
	free(n256);
	finish(fs);
}
END_TEST

static Suite *fs_suite(void)
{
	Suite *s = suite_create("fs");
	TCase *refs = tcase_create("references");
	TCase *names = tcase_create("names");
	TCase *ren = tcase_create("rename");

	tcase_add_test(refs, lookup_adds_a_reference_that_forget_drops);
	tcase_add_test(refs, peek_takes_no_reference);
	tcase_add_test(refs, unlink_of_open_file_keeps_data_readable_until_release);
	tcase_add_test(refs, looked_up_unlinked_file_survives_until_forget);
	tcase_add_test(refs, inode_is_freed_only_when_links_lookups_and_opens_are_all_gone);
	tcase_add_test(refs, forget_of_more_than_held_or_of_an_unknown_inode_is_harmless);
	tcase_add_test(refs, forget_many_drops_several_references_at_once);
	tcase_add_test(refs, inode_numbers_are_never_reused);
	suite_add_tcase(s, refs);

	tcase_add_test(names, mknod_creates_every_file_type);
	tcase_add_test(names, mknod_of_a_directory_or_symlink_type_gives_einval);
	tcase_add_test(names, creating_an_existing_name_gives_eexist);
	tcase_add_test(names, creating_inside_a_file_gives_enotdir_and_in_a_missing_parent_enoent);
	tcase_add_test(names, directory_link_count_is_two_plus_subdirectories);
	tcase_add_test(names, rmdir_of_a_nonempty_directory_gives_enotempty);
	tcase_add_test(names, rmdir_of_a_file_gives_enotdir_and_unlink_of_a_directory_eisdir);
	tcase_add_test(names, creating_inside_a_removed_directory_gives_enoent);
	tcase_add_test(names, dot_and_dotdot_lookups_give_the_directory_and_its_parent);
	tcase_add_test(names, symlink_target_reads_back_exactly);
	tcase_add_test(names, symlink_target_of_4095_bytes_is_accepted_and_4096_gives_enametoolong);
	tcase_add_test(names, link_adds_a_name_and_a_link_count);
	tcase_add_test(names, link_of_a_directory_gives_eperm);
	tcase_add_test(names, link_of_an_unlinked_file_gives_enoent);
	tcase_add_test(names, each_extra_link_costs_an_inode_and_the_limit_gives_enospc);
	tcase_add_test(names, names_of_255_bytes_are_accepted_and_256_give_enametoolong);
	suite_add_tcase(s, names);

	tcase_add_test(ren, rename_moves_a_file_within_and_across_directories);
	tcase_add_test(ren, rename_of_a_directory_across_parents_moves_its_dotdot_and_link_counts);
	tcase_add_test(ren, rename_over_a_file_replaces_it_and_frees_the_old_inode);
	tcase_add_test(ren, rename_over_an_empty_directory_replaces_it);
	tcase_add_test(ren, rename_over_a_nonempty_directory_gives_enotempty);
	tcase_add_test(ren, rename_of_a_directory_over_a_file_gives_enotdir);
	tcase_add_test(ren, rename_of_a_file_over_a_directory_gives_eisdir);
	tcase_add_test(ren, rename_of_a_directory_into_its_own_subtree_gives_einval);
	tcase_add_test(ren, rename_noreplace_over_an_existing_name_gives_eexist);
	tcase_add_test(ren, rename_exchange_swaps_a_file_and_a_directory_across_parents);
	tcase_add_test(ren, rename_exchange_of_two_directories_swaps_their_parents);
	tcase_add_test(ren, rename_exchange_with_a_missing_target_gives_enoent);
	tcase_add_test(ren, rename_between_two_names_of_one_inode_changes_nothing);
	suite_add_tcase(s, ren);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(fs_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
