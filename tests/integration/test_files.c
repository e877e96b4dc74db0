/*
 * test_files.c — regular files through open(2), read(2) and write(2): open
 * flags, positioned I/O, sparse writes, unlinked-but-open files, sync calls,
 * large and many-small writes, O_DIRECT.  Where the right answer is a detail
 * of Linux, the same steps run on a tmpfs directory and the results are
 * compared.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

/* "dir/rel" in one of 8 rotating buffers (for the oracle's directory). */
static const char *in(const char *dir, const char *rel)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 8];

	int n = snprintf(b, PATH_MAX, "%s/%s", dir, rel);

	ck_assert_msg(n < PATH_MAX, "path too long: %s/%s", dir, rel);
	return b;
}

static void fill_pattern(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)x;
	}
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		ck_assert_msg(n > 0, "write: %s", n < 0 ? strerror(errno) : "0 bytes");
		p += n;
		len -= (size_t)n;
	}
}

static void pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);

	ck_assert_msg(n == (ssize_t)len, "pwrite %zu at %lld: %zd (%s)", len, (long long)off, n,
		      n < 0 ? strerror(errno) : "short");
}

static void pread_all(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	ck_assert_msg(n == (ssize_t)len, "pread %zu at %lld: %zd (%s)", len, (long long)off, n,
		      n < 0 ? strerror(errno) : "short");
}

static int all_zero(const unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return 0;
	return 1;
}

/* errno of a call that returned -1, 0 when it succeeded (closing the fd). */
static int open_errno(const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags, mode);

	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

/* ---- open flags ---- */

START_TEST(create_with_o_excl_fails_with_eexist_when_the_file_exists)
{
	int fd = open(P("f"), O_WRONLY | O_CREAT | O_EXCL, 0644);

	ck_assert_int_ge(fd, 0);
	write_all(fd, "keep", 4);
	close(fd);
	ck_assert_int_eq(open_errno(P("f"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	/* Nor may it replace a directory or follow a symlink to a missing file. */
	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	ck_assert_int_eq(open_errno(P("d"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	ck_assert_int_eq(symlink("missing", P("l")), 0);
	ck_assert_int_eq(open_errno(P("l"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	ck_assert_int_eq(access(P("missing"), F_OK), -1);

	size_t len;
	char *data = hx_read_file(P("f"), &len);

	ck_assert_uint_eq(len, 4);
	ck_assert_str_eq(data, "keep");
	free(data);
}
END_TEST

START_TEST(open_errors_match_tmpfs)
{
	const char *dirs[2] = {hx_mnt.dir, hx_tmpfs()};
	int got[2][5];

	for (int i = 0; i < 2; i++) {
		const char *d = dirs[i];

		ck_assert_int_eq(mkdir(in(d, "dir"), 0755), 0);
		hx_write_file(in(d, "file"), "x", 1);
		got[i][0] = open_errno(in(d, "absent"), O_RDONLY, 0);
		got[i][1] = open_errno(in(d, "dir"), O_WRONLY, 0);
		got[i][2] = open_errno(in(d, "dir"), O_RDWR | O_CREAT, 0644);
		got[i][3] = open_errno(in(d, "file/x"), O_RDONLY | O_CREAT, 0644);
		got[i][4] = open_errno(in(d, "file"), O_RDONLY | O_DIRECTORY, 0);
	}
	ck_assert_int_eq(got[0][0], ENOENT);
	ck_assert_int_eq(got[0][1], EISDIR);
	for (int k = 0; k < 5; k++)
		ck_assert_msg(got[0][k] == got[1][k], "case %d: memfs errno %d, tmpfs errno %d", k,
			      got[0][k], got[1][k]);
}
END_TEST

START_TEST(o_trunc_empties_an_existing_file)
{
	struct stat st;
	char buf[16];
	int fd;

	hx_write_file(P("f"), "0123456789", 10);
	fd = open(P("f"), O_RDWR | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 0);
	write_all(fd, "ab", 2);
	close(fd);
	ck_assert_int_eq(stat(P("f"), &st), 0);
	ck_assert_int_eq(st.st_size, 2);

	/* A re-grown file must not show the old bytes past the new ones. */
	ck_assert_int_eq(truncate(P("f"), 10), 0);
	fd = open(P("f"), O_RDONLY);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 10);
	ck_assert(memcmp(buf, "ab\0\0\0\0\0\0\0\0", 10) == 0);
	close(fd);

	/* Linux truncates even through O_RDONLY|O_TRUNC. */
	fd = open(P("f"), O_RDONLY | O_TRUNC);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(stat(P("f"), &st), 0);
	ck_assert_int_eq(st.st_size, 0);
}
END_TEST

START_TEST(o_append_writes_at_the_end_even_after_another_descriptor_grew_the_file)
{
	int a = open(P("f"), O_WRONLY | O_CREAT | O_APPEND, 0644);
	int b = open(P("f"), O_RDWR);
	char buf[32];

	ck_assert_int_ge(a, 0);
	ck_assert_int_ge(b, 0);
	write_all(a, "one", 3);
	pwrite_all(b, "TWO-TWO", 7, 3); /* grows the file behind a's back */
	write_all(a, "three", 5);
	ck_assert_int_eq(lseek(a, 0, SEEK_CUR), 15);
	/* On Linux, pwrite through an O_APPEND descriptor appends too. */
	pwrite_all(a, "4", 1, 0);
	close(a);
	memset(buf, 0, sizeof(buf));
	ck_assert_int_eq(pread(b, buf, sizeof(buf), 0), 16);
	ck_assert_str_eq(buf, "oneTWO-TWOthree4");
	close(b);
}
END_TEST

/* ---- read / write ---- */

START_TEST(read_write_pread_and_pwrite_see_the_same_bytes)
{
	unsigned char data[10000], back[10000];
	int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
	int fd2;

	ck_assert_int_ge(fd, 0);
	fill_pattern(data, sizeof(data), 1);
	write_all(fd, data, 6000);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 6000);
	pwrite_all(fd, data + 6000, 4000, 6000);
	ck_assert_int_eq(lseek(fd, 0, SEEK_CUR), 6000); /* pwrite leaves the offset */

	/* A second descriptor sees everything at once. */
	fd2 = open(P("f"), O_RDONLY);
	ck_assert_int_ge(fd2, 0);
	ck_assert_int_eq(read(fd2, back, sizeof(back)), sizeof(back));
	ck_assert(memcmp(data, back, sizeof(data)) == 0);
	ck_assert_int_eq(read(fd2, back, sizeof(back)), 0); /* EOF */

	/* Overwrite in the middle, across a 4 KiB boundary. */
	pwrite_all(fd, "XYZ", 3, 4095);
	memcpy(data + 4095, "XYZ", 3);
	pread_all(fd2, back, sizeof(back), 0);
	ck_assert(memcmp(data, back, sizeof(data)) == 0);

	/* Reads past EOF are short or empty. */
	ck_assert_int_eq(pread(fd2, back, 100, 9990), 10);
	ck_assert_int_eq(pread(fd2, back, 100, 10000), 0);
	ck_assert_int_eq(pread(fd2, back, 100, 1 << 30), 0);
	close(fd2);
	close(fd);
}
END_TEST

START_TEST(write_far_beyond_eof_leaves_a_zero_filled_hole)
{
	const off_t far = (off_t)5 << 30; /* 5 GiB */
	unsigned char buf[8192];
	struct stat st;
	int fd = open(P("f"), O_RDWR | O_CREAT, 0644);

	ck_assert_int_ge(fd, 0);
	write_all(fd, "head", 4);
	pwrite_all(fd, "tail", 4, far);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, far + 4);

	pread_all(fd, buf, sizeof(buf), 0);
	ck_assert(memcmp(buf, "head", 4) == 0);
	ck_assert(all_zero(buf + 4, sizeof(buf) - 4));
	pread_all(fd, buf, sizeof(buf), far / 2);
	ck_assert(all_zero(buf, sizeof(buf)));
	pread_all(fd, buf, sizeof(buf), far - sizeof(buf) + 4);
	ck_assert(all_zero(buf, sizeof(buf) - 4));
	ck_assert(memcmp(buf + sizeof(buf) - 4, "tail", 4) == 0);
	close(fd);

	/* The hole costs nothing: two pages at most, like tmpfs. */
	ck_assert_int_eq(stat(P("f"), &st), 0);
	ck_assert_int_le(st.st_blocks, 16);
	ck_assert_int_gt(st.st_blocks, 0);
}
END_TEST

static const struct {
	off_t off;
	size_t len;
} sparse_writes[] = {
    {0, 1},
    {4095, 2},
    {10 * 4096 + 7, 5000},
    {1 << 20, 4096},
    {(1 << 20) + 1, 1},
    {(off_t)3 << 30, 100},
    {12345678, 70000},
    {2 * 4096, 1},
};

/* Write step of sparse_writes on dir; report size and blocks after closing. */
static void sparse_steps(const char *dir, int step, struct stat *st)
{
	const off_t off = sparse_writes[step].off;
	const size_t len = sparse_writes[step].len;
	static unsigned char data[70000];
	int fd = open(in(dir, "sparse"), O_WRONLY | O_CREAT, 0644);

	ck_assert_int_ge(fd, 0);
	fill_pattern(data, sizeof(data), 7);
	pwrite_all(fd, data, len, off);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(stat(in(dir, "sparse"), st), 0);
}

START_TEST(sparse_file_size_and_blocks_match_tmpfs_after_each_write)
{
	const char *t = hx_tmpfs();

	for (int step = 0; step < 8; step++) {
		struct stat m, o;

		sparse_steps(hx_mnt.dir, step, &m);
		sparse_steps(t, step, &o);
		ck_assert_msg(m.st_size == o.st_size, "step %d: st_size memfs %lld tmpfs %lld",
			      step, (long long)m.st_size, (long long)o.st_size);
		ck_assert_msg(m.st_blocks == o.st_blocks,
			      "step %d: st_blocks memfs %lld tmpfs %lld", step,
			      (long long)m.st_blocks, (long long)o.st_blocks);
	}
	/* Same bytes around every write (reading all 3 GiB would take long). */
	static unsigned char a[80000], b[80000];
	int fm = open(P("sparse"), O_RDONLY), fo = open(in(t, "sparse"), O_RDONLY);

	ck_assert_int_ge(fm, 0);
	ck_assert_int_ge(fo, 0);
	for (int step = 0; step < 8; step++) {
		off_t off = sparse_writes[step].off > 4096 ? sparse_writes[step].off - 4096 : 0;
		ssize_t nm = pread(fm, a, sizeof(a), off), no = pread(fo, b, sizeof(b), off);

		ck_assert_int_eq(nm, no);
		ck_assert_msg(memcmp(a, b, (size_t)nm) == 0, "step %d: bytes differ", step);
	}
	close(fm);
	close(fo);
}
END_TEST

/* ---- lifetime ---- */

static uint64_t free_blocks(void)
{
	struct statvfs sv;

	ck_assert_int_eq(statvfs(hx_mnt.dir, &sv), 0);
	return sv.f_bfree;
}

START_TEST(unlink_of_open_file_keeps_data_until_close)
{
	static unsigned char data[1 << 20], back[1 << 20];
	uint64_t before = free_blocks(), after;
	struct stat st;
	int fd = open(P("f"), O_RDWR | O_CREAT, 0644);

	ck_assert_int_ge(fd, 0);
	fill_pattern(data, sizeof(data), 3);
	write_all(fd, data, sizeof(data));
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_int_eq(unlink(P("f")), 0);

	ck_assert_int_eq(stat(P("f"), &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_nlink, 0);
	ck_assert_int_eq(st.st_size, sizeof(data));

	/* Still readable and writable; the space is still in use. */
	pread_all(fd, back, sizeof(back), 0);
	ck_assert(memcmp(data, back, sizeof(data)) == 0);
	pwrite_all(fd, "more", 4, sizeof(data));
	pread_all(fd, back, 4, sizeof(data));
	ck_assert(memcmp(back, "more", 4) == 0);
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_uint_le(free_blocks() + 256, before);

	/* A new file of the same name is a different file. */
	hx_write_file(P("f"), "new", 3);
	pread_all(fd, back, 4, 0);
	ck_assert(memcmp(back, data, 4) == 0);

	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(unlink(P("f")), 0);
	/* FUSE sends release asynchronously: give it a moment. */
	for (int i = 0; i < 200 && (after = free_blocks()) != before; i++)
		usleep(10000);
	ck_assert_uint_eq(after, before);
}
END_TEST

START_TEST(fsync_fdatasync_and_fsyncdir_return_zero)
{
	int fd = open(P("f"), O_RDWR | O_CREAT, 0644);
	int dfd;

	ck_assert_int_ge(fd, 0);
	write_all(fd, "data", 4);
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_int_eq(fdatasync(fd), 0);
	close(fd);
	fd = open(P("f"), O_RDONLY);
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_int_eq(fdatasync(fd), 0);
	close(fd);

	ck_assert_int_eq(mkdir(P("d"), 0755), 0);
	dfd = open(P("d"), O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	ck_assert_int_eq(fsync(dfd), 0);
	ck_assert_int_eq(fdatasync(dfd), 0);
	close(dfd);
	dfd = open(hx_mnt.dir, O_RDONLY | O_DIRECTORY);
	ck_assert_int_ge(dfd, 0);
	ck_assert_int_eq(fsync(dfd), 0);
	close(dfd);
	ck_assert_int_eq(syncfs(fd = open(hx_mnt.dir, O_RDONLY)), 0);
	close(fd);
}
END_TEST

/* ---- volume ---- */

START_TEST(large_64mib_file_reads_back_identically)
{
	const size_t total = 64 << 20, piece = 1 << 20;
	unsigned char *data = malloc(total), *back = malloc(total);
	struct stat st;
	int fd;

	ck_assert(data && back);
	fill_pattern(data, total, 64);
	fd = open(P("big"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	for (size_t off = 0; off < total; off += piece)
		write_all(fd, data + off, piece);
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(stat(P("big"), &st), 0);
	ck_assert_int_eq(st.st_size, total);
	ck_assert_int_eq(st.st_blocks, total / 512);

	/* Read back in odd-sized pieces through a new descriptor. */
	fd = open(P("big"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, back + got, total - got < 777777 ? total - got : 777777);

		ck_assert_int_ge(n, 0);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	ck_assert_uint_eq(got, total);
	for (size_t off = 0; off < total; off += piece)
		ck_assert_msg(memcmp(data + off, back + off, piece) == 0, "mismatch in MiB %zu",
			      off >> 20);
	free(data);
	free(back);
}
END_TEST

START_TEST(many_small_appends_build_the_expected_file)
{
	static unsigned char data[300000];
	size_t used = 0, len;
	int fd = -1;

	fill_pattern(data, sizeof(data), 5);
	for (int i = 0; i < 5000; i++) {
		size_t n = 1 + (size_t)(i * 37) % 97;

		if (i % 250 == 0) { /* reopen now and then: appends across opens */
			if (fd >= 0)
				ck_assert_int_eq(close(fd), 0);
			fd = open(P("log"), O_WRONLY | O_CREAT | O_APPEND, 0644);
			ck_assert_int_ge(fd, 0);
		}
		write_all(fd, data + used, n);
		used += n;
	}
	close(fd);

	unsigned char *back = hx_read_file(P("log"), &len);

	ck_assert_uint_eq(len, used);
	ck_assert(memcmp(back, data, used) == 0);
	free(back);
}
END_TEST

START_TEST(o_direct_read_and_write_round_trip)
{
	const size_t len = 256 << 10;
	unsigned char *data, *back;
	int fd;

	ck_assert_int_eq(posix_memalign((void **)&data, 4096, len), 0);
	ck_assert_int_eq(posix_memalign((void **)&back, 4096, len), 0);
	fill_pattern(data, len, 9);

	/* tmpfs accepts O_DIRECT (Linux >= 6.6), so memfs must too. */
	fd = open(P("d"), O_RDWR | O_CREAT | O_DIRECT, 0644);
	ck_assert_msg(fd >= 0, "open O_DIRECT: %s", strerror(errno));
	ck_assert_int_eq(pwrite(fd, data, len, 0), len);
	ck_assert_int_eq(pwrite(fd, data, 4096, 1 << 20), 4096);
	memset(back, 0xff, len);
	ck_assert_int_eq(pread(fd, back, len, 0), len);
	ck_assert(memcmp(data, back, len) == 0);

	/* The page cache (another, buffered descriptor) agrees both ways. */
	int b = open(P("d"), O_RDWR);

	ck_assert_int_ge(b, 0);
	memset(back, 0, len);
	pread_all(b, back, len, 0);
	ck_assert(memcmp(data, back, len) == 0);
	pread_all(b, back, 4096, 1 << 20);
	ck_assert(memcmp(data, back, 4096) == 0);
	pread_all(b, back, 4096, (1 << 20) - 4096); /* the hole between */
	ck_assert(all_zero(back, 4096));
	pwrite_all(b, "buffered", 8, 8192);
	ck_assert_int_eq(fsync(b), 0);
	ck_assert_int_eq(pread(fd, back, 4096, 8192), 4096);
	ck_assert(memcmp(back, "buffered", 8) == 0);
	close(b);
	close(fd);

	struct stat st;

	ck_assert_int_eq(stat(P("d"), &st), 0);
	ck_assert_int_eq(st.st_size, (1 << 20) + 4096);
	free(data);
	free(back);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("files");
	TCase *tc = tcase_create("files");

	tcase_add_checked_fixture(tc, hx_setup, hx_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, create_with_o_excl_fails_with_eexist_when_the_file_exists);
	tcase_add_test(tc, open_errors_match_tmpfs);
	tcase_add_test(tc, o_trunc_empties_an_existing_file);
	tcase_add_test(tc, o_append_writes_at_the_end_even_after_another_descriptor_grew_the_file);
	tcase_add_test(tc, read_write_pread_and_pwrite_see_the_same_bytes);
	tcase_add_test(tc, write_far_beyond_eof_leaves_a_zero_filled_hole);
	tcase_add_test(tc, sparse_file_size_and_blocks_match_tmpfs_after_each_write);
	tcase_add_test(tc, unlink_of_open_file_keeps_data_until_close);
	tcase_add_test(tc, fsync_fdatasync_and_fsyncdir_return_zero);
	tcase_add_test(tc, large_64mib_file_reads_back_identically);
	tcase_add_test(tc, many_small_appends_build_the_expected_file);
	tcase_add_test(tc, o_direct_read_and_write_round_trip);
	suite_add_tcase(s, tc);
	return hx_run(s);
}
