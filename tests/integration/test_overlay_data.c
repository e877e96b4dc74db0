/*
 * test_overlay_data.c — the contents of lower files through a memfs laid
 * over them (-o lower=, issue 3): reads from the lower file, block-level
 * copy-up and its accounting, truncate / fallocate / copy_file_range /
 * SEEK_DATA against a tmpfs copy, metadata changes without data, coherence
 * of open descriptors and shared mappings, opens and truncates that must
 * not read the lower file, a lower file truncated underneath a reader, and
 * statfs.  The tree half is test_overlay.c.
 *
 * "Used" is (f_blocks - f_bfree) * f_frsize: memfs's own memory.  Lower
 * bytes are not charged, so where tmpfs (whose copy holds every byte) and
 * memfs must differ, the memfs expectation is asserted only on memfs.
 */
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "ovl.h"

#define CHUNK 4096
#define MiB (1024 * 1024)
#define GiB (1024ULL * MiB)

/* ---- helpers ---- */

static struct stat st_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		ck_abort_msg("lstat %s: %s", path, strerrorname_np(errno));
	return st;
}

static int open_or_die(const char *path, int flags)
{
	int fd = open(path, flags, 0644);

	if (fd < 0)
		ck_abort_msg("open %s: %s", path, strerrorname_np(errno));
	return fd;
}

static void pwrite_at(const char *path, const void *buf, size_t len, off_t off)
{
	int fd = open_or_die(path, O_WRONLY);
	ssize_t n = pwrite(fd, buf, len, off);

	ck_assert_msg(n == (ssize_t)len, "pwrite %zu at %lld into %s: %zd (%s)", len,
		      (long long)off, path, n, n < 0 ? strerrorname_np(errno) : "short");
	close(fd);
}

/* len bytes at off of path (short only at EOF) into a malloc'd buffer. */
static unsigned char *pread_range(const char *path, size_t len, off_t off)
{
	unsigned char *buf = malloc(len ? len : 1);
	int fd = open_or_die(path, O_RDONLY);
	ssize_t n = pread(fd, buf, len, off);

	ck_assert_msg(n == (ssize_t)len, "pread %zu at %lld of %s: %zd (%s)", len, (long long)off,
		      path, n, n < 0 ? strerrorname_np(errno) : "short");
	close(fd);
	return buf;
}

/* The same range of two files must hold the same bytes. */
static void check_same_range(const char *got, const char *want, size_t len, off_t off)
{
	unsigned char *g = pread_range(got, len, off), *w = pread_range(want, len, off);
	size_t i = 0;

	while (i < len && g[i] == w[i])
		i++;
	ck_assert_msg(i == len, "%s and %s differ at byte %lld", got, want,
		      (long long)off + (long long)i);
	free(g);
	free(w);
}

/* A file of size bytes with pattern data (seed) in [at, at+len) and holes elsewhere. */
static void put_sparse(const char *path, uint64_t size, uint64_t at, size_t len, uint64_t seed)
{
	int fd = open_or_die(path, O_WRONLY | O_CREAT | O_TRUNC);
	unsigned char *buf = malloc(len ? len : 1);

	ov_pattern(buf, len, seed);
	ck_assert_int_eq(pwrite(fd, buf, len, (off_t)at), (ssize_t)len);
	OK(ftruncate(fd, (off_t)size));
	close(fd);
	free(buf);
}

#define MEMFS_ONLY()                                                                               \
	do {                                                                                       \
		if (hx_oracle()) {                                                                 \
			fprintf(stderr,                                                            \
				"%s: watches the daemon itself: skipped under "                    \
				"HX_ORACLE\n",                                                     \
				__func__);                                                         \
			return;                                                                    \
		}                                                                                  \
	} while (0)

/* A copy of lower 0 on tmpfs, to run the same operations on. */
static const char *tmpfs_copy(void)
{
	static char copy[PATH_MAX];

	snprintf(copy, sizeof(copy), "%s/copy", hx_tmpfs());
	ov_mkdirs(copy, 0755);
	hx_copy_lowers(copy, 1);
	return copy;
}

/* Result of one operation: its return value, or -errno. */
static long result(long rc)
{
	return rc < 0 ? -errno : rc;
}

static const char *rname(long r)
{
	static char buf[4][32];
	static int n;
	char *b = buf[n++ % 4];

	if (r < 0)
		snprintf(b, 32, "%s", strerrorname_np((int)-r));
	else
		snprintf(b, 32, "%ld", r);
	return b;
}

/* The file at path on the mount and in the copy: same size, bytes and st_blocks. */
static void check_same_file(const char *what, const char *mnt_path, const char *copy_path,
			    int blocks_too)
{
	struct stat m = st_of(mnt_path), c = st_of(copy_path);

	ck_assert_msg(m.st_size == c.st_size, "%s: size %lld, tmpfs %lld", what,
		      (long long)m.st_size, (long long)c.st_size);
	ov_check_same_file(mnt_path, copy_path);
	if (blocks_too)
		ck_assert_msg(m.st_blocks == c.st_blocks, "%s: st_blocks %lld, tmpfs %lld", what,
			      (long long)m.st_blocks, (long long)c.st_blocks);
}

/* ---- reads ---- */

START_TEST(reading_lower_files_gives_their_bytes_and_uses_no_memory_of_memfs)
{
	const char *l = hx_lower(0);
	const size_t sizes[] = {0, 1, 4095, 4096, 4097, MiB + 3};
	char name[32];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		snprintf(name, sizeof(name), "f%zu", sizes[i]);
		ov_put_pattern(J(l, name), sizes[i], i + 1);
	}
	ov_put_pattern(J(l, "large"), 32 * MiB, 99);
	put_sparse(J(l, "sparse"), 4 * MiB, MiB, 10000, 5);
	hx_mount_lower(&hx_mnt, 1, NULL);
	uint64_t used0 = ov_used(hx_mnt.dir);
	long rss0 = hx_oracle() ? 0 : hx_status_kb(hx_mnt.pid, "RssAnon");

	for (int round = 0; round < 2; round++) {
		for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			snprintf(name, sizeof(name), "f%zu", sizes[i]);
			struct stat m = st_of(P(name)), w = st_of(J(l, name));

			ck_assert_int_eq(m.st_size, w.st_size);
			ck_assert_msg(m.st_blocks == w.st_blocks, "%s: st_blocks %lld, lower %lld",
				      name, (long long)m.st_blocks, (long long)w.st_blocks);
			ov_check_same_file(P(name), J(l, name));
		}
		ov_check_same_file(P("large"), J(l, "large"));
		ov_check_same_file(P("sparse"), J(l, "sparse"));

		/* through a shared mapping too */
		int fd = open_or_die(P("large"), O_RDONLY),
		    lfd = open_or_die(J(l, "large"), O_RDONLY);
		void *m = mmap(NULL, 32 * MiB, PROT_READ, MAP_SHARED, fd, 0);
		void *w = mmap(NULL, 32 * MiB, PROT_READ, MAP_SHARED, lfd, 0);

		ck_assert(m != MAP_FAILED && w != MAP_FAILED);
		ck_assert_msg(memcmp(m, w, 32 * MiB) == 0, "a mapping of large differs from lower");
		munmap(m, 32 * MiB);
		munmap(w, 32 * MiB);
		close(fd);
		close(lfd);
		ov_forget(hx_mnt.dir); /* the second round reads through the daemon again */
	}
	ck_assert_uint_eq(ov_used_settled(hx_mnt.dir, used0), used0);
	if (hx_oracle())
		return;
	ck_assert_uint_eq(used0, 0);
	/* 64 MiB read from lower: the bytes went from the mapping to the
	 * kernel, not through memfs's heap */
	long rss1 = hx_status_kb(hx_mnt.pid, "RssAnon");
	ck_assert_msg(rss1 - rss0 < 8 * 1024,
		      "reading 64 MiB of lower files grew the daemon's "
		      "RssAnon by %ld KiB",
		      rss1 - rss0);
}
END_TEST

/* ---- block-level copy-up ---- */

START_TEST(a_one_byte_write_into_a_1gib_lower_file_uses_one_block)
{
	const char *l = hx_lower(0);
	const off_t data_at = 512 * MiB - CHUNK; /* lower data: two chunks */
	const off_t hole_at = 768 * MiB + 5;	 /* a hole of the lower file */

	put_sparse(J(l, "big"), GiB, (uint64_t)data_at, 2 * CHUNK, 3);
	const char *copy = tmpfs_copy();
	hx_mount_lower(&hx_mnt, 1, NULL);
	const int mem = !hx_oracle();
	uint64_t used0 = ov_used(hx_mnt.dir);

	/* one byte over lower data: one chunk copied up (tmpfs had the page) */
	pwrite_at(P("big"), "X", 1, data_at + 100);
	pwrite_at(J(copy, "big"), "X", 1, data_at + 100);
	uint64_t used1 = ov_used(hx_mnt.dir);
	if (mem)
		ck_assert_msg(used1 - used0 == CHUNK,
			      "a 1-byte write into a lower file used %llu "
			      "bytes",
			      (unsigned long long)(used1 - used0));
	/* a second write into the same chunk: nothing more */
	pwrite_at(P("big"), "Y", 1, data_at + 200);
	pwrite_at(J(copy, "big"), "Y", 1, data_at + 200);
	ck_assert_uint_eq(ov_used(hx_mnt.dir), used1);
	/* one byte into a hole of the lower file: one chunk, as on tmpfs */
	pwrite_at(P("big"), "H", 1, hole_at);
	pwrite_at(J(copy, "big"), "H", 1, hole_at);
	ck_assert_uint_eq(ov_used(hx_mnt.dir) - used1, CHUNK);
	/* a write across a chunk boundary in a hole: two */
	uint64_t used2 = ov_used(hx_mnt.dir);
	pwrite_at(P("big"), "boundary", 8, 600 * MiB - 4);
	pwrite_at(J(copy, "big"), "boundary", 8, 600 * MiB - 4);
	ck_assert_uint_eq(ov_used(hx_mnt.dir) - used2, 2 * CHUNK);

	ck_assert_int_eq(st_of(P("big")).st_size, GiB);
	for (int round = 0; round < 2; round++) {
		check_same_range(P("big"), J(copy, "big"), 6 * CHUNK, data_at - 2 * CHUNK);
		check_same_range(P("big"), J(copy, "big"), 2 * CHUNK, hole_at - CHUNK);
		check_same_range(P("big"), J(copy, "big"), 2 * CHUNK, 600 * MiB - CHUNK);
		check_same_range(P("big"), J(copy, "big"), CHUNK, GiB - CHUNK);
		ov_forget(hx_mnt.dir);
	}
	/* the lower file never changed */
	unsigned char want[2 * CHUNK], *got = pread_range(J(l, "big"), 2 * CHUNK, data_at);
	ov_pattern(want, sizeof(want), 3);
	ck_assert(memcmp(got, want, sizeof(want)) == 0);
	free(got);

	/* the rest of the kernel's tools on the same 1 GiB file */
	const char *const bases[] = {hx_mnt.dir, copy};
	long r[2][6];
	for (int b = 0; b < 2; b++) {
		const char *big = J(bases[b], "big");
		int fd = open_or_die(big, O_RDWR);
		int out = open_or_die(J(bases[b], "piece"), O_RDWR | O_CREAT);
		loff_t in_off = data_at - 1000, out_off = 10;

		r[b][0] = result(
		    fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, data_at + 150, 30));
		r[b][1] = result(copy_file_range(fd, &in_off, out, &out_off, 3 * CHUNK, 0));
		r[b][2] = result(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					   data_at + CHUNK, CHUNK));
		r[b][3] = result(ftruncate(fd, 700 * MiB)); /* the byte at 768 MiB goes */
		r[b][4] = result(ftruncate(fd, GiB));
		r[b][5] = result(fallocate(fd, 0, GiB - 10, 100)); /* grows past 1 GiB */
		close(fd);
		close(out);
	}
	for (int i = 0; i < 6; i++)
		ck_assert_msg(r[0][i] == r[1][i], "operation %d: %s, tmpfs %s", i, rname(r[0][i]),
			      rname(r[1][i]));
	for (int round = 0; round < 2; round++) {
		ck_assert_int_eq(st_of(P("big")).st_size, st_of(J(copy, "big")).st_size);
		check_same_range(P("big"), J(copy, "big"), 6 * CHUNK, data_at - 2 * CHUNK);
		check_same_range(P("big"), J(copy, "big"), 2 * CHUNK, hole_at - CHUNK);
		check_same_range(P("big"), J(copy, "big"), 2 * CHUNK, 700 * MiB - CHUNK);
		check_same_range(P("big"), J(copy, "big"), 190, GiB - 100);
		check_same_file("piece", P("piece"), J(copy, "piece"), 0);
		ov_forget(hx_mnt.dir);
	}
}
END_TEST

/* ---- truncate, fallocate, copy_file_range, SEEK_DATA against tmpfs ---- */

struct file_op {
	const char *what;
	long (*fn)(const char *path, long arg1, long arg2);
	long arg1, arg2;
};

static long op_truncate(const char *path, long size, long unused)
{
	(void)unused;
	return result(truncate(path, size));
}

static long op_ftruncate(const char *path, long size, long unused)
{
	int fd = open_or_die(path, O_RDWR);
	long r = result(ftruncate(fd, size));

	(void)unused;
	close(fd);
	return r;
}

static long op_write(const char *path, long off, long len)
{
	char buf[20000];
	int fd = open_or_die(path, O_WRONLY);

	ck_assert((size_t)len <= sizeof(buf));
	ov_pattern(buf, (size_t)len, (uint64_t)off);
	long r = result(pwrite(fd, buf, (size_t)len, off));
	close(fd);
	return r;
}

/* Run ops on the mount's file and the copy's: same results, bytes, st_blocks. */
static void run_ops(const char *file, const char *copy, const struct file_op *ops, size_t n,
		    int blocks_too)
{
	for (size_t i = 0; i < n; i++) {
		long got = ops[i].fn(P(file), ops[i].arg1, ops[i].arg2);
		long want = ops[i].fn(J(copy, file), ops[i].arg1, ops[i].arg2);
		char what[128];

		snprintf(what, sizeof(what), "%s after %s(%ld, %ld)", file, ops[i].what,
			 ops[i].arg1, ops[i].arg2);
		ck_assert_msg(got == want, "%s: %s, tmpfs %s", what, rname(got), rname(want));
		check_same_file(what, P(file), J(copy, file), blocks_too);
	}
}

START_TEST(truncate_of_lower_files_matches_tmpfs_and_never_brings_back_lower_bytes)
{
	const char *l = hx_lower(0);

	ov_put_pattern(J(l, "a"), 64 * 1024 + 123, 1);
	ov_put_pattern(J(l, "b"), 5 * CHUNK, 2);
	ov_put_pattern(J(l, "c"), 100, 3);
	const char *copy = tmpfs_copy();
	hx_mount_lower(&hx_mnt, 1, NULL);

	const struct file_op a_ops[] = {
	    {"truncate", op_truncate, 10000, 0}, /* inside a chunk */
	    {"truncate", op_truncate, 50000, 0}, /* the lower bytes past 10000 stay gone */
	    {"ftruncate", op_ftruncate, 3, 0},	 {"truncate", op_truncate, 100000, 0},
	    {"write", op_write, 70000, 5000},	 {"truncate", op_truncate, 0, 0},
	    {"truncate", op_truncate, 8192, 0},
	};
	const struct file_op b_ops[] = {
	    {"truncate", op_truncate, 3 * CHUNK, 0}, /* at a chunk boundary */
	    {"truncate", op_truncate, 5 * CHUNK, 0},  {"write", op_write, CHUNK + 7, 10},
	    {"truncate", op_truncate, CHUNK + 10, 0}, {"ftruncate", op_ftruncate, 10 * CHUNK, 0},
	};
	const struct file_op c_ops[] = {
	    {"truncate", op_truncate, 100, 0}, /* to its own size */
	    {"truncate", op_truncate, 1 << 20, 0},
	    {"truncate", op_truncate, 50, 0},
	    {"truncate", op_truncate, -1, 0}, /* EINVAL */
	};
	for (int round = 0; round < 2; round++) {
		if (round == 1) { /* again on fresh copies, after the kernel forgets */
			hx_umount(&hx_mnt);
			ck_assert_int_eq(hx_sh("rm -rf '%s'", copy), 0);
			copy = tmpfs_copy();
			hx_mount_lower(&hx_mnt, 1, NULL);
			st_of(P("a"));
			hx_drop_caches(2);
		}
		run_ops("a", copy, a_ops, sizeof(a_ops) / sizeof(a_ops[0]), 1);
		run_ops("b", copy, b_ops, sizeof(b_ops) / sizeof(b_ops[0]), 1);
		run_ops("c", copy, c_ops, sizeof(c_ops) / sizeof(c_ops[0]), 1);
	}
}
END_TEST

static long op_fallocate(const char *path, long mode_off, long len)
{
	/* arg1: mode << 32 | offset */
	int mode = (int)(mode_off >> 32);
	off_t off = mode_off & 0xffffffffL;
	int fd = open_or_die(path, O_RDWR);
	long r = result(fallocate(fd, mode, off, len));

	close(fd);
	return r;
}

/*
 * FALLOC_FL_ZERO_RANGE, which tmpfs lacks (EOPNOTSUPP): on a tmpfs file
 * the same bytes by a punched hole (and a grown size without KEEP_SIZE).
 */
static long op_zero_range(const char *path, long keep_off, long len)
{
	int keep = (int)(keep_off >> 32);
	off_t off = keep_off & 0xffffffffL;
	int fd = open_or_die(path, O_RDWR);
	int mode = FALLOC_FL_ZERO_RANGE | (keep ? FALLOC_FL_KEEP_SIZE : 0);
	long r = result(fallocate(fd, mode, off, len));
	struct stat st;

	if (r == -EOPNOTSUPP) {
		r = result(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len));
		OK(fstat(fd, &st));
		if (r == 0 && !keep && st.st_size < off + len)
			r = result(ftruncate(fd, off + len));
	}
	close(fd);
	return r;
}

#define FA(mode, off) (((long)(mode) << 32) | (off))

START_TEST(fallocate_in_every_mode_on_lower_files_matches_tmpfs)
{
	const char *l = hx_lower(0);
	const char *const files[] = {"alloc", "keep", "punch", "zero", "zerokeep", "other"};

	for (size_t i = 0; i < 6; i++)
		ov_put_pattern(J(l, files[i]), 64 * 1024, i + 10);
	const char *copy = tmpfs_copy();
	hx_mount_lower(&hx_mnt, 1, NULL);

	const struct file_op alloc_ops[] = {
	    {"fallocate", op_fallocate, FA(0, 60000), 20000}, /* grows the file */
	    {"fallocate", op_fallocate, FA(0, 1000), 3000},   /* over lower bytes */
	    {"fallocate", op_fallocate, FA(0, 200000), 5000}, /* past a new hole */
	};
	const struct file_op keep_ops[] = {
	    {"fallocate", op_fallocate, FA(FALLOC_FL_KEEP_SIZE, 60000), 20000},
	    {"fallocate", op_fallocate, FA(FALLOC_FL_KEEP_SIZE, 100000), 8192},
	    {"truncate", op_truncate, 90000, 0},
	};
	const struct file_op punch_ops[] = {
	    {"punch", op_fallocate, FA(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8192), 8192},
	    {"punch", op_fallocate, FA(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 30000), 10000},
	    {"punch", op_fallocate, FA(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100), 50},
	    {"punch", op_fallocate, FA(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 60000), 90000},
	    {"punch", op_fallocate, FA(FALLOC_FL_PUNCH_HOLE, 0), 4096}, /* EOPNOTSUPP */
	    {"write", op_write, 9000, 100},
	};
	const struct file_op zero_ops[] = {
	    {"zero_range", op_zero_range, FA(0, 5000), 10000},
	    {"zero_range", op_zero_range, FA(0, 60000), 20000}, /* grows */
	    {"zero_range", op_zero_range, FA(0, 16384), 8192},
	};
	const struct file_op zerokeep_ops[] = {
	    {"zero_range", op_zero_range, FA(1, 5000), 10000},
	    {"zero_range", op_zero_range, FA(1, 60000), 20000},
	};
	const struct file_op other_ops[] = {
	    {"collapse", op_fallocate, FA(FALLOC_FL_COLLAPSE_RANGE, 8192), 8192},
	    {"insert", op_fallocate, FA(FALLOC_FL_INSERT_RANGE, 8192), 8192},
	    {"unshare", op_fallocate, FA(FALLOC_FL_UNSHARE_RANGE, 0), 8192},
	    {"no length", op_fallocate, FA(0, 0), 0},
	};
	/* st_blocks too: the lower files are dense, so tmpfs's pages and
	 * memfs's chunks (memory or lower) count alike */
	run_ops("alloc", copy, alloc_ops, sizeof(alloc_ops) / sizeof(alloc_ops[0]), 1);
	run_ops("keep", copy, keep_ops, sizeof(keep_ops) / sizeof(keep_ops[0]), 1);
	run_ops("punch", copy, punch_ops, sizeof(punch_ops) / sizeof(punch_ops[0]), 1);
	run_ops("zero", copy, zero_ops, sizeof(zero_ops) / sizeof(zero_ops[0]), 0);
	run_ops("zerokeep", copy, zerokeep_ops, sizeof(zerokeep_ops) / sizeof(zerokeep_ops[0]), 0);
	run_ops("other", copy, other_ops, sizeof(other_ops) / sizeof(other_ops[0]), 1);
	ov_forget(hx_mnt.dir);
	for (size_t i = 0; i < 6; i++)
		check_same_file(files[i], P(files[i]), J(copy, files[i]), 0);
}
END_TEST

/* copy_file_range(in@off_in -> out@off_out, len): arg1 = off_in << 32 | off_out. */
static const char *cfr_in;

static long op_cfr(const char *path, long offs, long len)
{
	char in_path[PATH_MAX];
	loff_t off_in = offs >> 32, off_out = offs & 0xffffffffL;

	/* the source is the file named cfr_in next to path */
	snprintf(in_path, sizeof(in_path), "%s", path);
	char *slash = strrchr(in_path, '/');
	snprintf(slash + 1, sizeof(in_path) - (size_t)(slash + 1 - in_path), "%s", cfr_in);
	int in = open_or_die(in_path, O_RDONLY);
	int out = open_or_die(path, O_RDWR | O_CREAT);
	long r = result(copy_file_range(in, &off_in, out, &off_out, (size_t)len, 0));

	close(in);
	close(out);
	return r;
}

#define CF(in, out) (((long)(in) << 32) | (out))

START_TEST(copy_file_range_between_lower_files_gives_the_bytes_tmpfs_gives)
{
	const char *l = hx_lower(0);

	ov_put_pattern(J(l, "src"), 200 * 1024 + 11, 1);
	ov_put_pattern(J(l, "dst"), 100 * 1024, 2);
	ov_put_pattern(J(l, "self"), 64 * 1024, 3);
	put_sparse(J(l, "holey"), 300 * 1024, 100 * 1024, 5000, 4);
	char *lower_before = hx_tree_digest(l, HX_DIGEST_IDENTITY);
	const char *copy = tmpfs_copy();
	hx_mount_lower(&hx_mnt, 1, NULL);

	const struct file_op into_dst[] = {
	    {"copy_file_range", op_cfr, CF(5000, 70000), 90000}, /* grows dst */
	    {"copy_file_range", op_cfr, CF(0, 0), 4096},
	    {"copy_file_range", op_cfr, CF(200 * 1024, 3), 100}, /* short: 11 bytes */
	    {"copy_file_range", op_cfr, CF(300 * 1024, 3), 100}, /* past EOF: 0 */
	};
	const struct file_op into_fresh[] = {
	    {"copy_file_range", op_cfr, CF(0, 0), 200 * 1024 + 11},
	    {"copy_file_range", op_cfr, CF(4097, 1), 12345},
	};
	const struct file_op into_self[] = {
	    {"copy_file_range", op_cfr, CF(0, 32768), 20000},
	    {"copy_file_range", op_cfr, CF(100, 60000), 10000}, /* grows itself */
	    {"copy_file_range", op_cfr, CF(0, 1000), 5000},	/* overlapping: EINVAL */
	};
	const struct file_op from_holes[] = {
	    {"copy_file_range", op_cfr, CF(90 * 1024, 10), 30000},
	    {"copy_file_range", op_cfr, CF(0, 50000), 300 * 1024},
	};
	cfr_in = "src";
	run_ops("dst", copy, into_dst, sizeof(into_dst) / sizeof(into_dst[0]), 0);
	run_ops("fresh", copy, into_fresh, sizeof(into_fresh) / sizeof(into_fresh[0]), 0);
	cfr_in = "self";
	run_ops("self", copy, into_self, sizeof(into_self) / sizeof(into_self[0]), 0);
	cfr_in = "holey";
	run_ops("fromholes", copy, from_holes, sizeof(from_holes) / sizeof(from_holes[0]), 0);
	ov_forget(hx_mnt.dir);
	const char *const files[] = {"src", "dst", "fresh", "self", "holey", "fromholes"};
	for (size_t i = 0; i < 6; i++)
		check_same_file(files[i], P(files[i]), J(copy, files[i]), 0);
	char *lower_after = hx_tree_digest(l, HX_DIGEST_IDENTITY);
	hx_assert_same_digest("lower after copy_file_range", lower_after, lower_before);
	free(lower_before);
	free(lower_after);
}
END_TEST

/* SEEK_DATA and SEEK_HOLE from every offset in steps, on the mount and the copy. */
static void check_seeks(const char *file, const char *copy)
{
	int m = open_or_die(P(file), O_RDONLY), c = open_or_die(J(copy, file), O_RDONLY);
	off_t size = st_of(J(copy, file)).st_size;

	for (off_t off = 0; off <= size + CHUNK; off += off % 3 ? 997 : 1024) {
		const int whences[] = {SEEK_DATA, SEEK_HOLE};

		for (int w = 0; w < 2; w++) {
			long got = result(lseek(m, off, whences[w]));
			long want = result(lseek(c, off, whences[w]));

			ck_assert_msg(got == want, "%s: lseek(%lld, %s): %s, tmpfs %s", file,
				      (long long)off, w ? "SEEK_HOLE" : "SEEK_DATA", rname(got),
				      rname(want));
		}
	}
	close(m);
	close(c);
}

START_TEST(seek_data_and_seek_hole_on_lower_files_match_tmpfs)
{
	const char *l = hx_lower(0);

	ov_put_pattern(J(l, "d"), 64 * 1024, 1);
	ov_put_pattern(J(l, "e"), 40 * 1024 + 5, 2);
	put_sparse(J(l, "sparse"), 256 * 1024, 64 * 1024, 3000, 3);
	const char *copy = tmpfs_copy();
	hx_mount_lower(&hx_mnt, 1, NULL);

	check_seeks("d", copy);
	check_seeks("e", copy);
	const struct file_op d_ops[] = {
	    {"punch", op_fallocate, FA(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 8192), 16384},
	    {"punch", op_fallocate, FA(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 30000), 10000},
	    {"truncate", op_truncate, 128 * 1024, 0},
	    {"write", op_write, 100000, 10},
	    {"punch", op_fallocate, FA(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0), 4096},
	};
	const struct file_op e_ops[] = {
	    {"truncate", op_truncate, 20000, 0},
	    {"truncate", op_truncate, 90000, 0},
	    {"fallocate", op_fallocate, FA(FALLOC_FL_KEEP_SIZE, 90000), 10000},
	};
	for (size_t i = 0; i < sizeof(d_ops) / sizeof(d_ops[0]); i++) {
		run_ops("d", copy, &d_ops[i], 1, 1);
		check_seeks("d", copy);
	}
	for (size_t i = 0; i < sizeof(e_ops) / sizeof(e_ops[0]); i++) {
		run_ops("e", copy, &e_ops[i], 1, 1);
		check_seeks("e", copy);
	}

	/*
	 * Holes of the lower file itself may be reported as data (copyup.h:
	 * they are not looked for), but what SEEK_HOLE calls a hole must read
	 * as zeros and SEEK_DATA must never skip data.
	 */
	int fd = open_or_die(P("sparse"), O_RDONLY);
	off_t size = st_of(P("sparse")).st_size;
	unsigned char *all = pread_range(J(l, "sparse"), (size_t)size, 0);
	for (off_t off = 0; off < size;) {
		off_t hole = lseek(fd, off, SEEK_HOLE), data;

		ck_assert_msg(hole >= off && hole <= size, "SEEK_HOLE(%lld) = %lld", (long long)off,
			      (long long)hole);
		data = lseek(fd, hole, SEEK_DATA);
		if (data < 0) {
			ck_assert_int_eq(errno, ENXIO);
			data = size;
		}
		off_t i = hole;
		while (i < data && all[i] == 0)
			i++;
		ck_assert_msg(i == data, "sparse: byte %lld is data inside a reported hole",
			      (long long)i);
		off = data + (data < size);
	}
	free(all);
	close(fd);
}
END_TEST

/* ---- metadata changes ---- */

START_TEST(metadata_changes_of_lower_entries_use_no_blocks)
{
	const char *l = hx_lower(0);

	ov_put_pattern(J(l, "f"), 16 * MiB, 1);
	ov_mkdirs(J(l, "d"), 0755);
	ov_symlink("f", J(l, "link"));
	put_sparse(J(l, "big"), GiB, 0, 100, 2);
	char *lower_before = hx_tree_digest(l, HX_DIGEST_IDENTITY | HX_DIGEST_MTIME);
	hx_mount_lower(&hx_mnt, 1, NULL);
	uint64_t used0 = ov_used(hx_mnt.dir);
	long rss0 = hx_oracle() ? 0 : hx_status_kb(hx_mnt.pid, "RssAnon");
	struct timespec ts[2] = {{1000000000, 1}, {1111111111, 2}};

	OK(chmod(P("f"), 0600));
	OK(chown(P("f"), 12, 34));
	OK(utimensat(AT_FDCWD, P("f"), ts, 0));
	OK(setxattr(P("f"), "user.x", "1", 1, 0));
	OK(setxattr(P("f"), "trusted.y", "2", 1, 0));
	OK(removexattr(P("f"), "user.x"));
	OK(chmod(P("d"), 0700));
	OK(setxattr(P("d"), "user.d", "d", 1, 0));
	OK(lchown(P("link"), 56, 78));
	OK(utimensat(AT_FDCWD, P("link"), ts, AT_SYMLINK_NOFOLLOW));
	OK(lsetxattr(P("link"), "trusted.l", "l", 1, 0));
	OK(chmod(P("big"), 0640));
	OK(truncate(P("big"), GiB)); /* to its own size */
	OK(utimensat(AT_FDCWD, P("big"), NULL, 0));

	ck_assert_uint_eq(ov_used(hx_mnt.dir), used0);
	struct stat f = st_of(P("f"));
	ck_assert_int_eq(f.st_mode, S_IFREG | 0600);
	ck_assert_int_eq(f.st_uid, 12);
	ck_assert_int_eq(f.st_gid, 34);
	ck_assert_int_eq(f.st_mtim.tv_sec, 1111111111);
	ck_assert_int_eq(f.st_blocks, st_of(J(l, "f")).st_blocks);
	ck_assert_int_eq(st_of(P("link")).st_uid, 56);
	ck_assert_int_eq(st_of(P("d")).st_mode, S_IFDIR | 0700);
	ov_check_same_file(P("f"), J(l, "f"));
	char *lower_after = hx_tree_digest(l, HX_DIGEST_IDENTITY | HX_DIGEST_MTIME);
	hx_assert_same_digest("lower after metadata changes", lower_after, lower_before);
	free(lower_before);
	free(lower_after);
	if (hx_oracle())
		return;
	ck_assert_uint_eq(used0, 0);
	long rss1 = hx_status_kb(hx_mnt.pid, "RssAnon");
	ck_assert_msg(rss1 - rss0 < 4096, "metadata changes grew the daemon's RssAnon by %ld KiB",
		      rss1 - rss0);
}
END_TEST

/* ---- coherence ---- */

START_TEST(an_open_descriptor_and_a_shared_mapping_of_a_lower_file_see_later_writes)
{
	const char *l = hx_lower(0);
	const size_t size = 3 * CHUNK + 100;

	ov_put_pattern(J(l, "f"), size, 1);
	OK(link(J(l, "f"), J(l, "g")));
	hx_mount_lower(&hx_mnt, 1, NULL);

	int fd1 = open_or_die(P("f"), O_RDONLY), fd_g = open_or_die(P("g"), O_RDONLY);
	unsigned char *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd1, 0);
	ck_assert(map != MAP_FAILED);
	unsigned char want[3 * CHUNK + 100];
	ov_pattern(want, size, 1);
	ck_assert(memcmp(map, want, size) == 0); /* every page faulted in from lower */

	/* written through another descriptor: the first copy-up of the file */
	int fd2 = open_or_die(P("f"), O_WRONLY);
	ck_assert_int_eq(pwrite(fd2, "HELLO", 5, 5000), 5);
	ck_assert_int_eq(pwrite(fd2, "START", 5, 0), 5);
	close(fd2);
	memcpy(want + 5000, "HELLO", 5);
	memcpy(want, "START", 5);
	unsigned char buf[3 * CHUNK + 100];
	ck_assert_int_eq(pread(fd1, buf, size, 0), (ssize_t)size);
	ck_assert_msg(memcmp(buf, want, size) == 0, "an fd opened before the write misses it");
	ck_assert_msg(memcmp(map, want, size) == 0, "a mapping made before the write misses it");
	ck_assert_int_eq(pread(fd_g, buf, size, 0), (ssize_t)size);
	ck_assert_msg(memcmp(buf, want, size) == 0, "the other hard link misses the write");

	/* written through a shared writable mapping */
	int fd3 = open_or_die(P("f"), O_RDWR);
	unsigned char *wmap = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd3, 0);
	ck_assert(wmap != MAP_FAILED);
	memcpy(wmap + 3 * CHUNK + 10, "MAPPED", 6);
	OK(msync(wmap, size, MS_SYNC));
	memcpy(want + 3 * CHUNK + 10, "MAPPED", 6);
	ck_assert_int_eq(pread(fd1, buf, size, 0), (ssize_t)size);
	ck_assert_msg(memcmp(buf, want, size) == 0, "a write through a mapping is not seen");
	ck_assert_msg(memcmp(map, want, size) == 0, "another mapping misses a mapped write");
	munmap(wmap, size);
	close(fd3);

	/* a size change is seen through the old descriptor */
	OK(truncate(P("g"), 100));
	struct stat st;
	OK(fstat(fd1, &st));
	ck_assert_int_eq(st.st_size, 100);
	munmap(map, size);
	close(fd1);
	close(fd_g);

	/* after the kernel forgets, the written bytes are memfs's */
	ov_forget(hx_mnt.dir);
	unsigned char *got = pread_range(P("f"), 100, 0);
	ck_assert(memcmp(got, want, 100) == 0);
	free(got);
	/* and lower never saw any of it */
	ov_pattern(want, size, 1);
	got = pread_range(J(l, "f"), size, 0);
	ck_assert(memcmp(got, want, size) == 0);
	free(got);
}
END_TEST

START_TEST(an_open_for_writing_that_writes_nothing_copies_nothing)
{
	const char *l = hx_lower(0);

	ov_put_pattern(J(l, "f"), 8 * MiB, 1);
	hx_mount_lower(&hx_mnt, 1, NULL);
	uint64_t used0 = ov_used(hx_mnt.dir);
	char c;

	int fd = open_or_die(P("f"), O_RDWR);
	ck_assert_int_eq(pread(fd, &c, 1, 4 * MiB), 1);
	OK(fsync(fd));
	OK(fdatasync(fd));
	close(fd);
	fd = open_or_die(P("f"), O_WRONLY | O_APPEND);
	close(fd);
	fd = open_or_die(P("f"), O_WRONLY);
	OK(fsync(fd));
	close(fd);
	fd = open_or_die(P("f"), O_RDWR);
	void *m = mmap(NULL, 8 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(m != MAP_FAILED);
	ck_assert_int_eq(((volatile char *)m)[6 * MiB], ((char *)m)[6 * MiB]); /* read only */
	OK(msync(m, 8 * MiB, MS_SYNC));
	munmap(m, 8 * MiB);
	close(fd);
	ck_assert_uint_eq(ov_used_settled(hx_mnt.dir, used0), used0);
	if (!hx_oracle())
		ck_assert_uint_eq(used0, 0);
	ov_check_same_file(P("f"), J(l, "f"));
}
END_TEST

/* Pages of the file at path in the page cache (mincore of a fresh mapping). */
static long resident_pages(const char *path)
{
	int fd = open_or_die(path, O_RDONLY);
	off_t size = st_of(path).st_size;
	long pages = (size + CHUNK - 1) / CHUNK, n = 0;
	unsigned char *vec = malloc((size_t)pages);
	void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);

	ck_assert(vec && m != MAP_FAILED);
	OK(mincore(m, (size_t)size, vec));
	for (long i = 0; i < pages; i++)
		n += vec[i] & 1;
	munmap(m, (size_t)size);
	close(fd);
	free(vec);
	return n;
}

/* Drop the clean pages of path from the page cache. */
static void evict(const char *path)
{
	int fd = open_or_die(path, O_RDONLY);

	OK(fdatasync(fd));
	ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
	close(fd);
}

/*
 * A lower directory on a disk filesystem, whose page cache can be emptied
 * (a tmpfs file's pages are the file): /var/tmp/memfs-hx-disk-PID, the
 * leftovers of dead test processes removed first.  NULL if /var/tmp is not
 * such a filesystem.
 */
static char disk_dir[PATH_MAX];

static const char *disk_lower(void)
{
	struct statfs sf;

	if (statfs("/var/tmp", &sf) < 0 || sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC)
		return NULL;
	hx_sh("for d in /var/tmp/memfs-hx-disk-*; do [ -d \"$d\" ] || continue; "
	      "kill -0 \"${d##*-}\" 2>/dev/null || rm -rf \"$d\"; done");
	snprintf(disk_dir, sizeof(disk_dir), "/var/tmp/memfs-hx-disk-%d", (int)getpid());
	ov_mkdirs(disk_dir, 0755);
	return disk_dir;
}

START_TEST(o_trunc_and_truncate_to_zero_never_read_the_lower_file)
{
	char opts[PATH_MAX + 16];
	const char *const names[] = {"a", "b", "c", "keep-open", "control"};

	MEMFS_ONLY(); /* what the daemon reads */
	const char *d = disk_lower();
	if (!d) {
		fprintf(stderr, "%s: /var/tmp is not a disk filesystem: nothing to watch\n",
			__func__);
		return;
	}
	for (size_t i = 0; i < 5; i++) {
		ov_put_pattern(J(d, names[i]), 4 * MiB, i + 1);
		evict(J(d, names[i]));
		ck_assert_msg(resident_pages(J(d, names[i])) == 0,
			      "%s: pages stay cached after POSIX_FADV_DONTNEED", names[i]);
	}
	snprintf(opts, sizeof(opts), "lower=%s", d);
	hx_mount(&hx_mnt, opts);

	/* the control: a read through the mount brings lower pages in */
	int fd = open_or_die(P("control"), O_RDONLY);
	char c;
	ck_assert_int_eq(pread(fd, &c, 1, 2 * MiB), 1);
	close(fd);
	ck_assert_msg(resident_pages(J(d, "control")) > 0, "a read left no lower page cached");

	fd = open_or_die(P("a"), O_WRONLY | O_TRUNC);
	struct stat st;
	OK(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 0);
	close(fd);
	OK(truncate(P("b"), 0));
	fd = open_or_die(P("c"), O_RDWR);
	OK(ftruncate(fd, 0));
	OK(ftruncate(fd, 4 * MiB)); /* grown again: zeros, not lower bytes */
	close(fd);
	int keep = open_or_die(P("keep-open"), O_RDONLY); /* mapped by the daemon now */
	fd = open_or_die(P("keep-open"), O_RDWR | O_TRUNC);
	close(fd);
	close(keep);
	ck_assert_uint_eq(ov_used_settled(hx_mnt.dir, 0), 0);
	const char *const cut[] = {"a", "b", "c", "keep-open"};
	for (size_t i = 0; i < 4; i++)
		ck_assert_msg(resident_pages(J(d, cut[i])) == 0,
			      "%s: truncating it to 0 read %ld pages of the lower file", cut[i],
			      resident_pages(J(d, cut[i])));
	unsigned char *z = pread_range(P("c"), 4 * MiB, 0);
	size_t nz = 0;
	while (nz < 4 * MiB && z[nz] == 0)
		nz++;
	ck_assert_msg(nz == 4 * MiB, "c: byte %zu is not zero after truncate to 0 and back", nz);
	free(z);
	ck_assert_int_eq(st_of(P("a")).st_size, 0);
	ck_assert_int_eq(st_of(J(d, "a")).st_size, 4 * MiB);
	hx_umount(&hx_mnt);
	ck_assert_int_eq(hx_sh("rm -rf '%s'", d), 0);
}
END_TEST

/* ---- a lower file truncated underneath ---- */

struct reader_result {
	long ok, eio, short_reads, wrong, other;
	int other_errno;
};

/* Read path with O_DIRECT (every read reaches the daemon) until told to stop. */
static void reader(const char *path, size_t size, int ready_fd, int stop_fd, int result_fd)
{
	struct reader_result r = {0};
	unsigned char *want = malloc(size), *buf;
	int fd = open(path, O_RDONLY | O_DIRECT);
	const size_t piece = 64 * 1024;

	if (fd < 0 || posix_memalign((void **)&buf, CHUNK, piece))
		_exit(2);
	ov_pattern(want, size, 1);
	for (long i = 0;; i++) {
		off_t off = (off_t)((i * 7 % (long)(size / piece)) * piece);
		ssize_t n = pread(fd, buf, piece, off);

		if (n == (ssize_t)piece)
			memcmp(buf, want + off, piece) == 0 ? r.ok++ : r.wrong++;
		else if (n >= 0)
			memcmp(buf, want + off, (size_t)n) == 0 ? r.short_reads++ : r.wrong++;
		else if (errno == EIO)
			r.eio++;
		else {
			r.other++;
			r.other_errno = errno;
		}
		if (i == 50 && write(ready_fd, "r", 1) != 1)
			_exit(3);
		struct pollfd p = {stop_fd, POLLIN, 0};
		if (i > 50 && poll(&p, 1, 0) > 0)
			break;
	}
	if (write(result_fd, &r, sizeof(r)) != sizeof(r))
		_exit(4);
	_exit(0);
}

START_TEST(a_lower_file_truncated_underneath_a_reader_gives_eio_and_the_daemon_survives)
{
	const char *l = hx_lower(0);
	const size_t size = 8 * MiB;
	int ready[2], stop[2], res[2];

	MEMFS_ONLY(); /* a tmpfs copy does not see its source change */
	ov_put_pattern(J(l, "big"), size, 1);
	ov_put_pattern(J(l, "other"), MiB, 2);
	hx_mount_lower(&hx_mnt, 1, NULL);
	OK(pipe(ready));
	OK(pipe(stop));
	OK(pipe(res));
	pid_t pid = fork();
	OK(pid);
	if (pid == 0)
		reader(P("big"), size, ready[1], stop[0], res[1]);
	char c;
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	OK(truncate(J(l, "big"), CHUNK)); /* underneath: not through the mount */
	usleep(100000);			  /* every failed reply makes libfuse print a line */
	ck_assert_int_eq(write(stop[1], "s", 1), 1);
	struct reader_result r;
	ck_assert_int_eq(read(res[0], &r, sizeof(r)), sizeof(r));
	int status;
	OK(waitpid(pid, &status, 0));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader: status %#x", status);
	fprintf(stderr, "reader: %ld full reads, %ld EIO, %ld short, %ld wrong, %ld other\n", r.ok,
		r.eio, r.short_reads, r.wrong, r.other);
	ck_assert_msg(r.wrong == 0, "%ld reads returned bytes the file never had", r.wrong);
	ck_assert_msg(r.other == 0, "%ld reads failed with %s", r.other,
		      strerrorname_np(r.other_errno));
	ck_assert_msg(r.eio + r.short_reads > 0, "no read noticed the truncation");

	/* the daemon is alive and serves everything else */
	ck_assert_int_eq(kill(hx_mnt.pid, 0), 0);
	ov_check_same_file(P("other"), J(l, "other"));
	ov_put(P("new"), "new");
	ov_check(P("new"), "new");
	ck_assert_int_eq(st_of(P("big")).st_size, (off_t)size);
	/* a copy-up of a chunk the lower file no longer has */
	int fd = open_or_die(P("big"), O_WRONLY);
	errno = 0;
	ck_assert_msg(pwrite(fd, "x", 1, MiB + 5) < 0 && errno == EIO,
		      "a write into a chunk truncated underneath: %s", strerrorname_np(errno));
	close(fd);
	ck_assert_int_eq(kill(hx_mnt.pid, 0), 0);
	/* the teardown checks that the daemon exits with status 0 */
}
END_TEST

/* ---- many files, many writers ---- */

/* Mappings of files below dir in the address space of pid. */
static int lower_maps(pid_t pid, const char *dir)
{
	char path[64], line[PATH_MAX + 256];
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	ck_assert_msg(f, "open %s: %s", path, strerrorname_np(errno));
	while (fgets(line, sizeof(line), f))
		n += strstr(line, dir) != NULL;
	fclose(f);
	return n;
}

START_TEST(more_lower_files_open_than_mappings_kept_all_read_and_write_right)
{
	const char *l = hx_lower(0);
	const int n = 4200; /* more than the 4096 mappings memfs keeps */
	char name[32];
	struct rlimit rl;

	OK(getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_max < (rlim_t)n + 100) {
		fprintf(stderr, "%s: RLIMIT_NOFILE hard limit %ju: cannot hold %d files open\n",
			__func__, (uintmax_t)rl.rlim_max, n);
		return;
	}
	rl.rlim_cur = rl.rlim_max;
	OK(setrlimit(RLIMIT_NOFILE, &rl));
	ov_mkdirs(J(l, "d"), 0755);
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "d/f%04d", i);
		ov_put_pattern(J(l, name), CHUNK + 904, (uint64_t)i);
	}
	hx_mount_lower(&hx_mnt, 1, NULL);
	int *fds = malloc(n * sizeof(*fds));
	unsigned char want[CHUNK + 904], *got;

	ck_assert_int_eq(posix_memalign((void **)&got, CHUNK, 2 * CHUNK), 0);
	for (int i = 0; i < n; i++) { /* O_DIRECT: every read and write reaches the daemon */
		snprintf(name, sizeof(name), "d/f%04d", i);
		fds[i] = open_or_die(P(name), O_RDWR | O_DIRECT);
	}
	/* every file open at once: read, copy up one byte, read again */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < n; i++) {
			ov_pattern(want, sizeof(want), (uint64_t)i);
			if (pass)
				want[CHUNK + 3] = 'w';
			ssize_t r = pread(fds[i], got, 2 * CHUNK, 0);
			if (r != (ssize_t)sizeof(want) || memcmp(got, want, sizeof(want)) != 0)
				ck_abort_msg("f%04d: wrong bytes in pass %d (%zd read)", i, pass,
					     r);
			if (!pass && pwrite(fds[i], "w", 1, CHUNK + 3) != 1)
				ck_abort_msg("f%04d: pwrite: %s", i, strerrorname_np(errno));
		}
	for (int i = 0; i < n; i++)
		close(fds[i]);
	free(fds);
	free(got);
	if (hx_oracle())
		return;
	ck_assert_uint_eq(ov_used_settled(hx_mnt.dir, (uint64_t)n * CHUNK), (uint64_t)n * CHUNK);
	/* the kernel sends the last closes (RELEASE) in the background: let
	 * the daemon finish them before the teardown unmounts (see
	 * unmounting_while_lower_files_are_being_released_exits_cleanly) */
	for (int i = 0; i < 1000 && lower_maps(hx_mnt.pid, l) > 0; i++)
		usleep(10000);
	ck_assert_int_eq(lower_maps(hx_mnt.pid, l), 0);
}
END_TEST

START_TEST(unmounting_while_lower_files_are_being_released_exits_cleanly)
{
	const char *l = hx_lower(0);
	const int n = 4000;
	char name[32];
	struct rlimit rl;

	MEMFS_ONLY();
	/* Unmounting while thousands of RELEASEs are still queued makes a
	 * worker's read of /dev/fuse fail with ECONNABORTED (libfuse prints
	 * "reading device: Software caused connection abort"); memfs must
	 * still exit 0, the mount being gone as asked. */
	OK(getrlimit(RLIMIT_NOFILE, &rl));
	if (rl.rlim_max < (rlim_t)n + 100)
		return;
	rl.rlim_cur = rl.rlim_max;
	OK(setrlimit(RLIMIT_NOFILE, &rl));
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%04d", i);
		ov_put_pattern(J(l, name), 5000, (uint64_t)i);
	}
	for (int round = 0; round < 3; round++) {
		int *fds = malloc(n * sizeof(*fds));
		char c;

		hx_mount_lower(&hx_mnt, 1, NULL);
		for (int i = 0; i < n; i++) {
			snprintf(name, sizeof(name), "f%04d", i);
			fds[i] = open_or_die(P(name), O_RDONLY);
			ck_assert_int_eq(pread(fds[i], &c, 1, 0), 1);
		}
		for (int i = 0; i < n; i++)
			close(fds[i]);
		free(fds);
		hx_umount(&hx_mnt); /* asserts the daemon exited 0 */
	}
}
END_TEST

/*
 * Processes writing single bytes into their own chunks of one lower file
 * while others read it: every chunk copied up once, nothing lost, and the
 * bytes never written are the lower ones.
 */
START_TEST(concurrent_writers_and_readers_of_one_lower_file_lose_nothing)
{
	const char *l = hx_lower(0);
	const int writers = 3, per_writer = 300;
	const size_t size = 4 * MiB;

	ov_put_pattern(J(l, "f"), size, 9);
	hx_mount_lower(&hx_mnt, 1, NULL);
	pid_t pids[5];

	for (int w = 0; w < writers + 2; w++) {
		pids[w] = fork();
		OK(pids[w]);
		if (pids[w])
			continue;
		int fd = open(P("f"), O_RDWR);
		unsigned char buf[CHUNK];

		if (fd < 0)
			_exit(2);
		for (int i = 0; i < per_writer; i++) {
			/* writer w owns the chunks c with c % writers == w */
			off_t chunk =
			    (off_t)((i * 7 + w) % (int)(size / CHUNK / writers) * writers + w);

			if (w < writers) {
				unsigned char b = (unsigned char)('A' + w);
				if (pwrite(fd, &b, 1, chunk * CHUNK + i % CHUNK) != 1)
					_exit(3);
			} else if (pread(fd, buf, sizeof(buf), (off_t)(i % 1024) * CHUNK) !=
				   CHUNK) {
				_exit(4);
			}
		}
		close(fd);
		_exit(0);
	}
	for (int w = 0; w < writers + 2; w++) {
		int status;

		OK(waitpid(pids[w], &status, 0));
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d: %#x", w,
			      status);
	}
	unsigned char *want = malloc(size);
	ov_pattern(want, size, 9);
	for (int w = 0; w < writers; w++)
		for (int i = 0; i < per_writer; i++) {
			off_t chunk =
			    (off_t)((i * 7 + w) % (int)(size / CHUNK / writers) * writers + w);
			want[chunk * CHUNK + i % CHUNK] = (unsigned char)('A' + w);
		}
	ov_forget(hx_mnt.dir);
	unsigned char *got = pread_range(P("f"), size, 0);
	size_t i = 0;
	while (i < size && got[i] == want[i])
		i++;
	ck_assert_msg(i == size, "byte %zu: %#x, want %#x", i, i < size ? got[i] : 0,
		      i < size ? want[i] : 0);
	free(got);
	free(want);
}
END_TEST

/* ---- statfs ---- */

START_TEST(statfs_counts_only_memfs_memory_against_size_and_nr_inodes)
{
	const char *l = hx_lower(0);
	char name[32];

	MEMFS_ONLY(); /* a tmpfs copy would need 64 MiB of its 8 */
	ov_put_pattern(J(l, "dense"), 64 * MiB, 1);
	put_sparse(J(l, "sparse"), GiB, GiB / 2, 100, 2);
	ov_mkdirs(J(l, "many"), 0755);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "many/f%03d", i);
		ov_put(J(l, name), name);
	}
	hx_mount_lower(&hx_mnt, 1, "size=8m,nr_inodes=50");
	struct statvfs sv;

	for (int i = 0; i < 300; i++) { /* every lower inode made */
		snprintf(name, sizeof(name), "many/f%03d", i);
		st_of(P(name));
	}
	ov_check_same_file(P("dense"), J(l, "dense")); /* larger than size= */
	OK(statvfs(hx_mnt.dir, &sv));
	ck_assert_int_eq(sv.f_frsize, CHUNK);
	ck_assert_int_eq(sv.f_blocks, 2048);
	ck_assert_int_eq(sv.f_bfree, 2048);
	ck_assert_int_eq(sv.f_files, 50);
	ck_assert_int_eq(sv.f_ffree, 49); /* the root */

	/* one byte into each of 2048 chunks of the lower file fills size= */
	int fd = open_or_die(P("dense"), O_WRONLY);
	for (int i = 0; i < 2048; i++)
		ck_assert_msg(pwrite(fd, "w", 1, (off_t)i * 2 * CHUNK + 1) == 1,
			      "write into chunk %d: %s", i * 2, strerrorname_np(errno));
	errno = 0;
	ck_assert_msg(pwrite(fd, "w", 1, 2048 * 2 * CHUNK + 1) < 0 && errno == ENOSPC,
		      "a copy-up past size=: %s", strerrorname_np(errno));
	OK(statvfs(hx_mnt.dir, &sv));
	ck_assert_int_eq(sv.f_bfree, 0);
	/* the lower bytes around are still readable, the copied ones changed */
	unsigned char *got = pread_range(P("dense"), 2 * CHUNK, 100 * CHUNK);
	unsigned char *want = pread_range(J(l, "dense"), 2 * CHUNK, 100 * CHUNK);
	want[1] = 'w';
	ck_assert(memcmp(got, want, 2 * CHUNK) == 0);
	free(got);
	free(want);
	OK(ftruncate(fd, 0));
	close(fd);
	OK(statvfs(hx_mnt.dir, &sv));
	ck_assert_int_eq(sv.f_bfree, 2048);

	/* inodes: lower ones are free, new names and new links are not */
	int made = 0;
	for (;; made++) {
		snprintf(name, sizeof(name), "new%03d", made);
		int nfd = open(P(name), O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (nfd < 0) {
			ck_assert_int_eq(errno, ENOSPC);
			break;
		}
		close(nfd);
	}
	ck_assert_int_eq(made, 49);
	OK(unlink(P("new000")));
	OK(link(P("many/f000"), P("linked")));
	FAILS(link(P("many/f001"), P("linked2")), ENOSPC);
	OK(unlink(P("many/f002"))); /* a lower name gives back nothing */
	FAILS(link(P("many/f001"), P("linked2")), ENOSPC);
	OK(unlink(P("linked")));
	OK(link(P("many/f001"), P("linked2")));
	OK(statvfs(hx_mnt.dir, &sv));
	ck_assert_int_eq(sv.f_ffree, 0);
}
END_TEST

static TCase *area(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, hx_setup_nomount, hx_teardown);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *overlay_data_suite(void)
{
	Suite *s = suite_create("overlay_data");
	TCase *tc = area(s, "read");

	tcase_add_test(tc, reading_lower_files_gives_their_bytes_and_uses_no_memory_of_memfs);
	tc = area(s, "copyup");
	tcase_add_test(tc, a_one_byte_write_into_a_1gib_lower_file_uses_one_block);
	tcase_add_test(tc, truncate_of_lower_files_matches_tmpfs_and_never_brings_back_lower_bytes);
	tcase_add_test(tc, fallocate_in_every_mode_on_lower_files_matches_tmpfs);
	tcase_add_test(tc, copy_file_range_between_lower_files_gives_the_bytes_tmpfs_gives);
	tcase_add_test(tc, seek_data_and_seek_hole_on_lower_files_match_tmpfs);
	tcase_add_test(tc, metadata_changes_of_lower_entries_use_no_blocks);
	tc = area(s, "coherence");
	tcase_add_test(tc,
		       an_open_descriptor_and_a_shared_mapping_of_a_lower_file_see_later_writes);
	tcase_add_test(tc, an_open_for_writing_that_writes_nothing_copies_nothing);
	tcase_add_test(tc, o_trunc_and_truncate_to_zero_never_read_the_lower_file);
	tcase_add_test(tc, more_lower_files_open_than_mappings_kept_all_read_and_write_right);
	tcase_add_test(tc, concurrent_writers_and_readers_of_one_lower_file_lose_nothing);
	tcase_add_test(tc, unmounting_while_lower_files_are_being_released_exits_cleanly);
	tc = area(s, "underneath");
	tcase_add_test(
	    tc, a_lower_file_truncated_underneath_a_reader_gives_eio_and_the_daemon_survives);
	tc = area(s, "statfs");
	tcase_add_test(tc, statfs_counts_only_memfs_memory_against_size_and_nr_inodes);
	return s;
}

int main(void)
{
	return hx_run(overlay_data_suite());
}
