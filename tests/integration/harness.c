/*
 * harness.c — mounting a real memfs (or, as the oracle, a tmpfs) for the
 * integration tests.  See harness.h for the contract.
 *
 * Why the mounts live in a private mount namespace: Check runs every test in
 * a forked process and, on a failed assertion, leaves it with _exit() — no
 * teardown, no atexit — and on a timeout it SIGKILLs the test's process
 * group.  So the first time a test process mounts anything it unshares its
 * mount namespace (making every mount private, so nothing propagates back)
 * and puts a small tmpfs over HX_BASE; mount points and the oracle tmpfs
 * all live inside it.  Whatever happens to the test, its mounts
 * and directories disappear with the namespace, and the host never sees one.
 * On top of that the daemon runs in its own process group (a timeout's
 * SIGKILL does not reach it), gets SIGTERM when the test process dies
 * (PR_SET_PDEATHSIG) and is started with -o auto_unmount: it always gets to
 * unmount cleanly and exit.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A directory of the host that only ever holds a per-namespace tmpfs. */
#define HX_BASE "/tmp/memfs-hx"
#define MOUNT_TIMEOUT_MS 30000 /* valgrind starts slowly */
#define EXIT_TIMEOUT_MS 60000 /* valgrind's leak check takes a while */

struct hx_mount hx_mnt;

/* Where mount points are made: HX_BASE in a private namespace, else /tmp. */
static const char *base_dir;
static char tmpfs_dir[PATH_MAX]; /* hx_tmpfs(), "" until the first call */

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/*
 * Enter a private mount namespace with a tmpfs over HX_BASE (once per
 * process tree).  Without the privilege for it, fall back to plain /tmp:
 * the PDEATHSIG and auto_unmount guards still hold.
 */
static const char *private_base(void)
{
	if (base_dir)
		return base_dir;
	base_dir = "/tmp";
	if (mkdir(HX_BASE, 0755) < 0 && errno != EEXIST)
		return base_dir;
	if (unshare(CLONE_NEWNS) < 0) {
		fprintf(stderr, "harness: unshare(CLONE_NEWNS): %s; mounting in /tmp\n",
			strerror(errno));
		return base_dir;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("memfs-hx", HX_BASE, "tmpfs", 0, "mode=0755,size=64m") < 0) {
		fprintf(stderr, "harness: private mount of " HX_BASE ": %s; mounting in /tmp\n",
			strerror(errno));
		return base_dir;
	}
	base_dir = HX_BASE;
	return base_dir;
}

int hx_oracle(void)
{
	const char *o = getenv("HX_ORACLE");

	return o && strcmp(o, "tmpfs") == 0;
}

static int is_mounted(const char *dir)
{
	struct stat a, b;
	char parent[PATH_MAX + 4];

	snprintf(parent, sizeof(parent), "%s/..", dir);
	if (stat(dir, &a) < 0 || stat(parent, &b) < 0)
		return 0;
	return a.st_dev != b.st_dev;
}

/* Append comma-separated options to dst (which already holds some or none). */
static void add_opts(char *dst, size_t size, const char *opts)
{
	size_t len = strlen(dst);

	if (!opts || !*opts)
		return;
	snprintf(dst + len, size - len, "%s%s", len ? "," : "", opts);
}

/* The tmpfs equivalent of memfs options: keep what tmpfs knows, drop the rest. */
static void tmpfs_opts(char *dst, size_t size, const char *opts)
{
	static const char *const keep[] = {"size=", "nr_inodes=", "mode=", "uid=", "gid="};
	char *copy, *tok, *save = NULL;

	dst[0] = '\0';
	if (!opts)
		return;
	copy = strdup(opts);
	ck_assert(copy);
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
			if (strncmp(tok, keep[i], strlen(keep[i])) == 0)
				add_opts(dst, size, tok);
	}
	free(copy);
}

static void mount_tmpfs(struct hx_mount *m, const char *opts)
{
	char data[1024];

	tmpfs_opts(data, sizeof(data), opts);
	if (mount("hx-oracle", m->dir, "tmpfs", 0, data) < 0) {
		int e = errno;

		rmdir(m->dir);
		ck_abort_msg("mount -t tmpfs -o '%s' %s: %s", data, m->dir, strerror(e));
	}
	m->is_tmpfs = 1;
}

/* The daemon's child side: never returns. */
static void exec_daemon(const char *bin, const char *dir, const char *opts, pid_t parent)
{
	int fd;

	/* A timeout's killpg must not reach the daemon: it unmounts on SIGTERM. */
	setsid();
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
		_exit(126);
	/*
	 * Everything the daemon says goes to the test's stderr, where meson
	 * keeps it next to the test's own messages: a sanitizer report from a
	 * daemon that crashed under a failing test is seen at once.
	 */
	dup2(STDERR_FILENO, STDOUT_FILENO);
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0)
		dup2(fd, STDIN_FILENO);
	/* MEMFS_WRAPPER (e.g. "valgrind --error-exitcode=99 ..."): words put
	 * before the daemon's command line; its exit status is checked as the
	 * daemon's, so a valgrind error fails the test that caused it. */
	char *argv[64], *wrapper = getenv("MEMFS_WRAPPER"), *save = NULL;
	int argc = 0;

	for (char *w = wrapper ? strtok_r(wrapper, " ", &save) : NULL; w && argc < 56;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc++] = (char *)bin;
	argv[argc++] = "-f";
	argv[argc++] = "-o";
	argv[argc++] = (char *)opts;
	argv[argc++] = (char *)dir;
	argv[argc] = NULL;
	execvp(argv[0], argv);
	fprintf(stderr, "harness: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

static void mount_memfs(struct hx_mount *m, const char *opts)
{
	const char *bin = getenv("MEMFS_BIN");
	char all[2048] = "auto_unmount";
	pid_t parent = getpid();
	int status;

	if (!bin || !*bin) {
		rmdir(m->dir);
		ck_abort_msg("MEMFS_BIN is not set (meson test sets it; or use HX_ORACLE=tmpfs)");
	}
	add_opts(all, sizeof(all), opts);
	add_opts(all, sizeof(all), getenv("MEMFS_EXTRA_OPTS"));

	m->pid = fork();
	ck_assert_msg(m->pid >= 0, "fork: %s", strerror(errno));
	if (m->pid == 0)
		exec_daemon(bin, m->dir, all, parent);

	for (int waited_ms = 0;; waited_ms += 10) {
		if (is_mounted(m->dir))
			return;
		if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
			m->pid = 0;
			rmdir(m->dir);
			ck_abort_msg(
			    "memfs -o %s %s %s %d before mounting (see its messages above)", all,
			    m->dir, WIFEXITED(status) ? "exited with status" : "killed by signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		}
		if (waited_ms >= MOUNT_TIMEOUT_MS) {
			kill(m->pid, SIGKILL);
			waitpid(m->pid, &status, 0);
			m->pid = 0;
			rmdir(m->dir);
			ck_abort_msg("memfs -o %s %s: not mounted after %d ms", all, m->dir,
				     MOUNT_TIMEOUT_MS);
		}
		sleep_ms(10);
	}
}

void hx_mount(struct hx_mount *m, const char *opts)
{
	memset(m, 0, sizeof(*m));
	snprintf(m->dir, sizeof(m->dir), "%s/mnt.XXXXXX", private_base());
	ck_assert_msg(mkdtemp(m->dir), "mkdtemp %s: %s", m->dir, strerror(errno));
	if (hx_oracle())
		mount_tmpfs(m, opts);
	else
		mount_memfs(m, opts);
}

/* Run argv, wait for it, return its exit status (or -1). */
static int run(char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Wait up to EXIT_TIMEOUT_MS for the daemon; SIGKILL it after that. */
static int wait_daemon(pid_t pid, int *status)
{
	for (int waited_ms = 0; waited_ms < EXIT_TIMEOUT_MS; waited_ms += 10) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return 0;
		sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -1;
}

void hx_umount(struct hx_mount *m)
{
	int rc, status = 0;

	if (!m->dir[0])
		return;
	if (m->is_tmpfs) {
		rc = umount2(m->dir, 0);
		int e = errno;

		if (rc < 0)
			umount2(m->dir, MNT_DETACH);
		rmdir(m->dir);
		m->dir[0] = '\0';
		ck_assert_msg(rc == 0, "umount tmpfs: %s (a file left open?)", strerror(e));
		return;
	}
	if (!m->pid)
		return;

	char *umount_argv[] = {"fusermount3", "-u", m->dir, NULL};
	char *lazy_argv[] = {"fusermount3", "-u", "-z", m->dir, NULL};

	rc = run(umount_argv);
	if (rc != 0) {
		/* Busy (a file left open?): detach it and stop the daemon anyway. */
		run(lazy_argv);
		kill(m->pid, SIGTERM);
	}
	int timed_out = wait_daemon(m->pid, &status) < 0;
	pid_t pid = m->pid;

	m->pid = 0;
	rmdir(m->dir);
	ck_assert_msg(rc == 0, "fusermount3 -u %s: exit status %d", m->dir, rc);
	ck_assert_msg(!timed_out, "memfs (pid %d) still running %d ms after unmount: killed",
		      (int)pid, EXIT_TIMEOUT_MS);
	ck_assert_msg(WIFEXITED(status), "memfs killed by signal %d", WTERMSIG(status));
	ck_assert_msg(WEXITSTATUS(status) == 0,
		      "memfs exited with status %d (its messages are above)", WEXITSTATUS(status));
	m->dir[0] = '\0';
}

void hx_setup(void)
{
	/* Without fork mode the process is reused: give each test its own oracle. */
	if (tmpfs_dir[0]) {
		umount2(tmpfs_dir, MNT_DETACH);
		rmdir(tmpfs_dir);
		tmpfs_dir[0] = '\0';
	}
	hx_mount(&hx_mnt, NULL);
}

void hx_teardown(void)
{
	hx_umount(&hx_mnt);
}

const char *hx_path(const struct hx_mount *m, const char *rel)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 8];

	int n = snprintf(b, PATH_MAX, "%s/%s", m->dir, rel);

	ck_assert_msg(n < PATH_MAX, "path too long: %s/%s", m->dir, rel);
	return b;
}

const char *P(const char *rel)
{
	return hx_path(&hx_mnt, rel);
}

const char *hx_tmpfs(void)
{
	if (tmpfs_dir[0])
		return tmpfs_dir;
	snprintf(tmpfs_dir, sizeof(tmpfs_dir), "%s/oracle.XXXXXX", private_base());
	ck_assert_msg(mkdtemp(tmpfs_dir), "mkdtemp %s: %s", tmpfs_dir, strerror(errno));
	if (mount("hx-tmpfs", tmpfs_dir, "tmpfs", 0, "mode=1777") < 0) {
		int e = errno;

		rmdir(tmpfs_dir);
		tmpfs_dir[0] = '\0';
		ck_abort_msg("mount tmpfs for hx_tmpfs(): %s", strerror(e));
	}
	return tmpfs_dir;
}

void hx_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	const char *p = buf;

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		ck_assert_msg(n > 0, "write %s: %s", path, n < 0 ? strerror(errno) : "0 bytes");
		p += n;
		len -= (size_t)n;
	}
	ck_assert_msg(close(fd) == 0, "close %s: %s", path, strerror(errno));
}

void *hx_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	size_t cap = 4096, used = 0;
	char *buf;

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	buf = malloc(cap + 1);
	ck_assert(buf);
	for (;;) {
		ssize_t n;

		if (used == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			ck_assert(buf);
		}
		n = read(fd, buf + used, cap - used);
		ck_assert_msg(n >= 0, "read %s: %s", path, strerror(errno));
		if (n == 0)
			break;
		used += (size_t)n;
	}
	close(fd);
	buf[used] = '\0';
	if (len)
		*len = used;
	return buf;
}

int hx_sh(const char *fmt, ...)
{
	va_list ap;
	char *cmd;
	int rc, status;

	va_start(ap, fmt);
	rc = vasprintf(&cmd, fmt, ap);
	va_end(ap);
	if (rc < 0)
		return -1;
	status = system(cmd);
	free(cmd);
	if (status < 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

int hx_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	if (hx_oracle())
		fprintf(stderr, "harness: HX_ORACLE=tmpfs: running against tmpfs, not memfs\n");
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
