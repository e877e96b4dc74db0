/*
 * test_concurrency.c — the core under parallel callers, as the
 * multi-threaded daemon uses it: four threads run random creates, writes,
 * reads, renames, links, unlinks, readdirs, setattrs and forgets on shared
 * directories.  Each thread holds references as the kernel would and checks
 * that what it holds stays usable; one thread also runs mfs_check in the
 * middle of it all.  Afterwards every reference is given back, mfs_check
 * must pass and the inode count must equal the names in the tree.
 *
 * A watchdog (alarm) turns a deadlock into a failure instead of a hang.
 * tools/test also runs it under ThreadSanitizer (build-tsan, suite tsan).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "fs.h"

#define NTHREADS 4
/* per thread: about 2-3 s under ASan; MEMFS_CONCURRENCY_ITERATIONS overrides
 * (tools/test runs fewer under ThreadSanitizer, which is ten times slower) */
#define DEFAULT_ITERATIONS 200000

static unsigned long iterations(void)
{
	const char *e = getenv("MEMFS_CONCURRENCY_ITERATIONS");
	unsigned long n = e ? strtoul(e, NULL, 10) : 0;

	return n ? n : DEFAULT_ITERATIONS;
}
#define WATCHDOG_S 60
#define MAX_INO (1u << 20)
#define NNAMES 12
#define NSHARED 4 /* the root and three directories every thread works in */
#define CHUNK 4096

static const struct mfs_cred cred = {.uid = 0, .gid = 0};
static const char *const names[NNAMES] = {"n0", "n1", "n2", "n3", "n4",	 "n5",
					  "n6", "n7", "n8", "n9", "n10", "n11"};

struct shared {
	struct mfs_fs *fs;
	uint64_t dirs[NSHARED];
	atomic_int failed;
	char why[512];
};

/* One thread's view: the references it holds, as the kernel holds them. */
struct worker {
	struct shared *sh;
	pthread_t thread;
	int id;
	uint64_t rng;
	uint32_t *lookups; /* by inode number */
	uint32_t *opens;
	uint64_t held[256]; /* some inodes it holds a lookup on (may repeat) */
	unsigned nheld;
	unsigned long done, succeeded;
	unsigned long errors[64]; /* by errno */
};

static uint64_t rnd(struct worker *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ull;
}

static unsigned pick(struct worker *w, unsigned n)
{
	return (unsigned)(rnd(w) % n);
}

/* Record the first failure; the main thread reports it. */
__attribute__((format(printf, 2, 3))) static void report_failure(struct worker *w, const char *fmt,
								 ...)
{
	int expected = 0;

	if (atomic_compare_exchange_strong(&w->sh->failed, &expected, 1)) {
		char what[400];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		snprintf(w->sh->why, sizeof(w->sh->why), "thread %d, op %lu: %s", w->id, w->done,
			 what);
	}
}

/* Errors that a random operation racing with others may rightly give. */
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
		return 1;
	default:
		return 0;
	}
}

static void count_error(struct worker *w, long r)
{
	if (r < 0 && -r < 64)
		w->errors[-r]++;
}

static void judge(struct worker *w, long r, const char *what)
{
	count_error(w, r);
	if (r >= 0)
		w->succeeded++;
	else if (!expected_error(r))
		report_failure(w, "%s gave unexpected %ld", what, r);
}

/* judge() for a call on an inode this thread holds: it must exist. */
static void judge_held(struct worker *w, long r, uint64_t ino)
{
	count_error(w, r);
	if (r == -ENOENT)
		report_failure(w, "inode %" PRIu64 ", held by a lookup, gave ENOENT", ino);
	else if (r < 0 && !expected_error(r))
		report_failure(w, "call on held inode %" PRIu64 " gave unexpected %ld", ino, r);
	else if (r >= 0)
		w->succeeded++;
}

static void took(struct worker *w, uint64_t ino)
{
	if (ino >= MAX_INO) {
		mfs_forget(w->sh->fs, ino, 1);
		return;
	}
	w->lookups[ino]++;
	if (w->nheld < 256) {
		w->held[w->nheld++] = ino;
	} else {
		/* the inode pushed out is given back whole, as the kernel's
		 * cache would evict it; else unlinked inodes pile up */
		unsigned slot = pick(w, 256);
		uint64_t old = w->held[slot];
		w->held[slot] = ino;
		if (old != ino && w->lookups[old]) {
			for (; w->opens[old]; w->opens[old]--)
				judge(w, mfs_release(w->sh->fs, old), "release");
			mfs_forget(w->sh->fs, old, w->lookups[old]);
			w->lookups[old] = 0;
		}
	}
}

/* An inode this thread holds a lookup on, or 0. */
static uint64_t held_ino(struct worker *w)
{
	for (int tries = 0; tries < 4 && w->nheld; tries++) {
		uint64_t ino = w->held[pick(w, w->nheld)];
		if (w->lookups[ino])
			return ino;
	}
	return 0;
}

/* Entries a readdir took; their lookups are recorded after it returns,
 * since the fill callback runs under the namespace lock. */
struct taken {
	int plus, limit, n, nplus;
	uint64_t inos[64];
};

static int take_entry(void *ctx, const char *name, const struct stat *st, uint64_t next_off)
{
	struct taken *t = ctx;

	(void)next_off;
	if ((t->limit && t->n >= t->limit) || t->nplus == 64)
		return 1;
	t->n++;
	if (t->plus && strcmp(name, ".") != 0 && strcmp(name, "..") != 0)
		t->inos[t->nplus++] = st->st_ino;
	return 0;
}

static void one_operation(struct worker *w)
{
	struct mfs_fs *fs = w->sh->fs;
	uint64_t dir = w->sh->dirs[pick(w, NSHARED)], dir2 = w->sh->dirs[pick(w, NSHARED)];
	const char *name = names[pick(w, NNAMES)], *name2 = names[pick(w, NNAMES)];
	uint64_t ino = held_ino(w);
	char buf[3 * CHUNK];
	struct mfs_attr a;
	long r;

	memset(buf, 'a' + w->id, sizeof(buf));
	switch (pick(w, 20)) {
	case 0:
	case 1:
		r = mfs_create(fs, &cred, dir, name, 0644, O_CREAT | O_RDWR, &a);
		judge(w, r, "create");
		if (r == 0) {
			took(w, a.st.st_ino);
			if (a.st.st_ino < MAX_INO)
				w->opens[a.st.st_ino]++;
			else
				mfs_release(fs, a.st.st_ino);
		}
		break;
	case 2:
		r = mfs_mkdir(fs, &cred, dir, name, 0755, &a);
		judge(w, r, "mkdir");
		if (r == 0)
			took(w, a.st.st_ino);
		break;
	case 3:
		r = mfs_symlink(fs, &cred, dir, name, "target", &a);
		judge(w, r, "symlink");
		if (r == 0)
			took(w, a.st.st_ino);
		break;
	case 4:
	case 5:
		if (ino) {
			uint64_t off =
			    pick(w, 16) ? pick(w, 32768) : (uint64_t)pick(w, 1u << 20) * CHUNK;
			r = mfs_pwrite(fs, ino, buf, pick(w, sizeof(buf)), off,
				       pick(w, 8) ? 0 : MFS_WRITE_APPEND);
			if (r != -EISDIR && r != -EINVAL) /* directories, symlinks */
				judge_held(w, r, ino);
		}
		break;
	case 6:
		if (ino) {
			r = mfs_pread(fs, ino, buf, sizeof(buf), pick(w, 40000));
			if (r != -EISDIR && r != -EINVAL)
				judge_held(w, r, ino);
		}
		break;
	case 7:
	case 8: {
		static const unsigned flags[] = {0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE};
		r = mfs_rename(fs, dir, name, dir2, name2, flags[pick(w, 4)]);
		judge(w, r, "rename");
		break;
	}
	case 9:
		if (ino) {
			r = mfs_link(fs, ino, dir, name, &a);
			judge(w, r, "link");
			if (r == 0)
				took(w, a.st.st_ino);
		}
		break;
	case 10:
		r = mfs_unlink(fs, dir, name);
		judge(w, r, "unlink");
		break;
	case 11:
		r = mfs_rmdir(fs, dir, name);
		judge(w, r, "rmdir");
		break;
	case 12: {
		struct taken t = {.plus = (int)pick(w, 2), .limit = (int)pick(w, 10)};
		r = mfs_readdir(fs, pick(w, 4) || !ino ? dir : ino, pick(w, 4) ? 0 : pick(w, 20),
				t.plus, take_entry, &t);
		judge(w, r, "readdir");
		for (int i = 0; i < t.nplus; i++)
			took(w, t.inos[i]);
		break;
	}
	case 13:
		if (ino) {
			struct mfs_setattr sa = {.valid = MFS_SET_MODE | MFS_SET_MTIME_NOW,
						 .mode = pick(w, 2) ? 0644 : 0600};
			if (pick(w, 2)) {
				sa.valid = MFS_SET_SIZE;
				sa.size = pick(w, 50000);
			}
			r = mfs_setattr(fs, ino, &sa, &a);
			if (r != -EISDIR && r != -EINVAL)
				judge_held(w, r, ino);
		}
		break;
	case 14:
	case 15:
		/* give back some references (forget, release) */
		if (ino) {
			uint32_t n = 1 + pick(w, w->lookups[ino]);
			mfs_forget(fs, ino, n);
			w->lookups[ino] -= n;
			if (w->opens[ino]) {
				judge(w, mfs_release(fs, ino), "release");
				w->opens[ino]--;
			}
		}
		break;
	case 16:
		r = mfs_lookup(fs, dir, name, &a);
		judge(w, r, "lookup");
		if (r == 0)
			took(w, a.st.st_ino);
		break;
	case 17: {
		uint64_t other = held_ino(w);
		if (ino && other) {
			/* both orders of the two inode locks, across threads */
			r = mfs_copy_range(fs, ino, pick(w, 20000), other, pick(w, 20000),
					   pick(w, 3 * CHUNK));
			if (r != -EISDIR && r != -EINVAL)
				judge_held(w, r, ino);
		}
		break;
	}
	case 18:
		if (ino) {
			r = pick(w, 2) ? mfs_setxattr(fs, ino, "user.t", buf, pick(w, 100), 0)
				       : mfs_getxattr(fs, ino, "user.t", buf, sizeof(buf));
			judge_held(w, r, ino);
			r = mfs_getattr(fs, ino, &a);
			judge_held(w, r, ino);
		}
		break;
	case 19:
		if (ino) {
			r = pick(w, 2)
				? mfs_fallocate(fs, ino, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
						pick(w, 20000), 1 + pick(w, 20000))
				: mfs_lseek(fs, ino, pick(w, 40000), SEEK_DATA);
			if (r != -EISDIR && r != -EINVAL)
				judge_held(w, r, ino);
		}
		break;
	}
}

static void *run(void *arg)
{
	struct worker *w = arg;
	const char *why;
	unsigned long todo = iterations();

	for (w->done = 0; w->done < todo && !atomic_load(&w->sh->failed); w->done++) {
		one_operation(w);
		if (w->id == 0 && w->done % 2000 == 1999 && mfs_check(w->sh->fs, &why) != 0)
			report_failure(w, "mfs_check in the middle: %s", why ? why : "(no reason)");
	}
	/* give everything back */
	for (uint64_t ino = 0; ino < MAX_INO; ino++) {
		if (w->lookups[ino])
			mfs_forget(w->sh->fs, ino, w->lookups[ino]);
		for (; w->opens[ino]; w->opens[ino]--)
			if (mfs_release(w->sh->fs, ino) != 0)
				report_failure(w, "release of open inode %" PRIu64 " failed", ino);
	}
	return NULL;
}

/* Entries of every directory reachable from the root, walked with a stack. */
struct walk {
	uint64_t *stack;
	size_t top, cap;
	uint64_t names;
};

static int count_entry(void *ctx, const char *name, const struct stat *st, uint64_t next_off)
{
	struct walk *wk = ctx;

	(void)name;
	(void)next_off;
	wk->names++;
	if (S_ISDIR(st->st_mode)) {
		if (wk->top == wk->cap) {
			wk->cap *= 2;
			wk->stack = realloc(wk->stack, wk->cap * sizeof(*wk->stack));
		}
		wk->stack[wk->top++] = st->st_ino;
	}
	return 0;
}

static uint64_t count_names(struct mfs_fs *fs)
{
	struct walk wk = {.cap = 64};

	wk.stack = malloc(wk.cap * sizeof(*wk.stack));
	wk.stack[wk.top++] = MFS_ROOT_INO;
	while (wk.top) {
		uint64_t dir = wk.stack[--wk.top];
		ck_assert_int_eq(mfs_readdir(fs, dir, 2, 0, count_entry, &wk), 0);
	}
	free(wk.stack);
	return wk.names;
}

START_TEST(four_threads_of_random_operations_leave_a_consistent_filesystem)
{
	struct mfs_params p = {.size_bytes = 64 << 20, .max_inodes = 5000, .root_mode = 0755};
	struct shared sh = {0};
	struct worker w[NTHREADS];
	struct mfs_attr a;
	struct statvfs sv;
	const char *why = NULL;
	unsigned long done = 0, succeeded = 0;

	alarm(WATCHDOG_S); /* a deadlock fails the test (SIGALRM) instead of hanging */
	ck_assert_int_eq(mfs_fs_new(&p, &sh.fs), 0);
	sh.dirs[0] = MFS_ROOT_INO;
	for (int i = 1; i < NSHARED; i++) {
		char name[8];
		snprintf(name, sizeof(name), "s%d", i);
		ck_assert_int_eq(mfs_mkdir(sh.fs, &cred, MFS_ROOT_INO, name, 0755, &a), 0);
		sh.dirs[i] = a.st.st_ino; /* the main thread keeps this lookup */
	}
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){.sh = &sh, .id = i, .rng = 0x9e3779b97f4a7c15ull * (i + 1)};
		w[i].lookups = calloc(MAX_INO, sizeof(uint32_t));
		w[i].opens = calloc(MAX_INO, sizeof(uint32_t));
		ck_assert_ptr_nonnull(w[i].lookups);
		ck_assert_ptr_nonnull(w[i].opens);
	}
	for (int i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_create(&w[i].thread, NULL, run, &w[i]), 0);
	for (int i = 0; i < NTHREADS; i++) {
		ck_assert_int_eq(pthread_join(w[i].thread, NULL), 0);
		done += w[i].done;
		succeeded += w[i].succeeded;
		free(w[i].lookups);
		free(w[i].opens);
	}
	ck_assert_msg(!atomic_load(&sh.failed), "%s", sh.why);
	ck_assert_uint_eq(done, (unsigned long)NTHREADS * iterations());
	ck_assert_uint_gt(succeeded, done / 4); /* the threads did real work */

	for (int i = 1; i < NSHARED; i++)
		mfs_forget(sh.fs, sh.dirs[i], 1);
	int err = mfs_check(sh.fs, &why);
	ck_assert_msg(err == 0, "mfs_check: %s", why ? why : "(no reason)");
	/* with every reference given back, only the tree is left */
	mfs_statfs(sh.fs, &sv);
	ck_assert_uint_eq(sv.f_files - sv.f_ffree, 1 + count_names(sh.fs));
	printf("concurrency: %lu operations, %lu succeeded, %lu inodes left\n", done, succeeded,
	       (unsigned long)(sv.f_files - sv.f_ffree));
	fflush(stdout);
	mfs_fs_destroy(sh.fs);
	alarm(0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("concurrency");
	TCase *tc = tcase_create("threads");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, four_threads_of_random_operations_leave_a_consistent_filesystem);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
