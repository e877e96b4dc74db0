/*
 * test_unmount.c — taking the filesystem away while it is busy.
 *
 * Writer processes keep creating, writing, reading back and unlinking files
 * through a directory descriptor of the mount (so they keep reaching the
 * filesystem after it leaves the namespace) while:
 *  - fusermount3 -u (not lazy) is refused with the files open, and
 *    everything keeps working;
 *  - fusermount3 -u -z detaches it: the mount point no longer shows it, the
 *    writers go on unharmed through their descriptors, and when the last
 *    one closes the daemon exits 0 on its own — under the sanitizers that
 *    also means every byte was freed (LeakSanitizer fails the exit);
 *  - the daemon gets SIGTERM: it unmounts and exits 0, and the writers see
 *    errors (ENOTCONN and the like), never a hang.
 * A watchdog (alarm) in every writer and in the test turns a hang into a
 * failure.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WRITERS 3
#define FILE_BYTES (64 * 1024)
#define WATCHDOG_S 60

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (time_t)s) * 1e9)};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static volatile sig_atomic_t stop;

static void on_usr1(int sig)
{
	(void)sig;
	stop = 1;
}

/*
 * Exit codes of a writer: 0 it ran until told to stop and every file read
 * back right; 1 an operation failed (with fail_ok, how many succeeded before
 * is in the log); 2 a file read back wrong.
 */
static int writer(int dirfd, int w, int fail_ok, const char *log)
{
	static unsigned char buf[FILE_BYTES], back[FILE_BYTES];
	unsigned long done = 0;
	int code = 0;

	signal(SIGUSR1, on_usr1);
	alarm(WATCHDOG_S);
	for (unsigned i = 0; !stop; i++) {
		char name[32];
		snprintf(name, sizeof(name), "w%d-%u", w, i % 16);
		memset(buf, 'a' + (i % 26), sizeof(buf));
		buf[0] = (unsigned char)w;
		int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) ||
		    pread(fd, back, sizeof(back), 0) != (ssize_t)sizeof(back)) {
			code = 1;
			if (fd >= 0)
				close(fd);
			break;
		}
		close(fd);
		if (memcmp(buf, back, sizeof(buf)) != 0) {
			code = 2;
			break;
		}
		if (i % 3 == 0 && unlinkat(dirfd, name, 0) != 0 && errno != ENOENT) {
			code = 1;
			break;
		}
		done++;
	}
	int err = errno;
	FILE *f = fopen(log, "w");
	if (f) {
		fprintf(f, "%lu %d\n", done, code == 1 ? err : 0);
		fclose(f);
	}
	if (code == 1 && fail_ok)
		code = 0;
	return code;
}

struct load {
	pid_t pids[WRITERS];
	char logs[WRITERS][PATH_MAX];
};

static void start_writers(struct load *l, int fail_ok)
{
	int dirfd = open(hx_mnt.dir, O_RDONLY | O_DIRECTORY);

	ck_assert_msg(dirfd >= 0, "open %s: %s", hx_mnt.dir, strerror(errno));
	for (int w = 0; w < WRITERS; w++) {
		snprintf(l->logs[w], sizeof(l->logs[w]), "%s/writer-%d.log", hx_tmpfs(), w);
		l->pids[w] = fork();
		ck_assert_int_ge(l->pids[w], 0);
		if (l->pids[w] == 0)
			_exit(writer(dirfd, w, fail_ok, l->logs[w]));
	}
	close(dirfd); /* only the writers hold the mount now */
}

/*
 * Until every writer is past its first file (its file number 1 exists): a
 * fixed sleep was not always enough for the slowest one under a sanitizer
 * on a loaded machine ("writer 1 never got going").
 */
static void wait_writers_going(void)
{
	double end = now_s() + WATCHDOG_S / 2;

	for (int w = 0; w < WRITERS; w++) {
		char path[PATH_MAX + 32];
		struct stat st;

		snprintf(path, sizeof(path), "%s/w%d-1", hx_mnt.dir, w);
		while (stat(path, &st) != 0) {
			ck_assert_msg(now_s() < end, "writer %d made no file in %d s", w, WATCHDOG_S / 2);
			sleep_s(0.01);
		}
	}
}

/* Tell the writers to stop, wait for them; the number of files each made and its errno. */
static void stop_writers(struct load *l, unsigned long *done, int *errs)
{
	for (int w = 0; w < WRITERS; w++)
		kill(l->pids[w], SIGUSR1);
	for (int w = 0; w < WRITERS; w++) {
		int status;
		ck_assert_int_eq(waitpid(l->pids[w], &status, 0), l->pids[w]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "writer %d: %s %d", w, WIFEXITED(status) ? "exit status" : "signal",
			      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		FILE *f = fopen(l->logs[w], "r");
		ck_assert_msg(f, "writer %d left no log", w);
		ck_assert_int_eq(fscanf(f, "%lu %d", &done[w], &errs[w]), 2);
		fclose(f);
	}
}

static int mounted_here(const char *dir)
{
	struct stat a, b;
	char parent[PATH_MAX + 4];

	snprintf(parent, sizeof(parent), "%s/..", dir);
	return stat(dir, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

/* Wait for the daemon to exit by itself; its exit status. */
static int wait_daemon(pid_t pid, double timeout_s)
{
	double end = now_s() + timeout_s;
	int status;

	while (now_s() < end) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return status;
		sleep_s(0.02);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	ck_abort_msg("memfs still running %.0f s after the last file closed: killed", timeout_s);
	return -1;
}

static void done_with_mount(void)
{
	hx_mnt.pid = 0; /* gone: the fixture's teardown has nothing left to do */
	rmdir(hx_mnt.dir);
	hx_mnt.dir[0] = '\0';
}

START_TEST(lazy_unmount_under_load_lets_writers_finish_and_the_daemon_exit_0)
{
	struct load l;
	unsigned long done[WRITERS];
	int errs[WRITERS];

	if (hx_oracle())
		return;
	alarm(WATCHDOG_S * 2);
	start_writers(&l, 0);
	wait_writers_going();
	sleep_s(0.3);
	ck_assert_msg(hx_sh("fusermount3 -u '%s' 2>/dev/null", hx_mnt.dir) != 0,
		      "fusermount3 -u succeeded with files open");
	ck_assert_msg(mounted_here(hx_mnt.dir), "refused unmount took the mount away");
	ck_assert_int_eq(hx_sh("fusermount3 -u -z '%s'", hx_mnt.dir), 0);
	ck_assert_msg(!mounted_here(hx_mnt.dir), "still mounted after fusermount3 -u -z");
	/* the writers go on through their descriptors for a while */
	sleep_s(0.7);
	ck_assert_msg(waitpid(hx_mnt.pid, NULL, WNOHANG) == 0,
		      "the daemon left while the detached filesystem was in use");
	stop_writers(&l, done, errs);
	for (int w = 0; w < WRITERS; w++)
		ck_assert_msg(done[w] > 0 && errs[w] == 0, "writer %d: %lu files, errno %d", w,
			      done[w], errs[w]);
	int status = wait_daemon(hx_mnt.pid, 30);
	done_with_mount();
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "memfs after a lazy unmount: %s %d (a sanitizer report is above)",
		      WIFEXITED(status) ? "exit status" : "killed by signal",
		      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	printf("lazy unmount: writers made %lu, %lu, %lu files\n", done[0], done[1], done[2]);
}
END_TEST

START_TEST(sigterm_under_load_unmounts_exits_0_and_writers_get_errors_not_hangs)
{
	struct load l;
	unsigned long done[WRITERS];
	int errs[WRITERS];

	if (hx_oracle())
		return;
	alarm(WATCHDOG_S * 2);
	start_writers(&l, 1);
	wait_writers_going();
	sleep_s(0.3);
	ck_assert_int_eq(kill(hx_mnt.pid, SIGTERM), 0);
	int status = wait_daemon(hx_mnt.pid, 30);
	pid_t pid = hx_mnt.pid;
	done_with_mount();
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "memfs %d after SIGTERM under load: %s %d", (int)pid,
		      WIFEXITED(status) ? "exit status" : "killed by signal",
		      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	/* the writers fail by themselves now; stop the ones that have not yet */
	sleep_s(0.3);
	stop_writers(&l, done, errs);
	for (int w = 0; w < WRITERS; w++) {
		ck_assert_msg(done[w] > 0, "writer %d never got going (errno %d)", w, errs[w]);
		/*
		 * ECANCELED: over io_uring, a request the kernel handed to a
		 * ring entry just as that ring's thread exited is ended with
		 * it (fs/fuse/dev_uring.c, fuse_uring_send_in_task() run with
		 * the task dead; seen in the fuse_request_end trace event,
		 * from a kworker, about 1 run in 25).
		 */
		ck_assert_msg(errs[w] == ENOTCONN || errs[w] == ECONNABORTED || errs[w] == ENODEV ||
				  errs[w] == EIO || errs[w] == ECANCELED,
			      "writer %d after the daemon left: errno %d (%s)", w, errs[w],
			      strerror(errs[w]));
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("unmount");
	TCase *tc = tcase_create("under_load");

	tcase_add_checked_fixture(tc, hx_setup, hx_teardown);
	tcase_set_timeout(tc, 3 * WATCHDOG_S);
	tcase_add_test(tc, lazy_unmount_under_load_lets_writers_finish_and_the_daemon_exit_0);
	tcase_add_test(tc, sigterm_under_load_unmounts_exits_0_and_writers_get_errors_not_hangs);
	suite_add_tcase(s, tc);
	return hx_run(s);
}
