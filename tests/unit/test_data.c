/*
 * test_data.c — unit tests of src/data.c, the sparse chunk map behind a file's contents.
 *
 * Each test drives one mfs_data (sometimes two) directly, plays the inode's part (it keeps the
 * file size and the "no nonzero byte past the size" rule), and checks contents, accounting
 * (mfs_space used == chunks * MFS_CHUNK_SIZE) and mfs_data_check() after the operations.  The
 * expected SEEK_DATA / SEEK_HOLE answers were taken from the same operations on a tmpfs file.
 * The randomized test mirrors every operation on a flat buffer and a per-chunk state array.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "data.h"

#define CS ((uint64_t)MFS_CHUNK_SIZE)
#define KiB ((uint64_t)1024)
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define TiB (1024 * GiB)

static struct mfs_data d;
static struct mfs_space sp;

static void setup(void)
{
	mfs_data_init(&d);
	atomic_store(&sp.used_bytes, 0);
	sp.limit_bytes = 1 * GiB;
}

static void teardown(void)
{
	mfs_data_free(&d, &sp);
	ck_assert_uint_eq(mfs_data_chunks(&d), 0);
	ck_assert_ptr_null(d.root);
	ck_assert_uint_eq(mfs_space_used(&sp), 0);
}

#define assert_consistent(dp)                                                                      \
	do {                                                                                       \
		const char *why_ = NULL;                                                           \
		int ret_ = mfs_data_check((dp), &why_);                                            \
		ck_assert_msg(ret_ == 0, "mfs_data_check: %s", why_ ? why_ : "(no reason)");       \
	} while (0)

/* Every present chunk, and nothing else, is charged to the budget. */
#define assert_accounted(dp)                                                                       \
	do {                                                                                       \
		assert_consistent(dp);                                                             \
		ck_assert_uint_eq(mfs_space_used(&sp), mfs_data_chunks(dp) *CS);                         \
	} while (0)

static void pattern(unsigned char *buf, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)((i * 131 + seed * 7 + (i >> 9)) % 251 + 1);
}

static void write_ok(struct mfs_data *dp, uint64_t off, const void *buf, size_t len)
{
	ck_assert_int_eq(mfs_data_write(dp, &sp, off, buf, len), 0);
}

static void write_byte(struct mfs_data *dp, uint64_t off, unsigned char c)
{
	write_ok(dp, off, &c, 1);
}

static unsigned char read_byte(const struct mfs_data *dp, uint64_t off)
{
	unsigned char c = 0xEE;

	mfs_data_read(dp, off, &c, 1);
	return c;
}

static int all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

static void assert_zeros(const struct mfs_data *dp, uint64_t off, size_t len)
{
	unsigned char *buf = malloc(len);

	ck_assert_ptr_nonnull(buf);
	mfs_data_read(dp, off, buf, len);
	ck_assert_msg(all_zero(buf, len), "nonzero byte in [%llu, +%zu)", (unsigned long long)off,
		      len);
	free(buf);
}

/* The shared page holes read from. */
static const void *zero_page(void)
{
	struct mfs_data empty;
	struct iovec iov[3];

	mfs_data_init(&empty);
	ck_assert_int_eq(mfs_data_read_iov(&empty, 0, 10, iov, 3), 1);
	return iov[0].iov_base;
}

/* Buffer bytes chunk idx holds: the length of its first piece, unless that is the zero page. */
static size_t cap_of(const struct mfs_data *dp, uint64_t idx)
{
	struct iovec iov[3];
	int n = mfs_data_read_iov(dp, idx * CS, CS, iov, 3);

	ck_assert_int_ge(n, 1);
	return iov[0].iov_base == zero_page() ? 0 : iov[0].iov_len;
}

static void *chunk_ptr(const struct mfs_data *dp, uint64_t idx)
{
	struct iovec iov[3];

	ck_assert_int_ge(mfs_data_read_iov(dp, idx * CS, CS, iov, 3), 1);
	return iov[0].iov_base;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- sparseness and the cost of chunks ---- */

START_TEST(sparse_1tib_file_with_three_writes_holds_three_chunks)
{
	uint64_t size = 1 * TiB;
	double t0;

	write_byte(&d, 0, 'a');
	write_byte(&d, 512 * GiB + 7, 'b');
	write_byte(&d, size - 1, 'c');
	ck_assert_uint_eq(mfs_data_chunks(&d), 3);
	ck_assert_uint_eq(mfs_data_blocks(&d), 3 * (CS / 512));
	assert_accounted(&d);
	ck_assert_int_eq(read_byte(&d, 0), 'a');
	ck_assert_int_eq(read_byte(&d, 512 * GiB + 7), 'b');
	ck_assert_int_eq(read_byte(&d, size - 1), 'c');
	ck_assert_int_eq(read_byte(&d, 300 * GiB), 0);

	/* SEEK_DATA / SEEK_HOLE skip the empty subtrees: a thousand rounds are instant. */
	t0 = now_s();
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(mfs_data_seek(&d, size, 1, SEEK_HOLE), (int64_t)CS);
		ck_assert_int_eq(mfs_data_seek(&d, size, CS, SEEK_DATA), (int64_t)(512 * GiB));
		ck_assert_int_eq(mfs_data_seek(&d, size, 512 * GiB + CS, SEEK_DATA),
				 (int64_t)(size - CS));
		ck_assert_int_eq(mfs_data_seek(&d, size, size - CS, SEEK_HOLE), (int64_t)size);
	}
	ck_assert_msg(now_s() - t0 < 2.0, "4000 seeks in a sparse 1 TiB file took %.2f s",
		      now_s() - t0);
}
END_TEST

START_TEST(append_never_moves_full_chunks)
{
	enum { NCHUNKS = 24, STEP = 1000 };
	void *full[NCHUNKS] = {0};
	unsigned char buf[STEP], *ref = calloc(NCHUNKS, CS);
	uint64_t size = 0;

	ck_assert_ptr_nonnull(ref);
	while (size + STEP <= NCHUNKS * CS) {
		pattern(buf, STEP, (unsigned)size);
		write_ok(&d, size, buf, STEP);
		memcpy(ref + size, buf, STEP);
		size += STEP;
		for (uint64_t i = 0; i < size / CS; i++) {
			/* Chunk i is full: once seen, its buffer must never move again. */
			if (!full[i])
				full[i] = chunk_ptr(&d, i);
			if (cap_of(&d, i) != CS || chunk_ptr(&d, i) != full[i])
				ck_abort_msg("full chunk %llu moved at size %llu",
					     (unsigned long long)i, (unsigned long long)size);
		}
	}
	assert_accounted(&d);
	for (uint64_t i = 0; i < size / CS; i++)
		ck_assert_int_eq(memcmp(chunk_ptr(&d, i), ref + i * CS, CS), 0);
	free(ref);
}
END_TEST

START_TEST(small_file_tail_costs_about_its_size)
{
	static const struct {
		size_t size, cap;
	} cases[] = {{1, 64},	   {64, 64},	 {65, 128},   {100, 128},
		     {1000, 1024}, {2049, 4096}, {4096, 4096}};
	unsigned char buf[4096];

	pattern(buf, sizeof(buf), 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mfs_data f;

		mfs_data_init(&f);
		write_ok(&f, 0, buf, cases[i].size);
		ck_assert_msg(cap_of(&f, 0) == cases[i].cap, "%zu bytes: buffer %zu, want %zu",
			      cases[i].size, cap_of(&f, 0), cases[i].cap);
		/* The budget is charged a whole chunk, like a tmpfs page. */
		ck_assert_uint_eq(mfs_space_used(&sp), CS);
		assert_consistent(&f);
		mfs_data_free(&f, &sp);
	}
}
END_TEST

START_TEST(tail_buffer_grows_by_doubling_one_byte_at_a_time)
{
	for (uint64_t size = 1; size <= 300; size++) {
		size_t cap;

		write_byte(&d, size - 1, (unsigned char)size);
		cap = cap_of(&d, 0);
		ck_assert_msg(cap >= size && (cap == 64 || cap < 2 * size),
			      "size %llu has a %zu-byte buffer", (unsigned long long)size, cap);
		ck_assert_uint_eq(cap & (cap - 1), 0);
	}
	ck_assert_uint_eq(cap_of(&d, 0), 512);
	for (uint64_t i = 0; i < 300; i++)
		ck_assert_int_eq(read_byte(&d, i), (unsigned char)(i + 1));
	assert_accounted(&d);
}
END_TEST

START_TEST(short_buffer_is_filled_out_when_a_later_chunk_appears)
{
	unsigned char buf[10];

	pattern(buf, sizeof(buf), 2);
	write_ok(&d, 0, buf, sizeof(buf));
	ck_assert_uint_eq(cap_of(&d, 0), 64);
	/* Only the last chunk may be short, so that a read needs at most one extra iovec. */
	write_ok(&d, 3 * CS, buf, sizeof(buf));
	ck_assert_uint_eq(cap_of(&d, 0), CS);
	ck_assert_uint_eq(cap_of(&d, 3), 64);
	/* A short write into a chunk before the last makes it full at once. */
	write_ok(&d, 1 * CS, buf, sizeof(buf));
	ck_assert_uint_eq(cap_of(&d, 1), CS);
	ck_assert_int_eq(memcmp(chunk_ptr(&d, 1), buf, sizeof(buf)), 0);
	assert_accounted(&d);
}
END_TEST

START_TEST(read_iov_never_needs_more_than_iov_max)
{
	enum { N = 20 };
	static unsigned char ref[N * CS];
	unsigned char buf[10];
	uint64_t order[N];
	struct iovec iov[N + 2];

	/* Ten bytes at the start of every chunk, written back to front. */
	for (uint64_t i = 0; i < N; i++)
		order[i] = N - 1 - i;
	for (uint64_t i = 0; i < N; i++) {
		pattern(buf, sizeof(buf), (unsigned)order[i]);
		write_ok(&d, order[i] * CS, buf, sizeof(buf));
		memcpy(ref + order[i] * CS, buf, sizeof(buf));
	}
	assert_accounted(&d);
	for (uint64_t off = 0; off < N * CS; off += 509) {
		for (size_t len = 0; off + len <= N * CS; len += 1531) {
			int max = mfs_data_iov_max(off, len);
			int n = mfs_data_read_iov(&d, off, len, iov, max);
			size_t got = 0;

			if (n < 0 || n > max)
				ck_abort_msg("[%llu, +%zu): %d pieces for %d slots",
					     (unsigned long long)off, len, n, max);
			for (int k = 0; k < n; k++) {
				if (memcmp(iov[k].iov_base, ref + off + got, iov[k].iov_len))
					ck_abort_msg("[%llu, +%zu): piece %d differs",
						     (unsigned long long)off, len, k);
				got += iov[k].iov_len;
			}
			if (got != len)
				ck_abort_msg("[%llu, +%zu): pieces cover %llu bytes",
					     (unsigned long long)off, len, (unsigned long long)got);
		}
	}
}
END_TEST

START_TEST(read_iov_points_holes_at_one_zero_page_and_rejects_a_short_array)
{
	struct iovec iov[8];
	unsigned char buf[100];

	pattern(buf, sizeof(buf), 3);
	write_ok(&d, 2 * CS, buf, sizeof(buf));
	ck_assert_int_eq(mfs_data_read_iov(&d, 100, 2 * CS, iov, mfs_data_iov_max(100, 2 * CS)), 3);
	/* [100, 4096) hole, [4096, 8192) hole, [8192, 8292) data */
	ck_assert_ptr_eq(iov[0].iov_base, zero_page());
	ck_assert_uint_eq(iov[0].iov_len, CS - 100);
	ck_assert_ptr_eq(iov[1].iov_base, zero_page());
	ck_assert_uint_eq(iov[1].iov_len, CS);
	ck_assert_uint_eq(iov[2].iov_len, 100);
	ck_assert_int_eq(memcmp(iov[2].iov_base, buf, 100), 0);
	ck_assert_int_eq(mfs_data_read_iov(&d, 100, 2 * CS, iov, 3), -EINVAL);
	ck_assert_int_eq(mfs_data_read_iov(&d, 0, 0, iov, 2), 0);
}
END_TEST

START_TEST(write_iov_gives_pointers_to_exactly_the_range)
{
	unsigned char src[10000], back[10000];
	struct iovec iov[8];
	int n = mfs_data_write_iov(&d, &sp, 5000, sizeof(src), iov, mfs_data_iov_max(5000, 10000));
	size_t done = 0;

	ck_assert_int_eq(n, 3);
	ck_assert_uint_eq(iov[0].iov_len, 2 * CS - 5000);
	ck_assert_uint_eq(iov[1].iov_len, CS);
	ck_assert_uint_eq(iov[2].iov_len, 15000 - 3 * CS);
	pattern(src, sizeof(src), 4);
	for (int k = 0; k < n; k++) {
		memcpy(iov[k].iov_base, src + done, iov[k].iov_len);
		done += iov[k].iov_len;
	}
	mfs_data_read(&d, 5000, back, sizeof(back));
	ck_assert_int_eq(memcmp(src, back, sizeof(src)), 0);
	ck_assert_uint_eq(mfs_data_chunks(&d), 3); /* chunk 0 is still a hole */
	ck_assert_int_eq(mfs_data_seek(&d, 15000, 0, SEEK_DATA), (int64_t)CS);
	ck_assert_int_eq(mfs_data_write_iov(&d, &sp, 0, 3 * CS, iov, 3), -EINVAL);
	ck_assert_uint_eq(mfs_data_chunks(&d), 3);
	assert_accounted(&d);
}
END_TEST

START_TEST(write_past_limit_gives_enospc_and_leaks_nothing)
{
	unsigned char *buf = malloc(10 * CS);
	struct iovec iov[16];

	ck_assert_ptr_nonnull(buf);
	pattern(buf, 10 * CS, 5);
	sp.limit_bytes = 8 * CS;
	ck_assert_int_eq(mfs_data_write(&d, &sp, 0, buf, 10 * CS), -ENOSPC);
	assert_accounted(&d);
	ck_assert_uint_le(mfs_space_used(&sp), sp.limit_bytes);
	/* Chunks made before the failure hold zeros and are not data. */
	assert_zeros(&d, 0, 10 * CS);
	ck_assert_int_eq(mfs_data_seek(&d, 10 * CS, 0, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(mfs_data_write_iov(&d, &sp, 0, 10 * CS, iov, 16), -ENOSPC);
	assert_accounted(&d);

	/* Freeing space makes the file writable again. */
	mfs_data_truncate(&d, &sp, 0);
	ck_assert_uint_eq(mfs_space_used(&sp), 0);
	write_ok(&d, 0, buf, 8 * CS);
	ck_assert_int_eq(mfs_data_write(&d, &sp, 8 * CS, buf, 1), -ENOSPC);
	ck_assert_int_eq(memcmp(chunk_ptr(&d, 7), buf + 7 * CS, CS), 0);
	assert_accounted(&d);
	free(buf);
}
END_TEST

/* ---- truncate, punch, allocate, zero range ---- */

START_TEST(truncate_down_zeroes_the_tail_and_up_reads_zeros)
{
	unsigned char buf[10000];

	memset(buf, 0xAA, sizeof(buf));
	write_ok(&d, 0, buf, sizeof(buf));
	ck_assert_uint_eq(mfs_data_chunks(&d), 3);
	mfs_data_truncate(&d, &sp, 5000);
	ck_assert_uint_eq(mfs_data_chunks(&d), 2);
	assert_accounted(&d);
	mfs_data_truncate(&d, &sp, 20000);
	ck_assert_uint_eq(mfs_data_chunks(&d), 2); /* growing allocates nothing */
	ck_assert_int_eq(read_byte(&d, 4999), 0xAA);
	assert_zeros(&d, 5000, 15000);
	mfs_data_truncate(&d, &sp, CS);
	ck_assert_uint_eq(mfs_data_chunks(&d), 1);
	mfs_data_truncate(&d, &sp, 0);
	ck_assert_uint_eq(mfs_data_chunks(&d), 0);
	ck_assert_ptr_null(d.root);
	ck_assert_uint_eq(mfs_data_height(&d), 0);
	ck_assert_uint_eq(mfs_space_used(&sp), 0);
}
END_TEST

START_TEST(truncate_gives_back_the_tail_buffer)
{
	unsigned char buf[4096];

	pattern(buf, sizeof(buf), 6);
	write_ok(&d, 0, buf, sizeof(buf));
	mfs_data_truncate(&d, &sp, 10);
	ck_assert_uint_eq(cap_of(&d, 0), 64);
	ck_assert_int_eq(memcmp(chunk_ptr(&d, 0), buf, 10), 0);
	assert_zeros(&d, 10, CS - 10);
	assert_accounted(&d);
}
END_TEST

START_TEST(truncate_frees_chunks_allocated_past_the_new_size)
{
	write_byte(&d, 100, 1);
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 4 * CS, 4 * CS), 0); /* KEEP_SIZE */
	ck_assert_uint_eq(mfs_data_chunks(&d), 5);
	mfs_data_truncate(&d, &sp, 101);
	ck_assert_uint_eq(mfs_data_chunks(&d), 1);
	assert_accounted(&d);
}
END_TEST

START_TEST(punch_frees_whole_chunks_and_zeroes_partial_ones)
{
	unsigned char buf[5 * 4096];
	uint64_t size = sizeof(buf);

	memset(buf, 0x77, sizeof(buf));
	write_ok(&d, 0, buf, sizeof(buf));
	mfs_data_punch(&d, &sp, 100, 3 * CS - 50);
	ck_assert_uint_eq(mfs_data_chunks(&d), 3); /* chunks 1 and 2 are gone */
	ck_assert_int_eq(read_byte(&d, 99), 0x77);
	assert_zeros(&d, 100, 3 * CS - 50);
	ck_assert_int_eq(read_byte(&d, 3 * CS + 50), 0x77);
	ck_assert_int_eq(mfs_data_seek(&d, size, 0, SEEK_HOLE), (int64_t)CS);
	ck_assert_int_eq(mfs_data_seek(&d, size, CS, SEEK_DATA), (int64_t)(3 * CS));
	assert_accounted(&d);

	/* Inside one chunk, and up to the largest offset. */
	mfs_data_punch(&d, &sp, 3 * CS + 60, 10);
	ck_assert_int_eq(read_byte(&d, 3 * CS + 59), 0x77);
	assert_zeros(&d, 3 * CS + 60, 10);
	ck_assert_int_eq(read_byte(&d, 3 * CS + 70), 0x77);
	mfs_data_punch(&d, &sp, 0, UINT64_MAX);
	ck_assert_uint_eq(mfs_data_chunks(&d), 0);
	ck_assert_ptr_null(d.root);
	mfs_data_punch(&d, &sp, 5, 0);
	assert_accounted(&d);
}
END_TEST

START_TEST(allocate_makes_unwritten_chunks_that_seek_treats_as_holes)
{
	uint64_t size = 4 * CS;

	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 10, size - 10), 0);
	ck_assert_uint_eq(mfs_data_chunks(&d), 4);
	ck_assert_uint_eq(mfs_data_blocks(&d), 4 * (CS / 512));
	assert_accounted(&d);
	assert_zeros(&d, 0, size);
	ck_assert_int_eq(mfs_data_seek(&d, size, 0, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(mfs_data_seek(&d, size, 0, SEEK_HOLE), 0);
	write_byte(&d, 2 * CS + 10, 'z');
	ck_assert_int_eq(mfs_data_seek(&d, size, 0, SEEK_DATA), (int64_t)(2 * CS));
	ck_assert_int_eq(mfs_data_seek(&d, size, 2 * CS, SEEK_HOLE), (int64_t)(3 * CS));
	/* Allocating again over present chunks changes nothing. */
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 0, size), 0);
	ck_assert_uint_eq(mfs_data_chunks(&d), 4);
	ck_assert_int_eq(read_byte(&d, 2 * CS + 10), 'z');
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 0, 0), 0);
	assert_accounted(&d);
}
END_TEST

START_TEST(allocate_is_all_or_nothing_when_space_runs_out)
{
	sp.limit_bytes = 4 * CS;
	write_byte(&d, CS, 1);
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 0, 8 * CS), -ENOSPC);
	ck_assert_uint_eq(mfs_data_chunks(&d), 1);
	ck_assert_int_eq(read_byte(&d, CS), 1);
	assert_accounted(&d);
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 0, 4 * CS), 0);
	ck_assert_uint_eq(mfs_data_chunks(&d), 4);
	assert_accounted(&d);
}
END_TEST

START_TEST(zero_range_reads_zeros_and_keeps_the_range_allocated)
{
	unsigned char buf[3 * 4096];
	uint64_t size = sizeof(buf);

	memset(buf, 0xFF, sizeof(buf));
	write_ok(&d, 0, buf, sizeof(buf));
	ck_assert_int_eq(mfs_data_zero_range(&d, &sp, 100, 2 * CS), 0);
	ck_assert_uint_eq(mfs_data_chunks(&d), 3);
	ck_assert_int_eq(read_byte(&d, 99), 0xFF);
	assert_zeros(&d, 100, 2 * CS);
	ck_assert_int_eq(read_byte(&d, 2 * CS + 100), 0xFF);
	/* The chunk wholly inside became unwritten: a hole to SEEK. */
	ck_assert_int_eq(mfs_data_seek(&d, size, 0, SEEK_HOLE), (int64_t)CS);
	ck_assert_int_eq(mfs_data_seek(&d, size, CS, SEEK_DATA), (int64_t)(2 * CS));
	assert_accounted(&d);

	/* Over holes it allocates, like fallocate. */
	ck_assert_int_eq(mfs_data_zero_range(&d, &sp, 5 * CS + 1, CS), 0);
	ck_assert_uint_eq(mfs_data_chunks(&d), 5);
	ck_assert_int_eq(mfs_data_seek(&d, 7 * CS, 3 * CS, SEEK_DATA), -ENXIO);
	assert_accounted(&d);
}
END_TEST

START_TEST(zero_range_fails_whole_when_space_runs_out)
{
	unsigned char buf[2 * 4096];

	memset(buf, 0x11, sizeof(buf));
	sp.limit_bytes = 3 * CS;
	write_ok(&d, 0, buf, sizeof(buf));
	ck_assert_int_eq(mfs_data_zero_range(&d, &sp, 10, 4 * CS), -ENOSPC);
	ck_assert_uint_eq(mfs_data_chunks(&d), 2);
	ck_assert_int_eq(read_byte(&d, 10), 0x11);
	ck_assert_int_eq(read_byte(&d, 2 * CS - 1), 0x11);
	assert_accounted(&d);
}
END_TEST

/* ---- seek ---- */

struct seek_case {
	uint64_t off;
	int whence;
	int64_t want;
};

static void assert_seeks(uint64_t size, const struct seek_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int64_t got = mfs_data_seek(&d, size, c[i].off, c[i].whence);

		ck_assert_msg(got == c[i].want, "%s from %llu in %llu bytes: %lld, tmpfs says %lld",
			      c[i].whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE",
			      (unsigned long long)c[i].off, (unsigned long long)size,
			      (long long)got, (long long)c[i].want);
	}
}

#define ASSERT_SEEKS(size, ...)                                                                    \
	do {                                                                                       \
		const struct seek_case cases_[] = {__VA_ARGS__};                                   \
		assert_seeks((size), cases_, sizeof(cases_) / sizeof(cases_[0]));                  \
	} while (0)

/* Expected answers come from running the same steps on a file in /dev/shm. */
START_TEST(seek_answers_as_tmpfs_does)
{
	const uint64_t M = MiB;
	unsigned char buf[5000];

	write_byte(&d, 0, 'x');
	write_byte(&d, M, 'y');
	ASSERT_SEEKS(2 * M, {0, SEEK_DATA, 0}, {0, SEEK_HOLE, 4096}, {1, SEEK_DATA, 1},
		     {4096, SEEK_DATA, (int64_t)M}, {4096, SEEK_HOLE, 4096},
		     {M + 5, SEEK_DATA, (int64_t)M + 5}, {M + 5, SEEK_HOLE, (int64_t)M + 4096},
		     {M + 4096, SEEK_DATA, -ENXIO}, {2 * M - 1, SEEK_HOLE, (int64_t)(2 * M - 1)},
		     {2 * M, SEEK_HOLE, -ENXIO}, {2 * M, SEEK_DATA, -ENXIO},
		     {3 * M, SEEK_HOLE, -ENXIO});

	/* fallocate KEEP_SIZE [8192, 16384) and mode 0 [1.5 MiB, +8192): holes to SEEK. */
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 8192, 8192), 0);
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 3 * M / 2, 8192), 0);
	ck_assert_uint_eq(mfs_data_blocks(&d), 48);
	ASSERT_SEEKS(2 * M, {4096, SEEK_DATA, (int64_t)M}, {8192, SEEK_DATA, (int64_t)M},
		     {8192, SEEK_HOLE, 8192}, {0, SEEK_HOLE, 4096});

	/* One byte written into a fallocated chunk makes it data. */
	write_byte(&d, 8202, 'z');
	ASSERT_SEEKS(2 * M, {4096, SEEK_DATA, 8192}, {8192, SEEK_HOLE, 12288},
		     {8202, SEEK_HOLE, 12288});

	/* A partly punched chunk stays data. */
	mfs_data_punch(&d, &sp, 0, 1);
	ASSERT_SEEKS(2 * M, {0, SEEK_DATA, 0}, {0, SEEK_HOLE, 4096});
	ck_assert_uint_eq(mfs_data_blocks(&d), 48);

	/* All data: the end of the file is the hole. */
	mfs_data_truncate(&d, &sp, 0);
	memset(buf, 1, sizeof(buf));
	write_ok(&d, 0, buf, sizeof(buf));
	ASSERT_SEEKS(5000, {0, SEEK_HOLE, 5000}, {4999, SEEK_HOLE, 5000}, {4999, SEEK_DATA, 4999},
		     {5000, SEEK_HOLE, -ENXIO});

	mfs_data_truncate(&d, &sp, 0);
	ASSERT_SEEKS(0, {0, SEEK_DATA, -ENXIO}, {0, SEEK_HOLE, -ENXIO});

	/* Only unwritten chunks. */
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 0, 8192), 0);
	ASSERT_SEEKS(8192, {0, SEEK_DATA, -ENXIO}, {0, SEEK_HOLE, 0}, {5000, SEEK_HOLE, 5000});
	assert_accounted(&d);
}
END_TEST

START_TEST(seek_with_another_whence_is_einval)
{
	write_byte(&d, 0, 1);
	ck_assert_int_eq(mfs_data_seek(&d, 1, 0, SEEK_SET), -EINVAL);
	ck_assert_int_eq(mfs_data_seek(&d, 1, 0, SEEK_END), -EINVAL);
}
END_TEST

START_TEST(data_past_eof_is_not_found_by_seek_data)
{
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 0, 8 * CS), 0);
	write_byte(&d, 6 * CS, 0); /* written, but past the file's 2-chunk size */
	ck_assert_int_eq(mfs_data_seek(&d, 2 * CS, 0, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(mfs_data_seek(&d, 8 * CS, 0, SEEK_DATA), (int64_t)(6 * CS));
}
END_TEST

/* ---- copy ---- */

START_TEST(copy_keeps_holes_as_holes)
{
	struct mfs_data src;
	unsigned char buf[4096], *a = malloc(6 * CS), *b = malloc(6 * CS);
	uint64_t size = 6 * CS;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	mfs_data_init(&src);
	pattern(buf, sizeof(buf), 7);
	write_ok(&src, 0, buf, CS);
	write_ok(&src, 5 * CS, buf, 100);
	ck_assert_int_eq(mfs_data_allocate(&src, &sp, 2 * CS, CS), 0); /* unwritten: a hole */
	memset(a, 0x55, size);
	write_ok(&d, 0, a, size);

	ck_assert_int_eq(mfs_data_copy(&d, &sp, 0, &src, 0, size), 0);
	ck_assert_uint_eq(mfs_data_chunks(&d), 2);
	ck_assert_int_eq(mfs_data_seek(&d, size, CS, SEEK_DATA), (int64_t)(5 * CS));
	mfs_data_read(&src, 0, a, size);
	mfs_data_read(&d, 0, b, size);
	ck_assert_int_eq(memcmp(a, b, size), 0);
	ck_assert_uint_eq(mfs_space_used(&sp), (mfs_data_chunks(&d) + mfs_data_chunks(&src)) * CS);
	assert_consistent(&d);
	mfs_data_free(&src, &sp);
	free(a);
	free(b);
}
END_TEST

START_TEST(copy_between_unaligned_ranges_copies_the_bytes)
{
	struct mfs_data src;
	unsigned char *a = malloc(3 * CS), *b = malloc(10000);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	mfs_data_init(&src);
	pattern(a, 3 * CS, 8);
	write_ok(&src, 0, a, 3 * CS);
	ck_assert_int_eq(mfs_data_copy(&d, &sp, 5555, &src, 1000, 10000), 0);
	mfs_data_read(&d, 5555, b, 10000);
	ck_assert_int_eq(memcmp(a + 1000, b, 10000), 0);
	assert_zeros(&d, 0, 5555);
	assert_consistent(&d);
	mfs_data_free(&src, &sp);
	free(a);
	free(b);
}
END_TEST

/*
 * Found by fsdiff (seed 753): within one file, when the destination starts
 * in the chunk where the source ends, writing the destination first made
 * that chunk data, and the source's hole there was then copied as written
 * zeros: one chunk more than the source's holes say.
 */
START_TEST(copy_within_one_file_keeps_a_hole_in_the_chunk_it_shares)
{
	unsigned char buf[100], back[100];

	pattern(buf, sizeof(buf), 10);
	write_ok(&d, 1500, buf, sizeof(buf)); /* chunk 0 is data; chunks 1 and 2 are holes */
	/* source [3264, 8321) ends in chunk 2, where the destination [9302, 14359) starts */
	ck_assert_int_eq(mfs_data_copy(&d, &sp, 9302, &d, 3264, 5057), 0);
	/* chunk 2 now holds data (from source chunk 0); chunk 3 gets only the hole */
	ck_assert_uint_eq(mfs_data_chunks(&d), 2);
	ck_assert_int_eq(mfs_data_seek(&d, 14359, 4 * CS - 1, SEEK_DATA), -ENXIO);
	ck_assert_int_eq(mfs_data_seek(&d, 14359, 2 * CS, SEEK_HOLE), (int64_t)(3 * CS));
	mfs_data_read(&d, 1500, back, sizeof(back));
	ck_assert_int_eq(memcmp(buf, back, sizeof(buf)), 0);
	assert_zeros(&d, 9302, 5057);
	assert_consistent(&d);
}
END_TEST

START_TEST(copy_within_one_file_needs_disjoint_ranges)
{
	unsigned char *a = malloc(8 * CS), *b = malloc(3 * CS);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	pattern(a, 8 * CS, 9);
	write_ok(&d, 0, a, 8 * CS);
	/* Source and destination share chunk 10's neighbourhood only by bytes, not ranges. */
	ck_assert_int_eq(mfs_data_copy(&d, &sp, 10 * CS + 100, &d, 50, 3 * CS), 0);
	mfs_data_read(&d, 10 * CS + 100, b, 3 * CS);
	ck_assert_int_eq(memcmp(a + 50, b, 3 * CS), 0);
	ck_assert_int_eq(mfs_data_copy(&d, &sp, 100, &d, 50, 100), -EINVAL);
	ck_assert_int_eq(mfs_data_copy(&d, &sp, 0, &d, 50, 100), -EINVAL);
	/* Adjacent is fine: [0, 100) to [100, 200) inside one chunk. */
	ck_assert_int_eq(mfs_data_copy(&d, &sp, 100, &d, 0, 100), 0);
	mfs_data_read(&d, 100, b, 100);
	ck_assert_int_eq(memcmp(a, b, 100), 0);
	/* A hole copied over data punches it. */
	mfs_data_truncate(&d, &sp, 20 * CS);
	ck_assert_int_eq(mfs_data_copy(&d, &sp, 0, &d, 16 * CS, 4 * CS), 0);
	assert_zeros(&d, 0, 4 * CS);
	ck_assert_int_eq(mfs_data_seek(&d, 20 * CS, 0, SEEK_DATA), (int64_t)(4 * CS));
	assert_accounted(&d);
	free(a);
	free(b);
}
END_TEST

/* ---- limits ---- */

START_TEST(offsets_near_the_largest_file_size_work_and_past_it_give_efbig)
{
	const uint64_t max = MFS_MAX_FILE_SIZE;
	unsigned char two[2] = {1, 2};
	struct iovec iov[4];

	write_byte(&d, max - 1, 'M');
	ck_assert_int_eq(read_byte(&d, max - 1), 'M');
	ck_assert_uint_eq(mfs_data_chunks(&d), 1);
	ck_assert_uint_eq(mfs_data_height(&d), 9);
	assert_accounted(&d);
	ck_assert_int_eq(mfs_data_seek(&d, max, 0, SEEK_DATA), (int64_t)((max - 1) & ~(CS - 1)));
	ck_assert_int_eq(mfs_data_seek(&d, max, 0, SEEK_HOLE), 0);
	ck_assert_int_eq(mfs_data_seek(&d, max, max - 2, SEEK_HOLE), (int64_t)max);

	ck_assert_int_eq(mfs_data_write(&d, &sp, max - 1, two, 2), -EFBIG);
	ck_assert_int_eq(mfs_data_write(&d, &sp, max, two, 1), -EFBIG);
	ck_assert_int_eq(mfs_data_write(&d, &sp, UINT64_MAX, two, 1), -EFBIG);
	ck_assert_int_eq(mfs_data_write(&d, &sp, max, two, 0), 0);
	ck_assert_int_eq(mfs_data_write_iov(&d, &sp, max - 1, 2, iov, 4), -EFBIG);
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, max - 1, 2), -EFBIG);
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 1, UINT64_MAX), -EFBIG);
	ck_assert_int_eq(mfs_data_zero_range(&d, &sp, max, 1), -EFBIG);
	ck_assert_int_eq(mfs_data_copy(&d, &sp, max - 10, &d, 0, 20), -EFBIG);
	ck_assert_uint_eq(mfs_data_chunks(&d), 1);

	/* The three chunks before the last one. */
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, (max & ~(CS - 1)) - 3 * CS, 3 * CS), 0);
	ck_assert_uint_eq(mfs_data_chunks(&d), 4);
	write_byte(&d, 0, 'a');
	ck_assert_uint_eq(mfs_data_chunks(&d), 5);
	assert_accounted(&d);
	mfs_data_punch(&d, &sp, CS, UINT64_MAX);
	ck_assert_uint_eq(mfs_data_chunks(&d), 1);
	ck_assert_uint_eq(mfs_data_height(&d), 1); /* the tree comes back down */
	assert_accounted(&d);
}
END_TEST

START_TEST(tree_height_follows_the_highest_chunk)
{
	write_byte(&d, 0, 1);
	ck_assert_uint_eq(mfs_data_height(&d), 1);
	write_byte(&d, 1 * TiB, 2);
	ck_assert_uint_eq(mfs_data_height(&d), 5); /* 2^28 chunks need 5 levels of 64 */
	assert_accounted(&d);
	mfs_data_punch(&d, &sp, 1 * TiB, CS);
	ck_assert_uint_eq(mfs_data_height(&d), 1);
	mfs_data_punch(&d, &sp, 0, CS);
	ck_assert_uint_eq(mfs_data_height(&d), 0);
	ck_assert_ptr_null(d.root);
	write_byte(&d, 1 * TiB, 2);
	mfs_data_truncate(&d, &sp, 1);
	ck_assert_ptr_null(d.root);
	assert_accounted(&d);
}
END_TEST

START_TEST(check_reports_a_wrong_chunk_count)
{
	const char *why = NULL;

	/* The root node starts as data.c lays it out: count, height, chunks. */
	struct node_head {
		unsigned count, height;
		uint64_t nchunks;
	} *root;

	write_byte(&d, 0, 1);
	write_byte(&d, CS, 2); /* two chunks: a lone chunk 0 would have no node */
	root = d.root;
	ck_assert_uint_eq(root->height, mfs_data_height(&d));
	ck_assert_uint_eq(root->nchunks, mfs_data_chunks(&d));
	root->nchunks++;
	ck_assert_int_eq(mfs_data_check(&d, &why), -EUCLEAN);
	ck_assert_ptr_nonnull(why);
	root->nchunks--;
	root->height++;
	ck_assert_int_eq(mfs_data_check(&d, NULL), -EUCLEAN);
	root->height--;
	assert_consistent(&d);
}
END_TEST

/*
 * A file whose only chunk is chunk 0 keeps no node: its tree is the chunk.  A second chunk
 * brings a node, and losing it again (truncate, punch) gives the node back.  Seen from outside
 * as the contents, the chunk's identity (the iovec pointer does not move) and mfs_data_check.
 */
START_TEST(a_lone_chunk_0_needs_no_node_and_a_second_chunk_brings_one)
{
	unsigned char buf[200], got[200];
	const void *p0;
	struct iovec iov[3];

	pattern(buf, sizeof(buf), 5);
	write_ok(&d, 0, buf, 100);
	ck_assert_uint_eq(mfs_data_height(&d), 1);
	ck_assert_uint_eq(mfs_data_chunks(&d), 1);
	ck_assert_int_eq(mfs_data_read_iov(&d, 0, 100, iov, 3), 1);
	ck_assert_mem_eq(iov[0].iov_base, buf, 100);
	assert_accounted(&d);

	/* more bytes into chunk 0: still one chunk, grown in place or moved, same contents */
	write_ok(&d, 100, buf + 100, 100);
	mfs_data_read(&d, 0, got, 200);
	ck_assert_mem_eq(got, buf, 200);
	assert_accounted(&d);

	/* chunk 1, then chunk 64 (a second level): chunk 0 is filled out and stays where it is */
	write_byte(&d, CS, 7);
	ck_assert_uint_eq(mfs_data_chunks(&d), 2);
	assert_accounted(&d);
	ck_assert_int_eq(mfs_data_read_iov(&d, 0, 200, iov, 3), 1);
	p0 = iov[0].iov_base;
	write_byte(&d, 64 * CS, 8);
	ck_assert_uint_eq(mfs_data_height(&d), 2);
	assert_accounted(&d);
	ck_assert_int_eq(mfs_data_read_iov(&d, 0, 200, iov, 3), 1);
	ck_assert_ptr_eq(iov[0].iov_base, p0);

	/* back to chunk 0 alone: by punching, then by truncating */
	mfs_data_punch(&d, &sp, 64 * CS, CS);
	ck_assert_uint_eq(mfs_data_height(&d), 1);
	mfs_data_punch(&d, &sp, CS, CS);
	ck_assert_uint_eq(mfs_data_chunks(&d), 1);
	assert_accounted(&d);
	write_byte(&d, 5 * CS, 9);
	mfs_data_truncate(&d, &sp, 150);
	ck_assert_uint_eq(mfs_data_chunks(&d), 1);
	assert_accounted(&d);
	mfs_data_read(&d, 0, got, 150);
	ck_assert_mem_eq(got, buf, 150);
	ck_assert_uint_eq(read_byte(&d, 150), 0);

	/* a file whose one chunk is not chunk 0 keeps its node; chunk 0 then joins it */
	mfs_data_truncate(&d, &sp, 0);
	ck_assert_ptr_null(d.root);
	write_byte(&d, 3 * CS, 1);
	assert_accounted(&d);
	write_ok(&d, 0, buf, 10);
	ck_assert_uint_eq(mfs_data_chunks(&d), 2);
	assert_accounted(&d);
	mfs_data_punch(&d, &sp, 3 * CS, CS);
	assert_accounted(&d); /* and the check says a lone chunk 0 was not left in a node */

	/* fallocate and zero range of chunk 0 alone, and a copy out of and into such files */
	mfs_data_truncate(&d, &sp, 0);
	ck_assert_int_eq(mfs_data_allocate(&d, &sp, 0, 10), 0);
	ck_assert_int_eq(mfs_data_is_written(&d, 0), 0);
	assert_accounted(&d);
	write_ok(&d, 0, buf, 50);
	ck_assert_int_eq(mfs_data_zero_range(&d, &sp, 10, 20), 0);
	assert_accounted(&d);
	{
		struct mfs_space esp = {.limit_bytes = GiB};
		struct mfs_data e;

		mfs_data_init(&e);
		ck_assert_int_eq(mfs_data_write(&e, &esp, 0, buf, 30), 0);
		ck_assert_int_eq(mfs_data_copy(&e, &esp, 40, &d, 0, 50), 0);
		ck_assert_int_eq(mfs_data_copy(&e, &esp, 2000, &e, 0, 90), 0);
		ck_assert_uint_eq(mfs_data_chunks(&e), 1);
		ck_assert_uint_eq(mfs_space_used(&esp), CS);
		assert_consistent(&e);
		mfs_data_read(&e, 2000, got, 90);
		ck_assert_mem_eq(got, buf, 30);
		ck_assert_mem_eq(got + 40, buf, 10);
		ck_assert(all_zero(got + 50, 20));
		ck_assert_mem_eq(got + 70, buf + 30, 20);
		mfs_data_free(&e, &esp);
		ck_assert_uint_eq(mfs_space_used(&esp), 0);
	}
	ck_assert_int_eq(mfs_data_copy(&d, &sp, 3 * CS, &d, 0, 50), 0);
	ck_assert_uint_eq(mfs_data_chunks(&d), 2);
	assert_accounted(&d);
}
END_TEST

/* ---- randomized comparison with a flat model ---- */

#define RSIZE (1 * MiB)
#define RCHUNKS (RSIZE / 4096)

enum { M_HOLE, M_UNWRITTEN, M_WRITTEN };

/* What a file should hold: its bytes, the state of each chunk, and its size. */
struct model {
	unsigned char bytes[RSIZE];
	unsigned char state[RCHUNKS];
	uint64_t size;
};

static uint64_t rng_state;

static uint64_t rnd(uint64_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return n ? rng_state % n : 0;
}

static uint64_t chunks_below(uint64_t off)
{
	return (off + CS - 1) / CS;
}

static void m_write(struct model *m, uint64_t off, const unsigned char *buf, uint64_t len)
{
	memmove(m->bytes + off, buf, len);
	for (uint64_t i = off / CS; i <= (off + len - 1) / CS; i++)
		m->state[i] = M_WRITTEN;
	if (off + len > m->size)
		m->size = off + len;
}

static void m_punch(struct model *m, uint64_t off, uint64_t len)
{
	uint64_t end = len > RSIZE - off ? RSIZE : off + len;

	memset(m->bytes + off, 0, end - off);
	for (uint64_t i = chunks_below(off); i < end / CS; i++)
		m->state[i] = M_HOLE;
}

static void m_truncate(struct model *m, uint64_t size)
{
	memset(m->bytes + size, 0, RSIZE - size);
	for (uint64_t i = chunks_below(size); i < RCHUNKS; i++)
		m->state[i] = M_HOLE;
	m->size = size;
}

static void m_allocate(struct model *m, uint64_t off, uint64_t len, int keep_size)
{
	/* a chunk fallocated earlier is initialised by the next fallocate (tmpfs) */
	for (uint64_t i = off / CS; i <= (off + len - 1) / CS; i++)
		m->state[i] = m->state[i] == M_HOLE ? M_UNWRITTEN : M_WRITTEN;
	if (!keep_size && off + len > m->size)
		m->size = off + len;
}

static void m_zero_range(struct model *m, uint64_t off, uint64_t len, int keep_size)
{
	m_allocate(m, off, len, keep_size);
	memset(m->bytes + off, 0, len);
	for (uint64_t i = chunks_below(off); i < (off + len) / CS; i++)
		m->state[i] = M_UNWRITTEN;
}

/* Holes (and unwritten chunks) of the source punch the destination; written chunks copy. */
static void m_copy(struct model *dm, uint64_t doff, const struct model *sm, uint64_t soff,
		   uint64_t len)
{
	static unsigned char tmp[4096];
	uint64_t done = 0;

	while (done < len) {
		uint64_t at = soff + done, i = at / CS, data;

		while (i < RCHUNKS && sm->state[i] != M_WRITTEN)
			i++;
		data = i < RCHUNKS && i * CS > at ? i * CS : at;
		if (i >= RCHUNKS || data > soff + len)
			data = soff + len;
		if (data > at) {
			m_punch(dm, doff + done, data - at);
			done += data - at;
			continue;
		}
		uint64_t piece = CS - at % CS < len - done ? CS - at % CS : len - done;
		memcpy(tmp, sm->bytes + at, piece);
		m_write(dm, doff + done, tmp, piece);
		done += piece;
	}
	if (doff + len > dm->size)
		dm->size = doff + len;
}

static int64_t m_seek(const struct model *m, uint64_t off, int whence)
{
	uint64_t lim = chunks_below(m->size), i;

	if (off >= m->size)
		return -ENXIO;
	for (i = off / CS; i < lim; i++)
		if ((m->state[i] == M_WRITTEN) == (whence == SEEK_DATA))
			break;
	if (whence == SEEK_DATA)
		return i < lim ? (int64_t)(i * CS > off ? i * CS : off) : -ENXIO;
	return i < lim ? (int64_t)(i * CS > off ? i * CS : off) : (int64_t)m->size;
}

static void assert_matches(const struct mfs_data *dp, const struct model *m, int step)
{
	static unsigned char back[RSIZE];
	static struct iovec iov[RCHUNKS + 2];
	uint64_t present = 0, off, len, got = 0;
	int n, max;

	assert_consistent(dp);
	for (uint64_t i = 0; i < RCHUNKS; i++)
		present += m->state[i] != M_HOLE;
	ck_assert_msg(mfs_data_chunks(dp) == present, "step %d: %llu chunks, model %llu", step,
		      (unsigned long long)mfs_data_chunks(dp), (unsigned long long)present);
	mfs_data_read(dp, 0, back, RSIZE);
	if (memcmp(back, m->bytes, RSIZE) != 0) {
		uint64_t i = 0;

		while (back[i] == m->bytes[i])
			i++;
		ck_abort_msg("step %d: byte %llu is %d, model %d", step, (unsigned long long)i,
			     back[i], m->bytes[i]);
	}

	off = rnd(RSIZE);
	len = rnd(RSIZE - off);
	max = mfs_data_iov_max(off, len);
	n = mfs_data_read_iov(dp, off, len, iov, max);
	ck_assert_int_ge(n, 0);
	ck_assert_int_le(n, max);
	for (int k = 0; k < n; k++) {
		if (memcmp(iov[k].iov_base, m->bytes + off + got, iov[k].iov_len) != 0)
			ck_abort_msg("step %d: read_iov piece %d differs", step, k);
		got += iov[k].iov_len;
	}
	ck_assert_uint_eq(got, len);

	for (int k = 0; k < 6; k++) {
		int whence = k & 1 ? SEEK_HOLE : SEEK_DATA;
		uint64_t at = rnd(m->size + 2);
		int64_t want = m_seek(m, at, whence);
		int64_t have = mfs_data_seek(dp, m->size, at, whence);

		ck_assert_msg(have == want, "step %d: %s from %llu in %llu: %lld, model %lld", step,
			      whence == SEEK_DATA ? "SEEK_DATA" : "SEEK_HOLE",
			      (unsigned long long)at, (unsigned long long)m->size, (long long)have,
			      (long long)want);
	}
}

/* An offset below `limit`, often on or next to a chunk edge. */
static uint64_t rnd_off(uint64_t limit)
{
	static const uint64_t edge[] = {0, 1, 63, 64, 4095};
	uint64_t off = rnd(limit / CS + 1) * CS;

	off += rnd(3) ? edge[rnd(5)] : rnd(CS);
	return off < limit ? off : rnd(limit);
}

static uint64_t rnd_len(uint64_t room)
{
	uint64_t len;

	switch (rnd(5)) {
	case 0:
		len = 1 + rnd(200);
		break;
	case 1:
		len = (1 + rnd(8)) * CS;
		break;
	case 2:
		len = 1 + rnd(64 * KiB);
		break;
	default:
		len = 1 + rnd(3 * CS);
	}
	return len < room ? len : room;
}

/* One random operation on file f (of two): the same on the model. */
static void random_step(struct mfs_data *f, struct model *mf, struct mfs_data *g, struct model *mg)
{
	static unsigned char buf[64 * KiB + 1];
	uint64_t off = rnd_off(RSIZE - 1), len = rnd_len(RSIZE - off), soff, size;
	int keep = (int)rnd(2);

	switch (rnd(9)) {
	case 0:
	case 1:
	case 2:
		pattern(buf, len < sizeof(buf) ? len : sizeof(buf), (unsigned)rnd(1000));
		len = len < sizeof(buf) ? len : sizeof(buf);
		ck_assert_int_eq(mfs_data_write(f, &sp, off, buf, len), 0);
		m_write(mf, off, buf, len);
		break;
	case 3:
		size = rnd(3) ? rnd_off(RSIZE) : 0;
		mfs_data_truncate(f, &sp, size);
		m_truncate(mf, size);
		break;
	case 4:
		if (rnd(8) == 0)
			len = UINT64_MAX - rnd(3);
		mfs_data_punch(f, &sp, off, len);
		m_punch(mf, off, len);
		break;
	case 5:
		ck_assert_int_eq(mfs_data_allocate(f, &sp, off, len), 0);
		m_allocate(mf, off, len, keep);
		break;
	case 6:
		ck_assert_int_eq(mfs_data_zero_range(f, &sp, off, len), 0);
		m_zero_range(mf, off, len, keep);
		break;
	case 7:
		/* From the other file; the caller clamps len to the source size. */
		if (mg->size == 0)
			break;
		soff = rnd(mg->size);
		len = rnd_len(mg->size - soff);
		len = len < RSIZE - off ? len : RSIZE - off;
		ck_assert_int_eq(mfs_data_copy(f, &sp, off, g, soff, len), 0);
		m_copy(mf, off, mg, soff, len);
		break;
	default:
		/* Within the same file, between disjoint ranges. */
		if (mf->size < 2)
			break;
		soff = rnd(mf->size);
		len = rnd_len(mf->size - soff);
		len = len < RSIZE - off ? len : RSIZE - off;
		if (soff < off + len && off < soff + len) {
			ck_assert_int_eq(mfs_data_copy(f, &sp, off, f, soff, len), -EINVAL);
			break;
		}
		ck_assert_int_eq(mfs_data_copy(f, &sp, off, f, soff, len), 0);
		m_copy(mf, off, mf, soff, len);
		break;
	}
}

START_TEST(random_operations_match_a_flat_reference)
{
	struct model *ma = calloc(1, sizeof(*ma)), *mb = calloc(1, sizeof(*mb));
	struct mfs_data b;
	const char *seed_env = getenv("MFS_TEST_SEED");
	uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 0x9E3779B97F4A7C15ull;

	ck_assert_ptr_nonnull(ma);
	ck_assert_ptr_nonnull(mb);
	rng_state = seed;
	mfs_data_init(&b);
	for (int step = 0; step < 3000; step++) {
		if (rnd(3))
			random_step(&d, ma, &b, mb);
		else
			random_step(&b, mb, &d, ma);
		assert_matches(&d, ma, step);
		assert_matches(&b, mb, step);
		ck_assert_uint_eq(mfs_space_used(&sp), (mfs_data_chunks(&d) + mfs_data_chunks(&b)) * CS);
	}
	mfs_data_free(&b, &sp);
	free(ma);
	free(mb);
}
END_TEST

/* ---- allocation failures ---- */

#define WINDOW (2 * MiB)

/* What the file shows: its first WINDOW bytes and the chunks around 1 TiB. */
static void snapshot(const struct mfs_data *dp, unsigned char *out)
{
	mfs_data_read(dp, 0, out, WINDOW);
	mfs_data_read(dp, 1 * TiB - CS, out + WINDOW, 2 * CS);
}

#define NSTEPS 12

/*
 * One step of a workload touching every allocation path.  *quiet says whether the operation
 * promises that a failure changes nothing visible (write, allocate).
 */
static int workload_step(struct mfs_data *dp, const struct mfs_data *src, int step, int *quiet)
{
	static unsigned char buf[256 * KiB];
	static struct iovec iov[80];
	int n;

	pattern(buf, sizeof(buf), 11);
	*quiet = 1;
	switch (step) {
	case 0:
		return mfs_data_write(dp, &sp, 0, buf, 10);
	case 1:
		return mfs_data_write(dp, &sp, 5000, buf, 9000);
	case 2:
		return mfs_data_write(dp, &sp, 1 * TiB - 1, buf, 2);
	case 3:
		return mfs_data_allocate(dp, &sp, 20000, 20000);
	case 4:
		*quiet = 0;
		return mfs_data_zero_range(dp, &sp, 3000, 60000);
	case 5:
		*quiet = 0;
		return mfs_data_copy(dp, &sp, 100000, src, 0, 5 * CS + 10);
	case 6:
		*quiet = 0;
		return mfs_data_copy(dp, &sp, 200000, dp, 100000, 3 * CS);
	case 7:
		n = mfs_data_write_iov(dp, &sp, 512 * KiB + 7, sizeof(buf), iov, 80);
		for (int k = 0, done = 0; k < n; done += (int)iov[k].iov_len, k++)
			memcpy(iov[k].iov_base, buf + done, iov[k].iov_len);
		return n < 0 ? n : 0;
	case 8:
		mfs_data_truncate(dp, &sp, 600 * KiB + 5);
		mfs_data_punch(dp, &sp, 550 * KiB, 10 * KiB);
		return 0;
	case 9:
		return mfs_data_write(dp, &sp, 600 * KiB + 5, buf, 300);
	case 10:
		mfs_data_truncate(dp, &sp, 100);
		return 0;
	default:
		return mfs_data_write(dp, &sp, 1 * TiB, buf, 3 * CS);
	}
}

#define SNAP (WINDOW + 2 * CS)

START_TEST(each_failed_allocation_gives_enomem_and_leaves_the_file_consistent)
{
	/* golden + SNAP * (k + 1): what the file shows after step k; golden: before step 0. */
	unsigned char *golden = calloc(NSTEPS + 1, SNAP), *seen = malloc(SNAP);
	struct mfs_space src_sp = {.limit_bytes = GiB};
	struct mfs_data src;
	unsigned char chunk[4096];
	int quiet, failures = 0;
	unsigned long nth;

	ck_assert_ptr_nonnull(golden);
	ck_assert_ptr_nonnull(seen);
	mfs_data_init(&src);
	pattern(chunk, sizeof(chunk), 12);
	ck_assert_int_eq(mfs_data_write(&src, &src_sp, 0, chunk, CS), 0);
	ck_assert_int_eq(mfs_data_write(&src, &src_sp, 3 * CS, chunk, 100), 0);
	ck_assert_int_eq(mfs_data_allocate(&src, &src_sp, 4 * CS, CS), 0);
	for (int step = 0; step < NSTEPS; step++) {
		ck_assert_int_eq(workload_step(&d, &src, step, &quiet), 0);
		assert_accounted(&d);
		snapshot(&d, golden + SNAP * (step + 1));
	}
	mfs_data_free(&d, &sp);

	for (nth = 1;; nth++) {
		int step, ret = 0;

		mfs_data_init(&d);
		mfs_alloc_fail_at(nth, 0);
		for (step = 0; step < NSTEPS && ret == 0; step++)
			ret = workload_step(&d, &src, step, &quiet);
		mfs_alloc_fail_at(0, 0);
		snapshot(&d, seen);
		if (ret != 0) {
			failures++;
			ck_assert_msg(ret == -ENOMEM, "allocation %lu: step %d gave %d", nth,
				      step - 1, ret);
			ck_assert_msg(!quiet || memcmp(seen, golden + SNAP * (step - 1), SNAP) == 0,
				      "allocation %lu: failed step %d changed the contents", nth,
				      step - 1);
		} else {
			/* The failure fell on a buffer shrink, which may fail unnoticed. */
			ck_assert_msg(memcmp(seen, golden + SNAP * NSTEPS, SNAP) == 0,
				      "allocation %lu failed unseen and changed the result", nth);
		}
		assert_accounted(&d);
		mfs_data_free(&d, &sp);
		ck_assert_uint_eq(mfs_space_used(&sp), 0);
		if (ret == 0 && mfs_alloc_count() < nth)
			break; /* the workload no longer reaches allocation nth */
		ck_assert_msg(nth < 100000, "workload never ends");
	}
#ifdef MFS_FAULT_INJECTION
	ck_assert_int_gt(failures, 20);
#else
	ck_assert_int_eq(failures, 0);
	ck_assert_uint_eq(nth, 1);
#endif
	mfs_data_free(&src, &src_sp);
	free(golden);
	free(seen);
}
END_TEST

static Suite *data_suite(void)
{
	Suite *s = suite_create("data");
	TCase *tc = tcase_create("data");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, sparse_1tib_file_with_three_writes_holds_three_chunks);
	tcase_add_test(tc, append_never_moves_full_chunks);
	tcase_add_test(tc, small_file_tail_costs_about_its_size);
	tcase_add_test(tc, tail_buffer_grows_by_doubling_one_byte_at_a_time);
	tcase_add_test(tc, short_buffer_is_filled_out_when_a_later_chunk_appears);
	tcase_add_test(tc, read_iov_never_needs_more_than_iov_max);
	tcase_add_test(tc, read_iov_points_holes_at_one_zero_page_and_rejects_a_short_array);
	tcase_add_test(tc, write_iov_gives_pointers_to_exactly_the_range);
	tcase_add_test(tc, write_past_limit_gives_enospc_and_leaks_nothing);
	tcase_add_test(tc, truncate_down_zeroes_the_tail_and_up_reads_zeros);
	tcase_add_test(tc, truncate_gives_back_the_tail_buffer);
	tcase_add_test(tc, truncate_frees_chunks_allocated_past_the_new_size);
	tcase_add_test(tc, punch_frees_whole_chunks_and_zeroes_partial_ones);
	tcase_add_test(tc, allocate_makes_unwritten_chunks_that_seek_treats_as_holes);
	tcase_add_test(tc, allocate_is_all_or_nothing_when_space_runs_out);
	tcase_add_test(tc, zero_range_reads_zeros_and_keeps_the_range_allocated);
	tcase_add_test(tc, zero_range_fails_whole_when_space_runs_out);
	tcase_add_test(tc, seek_answers_as_tmpfs_does);
	tcase_add_test(tc, seek_with_another_whence_is_einval);
	tcase_add_test(tc, data_past_eof_is_not_found_by_seek_data);
	tcase_add_test(tc, copy_keeps_holes_as_holes);
	tcase_add_test(tc, copy_between_unaligned_ranges_copies_the_bytes);
	tcase_add_test(tc, copy_within_one_file_needs_disjoint_ranges);
	tcase_add_test(tc, copy_within_one_file_keeps_a_hole_in_the_chunk_it_shares);
	tcase_add_test(tc, offsets_near_the_largest_file_size_work_and_past_it_give_efbig);
	tcase_add_test(tc, tree_height_follows_the_highest_chunk);
	tcase_add_test(tc, check_reports_a_wrong_chunk_count);
	tcase_add_test(tc, a_lone_chunk_0_needs_no_node_and_a_second_chunk_brings_one);
	tcase_add_test(tc, random_operations_match_a_flat_reference);
	tcase_add_test(tc, each_failed_allocation_gives_enomem_and_leaves_the_file_consistent);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(data_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
