/*
 * test_overlay.c — unit tests of the overlay in the core (src/overlay.c,
 * src/copyup.c) through fs.h, with no mount: lower directories built in a
 * fresh temp dir, a filesystem over them, and every operation's effect on
 * the merged view and on the lower tree.
 *
 * Every test ends with mfs_check() (link counts with lower names not yet
 * listed, charges, lower ranges) and mfs_fs_destroy(), and most prove that
 * the lower tree is byte for byte what it was (tree_digest), so nothing is
 * ever written below.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "alloc.h"
#include "fs.h"
#include "unit_check.h"
#include "lower.h"

#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define CHUNK ((uint64_t)4096)

static const struct mfs_cred cred = {.uid = 0, .gid = 0};

/* ---- lower trees ---- */

static char base[256]; /* this test's temp dir; lower trees are base/l0, base/l1, ... */

static const char *lpath(int layer, const char *rel)
{
	static char buf[8][PATH_MAX];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, PATH_MAX, "%s/l%d%s%s", base, layer, rel[0] ? "/" : "", rel);
	return p;
}

static void mk(int layer, const char *rel, const char *contents)
{
	FILE *f = fopen(lpath(layer, rel), "w");

	ck_assert_msg(f != NULL, "create %s", rel);
	fputs(contents, f);
	fclose(f);
}

static void mkd(int layer, const char *rel)
{
	ck_assert_int_eq(mkdir(lpath(layer, rel), 0755), 0);
}

static void setup(void)
{
	snprintf(base, sizeof(base), "/tmp/memfs-ovl-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(base));
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(mkdir(lpath(i, ""), 0755), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void teardown(void)
{
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A digest of a whole tree: names, types, modes, sizes, mtimes, contents, link targets. */
static uint64_t digest_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *c = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ c[i]) * 1099511628211ull;
	return h;
}

static uint64_t tree_hash;

static int digest_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char buf[8192];

	(void)flag, (void)ftw;
	tree_hash = digest_bytes(tree_hash, path, strlen(path));
	tree_hash = digest_bytes(tree_hash, &st->st_mode, sizeof(st->st_mode));
	tree_hash = digest_bytes(tree_hash, &st->st_size, sizeof(st->st_size));
	tree_hash = digest_bytes(tree_hash, &st->st_mtim, sizeof(st->st_mtim));
	tree_hash = digest_bytes(tree_hash, &st->st_nlink, sizeof(st->st_nlink));
	if (S_ISREG(st->st_mode)) {
		/* data extents only, with their offsets: huge sparse files stay quick */
		int fd = open(path, O_RDONLY);
		off_t at = 0, end;
		ssize_t n;

		ck_assert_int_ge(fd, 0);
		while ((at = lseek(fd, at, SEEK_DATA)) >= 0) {
			end = lseek(fd, at, SEEK_HOLE);
			tree_hash = digest_bytes(tree_hash, &at, sizeof(at));
			while (at < end && (n = pread(fd, buf, sizeof(buf), at)) > 0) {
				tree_hash = digest_bytes(tree_hash, buf, (size_t)n);
				at += n;
			}
		}
		close(fd);
	} else if (S_ISLNK(st->st_mode)) {
		ssize_t n = readlink(path, buf, sizeof(buf));
		tree_hash = digest_bytes(tree_hash, buf, (size_t)n);
	}
	ssize_t n = llistxattr(path, buf, sizeof(buf));
	if (n > 0)
		tree_hash = digest_bytes(tree_hash, buf, (size_t)n);
	return 0;
}

static uint64_t tree_digest(void)
{
	tree_hash = 14695981039346656037ull;
	ck_assert_int_eq(nftw(base, digest_one, 16, FTW_PHYS), 0);
	return tree_hash;
}

/* ---- the filesystem over them ---- */

struct fs_opts {
	int nlayers;		 /* default 1 */
	unsigned max_maps;	 /* default 0 (the core's) */
	uint64_t max_inodes;	 /* default 10000 */
	uint64_t size_bytes;	 /* default 64 MiB */
	int lower_uid, lower_gid; /* -1: keep */
};

static struct mfs_fs *ovl_fs_with(struct fs_opts o)
{
	struct mfs_lower *lowers[3];
	struct mfs_params p = {
		.size_bytes = o.size_bytes ? o.size_bytes : 64 * MiB,
		.max_inodes = o.max_inodes ? o.max_inodes : 10000,
		.root_mode = 0755,
		.lowers = lowers,
		.nlowers = (unsigned)(o.nlayers ? o.nlayers : 1),
		.max_lower_maps = o.max_maps,
	};
	struct mfs_fs *fs = NULL;

	if (o.lower_uid >= 0) {
		p.lower_uid_set = 1;
		p.lower_uid = (uid_t)o.lower_uid;
	}
	if (o.lower_gid >= 0) {
		p.lower_gid_set = 1;
		p.lower_gid = (gid_t)o.lower_gid;
	}
	for (unsigned i = 0; i < p.nlowers; i++)
		ck_assert_int_eq(mfs_lower_open(lpath((int)i, ""), &lowers[i]), 0);
	ck_assert_int_eq(mfs_fs_new(&p, &fs), 0);
	return fs;
}

static struct mfs_fs *ovl_fs(int nlayers)
{
	return ovl_fs_with((struct fs_opts){.nlayers = nlayers, .lower_uid = -1, .lower_gid = -1});
}


/* Look up a path of the merged view ("a/b/c"), one component at a time: its attributes. */
static int walk(struct mfs_fs *fs, const char *path, struct mfs_attr *out)
{
	char buf[PATH_MAX], *save = NULL;
	uint64_t ino = MFS_ROOT_INO;
	int err = 0;

	snprintf(buf, sizeof(buf), "%s", path);
	mfs_getattr(fs, ino, out);
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		err = mfs_lookup(fs, ino, c, out);
		if (err)
			return err;
		ino = out->st.st_ino;
	}
	return 0;
}

static uint64_t ino_of(struct mfs_fs *fs, const char *path)
{
	struct mfs_attr a;

	ck_assert_msg(walk(fs, path, &a) == 0, "lookup %s", path);
	return a.st.st_ino;
}

static struct stat st_of(struct mfs_fs *fs, const char *path)
{
	struct mfs_attr a;

	ck_assert_msg(walk(fs, path, &a) == 0, "lookup %s", path);
	return a.st;
}

/* The whole contents of a regular file (malloc'd, NUL-terminated). */
static char *slurp(struct mfs_fs *fs, uint64_t ino, size_t *len)
{
	struct mfs_attr a;
	char *buf;
	ssize_t n;

	ck_assert_int_eq(mfs_getattr(fs, ino, &a), 0);
	buf = malloc((size_t)a.st.st_size + 1);
	n = mfs_pread(fs, ino, buf, (size_t)a.st.st_size, 0);
	ck_assert_int_eq(n, a.st.st_size);
	buf[n] = '\0';
	if (len)
		*len = (size_t)n;
	return buf;
}

static void assert_contents(struct mfs_fs *fs, const char *path, const char *want)
{
	char *got = slurp(fs, ino_of(fs, path), NULL);

	ck_assert_str_eq(got, want);
	free(got);
}

static uint64_t used_blocks(struct mfs_fs *fs)
{
	struct statvfs sv;

	mfs_statfs(fs, &sv);
	return sv.f_blocks - sv.f_bfree;
}

struct names {
	size_t n;
	char name[64][64];
	struct stat st[64];
};

static int collect(void *ctx, const char *name, const struct stat *st, uint64_t next)
{
	struct names *l = ctx;

	(void)next;
	if (l->n == 64)
		return 1;
	snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
	l->st[l->n++] = *st;
	return 0;
}

/* Names of a directory but "." and "..", sorted, joined by spaces. */
static char *names_of(struct mfs_fs *fs, uint64_t dir)
{
	static char out[4096];
	struct names l = {0};

	ck_assert_int_eq(mfs_readdir(fs, dir, 2, 0, collect, &l), 0);
	qsort(l.name, l.n, sizeof(l.name[0]), (int (*)(const void *, const void *))strcmp);
	out[0] = '\0';
	for (size_t i = 0; i < l.n; i++) {
		strcat(out, i ? " " : "");
		strcat(out, l.name[i]);
	}
	return out;
}

/* ---- the merged tree ---- */

START_TEST(lookup_shows_lower_entries_with_their_own_attributes)
{
	mkd(0, "dir");
	mk(0, "dir/file", "hello");
	ck_assert_int_eq(chmod(lpath(0, "dir/file"), 0640), 0);
	ck_assert_int_eq(symlink("../../../etc/passwd", lpath(0, "dir/link")), 0);
	ck_assert_int_eq(mkfifo(lpath(0, "fifo"), 0600), 0);
	struct stat want;
	ck_assert_int_eq(lstat(lpath(0, "dir/file"), &want), 0);
	uint64_t digest = tree_digest();
	struct mfs_fs *fs = ovl_fs(1);
	char target[PATH_MAX];

	struct stat st = st_of(fs, "dir/file");
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0640);
	ck_assert_int_eq(st.st_size, 5);
	ck_assert_int_eq(st.st_nlink, 1);
	ck_assert_int_eq(st.st_mtim.tv_sec, want.st_mtim.tv_sec);
	ck_assert_int_eq(st.st_mtim.tv_nsec, want.st_mtim.tv_nsec);
	ck_assert_int_eq(st.st_blocks, 8); /* one chunk, read from lower */
	assert_contents(fs, "dir/file", "hello");
	st = st_of(fs, "dir");
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_nlink, 2);
	ck_assert_int_eq(st_of(fs, "").st_nlink, 3); /* "." "..", and dir */
	st = st_of(fs, "dir/link");
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(mfs_readlink(fs, st.st_ino, target, sizeof(target)),
			 (ssize_t)strlen("../../../etc/passwd"));
	ck_assert(memcmp(target, "../../../etc/passwd", st.st_size) == 0);
	ck_assert(S_ISFIFO(st_of(fs, "fifo").st_mode));
	ck_assert_uint_eq(used_blocks(fs), 0); /* nothing of lower is memfs's memory */
	finish(fs);
	ck_assert_uint_eq(tree_digest(), digest);
}
END_TEST

START_TEST(readdir_numbers_are_the_numbers_lookup_gives_later)
{
	mkd(0, "d");
	mk(0, "d/a", "1");
	mk(0, "d/b", "2");
	mkd(0, "d/sub");
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t d = ino_of(fs, "d");
	struct names l = {0}, plus = {0};

	/* with plus, names not looked up yet come without attributes */
	ck_assert_int_eq(mfs_readdir(fs, d, 2, 1, collect, &plus), 0);
	ck_assert_uint_eq(plus.n, 3);
	for (size_t i = 0; i < plus.n; i++)
		ck_assert_int_eq(plus.st[i].st_nlink, 0);
	ck_assert_int_eq(mfs_readdir(fs, d, 2, 0, collect, &l), 0);
	ck_assert_uint_eq(l.n, 3);
	for (size_t i = 0; i < l.n; i++) {
		struct mfs_attr a;
		ck_assert_int_eq(mfs_lookup(fs, d, l.name[i], &a), 0);
		ck_assert_uint_eq(a.st.st_ino, l.st[i].st_ino);
		ck_assert_uint_eq(a.st.st_mode & S_IFMT, l.st[i].st_mode & S_IFMT);
		ck_assert_uint_eq(a.st.st_ino, plus.st[i].st_ino);
	}
	/* now looked up: plus carries attributes and a reference */
	memset(&plus, 0, sizeof(plus));
	ck_assert_int_eq(mfs_readdir(fs, d, 2, 1, collect, &plus), 0);
	for (size_t i = 0; i < plus.n; i++) {
		ck_assert_int_ge(plus.st[i].st_nlink, 1);
		mfs_forget(fs, plus.st[i].st_ino, 1);
	}
	/* numbers are unique */
	for (size_t i = 0; i < l.n; i++)
		for (size_t j = i + 1; j < l.n; j++)
			ck_assert_uint_ne(l.st[i].st_ino, l.st[j].st_ino);
	ck_assert_uint_ne(l.st[0].st_ino, d);
	finish(fs);
}
END_TEST

START_TEST(a_directory_is_read_once_when_its_inode_is_made)
{
	mkd(0, "a");
	mkd(0, "a/b");
	mk(0, "a/b/f", "x");
	mk(0, "a/g", "y");
	mkd(0, "gone");
	struct mfs_fs *fs = ovl_fs(1);
	struct mfs_attr at;

	/* Only the root was read at mount: gone is a stub, its lower copy can
	 * go, and its lookup then fails as for any entry removed underneath;
	 * the name is free from then on (and nothing brings it back). */
	ck_assert_int_eq(rename(lpath(0, "gone"), lpath(0, "gone-moved")), 0);
	ck_assert_str_eq(names_of(fs, MFS_ROOT_INO), "a gone");
	ck_assert_int_eq(st_of(fs, "").st_nlink, 4);
	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, "gone", &at), -ENOENT);
	ck_assert_str_eq(names_of(fs, MFS_ROOT_INO), "a");
	ck_assert_int_eq(st_of(fs, "").st_nlink, 3);
	ck_assert_int_eq(rename(lpath(0, "gone-moved"), lpath(0, "gone")), 0);
	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, "gone", &at), -ENOENT);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "gone", 0700, &at), 0);
	ck_assert_str_eq(names_of(fs, at.st.st_ino), "");
	uint64_t a = ino_of(fs, "a");
	ck_assert_str_eq(names_of(fs, a), "b g");
	/* a was read when its inode was made: lower changes no longer show */
	mk(0, "a/late", "z");
	ck_assert_int_eq(unlink(lpath(0, "a/g")), 0);
	ck_assert_str_eq(names_of(fs, a), "b g");
	/* g's contents came from lower, which no longer has it: ENOENT, and
	 * the name can be made again */
	ck_assert_int_eq(mfs_lookup(fs, a, "g", &at), -ENOENT);
	ck_assert_int_eq(mfs_lookup(fs, a, "late", &at), -ENOENT);
	ck_assert_str_eq(names_of(fs, a), "b");
	ck_assert_int_eq(mfs_create(fs, &cred, a, "g", 0644, O_CREAT | O_RDWR | O_EXCL, &at), 0);
	ck_assert_int_eq(mfs_release(fs, at.st.st_ino), 0);
	ck_assert_str_eq(names_of(fs, ino_of(fs, "a/b")), "f");
	finish(fs);
}
END_TEST

START_TEST(names_removed_underneath_are_free_for_every_kind_of_create)
{
	const char *kinds[] = {"f1", "f2", "f3", "f4", "f5"};
	struct mfs_attr a;

	for (int i = 0; i < 5; i++)
		mk(0, kinds[i], "lower");
	mkd(0, "d");
	mk(0, "d/x", "x");
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t d = ino_of(fs, "d");

	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(unlink(lpath(0, kinds[i])), 0);
	ck_assert_int_eq(unlink(lpath(0, "d/x")), 0);
	/* the first call to meet each stub finds it gone and frees the name */
	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, "f1", 0644, O_CREAT | O_RDWR | O_EXCL, &a), 0);
	ck_assert_int_eq(a.st.st_size, 0);
	ck_assert_int_eq(mfs_release(fs, a.st.st_ino), 0);
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "f2", 0755, &a), 0);
	ck_assert_int_eq(mfs_symlink(fs, &cred, MFS_ROOT_INO, "f3", "t", &a), 0);
	ck_assert_int_eq(mfs_rename(fs, d, "x", MFS_ROOT_INO, "y", 0), -ENOENT);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f4"), -ENOENT);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "f1", MFS_ROOT_INO, "f5", RENAME_NOREPLACE), 0);
	ck_assert_str_eq(names_of(fs, MFS_ROOT_INO), "d f2 f3 f5");
	ck_assert_str_eq(names_of(fs, d), "");
	finish(fs);
}
END_TEST

START_TEST(a_merged_directory_of_many_names_lists_each_name_once)
{
	char rel[64];
	int seen = 0;

	/* enough names that the merge's table grows several times */
	mkd(0, "d");
	mkd(1, "d");
	for (int i = 0; i < 300; i++) {
		snprintf(rel, sizeof(rel), "d/n%03d", i);
		mk(i % 2, rel, i % 2 ? "1" : "0");
		if (i % 3 == 0)
			mk(1 - i % 2, rel, "hidden or not");
	}
	struct mfs_fs *fs = ovl_fs(2);
	uint64_t d = ino_of(fs, "d");

	for (int i = 0; i < 300; i++) {
		struct mfs_attr a;
		snprintf(rel, sizeof(rel), "n%03d", i);
		ck_assert_int_eq(mfs_lookup(fs, d, rel, &a), 0);
		seen++;
		/* the upper layer's copy wins where both have the name */
		snprintf(rel, sizeof(rel), "d/n%03d", i);
		if (i % 3 == 0 && i % 2 == 1)
			assert_contents(fs, rel, "hidden or not");
	}
	ck_assert_int_eq(seen, 300);
	ck_assert_int_eq(st_of(fs, "d").st_size, (300 + 2) * 20);
	finish(fs);
}
END_TEST

START_TEST(an_entry_that_changed_type_underneath_is_eio_and_nothing_else)
{
	mk(0, "f", "x");
	mkd(0, "d");
	mk(0, "ok", "fine");
	struct mfs_fs *fs = ovl_fs(1);
	struct mfs_attr at;

	ck_assert_int_eq(unlink(lpath(0, "f")), 0);
	mkd(0, "f");
	ck_assert_int_eq(rmdir(lpath(0, "d")), 0);
	mk(0, "d", "now a file");
	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, "f", &at), -EIO);
	ck_assert_int_eq(mfs_lookup(fs, MFS_ROOT_INO, "d", &at), -EIO);
	assert_contents(fs, "ok", "fine");
	/* they can still be removed and replaced */
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), -EIO);
	finish(fs);
}
END_TEST

/* ---- contents ---- */

START_TEST(reading_a_lower_file_takes_no_memory_and_gives_its_bytes)
{
	char *big = malloc(3 * MiB + 123);

	for (size_t i = 0; i < 3 * MiB + 123; i++)
		big[i] = (char)(i * 7 + i / 4096);
	int fd = open(lpath(0, "big"), O_CREAT | O_WRONLY, 0644);
	ck_assert_int_eq(write(fd, big, 3 * MiB + 123), (ssize_t)(3 * MiB + 123));
	close(fd);
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t ino = ino_of(fs, "big");
	char *got = malloc(3 * MiB + 123);

	ck_assert_int_eq(mfs_open(fs, ino, O_RDONLY), 0);
	ck_assert_int_eq(mfs_pread(fs, ino, got, 3 * MiB + 123, 0), (ssize_t)(3 * MiB + 123));
	ck_assert(memcmp(got, big, 3 * MiB + 123) == 0);
	ck_assert_int_eq(mfs_pread(fs, ino, got, 10000, MiB - 17), 10000);
	ck_assert(memcmp(got, big + MiB - 17, 10000) == 0);
	ck_assert_uint_eq(used_blocks(fs), 0);
	ck_assert_int_eq(mfs_release(fs, ino), 0);
	free(got);
	free(big);
	finish(fs);
}
END_TEST

START_TEST(a_one_byte_write_into_a_huge_lower_file_copies_one_chunk)
{
	int fd = open(lpath(0, "huge"), O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)(10 * GiB)), 0);
	ck_assert_int_eq(pwrite(fd, "lower", 5, (off_t)(5 * GiB - 2)), 5);
	close(fd);
	uint64_t digest = tree_digest();
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t ino = ino_of(fs, "huge");
	char buf[8];

	ck_assert_int_eq(mfs_open(fs, ino, O_RDWR), 0);
	ck_assert_int_eq(mfs_pwrite(fs, ino, "X", 1, 5 * GiB, 0), 1);
	ck_assert_uint_eq(used_blocks(fs), 1);
	ck_assert_int_eq(mfs_pread(fs, ino, buf, 5, 5 * GiB - 2), 5);
	ck_assert(memcmp(buf, "loXer", 5) == 0); /* the rest of the chunk came from lower */
	ck_assert_int_eq(mfs_pread(fs, ino, buf, 4, 5 * GiB - 4096 - 2), 4);
	ck_assert(memcmp(buf, "\0\0\0\0", 4) == 0);
	ck_assert_int_eq(st_of(fs, "huge").st_size, (off_t)(10 * GiB));
	/* a write across the chunk edge copies the neighbouring chunk too */
	ck_assert_int_eq(mfs_pwrite(fs, ino, "ab", 2, 5 * GiB - 1, 0), 2);
	ck_assert_uint_eq(used_blocks(fs), 2);
	ck_assert_int_eq(mfs_pread(fs, ino, buf, 5, 5 * GiB - 2), 5);
	ck_assert(memcmp(buf, "laber", 5) == 0);
	ck_assert_int_eq(mfs_release(fs, ino), 0);
	finish(fs);
	ck_assert_uint_eq(tree_digest(), digest);
}
END_TEST

START_TEST(opening_for_writing_or_truncating_reads_and_copies_nothing)
{
	mk(0, "f", "0123456789");
	mk(0, "g", "abcdefghij");
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t f = ino_of(fs, "f"), g = ino_of(fs, "g");
	struct mfs_setattr sa = {.valid = MFS_SET_SIZE, .size = 0};

	ck_assert_int_eq(mfs_open(fs, f, O_RDWR), 0);
	ck_assert_int_eq(mfs_release(fs, f), 0);
	ck_assert_uint_eq(used_blocks(fs), 0);
	/* once truncated the lower file is never read again: remove it below */
	ck_assert_int_eq(mfs_open(fs, f, O_RDWR | O_TRUNC), 0);
	ck_assert_int_eq(unlink(lpath(0, "f")), 0);
	ck_assert_int_eq(mfs_pwrite(fs, f, "new", 3, 0, 0), 3);
	ck_assert_int_eq(mfs_release(fs, f), 0);
	assert_contents(fs, "f", "new");
	ck_assert_int_eq(mfs_setattr(fs, g, &sa, NULL), 0);
	ck_assert_int_eq(unlink(lpath(0, "g")), 0);
	assert_contents(fs, "g", "");
	ck_assert_uint_eq(used_blocks(fs), 1);
	finish(fs);
}
END_TEST

START_TEST(truncate_down_and_up_shows_lower_bytes_only_below_the_cut)
{
	mk(0, "f", "0123456789");
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t f = ino_of(fs, "f");
	struct mfs_setattr sa = {.valid = MFS_SET_SIZE, .size = 4};
	char buf[16];

	ck_assert_int_eq(mfs_setattr(fs, f, &sa, NULL), 0);
	sa.size = 10;
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, NULL), 0);
	ck_assert_int_eq(mfs_pread(fs, f, buf, 10, 0), 10);
	ck_assert(memcmp(buf, "0123\0\0\0\0\0\0", 10) == 0);
	ck_assert_uint_eq(used_blocks(fs), 0);
	ck_assert_int_eq(st_of(fs, "f").st_blocks, 8);
	/* grown past the lower file's own end: the bytes there are zeros,
	 * read without touching the mapping */
	sa.size = 100;
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, NULL), 0);
	ck_assert_int_eq(mfs_pread(fs, f, buf, 10, 50), 10);
	ck_assert(memcmp(buf, "\0\0\0\0\0\0\0\0\0\0", 10) == 0);
	ck_assert_int_eq(mfs_pread(fs, f, buf, 6, 2), 6);
	ck_assert(memcmp(buf, "23\0\0\0\0", 6) == 0);
	finish(fs);
}
END_TEST

/* A lower file of n chunks, chunk i filled with 'A' + i % 26. */
static void mk_chunks(int layer, const char *rel, int n)
{
	int fd = open(lpath(layer, rel), O_CREAT | O_WRONLY | O_TRUNC, 0644);
	char buf[CHUNK];

	for (int i = 0; i < n; i++) {
		memset(buf, 'A' + i % 26, sizeof(buf));
		ck_assert_int_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	}
	close(fd);
}

START_TEST(punch_zero_range_and_allocate_keep_lower_bytes_around_them)
{
	mk_chunks(0, "f", 8);
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t f = ino_of(fs, "f");
	char *got;
	size_t len;

	/* punch [1.5, 4.5) chunks: edges copied up, chunks 2..3 masked */
	ck_assert_int_eq(
		mfs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, CHUNK + 2048, 3 * CHUNK),
		0);
	ck_assert_uint_eq(used_blocks(fs), 2);
	/* zero [6, 6.5): chunk 6 copied up and zeroed in part */
	ck_assert_int_eq(mfs_fallocate(fs, f, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 6 * CHUNK, 2048),
			 0);
	ck_assert_uint_eq(used_blocks(fs), 3);
	/* allocate over chunk 7: copied up, still its bytes */
	ck_assert_int_eq(mfs_fallocate(fs, f, 0, 7 * CHUNK, CHUNK), 0);
	ck_assert_uint_eq(used_blocks(fs), 4);
	got = slurp(fs, f, &len);
	ck_assert_uint_eq(len, 8 * CHUNK);
	for (size_t i = 0; i < len; i++) {
		char want = (char)('A' + i / CHUNK);
		if ((i >= CHUNK + 2048 && i < 4 * CHUNK + 2048) || (i >= 6 * CHUNK && i < 6 * CHUNK + 2048))
			want = 0;
		if (got[i] != want)
			ck_abort_msg("byte %zu is %d, not %d", i, got[i], want);
	}
	free(got);
	/* holes: the masked chunks; data everywhere else */
	ck_assert_int_eq(mfs_lseek(fs, f, 0, SEEK_HOLE), 2 * CHUNK);
	ck_assert_int_eq(mfs_lseek(fs, f, 2 * CHUNK, SEEK_DATA), 4 * CHUNK);
	ck_assert_int_eq(mfs_lseek(fs, f, 4 * CHUNK, SEEK_HOLE), 8 * CHUNK);
	/* st_blocks: 8 chunks minus the 2 masked ones */
	ck_assert_int_eq(st_of(fs, "f").st_blocks, 6 * 8);
	finish(fs);
}
END_TEST

START_TEST(copy_file_range_copies_between_lower_and_memory_files)
{
	mk_chunks(0, "src", 3);
	mk_chunks(0, "dst", 3);
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t src = ino_of(fs, "src"), dst = ino_of(fs, "dst");
	struct mfs_attr a;
	char buf[CHUNK];

	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, "new", 0644, O_CREAT | O_RDWR, &a), 0);
	ck_assert_int_eq(mfs_copy_range(fs, src, CHUNK, a.st.st_ino, 0, 2 * CHUNK), 2 * CHUNK);
	ck_assert_int_eq(mfs_pread(fs, a.st.st_ino, buf, CHUNK, CHUNK), CHUNK);
	ck_assert_int_eq(buf[0], 'C');
	/* into a lower file, over one and a half of its chunks */
	ck_assert_int_eq(mfs_copy_range(fs, src, 0, dst, 2048, CHUNK + 10), CHUNK + 10);
	ck_assert_int_eq(mfs_pread(fs, dst, buf, CHUNK, 0), CHUNK);
	ck_assert_int_eq(buf[0], 'A');
	ck_assert_int_eq(buf[2047], 'A');
	ck_assert_int_eq(buf[2048], 'A');
	ck_assert_int_eq(mfs_pread(fs, dst, buf, CHUNK, CHUNK), CHUNK);
	ck_assert_int_eq(buf[2047], 'A');
	ck_assert_int_eq(buf[2048], 'B'); /* src byte CHUNK */
	ck_assert_int_eq(buf[2048 + 10], 'B'); /* dst's own */
	ck_assert_int_eq(mfs_pread(fs, dst, buf, CHUNK, 2 * CHUNK), CHUNK);
	ck_assert_int_eq(buf[0], 'C');
	ck_assert_int_eq(mfs_release(fs, a.st.st_ino), 0);
	finish(fs);
}
END_TEST

START_TEST(a_lower_file_truncated_underneath_gives_eio_and_nothing_else)
{
	mk_chunks(0, "f", 16);
	mk(0, "ok", "fine");
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t f = ino_of(fs, "f");
	char buf[CHUNK];

	ck_assert_int_eq(mfs_open(fs, f, O_RDWR), 0);
	ck_assert_int_eq(mfs_pread(fs, f, buf, CHUNK, 0), CHUNK);
	ck_assert_int_eq(truncate(lpath(0, "f"), 4096), 0);
	/* the mapping's pages past the new end are gone: SIGBUS caught */
	ck_assert_int_eq(mfs_pread(fs, f, buf, CHUNK, 8 * CHUNK), -EIO);
	ck_assert_int_eq(mfs_pwrite(fs, f, "x", 1, 8 * CHUNK, 0), -EIO);
	ck_assert_int_eq(mfs_pread(fs, f, buf, CHUNK, 0), CHUNK);
	ck_assert_int_eq(buf[0], 'A');
	ck_assert_int_eq(mfs_release(fs, f), 0);
	/* mapped again, shorter than when first seen: EIO, no crash */
	ck_assert_int_eq(mfs_open(fs, f, O_RDONLY), 0);
	ck_assert_int_eq(mfs_pread(fs, f, buf, CHUNK, 8 * CHUNK), -EIO);
	ck_assert_int_eq(mfs_release(fs, f), 0);
	assert_contents(fs, "ok", "fine");
	/* truncating in memory below the damage makes the file whole again */
	struct mfs_setattr sa = {.valid = MFS_SET_SIZE, .size = CHUNK};
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, NULL), 0);
	ck_assert_int_eq(mfs_pread(fs, f, buf, CHUNK, 0), CHUNK);
	finish(fs);
}
END_TEST

START_TEST(more_lower_files_than_the_mapping_bound_are_read_correctly)
{
	char name[16];

	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		mk_chunks(0, name, i + 1);
	}
	struct mfs_fs *fs = ovl_fs_with((struct fs_opts){.max_maps = 2, .lower_uid = -1, .lower_gid = -1});
	uint64_t ino[6];
	char buf[CHUNK];

	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ino[i] = ino_of(fs, name);
		ck_assert_int_eq(mfs_open(fs, ino[i], O_RDONLY), 0);
	}
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 6; i++) {
			ck_assert_int_eq(mfs_pread(fs, ino[i], buf, CHUNK, (uint64_t)i * CHUNK), CHUNK);
			ck_assert_int_eq(buf[0], 'A' + i);
		}
	for (int i = 0; i < 6; i++)
		ck_assert_int_eq(mfs_release(fs, ino[i]), 0);
	finish(fs);
}
END_TEST

/* ---- names ---- */

START_TEST(unlink_and_rmdir_hide_lower_names_and_mkdir_over_them_is_opaque)
{
	mkd(0, "d");
	mk(0, "d/f", "x");
	mkd(0, "d/e");
	mk(0, "d/e/deep", "y");
	mk(0, "top", "t");
	uint64_t digest = tree_digest();
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t d = ino_of(fs, "d");
	struct mfs_attr a;

	ck_assert_int_eq(mfs_rmdir(fs, d, "e"), -ENOTEMPTY);
	ck_assert_int_eq(mfs_unlink(fs, ino_of(fs, "d/e"), "deep"), 0);
	ck_assert_int_eq(mfs_rmdir(fs, d, "e"), 0);
	ck_assert_int_eq(mfs_unlink(fs, d, "f"), 0);
	ck_assert_str_eq(names_of(fs, d), "");
	ck_assert_int_eq(st_of(fs, "d").st_nlink, 2);
	ck_assert_int_eq(mfs_rmdir(fs, MFS_ROOT_INO, "d"), 0);
	/* a new d shows nothing of the old one */
	ck_assert_int_eq(mfs_mkdir(fs, &cred, MFS_ROOT_INO, "d", 0700, &a), 0);
	ck_assert_str_eq(names_of(fs, a.st.st_ino), "");
	ck_assert_int_eq(mfs_lookup(fs, a.st.st_ino, "f", &a), -ENOENT);
	/* a file created over a removed name is new and empty */
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "top"), 0);
	ck_assert_int_eq(mfs_create(fs, &cred, MFS_ROOT_INO, "top", 0600, O_CREAT | O_RDWR, &a), 0);
	ck_assert_int_eq(a.st.st_size, 0);
	ck_assert_int_eq(mfs_release(fs, a.st.st_ino), 0);
	ck_assert_str_eq(names_of(fs, MFS_ROOT_INO), "d top");
	finish(fs);
	ck_assert_uint_eq(tree_digest(), digest);
}
END_TEST

START_TEST(renaming_lower_files_and_directories_keeps_their_contents)
{
	mkd(0, "a");
	mkd(0, "a/b");
	mk(0, "a/b/f", "deep");
	mk(0, "a/g", "gee");
	mkd(0, "x");
	mk(0, "x/y", "why");
	uint64_t digest = tree_digest();
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t a = ino_of(fs, "a"), g = ino_of(fs, "a/g"), x = ino_of(fs, "x");

	/* a directory whose children were never looked up moves whole */
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "a", x, "a2", 0), 0);
	assert_contents(fs, "x/a2/b/f", "deep");
	ck_assert_uint_eq(ino_of(fs, "x/a2"), a);
	ck_assert_uint_eq(ino_of(fs, "x/a2/g"), g);
	ck_assert_int_eq(mfs_rename(fs, x, "y", x, "a2", RENAME_NOREPLACE), -EEXIST);
	ck_assert_int_eq(mfs_rename(fs, ino_of(fs, "x/a2"), "g", x, "y", RENAME_EXCHANGE), 0);
	assert_contents(fs, "x/y", "gee");
	assert_contents(fs, "x/a2/g", "why");
	ck_assert_int_eq(mfs_rename(fs, x, "y", MFS_ROOT_INO, "top", RENAME_NOREPLACE), 0);
	ck_assert_uint_eq(ino_of(fs, "top"), g);
	ck_assert_str_eq(names_of(fs, MFS_ROOT_INO), "top x");
	ck_assert_str_eq(names_of(fs, x), "a2");
	/* a lower directory replacing an empty one */
	ck_assert_int_eq(mfs_unlink(fs, ino_of(fs, "x/a2/b"), "f"), 0);
	ck_assert_int_eq(mfs_rename(fs, ino_of(fs, "x/a2"), "g", MFS_ROOT_INO, "g", 0), 0);
	ck_assert_int_eq(mfs_rename(fs, MFS_ROOT_INO, "x", ino_of(fs, "x/a2"), "b", 0), -EINVAL);
	finish(fs);
	ck_assert_uint_eq(tree_digest(), digest);
}
END_TEST

START_TEST(lower_hard_links_are_one_inode_with_the_lower_link_count)
{
	mkd(0, "d1");
	mkd(0, "d2");
	mk(0, "d1/a", "shared");
	ck_assert_int_eq(link(lpath(0, "d1/a"), lpath(0, "d1/b")), 0);
	ck_assert_int_eq(link(lpath(0, "d1/a"), lpath(0, "d2/c")), 0);
	uint64_t digest = tree_digest();
	struct mfs_fs *fs = ovl_fs(1);
	struct mfs_attr a;

	/* d2 is not listed yet: its name of the file is counted all the same */
	uint64_t ia = ino_of(fs, "d1/a");
	ck_assert_uint_eq(ino_of(fs, "d1/b"), ia);
	ck_assert_int_eq(st_of(fs, "d1/a").st_nlink, 3);
	check_ok(fs);
	ck_assert_int_eq(mfs_pwrite(fs, ia, "SH", 2, 0, 0), 2);
	assert_contents(fs, "d2/c", "SHared");
	ck_assert_uint_eq(ino_of(fs, "d2/c"), ia);
	/* forgetting every reference does not split them */
	mfs_forget(fs, ia, 100);
	assert_contents(fs, "d1/b", "SHared");
	ck_assert_int_eq(mfs_link(fs, ia, MFS_ROOT_INO, "new", &a), 0);
	ck_assert_int_eq(a.st.st_nlink, 4);
	ck_assert_int_eq(mfs_unlink(fs, ino_of(fs, "d1"), "a"), 0);
	ck_assert_int_eq(mfs_unlink(fs, ino_of(fs, "d1"), "b"), 0);
	ck_assert_int_eq(st_of(fs, "new").st_nlink, 2);
	ck_assert_int_eq(mfs_open(fs, ia, O_RDONLY), 0);
	ck_assert_int_eq(mfs_unlink(fs, ino_of(fs, "d2"), "c"), 0);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "new"), 0);
	ck_assert_int_eq(mfs_getattr(fs, ia, &a), 0);
	ck_assert_int_eq(a.st.st_nlink, 0);
	ck_assert_int_eq(mfs_release(fs, ia), 0);
	finish(fs);
	ck_assert_uint_eq(tree_digest(), digest);
}
END_TEST

START_TEST(links_a_lower_file_came_with_are_free_and_added_ones_are_charged)
{
	mk(0, "f", "x");
	mk(0, "g", "y");
	struct mfs_fs *fs =
		ovl_fs_with((struct fs_opts){.max_inodes = 3, .lower_uid = -1, .lower_gid = -1});
	struct mfs_attr a;
	struct statvfs sv;

	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_files - sv.f_ffree, 1); /* the root only */
	ino_of(fs, "f");
	ino_of(fs, "g");
	mfs_statfs(fs, &sv);
	ck_assert_uint_eq(sv.f_files - sv.f_ffree, 1);
	ck_assert_int_eq(mfs_link(fs, ino_of(fs, "f"), MFS_ROOT_INO, "f2", &a), 0);
	ck_assert_int_eq(mfs_mknod(fs, &cred, MFS_ROOT_INO, "n", 0644, 0, &a), 0);
	ck_assert_int_eq(mfs_link(fs, ino_of(fs, "g"), MFS_ROOT_INO, "g2", &a), -ENOSPC);
	ck_assert_int_eq(mfs_unlink(fs, MFS_ROOT_INO, "f"), 0);
	/* f lost a link it came with: f2 is now within what it came with */
	ck_assert_int_eq(mfs_link(fs, ino_of(fs, "g"), MFS_ROOT_INO, "g2", &a), 0);
	finish(fs);
}
END_TEST

/* ---- several layers ---- */

START_TEST(upper_layers_hide_lower_ones_and_directories_merge)
{
	mkd(0, "d");
	mk(0, "d/top", "0");
	mk(0, "d/both", "from 0");
	mkd(1, "d");
	mk(1, "d/both", "from 1");
	mk(1, "d/mid", "1");
	mkd(2, "d");
	mk(2, "d/bottom", "2");
	mk(0, "x", "file in 0");
	mkd(1, "x");
	mk(1, "x/hidden", "never");
	mkd(0, "y");
	mk(1, "y", "a file in 1 stops the merge");
	mkd(2, "y");
	mk(2, "y/below", "never either");
	uint64_t digest = tree_digest();
	struct mfs_fs *fs = ovl_fs(3);

	ck_assert_str_eq(names_of(fs, ino_of(fs, "d")), "both bottom mid top");
	assert_contents(fs, "d/both", "from 0");
	assert_contents(fs, "d/mid", "1");
	assert_contents(fs, "d/bottom", "2");
	assert_contents(fs, "x", "file in 0");
	ck_assert_str_eq(names_of(fs, ino_of(fs, "y")), "");
	ck_assert_int_eq(st_of(fs, "d").st_nlink, 2);
	/* one removal hides the name in every layer */
	ck_assert_int_eq(mfs_unlink(fs, ino_of(fs, "d"), "both"), 0);
	ck_assert_str_eq(names_of(fs, ino_of(fs, "d")), "bottom mid top");
	struct mfs_attr a;
	ck_assert_int_eq(mfs_lookup(fs, ino_of(fs, "d"), "both", &a), -ENOENT);
	finish(fs);
	ck_assert_uint_eq(tree_digest(), digest);
}
END_TEST

/* ---- metadata and xattrs ---- */

START_TEST(metadata_changes_stay_in_memory_and_copy_no_data)
{
	mk(0, "f", "contents");
	ck_assert_int_eq(setxattr(lpath(0, "f"), "user.lower", "L", 1, 0), 0);
	uint64_t digest = tree_digest();
	struct mfs_fs *fs = ovl_fs(1);
	uint64_t f = ino_of(fs, "f");
	struct mfs_setattr sa = {.valid = MFS_SET_MODE | MFS_SET_UID | MFS_SET_GID | MFS_SET_MTIME,
				 .mode = 0600,
				 .uid = 1234,
				 .gid = 5678,
				 .mtime = {.tv_sec = 1000}};
	struct mfs_attr a;
	char buf[64];

	ck_assert_int_eq(mfs_getxattr(fs, f, "user.lower", buf, sizeof(buf)), 1);
	ck_assert_int_eq(buf[0], 'L');
	ck_assert_int_eq(mfs_setattr(fs, f, &sa, &a), 0);
	ck_assert_int_eq(a.st.st_mode & 07777, 0600);
	ck_assert_int_eq(a.st.st_uid, 1234);
	ck_assert_int_eq(a.st.st_mtim.tv_sec, 1000);
	/* any name: nothing is reserved for memfs's own bookkeeping */
	ck_assert_int_eq(mfs_setxattr(fs, f, "trusted.overlay.opaque", "y", 1, 0), 0);
	ck_assert_int_eq(mfs_setxattr(fs, f, "user.fuseoverlayfs.whiteout", "", 0, 0), 0);
	ck_assert_int_eq(mfs_removexattr(fs, f, "user.lower"), 0);
	ck_assert_int_eq(mfs_listxattr(fs, f, buf, sizeof(buf)),
			 (ssize_t)sizeof("trusted.overlay.opaque") +
				 (ssize_t)sizeof("user.fuseoverlayfs.whiteout"));
	ck_assert_uint_eq(used_blocks(fs), 0);
	assert_contents(fs, "f", "contents");
	finish(fs);
	ck_assert_uint_eq(tree_digest(), digest);
}
END_TEST

START_TEST(lower_owner_options_show_every_lower_entry_as_owned_by_them)
{
	mkd(0, "d");
	mk(0, "d/f", "x");
	ck_assert_int_eq(chown(lpath(0, "d/f"), 4321, 8765), 0);
	struct mfs_fs *fs = ovl_fs_with((struct fs_opts){.lower_uid = 1000, .lower_gid = 1001});

	ck_assert_int_eq(st_of(fs, "d").st_uid, 1000);
	ck_assert_int_eq(st_of(fs, "d/f").st_uid, 1000);
	ck_assert_int_eq(st_of(fs, "d/f").st_gid, 1001);
	finish(fs);
}
END_TEST

/* ---- parallel callers ---- */

#define NTHREADS 4
#define STEPS 20000

struct racer {
	struct mfs_fs *fs;
	pthread_t thread;
	uint64_t rng;
	int unexpected; /* an error no operation here may give */
	unsigned long ok; /* operations that succeeded */
	char why[128];
};

static uint64_t rnd(struct racer *r, uint64_t n)
{
	r->rng = r->rng * 6364136223846793005ull + 1442695040888963407ull;
	return (r->rng >> 33) % n;
}

/* Errors a racing operation may meet: the name moved, exists, is the wrong type. */
static int expected_error(long r)
{
	return r >= 0 || r == -ENOENT || r == -EEXIST || r == -ENOTEMPTY || r == -EISDIR ||
	       r == -ENOTDIR || r == -EINVAL || r == -ENODATA || r == -EPERM;
}

static void *race(void *arg)
{
	struct racer *r = arg;
	char buf[3 * CHUNK], dir[8], name[8], other[8];
	struct names l;

	memset(buf, 'r', sizeof(buf));
	for (int step = 0; step < STEPS && !r->unexpected; step++) {
		struct mfs_attr d, f, a;
		long ret = 0;

		snprintf(dir, sizeof(dir), "d%d", (int)rnd(r, 4));
		snprintf(name, sizeof(name), "f%d", (int)rnd(r, 8));
		snprintf(other, sizeof(other), "f%d", (int)rnd(r, 8));
		if (mfs_lookup(r->fs, MFS_ROOT_INO, dir, &d) != 0)
			continue;
		if (mfs_lookup(r->fs, d.st.st_ino, name, &f) != 0) {
			ret = mfs_create(r->fs, &cred, d.st.st_ino, name, 0644, O_CREAT | O_RDWR, &f);
			if (ret == 0)
				mfs_release(r->fs, f.st.st_ino);
			goto next;
		}
		switch (rnd(r, 9)) {
		case 0:
		case 1:
			ret = mfs_open(r->fs, f.st.st_ino, O_RDONLY);
			if (ret == 0) {
				ret = mfs_pread(r->fs, f.st.st_ino, buf, rnd(r, sizeof(buf)),
						rnd(r, 6 * CHUNK));
				mfs_release(r->fs, f.st.st_ino);
			}
			break;
		case 2:
			ret = mfs_open(r->fs, f.st.st_ino, O_RDWR);
			if (ret == 0) {
				ret = mfs_pwrite(r->fs, f.st.st_ino, buf, rnd(r, sizeof(buf)) + 1,
						 rnd(r, 6 * CHUNK), 0);
				mfs_release(r->fs, f.st.st_ino);
			}
			break;
		case 3:
			ret = mfs_fallocate(r->fs, f.st.st_ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					    rnd(r, 4 * CHUNK), rnd(r, 3 * CHUNK) + 1);
			break;
		case 4: {
			struct mfs_setattr sa = {.valid = MFS_SET_SIZE, .size = rnd(r, 6 * CHUNK)};
			ret = mfs_setattr(r->fs, f.st.st_ino, &sa, NULL);
			break;
		}
		case 5:
			ret = mfs_rename(r->fs, d.st.st_ino, name, d.st.st_ino, other,
					 rnd(r, 2) ? RENAME_EXCHANGE : 0);
			break;
		case 6:
			ret = mfs_unlink(r->fs, d.st.st_ino, name);
			break;
		case 7:
			memset(&l, 0, sizeof(l));
			ret = mfs_readdir(r->fs, d.st.st_ino, 0, 0, collect, &l);
			break;
		default:
			ret = mfs_getxattr(r->fs, f.st.st_ino, "user.x", buf, sizeof(buf));
			if (ret == 0)
				ret = mfs_link(r->fs, f.st.st_ino, d.st.st_ino, other, &a);
			break;
		}
next:
		r->ok += ret >= 0;
		if (!expected_error(ret)) {
			snprintf(r->why, sizeof(r->why), "step %d gave %ld", step, ret);
			r->unexpected = 1;
		}
	}
	return NULL;
}

START_TEST(parallel_callers_over_lower_files_leave_a_consistent_filesystem)
{
	char rel[32];

	for (int i = 0; i < 4; i++) {
		snprintf(rel, sizeof(rel), "d%d", i);
		mkd(0, rel);
		for (int j = 0; j < 8; j += 2) {
			snprintf(rel, sizeof(rel), "d%d/f%d", i, j);
			mk_chunks(0, rel, 5);
			ck_assert_int_eq(setxattr(lpath(0, rel), "user.x", "1", 1, 0), 0);
		}
	}
	ck_assert_int_eq(link(lpath(0, "d0/f0"), lpath(0, "d1/f1")), 0);
	ck_assert_int_eq(link(lpath(0, "d0/f0"), lpath(0, "d2/f1")), 0);
	uint64_t digest = tree_digest();
	/* two mappings at most, so they are dropped and remade all the time */
	struct mfs_fs *fs = ovl_fs_with((struct fs_opts){.max_maps = 2, .lower_uid = -1, .lower_gid = -1});
	struct racer r[NTHREADS];

	alarm(120); /* a deadlock fails the test instead of hanging it */
	for (int i = 0; i < NTHREADS; i++) {
		r[i] = (struct racer){.fs = fs, .rng = 12345u + (uint64_t)i * 7919u};
		ck_assert_int_eq(pthread_create(&r[i].thread, NULL, race, &r[i]), 0);
	}
	unsigned long ok = 0;
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(r[i].thread, NULL);
		ck_assert_msg(!r[i].unexpected, "thread %d: %s", i, r[i].why);
		ok += r[i].ok;
	}
	/* most steps did something: the race was real */
	ck_assert_uint_gt(ok, NTHREADS * STEPS / 2);
	alarm(0);
	finish(fs);
	ck_assert_uint_eq(tree_digest(), digest);
}
END_TEST

/* ---- allocation failures ---- */

#ifdef MFS_FAULT_INJECTION

static int fault_workload(void)
{
	struct mfs_lower *lowers[2];
	struct mfs_params p = {.size_bytes = 64 * MiB, .max_inodes = 1000, .root_mode = 0755,
			       .lowers = lowers, .nlowers = 2};
	struct mfs_fs *fs = NULL;
	struct mfs_attr a, d, f;
	struct names l = {0};
	char buf[3 * CHUNK];
	int done = 0, err;

	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(mfs_lower_open(lpath(i, ""), &lowers[i]), 0);
	fi_resume();
	err = mfs_fs_new(&p, &fs);
	fi_pause();
	if (err == -ENOMEM) {
		fi_enomem++;
		goto out;
	}
	ck_assert_int_eq(err, 0);
	FI_STEP(mfs_lookup(fs, MFS_ROOT_INO, "d", &d));
	FI_STEP(mfs_readdir(fs, d.st.st_ino, 0, 0, collect, &l));
	FI_STEP(mfs_lookup(fs, d.st.st_ino, "h1", &a));
	FI_STEP(mfs_lookup(fs, d.st.st_ino, "big", &f));
	FI_STEP(mfs_open(fs, f.st.st_ino, O_RDWR));
	FI_STEP(mfs_pread(fs, f.st.st_ino, buf, sizeof(buf), 100));
	FI_STEP(mfs_pwrite(fs, f.st.st_ino, "x", 1, CHUNK + 5, 0));
	FI_STEP(mfs_fallocate(fs, f.st.st_ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100,
			      2 * CHUNK));
	FI_STEP(mfs_getxattr(fs, f.st.st_ino, "user.a", buf, sizeof(buf)));
	FI_STEP(mfs_setxattr(fs, a.st.st_ino, "user.b", "v", 1, 0));
	FI_STEP(mfs_link(fs, a.st.st_ino, MFS_ROOT_INO, "h3", &a));
	FI_STEP(mfs_rename(fs, MFS_ROOT_INO, "d", MFS_ROOT_INO, "e", 0));
	FI_STEP(mfs_lookup(fs, d.st.st_ino, "sub", &a));
	FI_STEP(mfs_unlink(fs, d.st.st_ino, "h2"));
	FI_STEP(mfs_release(fs, f.st.st_ino));
	done = 1;
out:
	mfs_alloc_fail_at(0, 0);
	if (fs)
		finish(fs);
	return done;
}

START_TEST(every_failed_allocation_over_lower_gives_enomem_and_a_consistent_filesystem)
{
	unsigned long walked = 0;

	mkd(0, "d");
	mk_chunks(0, "d/big", 4);
	ck_assert_int_eq(setxattr(lpath(0, "d/big"), "user.a", "1", 1, 0), 0);
	mk(0, "d/h1", "hard");
	ck_assert_int_eq(link(lpath(0, "d/h1"), lpath(0, "d/h2")), 0);
	mkd(1, "d");
	mkd(1, "d/sub");
	mk(1, "d/sub/s", "s");
	for (int i = 0; i < 30; i++) {
		char name[16];
		snprintf(name, sizeof(name), "d/n%d", i);
		mk(1, name, "n");
	}
	fi_enomem = 0;
	for (fi_target = 1;; fi_target++) {
		fi_used = 0;
		int done = fault_workload();
		walked++;
		if (done && fi_used < fi_target)
			break;
		ck_assert_uint_lt(fi_target, 100000);
	}
	ck_assert_uint_gt(walked, 50);
	printf("overlay fault injection: walked N = 1..%lu, %lu gave -ENOMEM\n", walked, fi_enomem);
	fflush(stdout);
}
END_TEST
#endif

static Suite *overlay_suite(void)
{
	Suite *s = suite_create("overlay");
	TCase *tree = tcase_create("tree");
	TCase *data = tcase_create("contents");
	TCase *names = tcase_create("names");
	TCase *meta = tcase_create("metadata");

	tcase_add_checked_fixture(tree, setup, teardown);
	tcase_add_test(tree, lookup_shows_lower_entries_with_their_own_attributes);
	tcase_add_test(tree, readdir_numbers_are_the_numbers_lookup_gives_later);
	tcase_add_test(tree, a_directory_is_read_once_when_its_inode_is_made);
	tcase_add_test(tree, names_removed_underneath_are_free_for_every_kind_of_create);
	tcase_add_test(tree, a_merged_directory_of_many_names_lists_each_name_once);
	tcase_add_test(tree, an_entry_that_changed_type_underneath_is_eio_and_nothing_else);
	tcase_add_test(tree, upper_layers_hide_lower_ones_and_directories_merge);
	suite_add_tcase(s, tree);

	tcase_add_checked_fixture(data, setup, teardown);
	tcase_add_test(data, reading_a_lower_file_takes_no_memory_and_gives_its_bytes);
	tcase_add_test(data, a_one_byte_write_into_a_huge_lower_file_copies_one_chunk);
	tcase_add_test(data, opening_for_writing_or_truncating_reads_and_copies_nothing);
	tcase_add_test(data, truncate_down_and_up_shows_lower_bytes_only_below_the_cut);
	tcase_add_test(data, punch_zero_range_and_allocate_keep_lower_bytes_around_them);
	tcase_add_test(data, copy_file_range_copies_between_lower_and_memory_files);
#ifndef __SANITIZE_THREAD__ /* ThreadSanitizer's signal interception defeats the SIGBUS guard */
	tcase_add_test(data, a_lower_file_truncated_underneath_gives_eio_and_nothing_else);
#endif
	tcase_add_test(data, more_lower_files_than_the_mapping_bound_are_read_correctly);
	suite_add_tcase(s, data);

	tcase_add_checked_fixture(names, setup, teardown);
	tcase_add_test(names, unlink_and_rmdir_hide_lower_names_and_mkdir_over_them_is_opaque);
	tcase_add_test(names, renaming_lower_files_and_directories_keeps_their_contents);
	tcase_add_test(names, lower_hard_links_are_one_inode_with_the_lower_link_count);
	tcase_add_test(names, links_a_lower_file_came_with_are_free_and_added_ones_are_charged);
	suite_add_tcase(s, names);

	tcase_add_checked_fixture(meta, setup, teardown);
	tcase_add_test(meta, metadata_changes_stay_in_memory_and_copy_no_data);
	tcase_add_test(meta, lower_owner_options_show_every_lower_entry_as_owned_by_them);
	tcase_add_test(meta, parallel_callers_over_lower_files_leave_a_consistent_filesystem);
#ifdef MFS_FAULT_INJECTION
	tcase_add_test(meta, every_failed_allocation_over_lower_gives_enomem_and_a_consistent_filesystem);
#endif
	suite_add_tcase(s, meta);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(overlay_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
