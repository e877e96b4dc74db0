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
#include <inttypes.h>
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
#include "inode.h" /* the lookup count, to bring it near its limit */
#include "unit_check.h"

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
	mfs_forget(fs, ino, 1);	  /* a late forget of a freed number */
	finish(fs);
}
END_TEST

START_TEST(a_lookup_count_at_its_limit_saturates_and_keeps_the_inode)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t ino = mk_file(fs, MFS_ROOT_INO, "f");
	struct mfs_inode *inode = mfs_inode_get(fs, ino);

	ck_assert_ptr_nonnull(inode);
	atomic_store(&inode->nlookup, UINT32_MAX - 1);
	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, "f", &a), 0);
	ck_assert_uint_eq(atomic_load(&inode->nlookup), UINT32_MAX);
	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, "f", &a), 0); /* no wrap to 0 */
	ck_assert_uint_eq(atomic_load(&inode->nlookup), UINT32_MAX);
	/* The true count is lost: no FORGET may free it, however large. */
	mfs_forget(fs, ino, (uint64_t)UINT32_MAX + 1);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	ck_assert(!gone(fs, ino));
	check_ok(fs);
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
		ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, cases[i].name, cases[i].mode,
					   cases[i].rdev, &a),
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

/* ---- open, create, release ---- */

START_TEST(create_opens_an_existing_file_and_truncates_with_o_trunc)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	write_str(fs, f, "contents", 0);
	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, "f", 0644, O_CREAT | O_RDWR, &a), 0);
	ck_assert_uint_eq(a.st.st_ino, f);
	ck_assert_uint_eq(a.st.st_size, 8);
	ck_assert_int_eq(
	    mfs_create(fs, &cred, MFS_ROOT_INO, "f", 0644, O_CREAT | O_RDWR | O_TRUNC, &a), 0);
	ck_assert_uint_eq(a.st.st_size, 0);
	ck_assert_uint_eq(a.st.st_blocks, 0);
	mk_dir(fs, MFS_ROOT_INO, "d");
	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, "d", 0644, O_CREAT | O_RDWR, &a),
			 -EISDIR);
	ck_assert_int_eq(mfs_release(fs, f), 0);
	ck_assert_int_eq(mfs_release(fs, f), 0);
	mfs_forget(fs, f, 3); /* mknod's and both creates' */
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	ck_assert(gone(fs, f));
	finish(fs);
}
END_TEST

START_TEST(open_with_o_trunc_empties_a_file_only_when_writable)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	write_str(fs, f, "contents", 0);
	ck_assert_int_eq(mfs_open(fs, f, O_RDONLY | O_TRUNC), 0);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 8);
	ck_assert_int_eq(mfs_open(fs, f, O_WRONLY | O_TRUNC), 0);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 0);
	ck_assert_uint_eq(stat_of(fs, f).st_blocks, 0);
	ck_assert_int_eq(mfs_release(fs, f), 0);
	ck_assert_int_eq(mfs_release(fs, f), 0);
	ck_assert_int_eq(mfs_open(fs, 9999, O_RDONLY), -ENOENT);
	ck_assert_int_eq(mfs_release(fs, 9999), -ENOENT);
	finish(fs);
}
END_TEST

START_TEST(removed_open_directory_survives_until_releasedir)
{
	struct mfs_fs *fs = default_fs();
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_opendir(fs, d), 0);
	ck_assert_int_eq(mfs_opendir(fs, f), -ENOTDIR);
	mfs_forget(fs, d, 1);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "d"), 0);
	ck_assert(!gone(fs, d));
	check_ok(fs);
	ck_assert_int_eq(mfs_releasedir(fs, d), 0);
	ck_assert(gone(fs, d));
	finish(fs);
}
END_TEST

/* ---- readdir ---- */

START_TEST(readdir_lists_dot_and_dotdot_first_then_every_entry_once)
{
	struct mfs_fs *fs = default_fs();
	struct listing *l = calloc(1, sizeof(*l));
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	uint64_t f = mk_file(fs, d, "f");
	uint64_t s = mk_dir(fs, d, "s");
	struct mfs_attr a;

	ck_assert_int_eq(mfs_symlink(fs, &cred, d, "l", "f", &a), 0);
	ck_assert_int_eq(mfs_readdir(fs, d, 0, 0, collect, l), 0);
	ck_assert_uint_eq(l->n, 5);
	ck_assert_str_eq(l->names[0], ".");
	ck_assert_uint_eq(l->st[0].st_ino, d);
	ck_assert_str_eq(l->names[1], "..");
	ck_assert_uint_eq(l->st[1].st_ino, MFS_ROOT_INO);
	ck_assert_uint_eq(l->next[0], 1);
	ck_assert_uint_eq(l->next[1], 2);
	ck_assert_int_eq(listed(l, "f"), 1);
	ck_assert_int_eq(listed(l, "s"), 1);
	ck_assert_int_eq(listed(l, "l"), 1);
	for (size_t i = 0; i < l->n; i++) {
		/* without plus: only the number and the type */
		ck_assert_uint_eq(l->st[i].st_mode & 07777, 0);
		ck_assert_uint_eq(l->st[i].st_nlink, 0);
		if (strcmp(l->names[i], "f") == 0) {
			ck_assert_uint_eq(l->st[i].st_ino, f);
			ck_assert(S_ISREG(l->st[i].st_mode));
		} else if (strcmp(l->names[i], "s") == 0) {
			ck_assert_uint_eq(l->st[i].st_ino, s);
			ck_assert(S_ISDIR(l->st[i].st_mode));
		} else if (strcmp(l->names[i], "l") == 0) {
			ck_assert(S_ISLNK(l->st[i].st_mode));
		}
		if (i > 0)
			ck_assert_uint_gt(l->next[i], l->next[i - 1]);
	}
	listing_free(l);
	/* an offset past the last entry lists nothing */
	ck_assert_int_eq(mfs_readdir(fs, d, UINT64_MAX, 0, collect, l), 0);
	ck_assert_uint_eq(l->n, 0);
	ck_assert_int_eq(mfs_readdir(fs, f, 0, 0, collect, l), -ENOTDIR);
	ck_assert_int_eq(mfs_readdir(fs, 9999, 0, 0, collect, l), -ENOENT);
	free(l);
	finish(fs);
}
END_TEST

START_TEST(readdir_plus_gives_complete_attributes)
{
	struct mfs_fs *fs = default_fs();
	struct listing *l = calloc(1, sizeof(*l));
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	uint64_t f = mk_file(fs, d, "f");

	write_str(fs, f, "12345", 0);
	mk_dir(fs, d, "s");
	ck_assert_int_eq(mfs_readdir(fs, d, 0, 1, collect, l), 0);
	ck_assert_uint_eq(l->n, 4);
	ck_assert_uint_eq(l->st[0].st_nlink, 3); /* "." is d: 2 + s */
	ck_assert_uint_eq(l->st[0].st_mode, S_IFDIR | 0755);
	ck_assert_uint_eq(l->st[1].st_nlink, 3); /* ".." is the root: 2 + d */
	for (size_t i = 2; i < l->n; i++) {
		if (strcmp(l->names[i], "f") == 0) {
			ck_assert_uint_eq(l->st[i].st_size, 5);
			ck_assert_uint_eq(l->st[i].st_mode, S_IFREG | 0644);
			ck_assert_uint_eq(l->st[i].st_nlink, 1);
			ck_assert_uint_eq(l->st[i].st_blocks, 8);
		}
	}
	listing_free(l);
	free(l);
	finish(fs);
}
END_TEST

START_TEST(readdir_continues_from_next_off)
{
	struct mfs_fs *fs = default_fs();
	struct listing *l = calloc(1, sizeof(*l));
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	char name[16];
	int seen[100] = {0};
	uint64_t off = 0;
	size_t total = 0;

	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		mfs_forget(fs, mk_file(fs, d, name), 1);
	}
	for (;;) {
		l->limit = 7;
		ck_assert_int_eq(mfs_readdir(fs, d, off, 0, collect, l), 0);
		if (l->n == 0)
			break;
		for (size_t i = 0; i < l->n; i++) {
			int k;
			if (total == 0)
				ck_assert_str_eq(l->names[i], i == 0 ? "." : "..");
			total++;
			if (sscanf(l->names[i], "f%d", &k) == 1)
				seen[k]++;
		}
		off = l->next[l->n - 1];
		listing_free(l);
	}
	ck_assert_uint_eq(total, 102);
	for (int i = 0; i < 100; i++)
		ck_assert_int_eq(seen[i], 1);
	free(l);
	finish(fs);
}
END_TEST

START_TEST(readdir_returns_each_entry_once_while_entries_come_and_go_between_calls)
{
	struct mfs_fs *fs = default_fs();
	struct listing *l = calloc(1, sizeof(*l));
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	enum { N = 300 };
	int seen[3 * N] = {0}, removed[3 * N] = {0}, present_at_start[3 * N] = {0};
	int next_new = N, calls = 0;
	char name[16];
	uint64_t off = 0;

	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		mfs_forget(fs, mk_file(fs, d, name), 1);
		present_at_start[i] = 1;
	}
	srand(7);
	for (;;) {
		l->limit = 5;
		ck_assert_int_eq(mfs_readdir(fs, d, off, 0, collect, l), 0);
		if (l->n == 0)
			break;
		for (size_t i = 0; i < l->n; i++) {
			int k;
			if (sscanf(l->names[i], "f%d", &k) == 1)
				seen[k]++;
		}
		off = l->next[l->n - 1];
		listing_free(l);
		calls++;
		/* between calls: remove two random entries and add one */
		for (int r = 0; r < 2; r++) {
			int k = rand() % next_new;
			if (removed[k])
				continue;
			snprintf(name, sizeof(name), "f%d", k);
			ck_assert_int_eq(mfs_unlink(fs, d, name), 0);
			removed[k] = 1;
		}
		/* add one (for a while: a cursor at the end would follow forever) */
		if (calls > 100)
			continue;
		snprintf(name, sizeof(name), "f%d", next_new++);
		mfs_forget(fs, mk_file(fs, d, name), 1);
	}
	ck_assert_int_gt(calls, 50);
	for (int k = 0; k < next_new; k++) {
		ck_assert_int_le(seen[k], 1);
		if (present_at_start[k] && !removed[k])
			ck_assert_msg(seen[k] == 1,
				      "f%d existed throughout but was listed %d times", k, seen[k]);
	}
	free(l);
	finish(fs);
}
END_TEST

START_TEST(readdir_plus_adds_lookups_only_for_taken_entries_other_than_dots)
{
	struct mfs_fs *fs = default_fs();
	struct listing *l = calloc(1, sizeof(*l));
	uint64_t p = mk_dir(fs, MFS_ROOT_INO, "p");
	uint64_t d = mk_dir(fs, p, "d");
	uint64_t ino[3];
	const char *names[3] = {"a", "b", "c"};

	for (int i = 0; i < 3; i++) {
		ino[i] = mk_file(fs, d, names[i]);
		mfs_forget(fs, ino[i], 1);
	}
	mfs_forget(fs, p, 1);
	mfs_forget(fs, d, 1);
	l->limit = 3; /* ".", "..", and one entry taken; the next one refused */
	ck_assert_int_eq(mfs_readdir(fs, d, 0, 1, collect, l), 0);
	ck_assert_uint_eq(l->n, 3);
	const char *taken = l->names[2];
	int t = taken[0] - 'a';
	listing_free(l);

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(mfs_unlink(fs, d, names[i]), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(gone(fs, ino[i]) == (i != t), "%s: %s", names[i],
			      i == t ? "taken entry lost its lookup"
				     : "refused entry got a lookup");
	/* "." (d) and ".." (p) got no lookup: removing them frees them */
	ck_assert_int_eq(mfs_rmdir(fs, p, "d"), 0);
	ck_assert(gone(fs, d));
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "p"), 0);
	ck_assert(gone(fs, p));
	mfs_forget(fs, ino[t], 1);
	ck_assert(gone(fs, ino[t]));
	free(l);
	finish(fs);
}
END_TEST

START_TEST(readdir_of_a_removed_directory_does_not_touch_its_freed_parent)
{
	struct mfs_fs *fs = default_fs();
	struct listing *l = calloc(1, sizeof(*l));
	uint64_t p = mk_dir(fs, MFS_ROOT_INO, "p");
	uint64_t d = mk_dir(fs, p, "d"); /* keeps its mkdir lookup */
	int err;

	ck_assert_int_eq(mfs_opendir(fs, d), 0);
	ck_assert_int_eq(mfs_rmdir(fs, p, "d"), 0);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "p"), 0);
	mfs_forget(fs, p, 1);
	ck_assert(gone(fs, p));
	/* Linux gives ENOENT for a dead directory (IS_DEADDIR); listing just
	 * "." and ".." would do too, but not reading the freed parent. */
	err = mfs_readdir(fs, d, 0, 1, collect, l);
	ck_assert_msg(err == -ENOENT || err == 0, "readdir gave %d", err);
	if (err == 0)
		ck_assert_uint_le(l->n, 2);
	listing_free(l);
	ck_assert_int_eq(mfs_releasedir(fs, d), 0);
	mfs_forget(fs, d, 1);
	ck_assert(gone(fs, d));
	free(l);
	finish(fs);
}
END_TEST

/* ---- attributes ---- */

static const struct timespec long_ago = {.tv_sec = 1000, .tv_nsec = 500};

/* Set all three times to long_ago, so that any later change is visible. */
static void age(struct mfs_fs *fs, uint64_t ino)
{
	struct mfs_setattr sa = {.valid = MFS_SET_ATIME | MFS_SET_MTIME | MFS_SET_CTIME,
				 .atime = long_ago,
				 .mtime = long_ago,
				 .ctime = long_ago};
	struct mfs_attr a;

	ck_assert_int_eq(mfs_setattr(fs, ino, &sa, &a), 0);
	ck_assert_int_eq(a.st.st_ctim.tv_sec, 1000);
}

static int recent(struct timespec ts)
{
	time_t now = time(NULL);

	return ts.tv_sec >= now - 5 && ts.tv_sec <= now + 5;
}

START_TEST(setattr_changes_mode_owner_and_group_and_moves_ctime)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");

	age(fs, f);
	struct mfs_setattr sa = {.valid = MFS_SET_MODE, .mode = 04711};
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert_uint_eq(a.st.st_mode, S_IFREG | 04711);
	ck_assert(recent(a.st.st_ctim));
	ck_assert_int_eq(a.st.st_mtime, 1000);
	ck_assert_int_eq(a.st.st_atime, 1000);

	age(fs, f);
	sa = (struct mfs_setattr){.valid = MFS_SET_UID | MFS_SET_GID, .uid = 1234, .gid = 5678};
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, NULL), 0);
	a.st = stat_of(fs, f);
	ck_assert_uint_eq(a.st.st_uid, 1234);
	ck_assert_uint_eq(a.st.st_gid, 5678);
	ck_assert(recent(a.st.st_ctim));
	ck_assert_uint_eq(a.st.st_mode, S_IFREG | 04711);

	sa = (struct mfs_setattr){.valid = MFS_SET_MODE, .mode = 01777 | S_IFREG};
	ck_assert_int_eq(mfs_setattr(fs, d, &sa, &a), 0);
	ck_assert_uint_eq(a.st.st_mode, S_IFDIR | 01777); /* the type never changes */
	ck_assert_int_eq(mfs_setattr(fs, 9999, &sa, &a), -ENOENT);
	finish(fs);
}
END_TEST

START_TEST(an_empty_setattr_touches_ctime_as_chown_minus_one_does)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	struct mfs_setattr sa = {.valid = MFS_SET_CTIME, .ctime = {.tv_sec = 1000}};
	struct mfs_attr a;

	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert_int_eq(a.st.st_ctim.tv_sec, 1000);
	sa.valid = 0; /* what the kernel sends for chown(f, -1, -1) */
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert_int_gt(a.st.st_ctim.tv_sec, 1000);
	ck_assert_int_eq(a.st.st_mode & 07777, 0644);
	finish(fs);
}
END_TEST

START_TEST(setattr_sets_times_exactly_or_to_now)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	struct timespec t1 = {.tv_sec = 2000, .tv_nsec = 123456789};
	struct timespec t2 = {.tv_sec = 3000, .tv_nsec = 987654321};

	age(fs, f);
	struct mfs_setattr sa = {.valid = MFS_SET_ATIME | MFS_SET_MTIME, .atime = t1, .mtime = t2};
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert_int_eq(a.st.st_atim.tv_sec, 2000);
	ck_assert_int_eq(a.st.st_atim.tv_nsec, 123456789);
	ck_assert_int_eq(a.st.st_mtim.tv_sec, 3000);
	ck_assert_int_eq(a.st.st_mtim.tv_nsec, 987654321);
	ck_assert(recent(a.st.st_ctim)); /* ctime moves with any change */

	age(fs, f);
	sa = (struct mfs_setattr){.valid = MFS_SET_ATIME_NOW};
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert(recent(a.st.st_atim));
	ck_assert_int_eq(a.st.st_mtime, 1000);
	ck_assert(recent(a.st.st_ctim));

	age(fs, f);
	sa = (struct mfs_setattr){.valid = MFS_SET_MTIME_NOW};
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert(recent(a.st.st_mtim));
	ck_assert_int_eq(a.st.st_atime, 1000);

	sa = (struct mfs_setattr){.valid = MFS_SET_CTIME, .ctime = t1};
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert_int_eq(a.st.st_ctim.tv_sec, 2000);
	ck_assert_int_eq(a.st.st_ctim.tv_nsec, 123456789);
	/* the birth time stays */
	ck_assert(recent(a.btime));
	finish(fs);
}
END_TEST

START_TEST(setattr_size_shrinks_and_grows_with_zeros)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	char *buf = malloc(20000), *back = malloc(20000);

	memset(buf, 'a', 20000);
	ck_assert_int_eq(mfs_pwrite(fs, f, buf, 20000, 0, 0), 20000);
	ck_assert_uint_eq(stat_of(fs, f).st_blocks, 5 * 8);
	age(fs, f);
	struct mfs_setattr sa = {.valid = MFS_SET_SIZE, .size = 5000};
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert_uint_eq(a.st.st_size, 5000);
	ck_assert_uint_eq(a.st.st_blocks, 2 * 8);
	ck_assert(recent(a.st.st_mtim));
	ck_assert(recent(a.st.st_ctim));
	sa.size = 20000;
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert_uint_eq(a.st.st_size, 20000);
	ck_assert_uint_eq(a.st.st_blocks, 2 * 8); /* growing allocates nothing */
	ck_assert_int_eq(mfs_pread(fs, f, back, 20000, 0), 20000);
	for (size_t i = 0; i < 20000; i++)
		require(back[i] == (i < 5000 ? 'a' : 0));
	sa.size = 0;
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert_uint_eq(a.st.st_blocks, 0);
	sa.size = 1 * TiB; /* sparse */
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert_uint_eq(a.st.st_size, 1 * TiB);
	ck_assert_uint_eq(a.st.st_blocks, 0);
	free(buf);
	free(back);
	finish(fs);
}
END_TEST

START_TEST(setattr_size_of_a_directory_gives_eisdir_and_of_a_symlink_einval)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "l", "target", &a), 0);
	struct mfs_setattr sa = {.valid = MFS_SET_SIZE | MFS_SET_MODE, .size = 0, .mode = 0700};
	ck_assert_int_eq(mfs_setattr(fs, d, &sa, NULL), -EISDIR);
	ck_assert_int_eq(mfs_setattr(fs, a.st.st_ino, &sa, NULL), -EINVAL);
	ck_assert_uint_eq(stat_of(fs, d).st_mode, S_IFDIR | 0755); /* nothing changed */
	sa.size = (uint64_t)INT64_MAX + 1;
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, NULL), -EFBIG);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 0);
	finish(fs);
}
END_TEST

START_TEST(new_entries_in_a_setgid_directory_take_its_group)
{
	struct mfs_fs *fs = default_fs();
	const struct mfs_cred user = {.uid = 1000, .gid = 1000};
	struct mfs_attr a;
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	uint64_t plain = mk_dir(fs, MFS_ROOT_INO, "plain");

	struct mfs_setattr sa = {.valid = MFS_SET_MODE | MFS_SET_GID, .mode = 02775, .gid = 50};
	ck_assert_int_eq(mfs_setattr(fs, d, &sa, NULL), 0);

	ck_assert_int_eq(mfs_mknod(fs, &user, d, "f", 0644, 0, &a), 0);
	ck_assert_uint_eq(a.st.st_uid, 1000);
	ck_assert_uint_eq(a.st.st_gid, 50);
	ck_assert_uint_eq(a.st.st_mode, S_IFREG | 0644);
	ck_assert_int_eq(mfs_mkdir(fs, &user, d, "sub", 0755, &a), 0);
	ck_assert_uint_eq(a.st.st_gid, 50);
	ck_assert_uint_eq(a.st.st_mode, S_IFDIR | 02755); /* directories inherit S_ISGID */
	uint64_t sub = a.st.st_ino;
	ck_assert_int_eq(mfs_symlink(fs, &user, d, "l", "t", &a), 0);
	ck_assert_uint_eq(a.st.st_gid, 50);
	ck_assert_int_eq(mfs_create(fs, &user, d, "c", 0600, O_CREAT | O_RDWR, &a), 0);
	ck_assert_uint_eq(a.st.st_gid, 50);
	ck_assert_int_eq(mfs_release(fs, a.st.st_ino), 0);
	/* and on down */
	ck_assert_int_eq(mfs_mkdir(fs, &user, sub, "deeper", 0700, &a), 0);
	ck_assert_uint_eq(a.st.st_gid, 50);
	ck_assert_uint_eq(a.st.st_mode, S_IFDIR | 02700);
	/* without setgid the group is the caller's */
	ck_assert_int_eq(mfs_mknod(fs, &user, plain, "f", 0644, 0, &a), 0);
	ck_assert_uint_eq(a.st.st_gid, 1000);
	ck_assert_int_eq(mfs_mkdir(fs, &user, plain, "s", 0755, &a), 0);
	ck_assert_uint_eq(a.st.st_mode, S_IFDIR | 0755);
	finish(fs);
}
END_TEST

START_TEST(namespace_changes_move_the_directory_times)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d"), e = mk_dir(fs, MFS_ROOT_INO, "e");
	uint64_t f;

	age(fs, d);
	f = mk_file(fs, d, "f");
	ck_assert(recent(stat_of(fs, d).st_mtim));
	ck_assert(recent(stat_of(fs, d).st_ctim));
	age(fs, d);
	age(fs, e);
	age(fs, f);
	ck_assert_int_eq(mfs_rename(fs, d, "f", e, "g", 0), 0);
	ck_assert(recent(stat_of(fs, d).st_mtim));
	ck_assert(recent(stat_of(fs, e).st_mtim));
	ck_assert(recent(stat_of(fs, f).st_ctim));
	age(fs, e);
	age(fs, f);
	ck_assert_int_eq(mfs_link(fs, f, e, "h", &a), 0);
	ck_assert(recent(stat_of(fs, e).st_mtim));
	ck_assert(recent(stat_of(fs, f).st_ctim));
	age(fs, e);
	age(fs, f);
	ck_assert_int_eq(mfs_unlink(fs, e, "h"), 0);
	ck_assert(recent(stat_of(fs, e).st_ctim));
	ck_assert(recent(stat_of(fs, f).st_ctim));
	finish(fs);
}
END_TEST

/* ---- contents ---- */

START_TEST(write_then_read_back_across_chunk_boundaries)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	size_t n = 3 * CHUNK + 777;
	unsigned char *buf = malloc(n), *back = malloc(n + 100);

	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 31 + 7);
	ck_assert_int_eq(mfs_pwrite(fs, f, buf, n, 1000, 0), (ssize_t)n);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 1000 + n);
	ck_assert_int_eq(mfs_pread(fs, f, back, n + 100, 1000), (ssize_t)n); /* short at EOF */
	ck_assert_int_eq(memcmp(back, buf, n), 0);
	ck_assert_int_eq(mfs_pread(fs, f, back, 1000, 0), 1000);
	for (size_t i = 0; i < 1000; i++)
		require(back[i] == 0);
	ck_assert_int_eq(mfs_pread(fs, f, back, 10, 1000 + n), 0);
	ck_assert_int_eq(mfs_pread(fs, f, back, 10, 1 * TiB), 0);
	/* overwrite in the middle */
	write_str(fs, f, "XYZ", CHUNK - 1);
	ck_assert_int_eq(mfs_pread(fs, f, back, 3, CHUNK - 1), 3);
	ck_assert_int_eq(memcmp(back, "XYZ", 3), 0);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 1000 + n);
	free(buf);
	free(back);
	finish(fs);
}
END_TEST

START_TEST(write_at_a_1_tib_offset_is_sparse)
{
	struct mfs_fs *fs = new_fs(1 * MiB, 100);
	struct statvfs sv;
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	char buf[CHUNK];

	write_str(fs, f, "head", 0);
	write_str(fs, f, "far", 1 * TiB);
	write_str(fs, f, "farther", 4 * TiB + 5);
	struct stat st = stat_of(fs, f);
	ck_assert_uint_eq(st.st_size, 4 * TiB + 12);
	ck_assert_uint_eq(st.st_blocks, 3 * 8);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_blocks - sv.f_bfree, 3);
	ck_assert_int_eq(mfs_pread(fs, f, buf, CHUNK, 1 * TiB - 2048), CHUNK);
	for (size_t i = 0; i < 2048; i++)
		require(buf[i] == 0);
	ck_assert_int_eq(memcmp(buf + 2048, "far", 3), 0);
	ck_assert_int_eq(mfs_pread(fs, f, buf, 7, 4 * TiB + 5), 7);
	ck_assert_int_eq(memcmp(buf, "farther", 7), 0);
	ck_assert_int_eq(mfs_pread(fs, f, buf, 100, 2 * TiB), 100);
	for (size_t i = 0; i < 100; i++)
		require(buf[i] == 0);
	ck_assert_int_eq(mfs_lseek(fs, f, 5, SEEK_DATA), 5); /* a data chunk, as a tmpfs page */
	ck_assert_int_eq(mfs_lseek(fs, f, CHUNK, SEEK_DATA), 1 * TiB);
	ck_assert_int_eq(mfs_lseek(fs, f, 1 * TiB, SEEK_HOLE), 1 * TiB + CHUNK);
	finish(fs);
}
END_TEST

START_TEST(st_blocks_counts_4_kib_chunks)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	char buf[CHUNK + 1];

	memset(buf, 'b', sizeof(buf));
	ck_assert_uint_eq(stat_of(fs, f).st_blocks, 0);
	ck_assert_uint_eq(stat_of(fs, f).st_blksize, 4096);
	write_str(fs, f, "x", 0);
	ck_assert_uint_eq(stat_of(fs, f).st_blocks, 8);
	ck_assert_int_eq(mfs_pwrite(fs, f, buf, CHUNK + 1, 0, 0), CHUNK + 1);
	ck_assert_uint_eq(stat_of(fs, f).st_blocks, 16);
	ck_assert_int_eq(mfs_pwrite(fs, f, buf, 1, 10 * CHUNK, 0), 1);
	ck_assert_uint_eq(stat_of(fs, f).st_blocks, 24);
	finish(fs);
}
END_TEST

START_TEST(append_writes_at_the_end_whatever_the_offset)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	char buf[16] = {0};

	write_str(fs, f, "abc", 0);
	ck_assert_int_eq(mfs_pwrite(fs, f, "def", 3, 0, MFS_WRITE_APPEND), 3);
	ck_assert_int_eq(mfs_pwrite(fs, f, "g", 1, 1000, MFS_WRITE_APPEND), 1);
	ck_assert_int_eq(mfs_pread(fs, f, buf, sizeof(buf), 0), 7);
	ck_assert_str_eq(buf, "abcdefg");
	finish(fs);
}
END_TEST

START_TEST(write_past_the_largest_file_size_gives_efbig)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_pwrite(fs, f, "x", 1, (uint64_t)INT64_MAX, 0), -EFBIG);
	ck_assert_int_eq(mfs_pwrite(fs, f, "xy", 2, (uint64_t)INT64_MAX - 1, 0), -EFBIG);
	ck_assert_int_eq(mfs_pwrite(fs, f, "x", 1, (uint64_t)INT64_MAX - 1, 0), 1);
	ck_assert_uint_eq(stat_of(fs, f).st_size, INT64_MAX);
	ck_assert_int_eq(mfs_pwrite(fs, f, "", 0, 5, 0), 0);
	finish(fs);
}
END_TEST

START_TEST(data_calls_on_a_directory_give_eisdir_and_on_other_types_einval)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	char buf[8];
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, "p", S_IFIFO | 0644, 0, &a), 0);
	uint64_t p = a.st.st_ino;
	ck_assert_int_eq(mfs_pwrite(fs, d, "x", 1, 0, 0), -EISDIR);
	ck_assert_int_eq(mfs_pread(fs, d, buf, 1, 0), -EISDIR);
	ck_assert_int_eq(mfs_pwrite(fs, p, "x", 1, 0, 0), -EINVAL);
	ck_assert_int_eq(mfs_fallocate(fs, d, 0, 0, 10), -EISDIR);
	ck_assert_int_eq(mfs_lseek(fs, d, 0, SEEK_DATA), -EISDIR);
	ck_assert_int_eq(mfs_copy_range(fs, d, 0, f, 0, 1), -EISDIR);
	ck_assert_int_eq(mfs_copy_range(fs, f, 0, p, 0, 1), -EINVAL);
	ck_assert_int_eq(mfs_pwrite(fs, 9999, "x", 1, 0, 0), -ENOENT);
	ck_assert_int_eq(mfs_copy_range(fs, 9999, 0, f, 0, 1), -ENOENT);
	finish(fs);
}
END_TEST

START_TEST(write_by_another_user_clears_setuid_and_group_executable_setgid)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f"), g = mk_file(fs, MFS_ROOT_INO, "g");
	struct mfs_setattr sa = {.valid = MFS_SET_MODE, .mode = 06755};

	ck_assert_int_eq(mfs_setattr(fs, f, &sa, NULL), 0);
	sa.mode = 06644; /* setgid without group exec: mandatory locking, stays */
	ck_assert_int_eq(mfs_setattr(fs, g, &sa, NULL), 0);
	ck_assert_int_eq(mfs_pwrite(fs, f, "x", 1, 0, 0), 1);
	ck_assert_uint_eq(stat_of(fs, f).st_mode & 07777, 06755);
	ck_assert_int_eq(mfs_pwrite(fs, f, "x", 1, 0, MFS_WRITE_KILL_PRIV), 1);
	ck_assert_uint_eq(stat_of(fs, f).st_mode & 07777, 0755);
	ck_assert_int_eq(mfs_pwrite(fs, g, "x", 1, 0, MFS_WRITE_KILL_PRIV), 1);
	ck_assert_uint_eq(stat_of(fs, g).st_mode & 07777, 02644);
	finish(fs);
}
END_TEST

START_TEST(write_and_read_move_mtime_and_atime)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	char buf[4];

	age(fs, f);
	write_str(fs, f, "abc", 0);
	struct stat st = stat_of(fs, f);
	ck_assert(recent(st.st_mtim));
	ck_assert(recent(st.st_ctim));
	ck_assert_int_eq(st.st_atime, 1000);
	ck_assert_int_eq(mfs_pread(fs, f, buf, 3, 0), 3);
	ck_assert(recent(stat_of(fs, f).st_atim)); /* relatime: atime was older than mtime */
	finish(fs);
}
END_TEST

/* ---- fallocate ---- */

START_TEST(fallocate_allocates_and_extends_unless_keep_size)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	char buf[100];

	ck_assert_int_eq(mfs_fallocate(fs, f, 0, 0, 10000), 0);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 10000);
	ck_assert_uint_eq(stat_of(fs, f).st_blocks, 3 * 8);
	ck_assert_int_eq(mfs_pread(fs, f, buf, 100, 5000), 100);
	for (int i = 0; i < 100; i++)
		require(buf[i] == 0);
	/* fallocated, unwritten chunks are holes for SEEK_DATA, as on tmpfs */
	ck_assert_int_eq(mfs_lseek(fs, f, 0, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(mfs_fallocate(fs, f, FALLOC_FL_KEEP_SIZE, 10000, 3 * CHUNK), 0);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 10000);
	ck_assert_uint_eq(stat_of(fs, f).st_blocks, 6 * 8);
	/* mode 0 inside the file changes nothing */
	ck_assert_int_eq(mfs_fallocate(fs, f, 0, 0, 100), 0);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 10000);
	finish(fs);
}
END_TEST

START_TEST(punch_hole_frees_chunks_and_reads_zeros)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	size_t n = 4 * CHUNK;
	char *buf = malloc(n);

	memset(buf, 'p', n);
	ck_assert_int_eq(mfs_pwrite(fs, f, buf, n, 0, 0), (ssize_t)n);
	ck_assert_int_eq(
	    mfs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 2 * CHUNK), 0);
	ck_assert_uint_eq(stat_of(fs, f).st_size, n);
	ck_assert_uint_eq(stat_of(fs, f).st_blocks,
			  3 * 8); /* chunk 1 freed, 0 and 2 partly zeroed */
	ck_assert_int_eq(mfs_pread(fs, f, buf, n, 0), (ssize_t)n);
	for (size_t i = 0; i < n; i++)
		require(buf[i] == (i >= 100 && i < 100 + 2 * CHUNK ? 0 : 'p'));
	ck_assert_int_eq(mfs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE, 0, 10), -EOPNOTSUPP);
	ck_assert_int_eq(mfs_fallocate(fs, f, FALLOC_FL_COLLAPSE_RANGE, 0, CHUNK), -EOPNOTSUPP);
	ck_assert_int_eq(mfs_fallocate(fs, f, 0, 0, 0), -EINVAL);
	free(buf);
	finish(fs);
}
END_TEST

START_TEST(zero_range_zeroes_and_extends_unless_keep_size)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	char buf[3 * CHUNK];

	memset(buf, 'z', sizeof(buf));
	ck_assert_int_eq(mfs_pwrite(fs, f, buf, 2 * CHUNK, 0, 0), 2 * CHUNK);
	ck_assert_int_eq(mfs_fallocate(fs, f, FALLOC_FL_ZERO_RANGE, 10, 20), 0);
	ck_assert_int_eq(mfs_pread(fs, f, buf, 40, 0), 40);
	for (int i = 0; i < 40; i++)
		require(buf[i] == (i >= 10 && i < 30 ? 0 : 'z'));
	ck_assert_int_eq(
	    mfs_fallocate(fs, f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, CHUNK, 2 * CHUNK), 0);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 2 * CHUNK);
	ck_assert_uint_eq(stat_of(fs, f).st_blocks, 3 * 8);
	ck_assert_int_eq(mfs_fallocate(fs, f, FALLOC_FL_ZERO_RANGE, CHUNK, 2 * CHUNK + 5), 0);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 3 * CHUNK + 5);
	ck_assert_int_eq(mfs_pread(fs, f, buf, 3 * CHUNK, CHUNK), 2 * CHUNK + 5);
	for (size_t i = 0; i < 2 * CHUNK + 5; i++)
		require(buf[i] == 0);
	finish(fs);
}
END_TEST

START_TEST(fallocate_past_the_space_limit_gives_enospc_and_allocates_nothing)
{
	struct mfs_fs *fs = new_fs(16 * CHUNK, 100);
	struct statvfs sv;
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	ck_assert_int_eq(mfs_fallocate(fs, f, 0, 0, 17 * CHUNK), -ENOSPC);
	ck_assert_uint_eq(stat_of(fs, f).st_size, 0);
	ck_assert_uint_eq(stat_of(fs, f).st_blocks, 0);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_bfree, 16);
	ck_assert_int_eq(mfs_fallocate(fs, f, 0, 0, 16 * CHUNK), 0);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_bfree, 0);
	finish(fs);
}
END_TEST

/* ---- SEEK_DATA / SEEK_HOLE ---- */

START_TEST(seek_data_and_seek_hole_find_written_chunks)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");

	write_str(fs, f, "0123456789", 0);
	write_str(fs, f, "0123456789", 1 * MiB);
	ck_assert_int_eq(mfs_lseek(fs, f, 0, SEEK_DATA), 0);
	ck_assert_int_eq(mfs_lseek(fs, f, 5, SEEK_DATA), 5);
	ck_assert_int_eq(mfs_lseek(fs, f, 0, SEEK_HOLE), CHUNK);
	ck_assert_int_eq(mfs_lseek(fs, f, CHUNK, SEEK_DATA), 1 * MiB);
	ck_assert_int_eq(mfs_lseek(fs, f, CHUNK + 1, SEEK_HOLE), CHUNK + 1);
	ck_assert_int_eq(mfs_lseek(fs, f, 1 * MiB, SEEK_HOLE), 1 * MiB + 10);
	ck_assert_int_eq(mfs_lseek(fs, f, 1 * MiB + 10, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(mfs_lseek(fs, f, 1 * MiB + 10, SEEK_HOLE), -ENXIO);
	ck_assert_int_eq(mfs_lseek(fs, f, 0, SEEK_SET), -EINVAL);
	ck_assert_int_eq(mfs_lseek(fs, f, 0, SEEK_END), -EINVAL);
	/* a hole at the end, made by truncate */
	struct mfs_setattr sa = {.valid = MFS_SET_SIZE, .size = 2 * MiB};
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, NULL), 0);
	ck_assert_int_eq(mfs_lseek(fs, f, 1 * MiB + 10, SEEK_DATA), 1 * MiB + 10);
	ck_assert_int_eq(mfs_lseek(fs, f, 1 * MiB + 10, SEEK_HOLE), 1 * MiB + CHUNK);
	ck_assert_int_eq(mfs_lseek(fs, f, 1 * MiB + CHUNK, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(mfs_lseek(fs, f, 2 * MiB - 1, SEEK_HOLE), 2 * MiB - 1);
	finish(fs);
}
END_TEST

/* ---- copy_file_range ---- */

START_TEST(copy_range_copies_bytes_and_extends_the_destination)
{
	struct mfs_fs *fs = default_fs();
	uint64_t a = mk_file(fs, MFS_ROOT_INO, "a"), b = mk_file(fs, MFS_ROOT_INO, "b");
	size_t n = 3 * CHUNK + 11;
	unsigned char *buf = malloc(n), *back = malloc(n);

	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)(i * 13 + 1);
	ck_assert_int_eq(mfs_pwrite(fs, a, buf, n, 0, 0), (ssize_t)n);
	age(fs, b);
	ck_assert_int_eq(mfs_copy_range(fs, a, 100, b, 50, n), (ssize_t)(n - 100)); /* clamped */
	struct stat st = stat_of(fs, b);
	ck_assert_uint_eq(st.st_size, 50 + n - 100);
	ck_assert(recent(st.st_mtim));
	ck_assert_int_eq(mfs_pread(fs, b, back, n, 0), (ssize_t)(n - 50));
	for (size_t i = 0; i < 50; i++)
		require(back[i] == 0);
	ck_assert_int_eq(memcmp(back + 50, buf + 100, n - 100), 0);
	ck_assert_int_eq(mfs_copy_range(fs, a, n, b, 0, 10), 0);     /* at EOF */
	ck_assert_int_eq(mfs_copy_range(fs, a, n + 5, b, 0, 10), 0); /* past EOF */
	ck_assert_int_eq(mfs_copy_range(fs, a, 0, b, 0, 0), 0);
	free(buf);
	free(back);
	finish(fs);
}
END_TEST

START_TEST(copy_range_keeps_holes_of_the_source)
{
	struct mfs_fs *fs = default_fs();
	uint64_t a = mk_file(fs, MFS_ROOT_INO, "a"), b = mk_file(fs, MFS_ROOT_INO, "b");

	write_str(fs, a, "start", 0);
	write_str(fs, a, "end", 100 * CHUNK);
	ck_assert_int_eq(mfs_copy_range(fs, a, 0, b, 0, 200 * CHUNK), 100 * CHUNK + 3);
	ck_assert_uint_eq(stat_of(fs, b).st_blocks, 2 * 8);
	ck_assert_int_eq(mfs_lseek(fs, b, CHUNK, SEEK_DATA), 100 * CHUNK);
	ck_assert_int_eq(mfs_lseek(fs, b, 10, SEEK_HOLE), CHUNK);
	finish(fs);
}
END_TEST

START_TEST(copy_range_within_one_file_of_overlapping_ranges_gives_einval)
{
	struct mfs_fs *fs = default_fs();
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	char buf[2 * CHUNK];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (char)('a' + i % 26);
	ck_assert_int_eq(mfs_pwrite(fs, f, buf, sizeof(buf), 0, 0), (ssize_t)sizeof(buf));
	ck_assert_int_eq(mfs_copy_range(fs, f, 0, f, 100, 1000), -EINVAL);
	ck_assert_int_eq(mfs_copy_range(fs, f, 100, f, 0, 1000), -EINVAL);
	ck_assert_int_eq(mfs_copy_range(fs, f, 0, f, 0, 10), -EINVAL);
	/* adjacent ranges do not overlap */
	ck_assert_int_eq(mfs_copy_range(fs, f, 0, f, CHUNK, CHUNK), CHUNK);
	ck_assert_int_eq(mfs_copy_range(fs, f, 0, f, 2 * CHUNK, 2 * CHUNK), 2 * CHUNK);
	char back[4 * CHUNK];
	ck_assert_int_eq(mfs_pread(fs, f, back, sizeof(back), 0), 4 * CHUNK);
	for (size_t i = 0; i < 4 * CHUNK; i++)
		require(back[i] == (char)('a' + (i % CHUNK) % 26));
	finish(fs);
}
END_TEST

START_TEST(copy_range_that_runs_out_of_space_leaves_nothing_hidden_past_the_end)
{
	struct mfs_fs *fs = new_fs(12 * CHUNK, 100);
	uint64_t a = mk_file(fs, MFS_ROOT_INO, "a"), b = mk_file(fs, MFS_ROOT_INO, "b");
	char buf[8 * CHUNK];
	ssize_t r;

	memset(buf, 'S', sizeof(buf));
	ck_assert_int_eq(mfs_pwrite(fs, a, buf, sizeof(buf), 0, 0), (ssize_t)sizeof(buf));
	r = mfs_copy_range(fs, a, 0, b, 0, sizeof(buf)); /* room for 4 of the 8 chunks */
	ck_assert_msg(r == -ENOSPC || (r > 0 && r < (ssize_t)sizeof(buf)), "copy gave %zd", r);
	uint64_t size = stat_of(fs, b).st_size;
	if (r > 0)
		ck_assert_uint_eq(size, (uint64_t)r);
	/* Grow the file: what lies past the old size must read as zeros. */
	struct mfs_setattr sa = {.valid = MFS_SET_SIZE, .size = sizeof(buf)};
	ck_assert_int_eq(mfs_setattr(fs, b, &sa, NULL), 0);
	ck_assert_int_eq(mfs_pread(fs, b, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	for (size_t i = 0; i < sizeof(buf); i++)
		ck_assert_msg(buf[i] == (i < size ? 'S' : 0),
			      "byte %zu past the old size %" PRIu64 " reads %d (copy gave %zd)", i,
			      size, buf[i], r);
	finish(fs);
}
END_TEST

/* ---- xattrs ---- */

START_TEST(xattrs_set_get_list_and_remove)
{
	struct mfs_fs *fs = default_fs();
	struct mfs_attr a;
	char buf[256];
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");

	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "l", "f", &a), 0);
	uint64_t l = a.st.st_ino;
	uint64_t all[] = {f, d, l};
	for (int i = 0; i < 3; i++) {
		uint64_t ino = all[i];
		age(fs, ino);
		ck_assert_int_eq(mfs_setxattr(fs, ino, "user.one", "1", 1, 0), 0);
		ck_assert(recent(stat_of(fs, ino).st_ctim));
		ck_assert_int_eq(mfs_setxattr(fs, ino, "trusted.two", "22", 2, XATTR_CREATE), 0);
		ck_assert_int_eq(mfs_setxattr(fs, ino, "user.one", "x", 1, XATTR_CREATE), -EEXIST);
		ck_assert_int_eq(mfs_setxattr(fs, ino, "user.nope", "x", 1, XATTR_REPLACE),
				 -ENODATA);
		ck_assert_int_eq(mfs_setxattr(fs, ino, "user.one", "111", 3, XATTR_REPLACE), 0);
		ck_assert_int_eq(mfs_setxattr(fs, ino, "system.x", "1", 1, 0), -EOPNOTSUPP);
		ck_assert_int_eq(mfs_getxattr(fs, ino, "user.one", NULL, 0), 3);
		ck_assert_int_eq(mfs_getxattr(fs, ino, "user.one", buf, sizeof(buf)), 3);
		ck_assert_int_eq(memcmp(buf, "111", 3), 0);
		ck_assert_int_eq(mfs_getxattr(fs, ino, "user.one", buf, 2), -ERANGE);
		ck_assert_int_eq(mfs_getxattr(fs, ino, "user.none", buf, sizeof(buf)), -ENODATA);
		const char want[] = "user.one\0trusted.two";
		ck_assert_int_eq(mfs_listxattr(fs, ino, NULL, 0), sizeof(want));
		ck_assert_int_eq(mfs_listxattr(fs, ino, buf, sizeof(buf)), sizeof(want));
		ck_assert_int_eq(memcmp(buf, want, sizeof(want)), 0);
		ck_assert_int_eq(mfs_listxattr(fs, ino, buf, 3), -ERANGE);
		age(fs, ino);
		ck_assert_int_eq(mfs_removexattr(fs, ino, "user.one"), 0);
		ck_assert(recent(stat_of(fs, ino).st_ctim));
		ck_assert_int_eq(mfs_removexattr(fs, ino, "user.one"), -ENODATA);
		ck_assert_int_eq(mfs_listxattr(fs, ino, buf, sizeof(buf)), 12);
	}
	ck_assert_int_eq(mfs_setxattr(fs, 9999, "user.a", "1", 1, 0), -ENOENT);
	ck_assert_int_eq(mfs_getxattr(fs, 9999, "user.a", buf, 1), -ENOENT);
	ck_assert_int_eq(mfs_listxattr(fs, 9999, buf, 1), -ENOENT);
	ck_assert_int_eq(mfs_removexattr(fs, 9999, "user.a"), -ENOENT);
	/* they go with the inode: ASan sees a leak otherwise */
	ck_assert_int_eq(mfs_setxattr(fs, f, "user.big", buf, sizeof(buf), 0), 0);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	mfs_forget(fs, f, 1);
	finish(fs);
}
END_TEST

/* ---- statfs and limits ---- */

START_TEST(statfs_reports_the_limits_exactly)
{
	struct mfs_fs *fs = new_fs(10 * MiB + 100, 50);
	struct statvfs sv;

	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_bsize, 4096);
	ck_assert_uint_eq(sv.f_frsize, 4096);
	ck_assert_uint_eq(sv.f_blocks, 2560);
	ck_assert_uint_eq(sv.f_bfree, 2560);
	ck_assert_uint_eq(sv.f_bavail, 2560);
	ck_assert_uint_eq(sv.f_files, 50);
	ck_assert_uint_eq(sv.f_ffree, 49); /* the root */
	ck_assert_uint_eq(sv.f_favail, 49);
	ck_assert_uint_eq(sv.f_namemax, 255);
	finish(fs);
}
END_TEST

START_TEST(statfs_free_counts_follow_writes_and_deletes)
{
	struct mfs_fs *fs = new_fs(10 * MiB, 50);
	struct statvfs sv;
	char buf[CHUNK];
	struct mfs_attr a;

	memset(buf, 1, sizeof(buf));
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	ck_assert_int_eq(mfs_symlink(fs, &cred, d, "l", "short", &a), 0);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_ffree, 46);
	ck_assert_uint_eq(sv.f_bfree, 2560); /* a short symlink takes no block */
	write_str(fs, f, "x", 0);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_bfree, 2559);
	ck_assert_int_eq(mfs_pwrite(fs, f, buf, CHUNK, CHUNK - 1, 0), CHUNK);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_bfree, 2558);
	ck_assert_int_eq(mfs_pwrite(fs, f, buf, 1, 1 * TiB, 0), 1);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_bfree, 2557);
	struct mfs_setattr sa = {.valid = MFS_SET_SIZE, .size = 10};
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, NULL), 0);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_bfree, 2559);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	mfs_statfs(fs, &sv);
	/* no name and not open: given back at once, as on tmpfs, although
	 * the caller still holds a reference */
	ck_assert_uint_eq(sv.f_bfree, 2560);
	ck_assert_uint_eq(sv.f_ffree, 47);
	mfs_forget(fs, f, 1);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_bfree, 2560);
	ck_assert_uint_eq(sv.f_ffree, 47);
	ck_assert_int_eq(mfs_unlink(fs, d, "l"), 0);
	mfs_forget(fs, a.st.st_ino, 1);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "d"), 0);
	mfs_forget(fs, d, 1);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_ffree, 49);
	finish(fs);
}
END_TEST

START_TEST(write_past_the_size_limit_gives_enospc)
{
	struct mfs_fs *fs = new_fs(16 * CHUNK, 100);
	struct statvfs sv;
	struct mfs_attr a;
	char buf[16 * CHUNK];
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f"), g = mk_file(fs, MFS_ROOT_INO, "g");

	memset(buf, 'q', sizeof(buf));
	ck_assert_int_eq(mfs_pwrite(fs, f, buf, sizeof(buf), 0, 0), (ssize_t)sizeof(buf));
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_bfree, 0);
	ck_assert_int_eq(mfs_pwrite(fs, g, "x", 1, 0, 0), -ENOSPC);
	ck_assert_int_eq(mfs_pwrite(fs, f, "x", 1, sizeof(buf), 0), -ENOSPC);
	ck_assert_int_eq(mfs_pwrite(fs, f, "x", 1, 5, 0), 1); /* inside a chunk held */
	char *target = long_name(200);
	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "l", target, &a), -ENOSPC);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "l"), 0);
	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "s", "short", &a), 0);
	free(target);
	check_ok(fs);
	ck_assert_uint_eq(stat_of(fs, g).st_size, 0);
	ck_assert_uint_eq(stat_of(fs, f).st_size, sizeof(buf));
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	mfs_forget(fs, f, 1);
	ck_assert_int_eq(mfs_pwrite(fs, g, "x", 1, 0, 0), 1);
	finish(fs);
}
END_TEST

static void check_short_write_near_the_limit(uint64_t limit, uint64_t off, size_t len)
{
	struct mfs_fs *fs = new_fs(limit, 100);
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f");
	unsigned char *buf = malloc(len), *back = malloc(len);
	ssize_t n;

	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)(i * 7 + 3);
	n = mfs_pwrite(fs, f, buf, len, off, 0);
	ck_assert_msg(n > 0 && (size_t)n < len, "limit %" PRIu64 " off %" PRIu64 ": write gave %zd",
		      limit, off, n);
	/* it stopped within one chunk of the limit */
	uint64_t chunks_used = ((off + (uint64_t)n + CHUNK - 1) / CHUNK) - off / CHUNK;
	ck_assert_uint_le(chunks_used * CHUNK, limit);
	ck_assert_uint_lt(limit - chunks_used * CHUNK, CHUNK);
	ck_assert_uint_eq(stat_of(fs, f).st_size, off + (uint64_t)n);
	ck_assert_int_eq(mfs_pread(fs, f, back, len, off), n);
	ck_assert_int_eq(memcmp(back, buf, (size_t)n), 0);
	check_ok(fs);
	free(buf);
	free(back);
	mfs_fs_destroy(fs);
}

START_TEST(big_write_near_the_size_limit_is_short_and_ends_within_a_chunk_of_it)
{
	check_short_write_near_the_limit(1 * MiB, 0, 2 * MiB);
	check_short_write_near_the_limit(1 * MiB + 1000, 0, 2 * MiB);
	check_short_write_near_the_limit(1 * MiB, 123, 2 * MiB);
	check_short_write_near_the_limit(1 * MiB + 4000, 5 * CHUNK + 17, 1 * MiB + 3 * CHUNK);
}
END_TEST

/*
 * tmpfs writes page by page: a write spanning the last free page and one
 * more writes what fits and returns the short count.
 */
START_TEST(small_write_over_the_last_free_chunk_is_short_and_holds_no_hidden_block)
{
	struct mfs_fs *fs = new_fs(2 * CHUNK, 100);
	struct statvfs sv;
	char buf[CHUNK];
	uint64_t f = mk_file(fs, MFS_ROOT_INO, "f"), g = mk_file(fs, MFS_ROOT_INO, "g");
	ssize_t r;

	memset(buf, 'x', sizeof(buf));
	write_str(fs, g, "x", 0); /* one chunk left */
	r = mfs_pwrite(fs, f, buf, CHUNK, CHUNK / 2, 0);
	struct stat st = stat_of(fs, f);
	mfs_statfs(fs, &sv);
	/* whatever the answer, blocks are held only for bytes inside the file */
	ck_assert_msg(st.st_size > 0 || st.st_blocks == 0,
		      "write gave %zd: size 0 but %ld blocks held, f_bfree %lu", r,
		      (long)st.st_blocks, (unsigned long)sv.f_bfree);
	ck_assert_int_eq(r, CHUNK / 2);
	ck_assert_uint_eq(st.st_size, CHUNK);
	ck_assert_uint_eq(st.st_blocks, 8);
	finish(fs);
}
END_TEST

START_TEST(max_inodes_gives_enospc_for_every_way_of_creating)
{
	struct mfs_fs *fs = new_fs(1 * MiB, 3);
	struct mfs_attr a;
	struct statvfs sv;

	mk_file(fs, MFS_ROOT_INO, "f");
	uint64_t d = mk_dir(fs, MFS_ROOT_INO, "d");
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_ffree, 0);
	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, "x", 0644, 0, &a), -ENOSPC);
	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, "x", S_IFIFO | 0644, 0, &a), -ENOSPC);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "x", 0755, &a), -ENOSPC);
	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "x", "t", &a), -ENOSPC);
	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, "x", 0644, O_CREAT | O_RDWR, &a),
			 -ENOSPC);
	ck_assert_uint_eq(ino_at(fs, MFS_ROOT_INO, "x"), 0);
	check_ok(fs);
	/* opening an existing file with O_CREAT needs no new inode */
	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, "f", 0644, O_CREAT | O_RDWR, &a), 0);
	ck_assert_int_eq(mfs_release(fs, a.st.st_ino), 0);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "d"), 0);
	/* a removed directory gives its inode back at once, though d is still
	 * looked up (tmpfs does not wait for the kernel to forget either) */
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "x", 0755, &a), 0);
	mfs_forget(fs, d, 1);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "y", 0755, &a), -ENOSPC);
	finish(fs);
}
END_TEST

/* ---- scale: deep trees ---- */

enum { DEEP = 100000 };

/* A chain root/d/d/d/... DEEP directories deep; parents[i] holds level i. */
static void build_chain(struct mfs_fs *fs, uint64_t *parents)
{
	struct mfs_attr a;

	parents[0] = MFS_ROOT_INO;
	for (int i = 0; i < DEEP; i++) {
		require(mfs_mkdir(fs, &cred, parents[i], "d", 0755, &a) == 0);
		mfs_forget(fs, a.st.st_ino, 1);
		parents[i + 1] = a.st.st_ino;
	}
}

START_TEST(chain_of_100000_directories_is_built_removed_bottom_up_and_destroyed)
{
	struct mfs_fs *fs = new_fs(1 * GiB, DEEP + 10);
	uint64_t *parents = malloc((DEEP + 1) * sizeof(*parents));
	struct mfs_attr a;
	struct statvfs sv;

	build_chain(fs, parents);
	check_ok(fs);
	ck_assert_uint_eq(nlink_of(fs, parents[DEEP]), 2);
	ck_assert_uint_eq(nlink_of(fs, parents[DEEP - 1]), 3);
	ck_assert_int_eq(mfs_lookup(fs, parents[DEEP], "..", &a), 0);
	ck_assert_uint_eq(a.st.st_ino, parents[DEEP - 1]);
	mfs_forget(fs, a.st.st_ino, 1);
	/* the subtree check walks all the way up, without recursion */
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "d", parents[DEEP], "x", 0), -EINVAL);
	for (int i = DEEP; i > 0; i--)
		require(mfs_rmdir(fs, parents[i - 1], "d") == 0);
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_files - sv.f_ffree, 1);
	ck_assert_uint_eq(nlink_of(fs, MFS_ROOT_INO), 2);
	free(parents);
	finish(fs);
}
END_TEST

START_TEST(chain_of_100000_directories_is_destroyed_without_recursion)
{
	struct mfs_fs *fs = new_fs(1 * GiB, DEEP + 10);
	uint64_t *parents = malloc((DEEP + 1) * sizeof(*parents));

	build_chain(fs, parents);
	mk_file(fs, parents[DEEP], "leaf");
	free(parents);
	mfs_fs_destroy(fs); /* ASan's stack guard catches deep recursion */
}
END_TEST

/* ---- a random history ---- */

/* xorshift64*: the same sequence on every libc. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static unsigned pick(unsigned n)
{
	return (unsigned)(rnd() % n);
}

enum { MAX_INO = 1 << 16, MAX_KNOWN = 256 };

/* What the caller holds, as the kernel would: lookups and open handles per inode. */
struct holder {
	uint32_t lookups[MAX_INO];
	uint32_t opens[MAX_INO];
	uint64_t dirs[MAX_KNOWN], files[MAX_KNOWN];
	unsigned ndirs, nfiles;
};

static void remember(uint64_t *set, unsigned *n, uint64_t ino)
{
	for (unsigned i = 0; i < *n; i++)
		if (set[i] == ino)
			return;
	if (*n < MAX_KNOWN)
		set[(*n)++] = ino;
	else
		set[pick(MAX_KNOWN)] = ino;
}

static void took(struct holder *h, const struct mfs_attr *a)
{
	uint64_t ino = a->st.st_ino;

	require(ino < MAX_INO);
	h->lookups[ino]++;
	if (S_ISDIR(a->st.st_mode))
		remember(h->dirs, &h->ndirs, ino);
	else
		remember(h->files, &h->nfiles, ino);
}

/* A name listed in dir, picked at random, or fallback if it is empty. */
static const char *existing_name(struct mfs_fs *fs, struct listing *l, uint64_t dir,
				 const char *fallback)
{
	static const char *const pool[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
	const char *name = fallback;

	l->limit = 0;
	if (mfs_readdir(fs, dir, 2, 0, collect, l) == 0 && l->n > 0) {
		const char *listed_name = l->names[pick((unsigned)l->n)];
		for (int i = 0; i < 8; i++)
			if (strcmp(pool[i], listed_name) == 0)
				name = pool[i];
	}
	listing_free(l);
	return name;
}

/* Drop inodes that no longer exist from the candidates. */
static void forget_the_gone(struct mfs_fs *fs, struct holder *h)
{
	unsigned n = 0;

	for (unsigned i = 0; i < h->ndirs; i++)
		if (!gone(fs, h->dirs[i]))
			h->dirs[n++] = h->dirs[i];
	h->ndirs = n;
	n = 0;
	for (unsigned i = 0; i < h->nfiles; i++)
		if (!gone(fs, h->files[i]))
			h->files[n++] = h->files[i];
	h->nfiles = n;
}

/* Errors a call on a random namespace may rightly give. */
static int expected_error(long r)
{
	switch (-r) {
	case ENOENT:
	case EEXIST:
	case ENOTDIR:
	case EISDIR:
	case ENOTEMPTY:
	case EINVAL:
	case ENOSPC:
	case EPERM:
	case ENODATA:
	case ENXIO:
	case EBUSY:
	case ERANGE:
		return 1;
	default:
		return 0;
	}
}

#define ok_or_expected(r, what)                                                                    \
	do {                                                                                       \
		long r_ = (long)(r);                                                               \
		if (r_ < 0 && !expected_error(r_))                                                 \
			ck_abort_msg("step %d (%s): unexpected %ld", step, what, r_);              \
	} while (0)

/* Sum of the entries of every directory reachable from the root (iteratively). */
static uint64_t count_names(struct mfs_fs *fs)
{
	uint64_t *stack = malloc(MAX_INO * sizeof(*stack)), names = 0;
	struct listing *l = calloc(1, sizeof(*l));
	size_t top = 0;

	stack[top++] = MFS_ROOT_INO;
	while (top) {
		uint64_t dir = stack[--top];
		l->limit = 0;
		require(mfs_readdir(fs, dir, 2, 0, collect, l) == 0);
		require(l->n < MAX_LISTED);
		for (size_t i = 0; i < l->n; i++) {
			names++;
			if (S_ISDIR(l->st[i].st_mode)) {
				require(top < MAX_INO);
				stack[top++] = l->st[i].st_ino;
			}
		}
		listing_free(l);
	}
	free(stack);
	free(l);
	return names;
}

START_TEST(random_history_of_core_operations_keeps_every_invariant)
{
	struct mfs_fs *fs = new_fs(512 * KiB, 120);
	struct holder *h = calloc(1, sizeof(*h));
	struct listing *l = calloc(1, sizeof(*l));
	static const char *const names[] = {"a", "b", "c", "d", "e", "f", "g", "h"};
	char *buf = calloc(1, 3 * CHUNK), *long_target = long_name(300);
	struct mfs_attr a;
	int step;

	rng_state = 0x9e3779b97f4a7c15ull;
	h->dirs[h->ndirs++] = MFS_ROOT_INO;
	memset(buf, 'r', 3 * CHUNK);
	for (step = 0; step < 20000; step++) {
		uint64_t dir = h->dirs[pick(h->ndirs)], dir2 = h->dirs[pick(h->ndirs)];
		uint64_t file = h->nfiles ? h->files[pick(h->nfiles)] : MFS_ROOT_INO;
		const char *name = names[pick(8)], *name2 = names[pick(8)];
		long r = 0;

		/* removals and renames mostly aim at names that exist */
		if (pick(4))
			name = existing_name(fs, l, dir, name);

		switch (pick(22)) {
		case 0:
			r = mfs_mknod(fs, &cred, dir, name,
				      pick(4) ? S_IFREG | 0644 : S_IFIFO | 0600, 0, &a);
			if (r == 0) {
				took(h, &a);
				require(ino_at(fs, dir, name) == a.st.st_ino);
			}
			ok_or_expected(r, "mknod");
			break;
		case 1:
		case 2:
			r = mfs_mkdir(fs, &cred, dir, name, 0755, &a);
			if (r == 0)
				took(h, &a);
			ok_or_expected(r, "mkdir");
			break;
		case 3:
			r = mfs_symlink(fs, &cred, dir, name, pick(2) ? "t" : long_target, &a);
			if (r == 0)
				took(h, &a);
			ok_or_expected(r, "symlink");
			break;
		case 4:
			r = mfs_create(fs, &cred, dir, name, 0644,
				       O_CREAT | O_RDWR | (pick(4) ? 0 : O_EXCL) |
					   (pick(4) ? 0 : O_TRUNC),
				       &a);
			if (r == 0) {
				took(h, &a);
				h->opens[a.st.st_ino]++;
			}
			ok_or_expected(r, "create");
			break;
		case 5:
			r = mfs_link(fs, file, dir, name, &a);
			if (r == 0) {
				took(h, &a);
				require(ino_at(fs, dir, name) == file);
			}
			ok_or_expected(r, "link");
			break;
		case 6:
		case 18:
			r = mfs_unlink(fs, dir, name);
			if (r == 0)
				require(ino_at(fs, dir, name) == 0);
			ok_or_expected(r, "unlink");
			break;
		case 7:
		case 19:
			r = mfs_rmdir(fs, dir, name);
			ok_or_expected(r, "rmdir");
			break;
		case 8:
		case 9: {
			static const unsigned flags[] = {0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE};
			unsigned fl = flags[pick(4)];
			uint64_t src = ino_at(fs, dir, name), dst = ino_at(fs, dir2, name2);
			r = mfs_rename(fs, dir, name, dir2, name2, fl);
			if (r == 0 && src != dst) {
				require(ino_at(fs, dir2, name2) == src);
				require(ino_at(fs, dir, name) == (fl == RENAME_EXCHANGE ? dst : 0));
			}
			ok_or_expected(r, "rename");
			break;
		}
		case 10: {
			uint64_t off = pick(4) ? pick(64 * 1024) : pick(1u << 30) * CHUNK;
			r = mfs_pwrite(fs, file, buf, pick(3 * CHUNK), off, 0);
			ok_or_expected(r, "write");
			break;
		}
		case 11: {
			struct mfs_setattr sa = {.valid = MFS_SET_SIZE, .size = pick(100000)};
			r = mfs_setattr(fs, file, &sa, NULL);
			ok_or_expected(r, "truncate");
			break;
		}
		case 12: {
			static const char *const dots[] = {".", ".."};
			r = mfs_lookup(fs, dir, pick(4) ? name : dots[pick(2)], &a);
			if (r == 0)
				took(h, &a);
			ok_or_expected(r, "lookup");
			break;
		}
		case 13:
		case 20:
		case 21: {
			uint64_t ino = pick(2) ? file : dir;
			if (ino < MAX_INO && h->lookups[ino]) {
				uint32_t n = 1 + pick(h->lookups[ino]);
				mfs_forget(fs, ino, n);
				h->lookups[ino] -= n;
			}
			if (ino < MAX_INO && h->opens[ino] && pick(2)) {
				r = mfs_release(fs, ino);
				require(r == 0);
				h->opens[ino]--;
			}
			break;
		}
		case 14: {
			int plus = pick(2);
			uint64_t off = pick(4) ? 0 : pick(40);
			l->limit = pick(12);
			r = mfs_readdir(fs, dir, off, plus, collect, l);
			ok_or_expected(r, "readdir");
			for (size_t i = 0; i < l->n; i++) {
				if (!plus || strcmp(l->names[i], ".") == 0 ||
				    strcmp(l->names[i], "..") == 0)
					continue;
				struct mfs_attr e = {.st = l->st[i]};
				took(h, &e);
			}
			listing_free(l);
			break;
		}
		case 15:
			if (pick(3))
				r = mfs_setxattr(fs, file, "user.k", buf, pick(200), 0);
			else
				r = mfs_removexattr(fs, file, "user.k");
			ok_or_expected(r, "xattr");
			break;
		case 16: {
			static const int modes[] = {0, FALLOC_FL_KEEP_SIZE,
						    FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						    FALLOC_FL_ZERO_RANGE};
			r = mfs_fallocate(fs, file, modes[pick(4)], pick(40000), 1 + pick(20000));
			ok_or_expected(r, "fallocate");
			break;
		}
		case 17: {
			uint64_t other = h->nfiles ? h->files[pick(h->nfiles)] : file;
			r = mfs_copy_range(fs, file, pick(20000), other, pick(40000), pick(20000));
			ok_or_expected(r, "copy_range");
			r = mfs_lseek(fs, file, pick(50000), pick(2) ? SEEK_DATA : SEEK_HOLE);
			ok_or_expected(r, "lseek");
			break;
		}
		}
		if (step % 100 == 99) {
			check_ok(fs);
			forget_the_gone(fs, h);
		}
	}
	check_ok(fs);
	/* Give every reference back: what is left is exactly the tree. */
	for (uint64_t ino = 0; ino < MAX_INO; ino++) {
		if (h->lookups[ino])
			mfs_forget(fs, ino, h->lookups[ino]);
		while (h->opens[ino]--)
			ck_assert_int_eq(mfs_release(fs, ino), 0);
	}
	struct statvfs sv;
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_files - sv.f_ffree, 1 + count_names(fs));
	free(h);
	free(l);
	free(buf);
	free(long_target);
	finish(fs);
}
END_TEST

/* ---- allocation failures ---- */

#ifdef MFS_FAULT_INJECTION

/* Returns 1 if the workload ran to the end. */
static int fault_workload(void)
{
	struct mfs_params p = {.size_bytes = 64 * MiB, .max_inodes = 1000, .root_mode = 0755};
	struct mfs_fs *fs = NULL;
	struct mfs_attr a, f, d, l;
	struct listing *lst = calloc(1, sizeof(*lst));
	char *data = malloc(3 * CHUNK + 100), *target = long_name(300);
	char name[16];
	int done = 0, err;

	memset(data, 'w', 3 * CHUNK + 100);
	fi_resume();
	err = mfs_fs_new(&p, &fs);
	fi_pause();
	if (err == -ENOMEM) {
		fi_enomem++;
		goto out;
	}
	ck_assert_int_eq(err, 0);
	check_ok(fs);
	memset(&f, 0, sizeof(f));
	FI_STEP(mfs_create(fs, &cred, MFS_ROOT_INO, "file", 0644, O_CREAT | O_RDWR, &f));
	FI_STEP(mfs_pwrite(fs, f.st.st_ino, data, 3 * CHUNK + 100, 0, 0));
	FI_STEP(mfs_pwrite(fs, f.st.st_ino, data, 10, 1 * TiB, 0));
	FI_STEP(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "dir", 0755, &d));
	FI_STEP(mfs_rename(fs, MFS_ROOT_INO, "file", d.st.st_ino, "moved", 0));
	FI_STEP(mfs_link(fs, f.st.st_ino, MFS_ROOT_INO, "hard", &a));
	FI_STEP(mfs_setxattr(fs, f.st.st_ino, "user.one", "value", 5, 0));
	FI_STEP(mfs_setxattr(fs, f.st.st_ino, "user.one", data, 300, XATTR_REPLACE));
	FI_STEP(mfs_readdir(fs, MFS_ROOT_INO, 0, 1, collect, lst));
	for (size_t i = 2; i < lst->n; i++)
		mfs_forget(fs, lst->st[i].st_ino, 1);
	listing_free(lst);
	FI_STEP(mfs_symlink(fs, &cred, d.st.st_ino, "sym", target, &l));
	for (int i = 0; i < 40; i++) { /* enough to grow a directory's index */
		snprintf(name, sizeof(name), "n%d", i);
		FI_STEP(mfs_mknod(fs, &cred, d.st.st_ino, name, 0644, 0, &a));
	}
	FI_STEP(mfs_rename(fs, d.st.st_ino, "n1", MFS_ROOT_INO, "hard", RENAME_EXCHANGE));
	FI_STEP(mfs_copy_range(fs, f.st.st_ino, 0, a.st.st_ino, 100, 2 * CHUNK));
	FI_STEP(mfs_fallocate(fs, a.st.st_ino, 0, 0, 5 * CHUNK));
	FI_STEP(mfs_unlink(fs, d.st.st_ino, "n1"));
	FI_STEP(mfs_unlink(fs, d.st.st_ino, "moved"));
	FI_STEP(mfs_release(fs, f.st.st_ino));
	FI_STEP(mfs_readdir(fs, d.st.st_ino, 0, 0, collect, lst));
	done = 1;
out:
	mfs_alloc_fail_at(0, 0);
	listing_free(lst);
	if (fs)
		finish(fs);
	free(lst);
	free(data);
	free(target);
	return done;
}

START_TEST(every_failed_allocation_gives_enomem_and_a_consistent_filesystem)
{
	unsigned long walked = 0;

	fi_enomem = 0;
	for (fi_target = 1;; fi_target++) {
		fi_used = 0;
		int done = fault_workload();
		walked++;
		if (done && fi_used < fi_target)
			break; /* the workload made fewer allocations: none failed */
		ck_assert_uint_lt(fi_target, 100000);
	}
	ck_assert_uint_gt(walked, 50);
	ck_assert_uint_gt(fi_enomem, walked / 2); /* most failures surface as -ENOMEM */
	printf("fault injection: walked N = 1..%lu (%lu allocations in the workload), "
	       "%lu gave -ENOMEM\n",
	       walked, fi_used, fi_enomem);
	fflush(stdout);
}
END_TEST

#endif /* MFS_FAULT_INJECTION */

static Suite *fs_suite(void)
{
	Suite *s = suite_create("fs");
	TCase *refs = tcase_create("references");
	TCase *names = tcase_create("names");
	TCase *ren = tcase_create("rename");
	TCase *dirs = tcase_create("directories");
	TCase *attrs = tcase_create("attributes");
	TCase *data = tcase_create("contents");
	TCase *limits = tcase_create("limits");
	TCase *heavy = tcase_create("heavy");

	tcase_add_test(refs, lookup_adds_a_reference_that_forget_drops);
	tcase_add_test(refs, peek_takes_no_reference);
	tcase_add_test(refs, unlink_of_open_file_keeps_data_readable_until_release);
	tcase_add_test(refs, looked_up_unlinked_file_survives_until_forget);
	tcase_add_test(refs, inode_is_freed_only_when_links_lookups_and_opens_are_all_gone);
	tcase_add_test(refs, forget_of_more_than_held_or_of_an_unknown_inode_is_harmless);
	tcase_add_test(refs, forget_many_drops_several_references_at_once);
	tcase_add_test(refs, a_lookup_count_at_its_limit_saturates_and_keeps_the_inode);
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

	tcase_add_test(dirs, create_opens_an_existing_file_and_truncates_with_o_trunc);
	tcase_add_test(dirs, open_with_o_trunc_empties_a_file_only_when_writable);
	tcase_add_test(dirs, removed_open_directory_survives_until_releasedir);
	tcase_add_test(dirs, readdir_lists_dot_and_dotdot_first_then_every_entry_once);
	tcase_add_test(dirs, readdir_plus_gives_complete_attributes);
	tcase_add_test(dirs, readdir_continues_from_next_off);
	tcase_add_test(dirs,
		       readdir_returns_each_entry_once_while_entries_come_and_go_between_calls);
	tcase_add_test(dirs, readdir_plus_adds_lookups_only_for_taken_entries_other_than_dots);
	tcase_add_test(dirs, readdir_of_a_removed_directory_does_not_touch_its_freed_parent);
	suite_add_tcase(s, dirs);

	tcase_add_test(attrs, setattr_changes_mode_owner_and_group_and_moves_ctime);
	tcase_add_test(attrs, setattr_sets_times_exactly_or_to_now);
	tcase_add_test(attrs, an_empty_setattr_touches_ctime_as_chown_minus_one_does);
	tcase_add_test(attrs, setattr_size_shrinks_and_grows_with_zeros);
	tcase_add_test(attrs, setattr_size_of_a_directory_gives_eisdir_and_of_a_symlink_einval);
	tcase_add_test(attrs, new_entries_in_a_setgid_directory_take_its_group);
	tcase_add_test(attrs, namespace_changes_move_the_directory_times);
	tcase_add_test(attrs, xattrs_set_get_list_and_remove);
	suite_add_tcase(s, attrs);

	tcase_add_test(data, write_then_read_back_across_chunk_boundaries);
	tcase_add_test(data, write_at_a_1_tib_offset_is_sparse);
	tcase_add_test(data, st_blocks_counts_4_kib_chunks);
	tcase_add_test(data, append_writes_at_the_end_whatever_the_offset);
	tcase_add_test(data, write_past_the_largest_file_size_gives_efbig);
	tcase_add_test(data, data_calls_on_a_directory_give_eisdir_and_on_other_types_einval);
	tcase_add_test(data, write_by_another_user_clears_setuid_and_group_executable_setgid);
	tcase_add_test(data, write_and_read_move_mtime_and_atime);
	tcase_add_test(data, fallocate_allocates_and_extends_unless_keep_size);
	tcase_add_test(data, punch_hole_frees_chunks_and_reads_zeros);
	tcase_add_test(data, zero_range_zeroes_and_extends_unless_keep_size);
	tcase_add_test(data, fallocate_past_the_space_limit_gives_enospc_and_allocates_nothing);
	tcase_add_test(data, seek_data_and_seek_hole_find_written_chunks);
	tcase_add_test(data, copy_range_copies_bytes_and_extends_the_destination);
	tcase_add_test(data, copy_range_keeps_holes_of_the_source);
	tcase_add_test(data, copy_range_within_one_file_of_overlapping_ranges_gives_einval);
	tcase_add_test(data, copy_range_that_runs_out_of_space_leaves_nothing_hidden_past_the_end);
	suite_add_tcase(s, data);

	tcase_add_test(limits, statfs_reports_the_limits_exactly);
	tcase_add_test(limits, statfs_free_counts_follow_writes_and_deletes);
	tcase_add_test(limits, write_past_the_size_limit_gives_enospc);
	tcase_add_test(limits,
		       big_write_near_the_size_limit_is_short_and_ends_within_a_chunk_of_it);
	tcase_add_test(limits,
		       small_write_over_the_last_free_chunk_is_short_and_holds_no_hidden_block);
	tcase_add_test(limits, max_inodes_gives_enospc_for_every_way_of_creating);
	suite_add_tcase(s, limits);

	tcase_set_timeout(heavy, 300);
	tcase_add_test(heavy, chain_of_100000_directories_is_built_removed_bottom_up_and_destroyed);
	tcase_add_test(heavy, chain_of_100000_directories_is_destroyed_without_recursion);
	tcase_add_test(heavy, random_history_of_core_operations_keeps_every_invariant);
#ifdef MFS_FAULT_INJECTION
	tcase_add_test(heavy, every_failed_allocation_gives_enomem_and_a_consistent_filesystem);
#endif
	suite_add_tcase(s, heavy);
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
