/*
 * test_limits.c — the limits a filesystem enforces: -o size= (ENOSPC, exact
 * statfs accounting, space given back), -o nr_inodes= (ENOSPC for every way
 * to make an inode), NAME_MAX and the symlink target limit.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define PAGE 4096
#define SIZE_LIMIT (8 << 20) /* -o size=8m */
#define INODE_LIMIT 16	     /* -o nr_inodes=16 */

static void fill_pattern(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)(x | 1);
	}
}

static struct statvfs fs_stat(const char *dir)
{
	struct statvfs sv;

	ck_assert_msg(statvfs(dir, &sv) == 0, "statvfs %s: %s", dir, strerror(errno));
	return sv;
}

/* FUSE sends release (the last close) asynchronously: wait for a count. */
static struct statvfs fs_stat_settled(const char *dir, uint64_t bfree, uint64_t ffree)
{
	struct statvfs sv = fs_stat(dir);

	for (int i = 0; i < 200 && (sv.f_bfree != bfree || sv.f_ffree != ffree); i++) {
		usleep(10000);
		sv = fs_stat(dir);
	}
	return sv;
}

static void assert_counts(const char *what, const struct statvfs *sv, uint64_t bfree,
			  uint64_t ffree)
{
	ck_assert_msg(sv->f_bfree == bfree, "%s: f_bfree %llu, expected %llu", what,
		      (unsigned long long)sv->f_bfree, (unsigned long long)bfree);
	ck_assert_msg(sv->f_bavail == bfree, "%s: f_bavail %llu, expected %llu", what,
		      (unsigned long long)sv->f_bavail, (unsigned long long)bfree);
	ck_assert_msg(sv->f_ffree == ffree, "%s: f_ffree %llu, expected %llu", what,
		      (unsigned long long)sv->f_ffree, (unsigned long long)ffree);
}

static int errno_of(int rc)
{
	return rc < 0 ? errno : 0;
}

static int create_errno(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* ---- size= ---- */

static void mount_8m(void)
{
	hx_mount(&hx_mnt, "size=8m,nr_inodes=1000");
}

START_TEST(statfs_reports_size_and_usage_exactly)
{
	static unsigned char data[100 << 10];
	struct statvfs sv = fs_stat(hx_mnt.dir);

	ck_assert_int_eq(sv.f_bsize, PAGE);
	ck_assert_int_eq(sv.f_frsize, PAGE);
	ck_assert_int_eq(sv.f_namemax, 255);
	ck_assert_int_eq(sv.f_blocks, SIZE_LIMIT / PAGE);
	ck_assert_int_eq(sv.f_files, 1000);
	assert_counts("empty", &sv, SIZE_LIMIT / PAGE, 1000 - 1);

	fill_pattern(data, sizeof(data), 1);
	hx_write_file(P("a"), data, sizeof(data));
	hx_write_file(P("b"), "x", 1);
	hx_write_file(P("empty"), "", 0);
	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	hx_write_file(P("d/c"), data, 4097);
	sv = fs_stat_settled(hx_mnt.dir, SIZE_LIMIT / PAGE - 25 - 1 - 2, 1000 - 6);
	assert_counts("after writing", &sv, SIZE_LIMIT / PAGE - 25 - 1 - 2, 1000 - 6);
	ck_assert_int_eq(sv.f_blocks, SIZE_LIMIT / PAGE);

	/* A hole costs nothing, a truncate gives whole pages back. */
	ck_assert_int_eq(truncate(P("b"), 1 << 30), 0);
	ck_assert_int_eq(truncate(P("a"), 50000), 0);
	sv = fs_stat_settled(hx_mnt.dir, SIZE_LIMIT / PAGE - 13 - 1 - 2, 1000 - 6);
	assert_counts("after truncates", &sv, SIZE_LIMIT / PAGE - 13 - 1 - 2, 1000 - 6);

	ck_assert_int_eq(unlink(P("a")), 0);
	ck_assert_int_eq(unlink(P("b")), 0);
	ck_assert_int_eq(unlink(P("empty")), 0);
	ck_assert_int_eq(unlink(P("d/c")), 0);
	ck_assert_int_eq(rmdir(P("d")), 0);
	sv = fs_stat_settled(hx_mnt.dir, SIZE_LIMIT / PAGE, 1000 - 1);
	assert_counts("after deleting", &sv, SIZE_LIMIT / PAGE, 1000 - 1);
}
END_TEST

/*
 * Write (syncing each piece, as a careful writer does) until the filesystem
 * refuses; returns the bytes the file holds, asserting the error is ENOSPC.
 */
static off_t fill_until_enospc(const char *path, const unsigned char *data, size_t piece)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	off_t written = 0;
	int err = 0;

	ck_assert_int_ge(fd, 0);
	for (int i = 0; i < 1000 && !err; i++) {
		ssize_t n = write(fd, data + written % (1 << 20), piece);

		if (n < 0)
			err = errno;
		else if (fsync(fd) < 0)
			err = errno;
		else if ((size_t)n < piece)
			written += n, err = ENOSPC; /* short write: full */
		else
			written += n;
	}
	ck_assert_msg(err == ENOSPC, "expected ENOSPC, got %s after %lld bytes", strerror(err),
		      (long long)written);
	int rc = close(fd);

	ck_assert_msg(rc == 0 || errno == ENOSPC, "close: %s", strerror(errno));
	return written;
}

START_TEST(writing_fills_to_enospc_near_the_limit_and_space_comes_back_on_delete)
{
	static unsigned char data[(1 << 20) + (64 << 10)], other[100 << 10];
	const uint64_t other_pages = (sizeof(other) + PAGE - 1) / PAGE;
	struct statvfs before, sv;
	struct stat st;
	size_t len;
	unsigned char *back;

	fill_pattern(other, sizeof(other), 2);
	fill_pattern(data, sizeof(data), 3);
	hx_write_file(P("other"), other, sizeof(other));
	before = fs_stat_settled(hx_mnt.dir, SIZE_LIMIT / PAGE - other_pages, 1000 - 2);
	assert_counts("before", &before, SIZE_LIMIT / PAGE - other_pages, 1000 - 2);

	fill_until_enospc(P("big"), data, 64 << 10);
	ck_assert_int_eq(stat(P("big"), &st), 0);
	const off_t room = (off_t)(SIZE_LIMIT / PAGE - other_pages) * PAGE;

	ck_assert_msg(st.st_size >= room - PAGE && st.st_size <= room,
		      "file reached %lld bytes; the room was %lld", (long long)st.st_size,
		      (long long)room);
	ck_assert_int_le(fs_stat(hx_mnt.dir).f_bfree, 1);

	/* What the file holds is what was written; the other file is intact. */
	back = hx_read_file(P("big"), &len);
	ck_assert_int_eq((off_t)len, st.st_size);
	for (size_t off = 0; off < len; off += 1 << 20) {
		size_t n = len - off < (1 << 20) ? len - off : (1 << 20);

		ck_assert_msg(memcmp(back + off, data, n) == 0, "big differs in MiB %zu",
			      off >> 20);
	}
	free(back);
	back = hx_read_file(P("other"), &len);
	ck_assert_uint_eq(len, sizeof(other));
	ck_assert(memcmp(back, other, len) == 0);
	free(back);

	/* Nothing more fits, not even in a new file; a new name still does. */
	ck_assert_int_eq(create_errno(P("new")), 0);
	int fd = open(P("new"), O_WRONLY);
	ssize_t n = write(fd, data, 2 * PAGE);
	int werr = n < 0 ? errno : 0;

	if (n >= 0 && fsync(fd) < 0)
		werr = errno;
	close(fd);
	ck_assert_msg(n < 2 * PAGE || werr == ENOSPC, "wrote %zd bytes into a full filesystem", n);

	/* Deleting gives every block back, and writing works again. */
	ck_assert_int_eq(unlink(P("big")), 0);
	ck_assert_int_eq(unlink(P("new")), 0);
	sv = fs_stat_settled(hx_mnt.dir, before.f_bfree, before.f_ffree);
	assert_counts("after delete", &sv, before.f_bfree, before.f_ffree);
	hx_write_file(P("again"), data, 1 << 20);
	back = hx_read_file(P("again"), &len);
	ck_assert_uint_eq(len, 1 << 20);
	ck_assert(memcmp(back, data, len) == 0);
	free(back);
	ck_assert_uint_eq(fs_stat(hx_mnt.dir).f_bfree, before.f_bfree - 256);
}
END_TEST

START_TEST(fallocate_beyond_the_limit_fails_with_enospc_and_allocates_nothing)
{
	struct statvfs before, after;
	int fd = open(P("f"), O_RDWR | O_CREAT, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fallocate(fd, 0, 0, 4 << 20), 0);
	before = fs_stat(hx_mnt.dir);
	ck_assert_int_eq(before.f_bfree, SIZE_LIMIT / PAGE - 1024);
	ck_assert_int_eq(fallocate(fd, 0, 4 << 20, 5 << 20), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(fallocate(fd, FALLOC_FL_KEEP_SIZE, 16 << 20, 5 << 20), -1);
	ck_assert_int_eq(errno, ENOSPC);
	after = fs_stat(hx_mnt.dir);
	ck_assert_uint_eq(after.f_bfree, before.f_bfree);

	struct stat st;

	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 4 << 20);
	ck_assert_int_eq(st.st_blocks, (4 << 20) / 512);
	/* What does fit still can be allocated. */
	ck_assert_int_eq(fallocate(fd, 0, 4 << 20, 4 << 20), 0);
	ck_assert_uint_eq(fs_stat(hx_mnt.dir).f_bfree, 0);
	close(fd);
}
END_TEST

START_TEST(punching_a_full_filesystem_makes_room_for_other_files)
{
	static unsigned char data[(1 << 20) + (64 << 10)];
	int fd;

	fill_pattern(data, sizeof(data), 4);
	fill_until_enospc(P("big"), data, 64 << 10);
	fd = open(P("big"), O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(
	    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20), 0);
	close(fd);
	ck_assert_uint_ge(fs_stat(hx_mnt.dir).f_bfree, 256);
	hx_write_file(P("small"), data, 1 << 20);

	size_t len;
	unsigned char *back = hx_read_file(P("small"), &len);

	ck_assert_uint_eq(len, 1 << 20);
	ck_assert(memcmp(back, data, len) == 0);
	free(back);
}
END_TEST

/* ---- nr_inodes= ---- */

static void mount_16_inodes(void)
{
	hx_mount(&hx_mnt, "nr_inodes=16");
}

/* Try every way to make an inode; all must give the same errno. */
static void assert_every_create_gives(int expected, const char *tag)
{
	char name[64];
	int got[4];

	snprintf(name, sizeof(name), "%s-file", tag);
	got[0] = create_errno(P(name));
	snprintf(name, sizeof(name), "%s-dir", tag);
	got[1] = errno_of(mkdir(P(name), 0755));
	snprintf(name, sizeof(name), "%s-link", tag);
	got[2] = errno_of(symlink("target", P(name)));
	snprintf(name, sizeof(name), "%s-fifo", tag);
	got[3] = errno_of(mknod(P(name), S_IFIFO | 0644, 0));
	static const char *const how[4] = {"create", "mkdir", "symlink", "mknod"};
	for (int i = 0; i < 4; i++)
		ck_assert_msg(got[i] == expected, "%s: %s gives %s, expected %s", tag, how[i],
			      strerror(got[i]), strerror(expected));
}

START_TEST(every_kind_of_create_gets_enospc_at_the_inode_limit_and_works_after_unlink)
{
	struct statvfs sv = fs_stat(hx_mnt.dir);
	char name[32];

	ck_assert_int_eq(sv.f_files, INODE_LIMIT);
	ck_assert_int_eq(sv.f_ffree, INODE_LIMIT - 1); /* the root */
	for (int i = 0; i < INODE_LIMIT - 1; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert_msg(create_errno(P(name)) == 0, "file %d: %s", i, strerror(errno));
	}
	sv = fs_stat_settled(hx_mnt.dir, sv.f_bfree, 0);
	ck_assert_int_eq(sv.f_ffree, 0);
	assert_every_create_gives(ENOSPC, "full");

	/* One inode back: each kind works, then the limit holds again. */
	const char *kinds[4] = {"file", "dir", "link", "fifo"};

	for (int k = 0; k < 4; k++) {
		snprintf(name, sizeof(name), "f%d", k);
		ck_assert_int_eq(unlink(P(name)), 0);
		sv = fs_stat_settled(hx_mnt.dir, sv.f_bfree, 1);
		ck_assert_int_eq(sv.f_ffree, 1);
		switch (k) {
		case 0:
			ck_assert_int_eq(create_errno(P(kinds[k])), 0);
			break;
		case 1:
			ck_assert_int_eq(mkdir(P(kinds[k]), 0755), 0);
			break;
		case 2:
			ck_assert_int_eq(symlink("target", P(kinds[k])), 0);
			break;
		case 3:
			ck_assert_int_eq(mknod(P(kinds[k]), S_IFIFO | 0644, 0), 0);
			break;
		}
		ck_assert_int_eq(fs_stat(hx_mnt.dir).f_ffree, 0);
		snprintf(name, sizeof(name), "again%d", k);
		assert_every_create_gives(ENOSPC, name);
	}
	/* A removed directory gives its inode back too. */
	ck_assert_int_eq(rmdir(P("dir")), 0);
	ck_assert_int_eq(mkdir(P("dir2"), 0755), 0);
}
END_TEST

START_TEST(an_unlinked_open_file_keeps_its_inode_until_closed)
{
	char name[32];
	int fd = -1;

	for (int i = 0; i < INODE_LIMIT - 1; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		ck_assert_int_eq(create_errno(P(name)), 0);
	}
	fd = open(P("f0"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(unlink(P("f0")), 0);
	ck_assert_int_eq(create_errno(P("new")), ENOSPC); /* f0 still exists */
	ck_assert_int_eq(fs_stat(hx_mnt.dir).f_ffree, 0);
	close(fd);
	struct statvfs sv = fs_stat_settled(hx_mnt.dir, fs_stat(hx_mnt.dir).f_bfree, 1);

	ck_assert_int_eq(sv.f_ffree, 1);
	ck_assert_int_eq(create_errno(P("new")), 0);
}
END_TEST

/* ---- names and symlink targets ---- */

static void name_of_length(char *buf, size_t len, char c)
{
	memset(buf, c, len);
	buf[len] = '\0';
}

START_TEST(a_255_byte_name_works_and_256_gives_enametoolong_everywhere)
{
	char ok[256], bad[257];
	int got[8];

	hx_write_file(P("src"), "s", 1);
	ck_assert_int_eq(mkdir(P("d"), 0755), 0);

	/* 255 bytes: every call that makes a name accepts it. */
	name_of_length(ok, 255, 'f');
	ck_assert_int_eq(create_errno(P(ok)), 0);
	ck_assert_int_eq(unlink(P(ok)), 0);
	ck_assert_int_eq(mkdir(P(ok), 0755), 0);
	ck_assert_int_eq(rmdir(P(ok)), 0);
	ck_assert_int_eq(symlink("src", P(ok)), 0);
	ck_assert_int_eq(unlink(P(ok)), 0);
	ck_assert_int_eq(link(P("src"), P(ok)), 0);
	ck_assert_int_eq(unlink(P(ok)), 0);
	ck_assert_int_eq(mknod(P(ok), S_IFIFO | 0644, 0), 0);
	ck_assert_int_eq(unlink(P(ok)), 0);
	ck_assert_int_eq(rename(P("src"), P(ok)), 0);
	struct stat st;

	ck_assert_int_eq(stat(P(ok), &st), 0);
	ck_assert_int_eq(rename(P(ok), P("src")), 0);

	/* 256 bytes: ENAMETOOLONG, and nothing is created. */
	name_of_length(bad, 256, 'g');
	got[0] = create_errno(P(bad));
	got[1] = errno_of(mkdir(P(bad), 0755));
	got[2] = errno_of(symlink("src", P(bad)));
	got[3] = errno_of(link(P("src"), P(bad)));
	got[4] = errno_of(rename(P("src"), P(bad)));
	got[5] = errno_of(mknod(P(bad), S_IFIFO | 0644, 0));
	got[6] = errno_of(stat(P(bad), &st));
	got[7] = errno_of(rename(P("d"), P(bad)));
	static const char *const how[8] = {"create", "mkdir", "symlink", "link",
					   "rename", "mknod", "stat",	 "rename dir"};
	for (int i = 0; i < 8; i++)
		ck_assert_msg(got[i] == ENAMETOOLONG, "%s of a 256-byte name: %s", how[i],
			      strerror(got[i]));
	ck_assert_int_eq(access(P("src"), F_OK), 0);
	ck_assert_int_eq(access(P("d"), F_OK), 0);
	ck_assert_int_eq(fs_stat(hx_mnt.dir).f_namemax, 255);
}
END_TEST

START_TEST(a_4095_byte_symlink_target_works_and_4096_gives_enametoolong)
{
	static char target[4097], back[5000];
	ssize_t n;
	struct stat st;

	for (int i = 0; i < 4095; i++)
		target[i] = (i % 64 == 63) ? '/' : 'a' + i % 26;
	target[4095] = '\0';
	ck_assert_int_eq(symlink(target, P("long")), 0);
	n = readlink(P("long"), back, sizeof(back));
	ck_assert_int_eq(n, 4095);
	ck_assert(memcmp(back, target, 4095) == 0);
	ck_assert_int_eq(lstat(P("long"), &st), 0);
	ck_assert_int_eq(st.st_size, 4095);
	/* A short buffer gets a truncated target, as Linux does. */
	ck_assert_int_eq(readlink(P("long"), back, 10), 10);
	ck_assert(memcmp(back, target, 10) == 0);

	target[4095] = 'z';
	target[4096] = '\0';
	ck_assert_int_eq(symlink(target, P("toolong")), -1);
	ck_assert_int_eq(errno, ENAMETOOLONG);
	ck_assert_int_eq(lstat(P("toolong"), &st), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

/* ---- defaults ---- */

START_TEST(default_limits_match_a_default_tmpfs)
{
	struct statvfs m = fs_stat(hx_mnt.dir), t = fs_stat(hx_tmpfs());

	/* hx_tmpfs() is mounted with tmpfs defaults: 50% of RAM, half the pages. */
	ck_assert_msg(m.f_blocks == t.f_blocks, "f_blocks memfs %llu, tmpfs %llu",
		      (unsigned long long)m.f_blocks, (unsigned long long)t.f_blocks);
	ck_assert_msg(m.f_files == t.f_files, "f_files memfs %llu, tmpfs %llu",
		      (unsigned long long)m.f_files, (unsigned long long)t.f_files);
	ck_assert_int_eq(m.f_bsize, t.f_bsize);
	ck_assert_int_eq(m.f_namemax, t.f_namemax);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("limits");
	TCase *size = tcase_create("size");
	TCase *inodes = tcase_create("inodes");
	TCase *names = tcase_create("names");

	tcase_add_checked_fixture(size, mount_8m, hx_teardown);
	tcase_set_timeout(size, 60);
	tcase_add_test(size, statfs_reports_size_and_usage_exactly);
	tcase_add_test(size, writing_fills_to_enospc_near_the_limit_and_space_comes_back_on_delete);
	tcase_add_test(size, fallocate_beyond_the_limit_fails_with_enospc_and_allocates_nothing);
	tcase_add_test(size, punching_a_full_filesystem_makes_room_for_other_files);
	suite_add_tcase(s, size);

	tcase_add_checked_fixture(inodes, mount_16_inodes, hx_teardown);
	tcase_set_timeout(inodes, 60);
	tcase_add_test(inodes,
		       every_kind_of_create_gets_enospc_at_the_inode_limit_and_works_after_unlink);
	tcase_add_test(inodes, an_unlinked_open_file_keeps_its_inode_until_closed);
	suite_add_tcase(s, inodes);

	tcase_add_checked_fixture(names, hx_setup, hx_teardown);
	tcase_set_timeout(names, 60);
	tcase_add_test(names, a_255_byte_name_works_and_256_gives_enametoolong_everywhere);
	tcase_add_test(names, a_4095_byte_symlink_target_works_and_4096_gives_enametoolong);
	tcase_add_test(names, default_limits_match_a_default_tmpfs);
	suite_add_tcase(s, names);
	return hx_run(s);
}
