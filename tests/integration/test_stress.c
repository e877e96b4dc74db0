/*
 * test_stress.c — several processes at once on one mount, against the
 * multi-threaded daemon: creating, writing, renaming, linking and unlinking
 * in shared directories for a bounded time.  Afterwards every file a worker
 * still owns must hold exactly what it last wrote, every name in the shared
 * directories must stat, and the daemon must unmount and exit 0 (under the
 * sanitizers: no race the sanitizers catch, no leak).  A watchdog turns a
 * deadlock into a failure instead of a hang.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 4
#define DEFAULT_SECONDS 4 /* MEMFS_STRESS_SECONDS overrides: a soak */
#define STEPS_PER_SECOND 5000 /* at most, per worker */
#define SHARED_DIRS 3
#define FILE_MAX (96 * 1024)

static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

/* The bytes worker w writes into its file at version v. */
static void pattern(unsigned char *buf, size_t len, int w, unsigned v)
{
	uint64_t x = ((uint64_t)w << 32 | v) * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < len; i++)
		buf[i] = (unsigned char)next_rand(&x);
}

static int run_seconds(void)
{
	const char *e = getenv("MEMFS_STRESS_SECONDS");
	int s = e ? atoi(e) : 0;

	return s > 0 ? s : DEFAULT_SECONDS;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * One worker: its own file "own-W" is rewritten with known contents (the
 * checked part); the shared directories get random churn from everyone
 * (the part where races would show).  Errors such as ENOENT or EEXIST are
 * expected there, since others remove and rename the same names; anything
 * else is reported through the exit status.
 */
static int worker(const char *root, int w)
{
	static unsigned char buf[FILE_MAX], back[FILE_MAX];
	char own[32], a[32], b[32];
	uint64_t x = 0x12345678u + (uint64_t)w * 7919;
	double end = now_s() + run_seconds();
	long max_steps = (long)run_seconds() * STEPS_PER_SECOND;
	unsigned version = 0;
	int fd;

	if (chdir(root) != 0) /* relative names from here on */
		return 9;
	snprintf(own, sizeof(own), "own-%d", w);
	for (long step = 0; step < max_steps && now_s() < end; step++) {
		int d1 = (int)(next_rand(&x) % SHARED_DIRS), d2 = (int)(next_rand(&x) % SHARED_DIRS);
		int n1 = (int)(next_rand(&x) % 40), n2 = (int)(next_rand(&x) % 40);
		int op = (int)(next_rand(&x) % 8);

		snprintf(a, sizeof(a), "d%d/f%d", d1, n1);
		snprintf(b, sizeof(b), "d%d/f%d", d2, n2);
		switch (op) {
		case 0: { /* rewrite and verify the worker's own file */
			size_t len = 1 + next_rand(&x) % FILE_MAX;
			pattern(buf, len, w, ++version);
			fd = open(own, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd) != 0)
				return 10;
			fd = open(own, O_RDONLY);
			if (fd < 0 || read(fd, back, FILE_MAX) != (ssize_t)len || close(fd) != 0 ||
			    memcmp(buf, back, len) != 0)
				return 11;
			break;
		}
		case 1:
			fd = open(a, O_WRONLY | O_CREAT | O_APPEND, 0644);
			if (fd >= 0) {
				if (write(fd, buf, 64) != 64)
					return 12;
				close(fd);
			} else if (errno != ENOENT && errno != EISDIR) {
				return 13;
			}
			break;
		case 2:
			if (rename(a, b) != 0 && errno != ENOENT && errno != EISDIR &&
			    errno != ENOTDIR && errno != ENOTEMPTY)
				return 14;
			break;
		case 3:
			if (link(a, b) != 0 && errno != ENOENT && errno != EEXIST && errno != EPERM)
				return 15;
			break;
		case 4:
			if (unlink(a) != 0 && errno != ENOENT && errno != EISDIR)
				return 16;
			break;
		case 5:
			if (mkdir(a, 0755) != 0 && errno != EEXIST)
				return 17;
			break;
		case 6:
			if (rmdir(a) != 0 && errno != ENOENT && errno != ENOTDIR &&
			    errno != ENOTEMPTY)
				return 18;
			break;
		default: { /* list a shared directory: every name must stat or be gone */
			char dir[32];
			snprintf(dir, sizeof(dir), "d%d", d1);
			DIR *dp = opendir(dir);
			struct dirent *e;
			if (!dp)
				return 19;
			while ((e = readdir(dp))) {
				struct stat st;
				if (fstatat(dirfd(dp), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
				    errno != ENOENT)
					return 20;
			}
			closedir(dp);
		}
		}
	}
	/* leave the final version where the parent can check it */
	fd = open(own, O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, back, FILE_MAX);
		close(fd);
		pattern(buf, (size_t)(n > 0 ? n : 0), w, version);
		if (n < 0 || memcmp(buf, back, (size_t)n) != 0)
			return 21;
	}
	return 0;
}

START_TEST(parallel_writers_renamers_and_unlinkers_leave_a_consistent_tree)
{
	pid_t pids[WORKERS];
	char dir[PATH_MAX];

	for (int d = 0; d < SHARED_DIRS; d++) {
		snprintf(dir, sizeof(dir), "d%d", d);
		ck_assert_int_eq(mkdir(P(dir), 0755), 0);
	}
	for (int w = 0; w < WORKERS; w++) {
		pids[w] = fork();
		ck_assert_int_ge(pids[w], 0);
		if (pids[w] == 0) {
			alarm(60 + run_seconds()); /* watchdog: a deadlocked worker dies, and fails */
			_exit(worker(hx_mnt.dir, w));
		}
	}
	for (int w = 0; w < WORKERS; w++) {
		int status;
		ck_assert_int_eq(waitpid(pids[w], &status, 0), pids[w]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "worker %d: %s %d (see the step codes in worker())", w,
			      WIFEXITED(status) ? "exit status" : "killed by signal",
			      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	}
	/* everything left must be reachable and removable */
	ck_assert_int_eq(hx_sh("find '%s' -xdev >/dev/null", hx_mnt.dir), 0);
	ck_assert_int_eq(hx_sh("rm -rf '%s'/d0 '%s'/d1 '%s'/d2 '%s'/own-*", hx_mnt.dir,
			       hx_mnt.dir, hx_mnt.dir, hx_mnt.dir),
			 0);
	struct statvfs sv;
	ck_assert_int_eq(statvfs(hx_mnt.dir, &sv), 0);
	ck_assert_msg(sv.f_files - sv.f_ffree == 1, "%lu inodes still used after rm -rf",
		      (unsigned long)(sv.f_files - sv.f_ffree));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stress");
	TCase *tc = tcase_create("stress");

	tcase_add_checked_fixture(tc, hx_setup, hx_teardown);
	tcase_set_timeout(tc, 120 + run_seconds());
	tcase_add_test(tc, parallel_writers_renamers_and_unlinkers_leave_a_consistent_tree);
	suite_add_tcase(s, tc);
	return hx_run(s);
}
