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
#include <ftw.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
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
static char lower_dirs[HX_MAX_LOWERS][PATH_MAX]; /* hx_lower(i), "" until its first call */

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

/* Remove a mount point made by hx_mount (not one given to hx_mount_on). */
static void drop_dir(const struct hx_mount *m)
{
	if (!m->keep_dir)
		rmdir(m->dir);
}

/* Whether something is mounted on dir that was not there when its st_dev was dev. */
static int is_mounted(const char *dir, dev_t dev)
{
	struct stat a;

	return stat(dir, &a) == 0 && a.st_dev != dev;
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

		drop_dir(m);
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
	struct stat before;
	int status;

	if (!bin || !*bin) {
		drop_dir(m);
		ck_abort_msg("MEMFS_BIN is not set (meson test sets it; or use HX_ORACLE=tmpfs)");
	}
	add_opts(all, sizeof(all), opts);
	add_opts(all, sizeof(all), getenv("MEMFS_EXTRA_OPTS"));
	/* the mount point may be a mount itself (hx_mount_on a lower) */
	ck_assert_msg(stat(m->dir, &before) == 0, "stat %s: %s", m->dir, strerror(errno));

	m->pid = fork();
	ck_assert_msg(m->pid >= 0, "fork: %s", strerror(errno));
	if (m->pid == 0)
		exec_daemon(bin, m->dir, all, parent);

	for (int waited_ms = 0;; waited_ms += 10) {
		if (is_mounted(m->dir, before.st_dev))
			return;
		if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
			m->pid = 0;
			drop_dir(m);
			ck_abort_msg(
			    "memfs -o %s %s %s %d before mounting (see its messages above)", all,
			    m->dir, WIFEXITED(status) ? "exited with status" : "killed by signal",
			    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		}
		if (waited_ms >= MOUNT_TIMEOUT_MS) {
			kill(m->pid, SIGKILL);
			waitpid(m->pid, &status, 0);
			m->pid = 0;
			drop_dir(m);
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

void hx_mount_on(struct hx_mount *m, const char *dir, const char *opts)
{
	memset(m, 0, sizeof(*m));
	ck_assert_msg(strlen(dir) < sizeof(m->dir), "mount point too long: %s", dir);
	strcpy(m->dir, dir);
	m->keep_dir = 1;
	private_base(); /* mount in the private namespace, like hx_mount */
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
		drop_dir(m);
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
	drop_dir(m);
	ck_assert_msg(rc == 0, "fusermount3 -u %s: exit status %d", m->dir, rc);
	ck_assert_msg(!timed_out, "memfs (pid %d) still running %d ms after unmount: killed",
		      (int)pid, EXIT_TIMEOUT_MS);
	ck_assert_msg(WIFEXITED(status), "memfs killed by signal %d", WTERMSIG(status));
	ck_assert_msg(WEXITSTATUS(status) == 0,
		      "memfs exited with status %d (its messages are above)", WEXITSTATUS(status));
	m->dir[0] = '\0';
}

static void drop_scratch(char *dir)
{
	if (!dir[0])
		return;
	umount2(dir, MNT_DETACH);
	rmdir(dir);
	dir[0] = '\0';
}

static double setup_at_s; /* when the test's fixture ran (HX_TIMES) */

static double monotonic_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Without fork mode the process is reused: give each test its own scratch dirs. */
static void reset_scratch(void)
{
	drop_scratch(tmpfs_dir);
	for (int i = 0; i < HX_MAX_LOWERS; i++)
		drop_scratch(lower_dirs[i]);
}

void hx_setup(void)
{
	reset_scratch();
	setup_at_s = monotonic_s();
	hx_mount(&hx_mnt, NULL);
}

void hx_setup_nomount(void)
{
	reset_scratch();
	setup_at_s = monotonic_s();
}

void hx_teardown(void)
{
	hx_umount(&hx_mnt);
	if (getenv("HX_TIMES") && setup_at_s > 0)
		fprintf(stderr, "harness: test took %.2f s\n", monotonic_s() - setup_at_s);
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

/* A fresh tmpfs on a new directory base/name.XXXXXX, kept in dir. */
static const char *scratch_tmpfs(char *dir, const char *name, const char *data)
{
	if (dir[0])
		return dir;
	snprintf(dir, PATH_MAX, "%s/%s.XXXXXX", private_base(), name);
	ck_assert_msg(mkdtemp(dir), "mkdtemp %s: %s", dir, strerror(errno));
	if (mount(name, dir, "tmpfs", 0, data) < 0) {
		int e = errno;

		rmdir(dir);
		dir[0] = '\0';
		ck_abort_msg("mount tmpfs %s: %s", name, strerror(e));
	}
	return dir;
}

const char *hx_tmpfs(void)
{
	return scratch_tmpfs(tmpfs_dir, "hx-tmpfs", "mode=1777");
}

const char *hx_lower(int i)
{
	char name[32];

	ck_assert_msg(i >= 0 && i < HX_MAX_LOWERS, "hx_lower(%d): at most %d layers", i,
		      HX_MAX_LOWERS);
	snprintf(name, sizeof(name), "hx-lower%d", i);
	return scratch_tmpfs(lower_dirs[i], name, "mode=0755");
}

static struct {
	const char *dst;
	size_t rootlen;
} times_ctx;

/* Give dst's entry of the same path and type the times of this layer's. */
static int copy_times(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char to[PATH_MAX];
	struct stat dst_st;

	(void)flag;
	if (ftw->level == 0)
		return 0;
	snprintf(to, sizeof(to), "%s%s", times_ctx.dst, path + times_ctx.rootlen);
	if (lstat(to, &dst_st) == 0 && (dst_st.st_mode & S_IFMT) == (st->st_mode & S_IFMT)) {
		struct timespec ts[2] = {st->st_atim, st->st_mtim};

		ck_assert_msg(utimensat(AT_FDCWD, to, ts, AT_SYMLINK_NOFOLLOW) == 0,
			      "utimensat %s: %s", to, strerror(errno));
	}
	return 0;
}

void hx_copy_lowers(const char *dst, int nlayers)
{
	ck_assert_msg(nlayers >= 1 && nlayers <= HX_MAX_LOWERS, "hx_copy_lowers: %d layers",
		      nlayers);
	/* cp -a keeps a sparse file sparse; rsync --force lets a file of an
	 * upper layer replace a whole directory below it, as the overlay does,
	 * and --ignore-times copies a file of the same size and mtime too */
	int rc = hx_sh("cp -a '%s'/. '%s'/", hx_lower(nlayers - 1), dst);

	ck_assert_msg(rc == 0, "cp -a %s/. %s/: exit status %d", hx_lower(nlayers - 1), dst, rc);
	for (int i = nlayers - 2; i >= 0; i--) {
		rc = hx_sh("rsync -aHAX --ignore-times --sparse --force '%s'/ '%s'/", hx_lower(i), dst);
		ck_assert_msg(rc == 0, "rsync %s/ %s/: exit status %d", hx_lower(i), dst, rc);
	}
	/* rsync leaves an entry whose times it found equal already (layers
	 * made in the same clock tick) with the time of its own changes to
	 * it; applied bottom-up, the topmost layer's times stay */
	for (int i = nlayers - 1; nlayers > 1 && i >= 0; i--) {
		times_ctx.dst = dst;
		times_ctx.rootlen = strlen(hx_lower(i));
		ck_assert_msg(nftw(hx_lower(i), copy_times, 16, FTW_PHYS) == 0,
			      "nftw %s: %s", hx_lower(i), strerror(errno));
	}
	/* the root is the top layer's (cp -a onto a tmpfs root keeps its
	 * sticky bit) */
	struct stat top;
	struct timespec ts[2];

	ck_assert(stat(hx_lower(0), &top) == 0);
	ts[0] = top.st_atim;
	ts[1] = top.st_mtim;
	ck_assert_msg(chown(dst, top.st_uid, top.st_gid) == 0 &&
			      chmod(dst, top.st_mode & 07777) == 0 &&
			      utimensat(AT_FDCWD, dst, ts, 0) == 0,
		      "setting the attributes of %s: %s", dst, strerror(errno));
}

/* The value of option key= in a comma-separated list, copied into buf; NULL if absent. */
static const char *opt_value(const char *opts, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);

	for (const char *p = opts; p && *p;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len > klen && strncmp(p, key, klen) == 0 && len - klen < size) {
			memcpy(buf, p + klen, len - klen);
			buf[len - klen] = '\0';
			return buf;
		}
		p = end ? end + 1 : p + len;
	}
	return NULL;
}

void hx_mount_lower(struct hx_mount *m, int nlayers, const char *opts)
{
	char all[8192] = "lower=", id[32];

	ck_assert_msg(nlayers >= 1 && nlayers <= HX_MAX_LOWERS, "hx_mount_lower: %d layers",
		      nlayers);
	for (int i = 0; i < nlayers; i++) {
		size_t len = strlen(all);

		snprintf(all + len, sizeof(all) - len, "%s%s", i ? ":" : "", hx_lower(i));
	}
	add_opts(all, sizeof(all), opts);
	hx_mount(m, all);
	if (!m->is_tmpfs)
		return;
	hx_copy_lowers(m->dir, nlayers);
	if (opt_value(opts, "lower_uid=", id, sizeof(id)))
		ck_assert_int_eq(hx_sh("chown -R -h '%s' '%s'", id, m->dir), 0);
	if (opt_value(opts, "lower_gid=", id, sizeof(id)))
		ck_assert_int_eq(hx_sh("chgrp -R -h '%s' '%s'", id, m->dir), 0);
}

void hx_drop_caches(int what)
{
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	char c = (char)('0' + what);

	ck_assert_msg(fd >= 0, "open /proc/sys/vm/drop_caches: %s", strerror(errno));
	ck_assert_msg(write(fd, &c, 1) == 1, "echo %d > /proc/sys/vm/drop_caches: %s", what,
		      strerror(errno));
	close(fd);
}

long hx_status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	size_t flen = strlen(field);
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, flen) == 0 && line[flen] == ':') {
			kb = strtol(line + flen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return kb;
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

/* ---- tree digests ---- */

struct digest_entry {
	char *path; /* below the digested directory */
	char *line; /* everything but the hard-link group */
	dev_t dev;
	ino_t ino;
	int multi; /* a non-directory with more than one link */
};

static struct {
	struct digest_entry *v;
	size_t n, cap;
	size_t rootlen;
	int flags;
} dg;

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/*
 * A hash of a file's bytes that holes cost nothing to: the sum of
 * mix(offset, byte) over the bytes that are not zero, so a hole and written
 * zeros hash alike and the data regions (SEEK_DATA) are all that is read.
 */
static uint64_t content_hash(const char *path)
{
	unsigned char buf[65536];
	uint64_t h = 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW);
	off_t end, data = 0;

	ck_assert_msg(fd >= 0, "digest: open %s: %s", path, strerror(errno));
	end = lseek(fd, 0, SEEK_END);
	while (data < end && (data = lseek(fd, data, SEEK_DATA)) >= 0) {
		off_t hole = lseek(fd, data, SEEK_HOLE);

		ck_assert_msg(hole > data, "digest: SEEK_HOLE %s: %s", path, strerror(errno));
		while (data < hole) {
			size_t want = (size_t)(hole - data) < sizeof(buf) ? (size_t)(hole - data)
									  : sizeof(buf);
			ssize_t n = pread(fd, buf, want, data);

			ck_assert_msg(n > 0, "digest: read %s: %s", path,
				      n < 0 ? strerror(errno) : "short");
			for (ssize_t i = 0; i < n; i++)
				if (buf[i])
					h += mix64(((uint64_t)(data + i) << 8) | buf[i]);
			data += n;
		}
	}
	ck_assert_msg(data >= 0 || errno == ENXIO, "digest: SEEK_DATA %s: %s", path,
		      strerror(errno));
	close(fd);
	return h;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* " xattrs{name=hexvalue,...}" of path itself, names sorted; appended to f. */
static void digest_xattrs(FILE *f, const char *path)
{
	char list[65536], *names[1024];
	ssize_t len = llistxattr(path, list, sizeof(list));
	size_t n = 0;

	ck_assert_msg(len >= 0 || errno == ENOTSUP, "digest: llistxattr %s: %s", path,
		      strerror(errno));
	for (ssize_t off = 0; len > 0 && off < len; off += (ssize_t)strlen(list + off) + 1)
		if (n < 1024)
			names[n++] = list + off;
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	fputs(" xattrs{", f);
	for (size_t i = 0; i < n; i++) {
		unsigned char val[65536];
		ssize_t vlen = lgetxattr(path, names[i], val, sizeof(val));

		ck_assert_msg(vlen >= 0, "digest: lgetxattr %s %s: %s", path, names[i],
			      strerror(errno));
		fprintf(f, "%s%s=", i ? "," : "", names[i]);
		for (ssize_t j = 0; j < vlen; j++)
			fprintf(f, "%02x", val[j]);
	}
	fputc('}', f);
}

static int digest_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	struct digest_entry *e;
	size_t size = 0;
	char *line = NULL;
	FILE *f;

	(void)flag;
	if (ftw->level == 0)
		return 0;
	if (dg.n == dg.cap) {
		dg.cap = dg.cap ? dg.cap * 2 : 256;
		dg.v = realloc(dg.v, dg.cap * sizeof(*dg.v));
		ck_assert(dg.v);
	}
	e = &dg.v[dg.n++];
	e->path = strdup(path + dg.rootlen + 1);
	ck_assert(e->path);
	e->dev = st->st_dev;
	e->ino = st->st_ino;
	e->multi = !S_ISDIR(st->st_mode) && st->st_nlink > 1;
	f = open_memstream(&line, &size);
	ck_assert(f);
	fprintf(f, "%s mode=%06o nlink=%ju", e->path, (unsigned)st->st_mode, (uintmax_t)st->st_nlink);
	if (!(dg.flags & HX_DIGEST_NO_OWNER))
		fprintf(f, " uid=%u gid=%u", (unsigned)st->st_uid, (unsigned)st->st_gid);
	if (S_ISREG(st->st_mode))
		fprintf(f, " size=%jd hash=%016" PRIx64, (intmax_t)st->st_size, content_hash(path));
	if (S_ISLNK(st->st_mode)) {
		char target[PATH_MAX];
		ssize_t n = readlink(path, target, sizeof(target) - 1);

		ck_assert_msg(n >= 0, "digest: readlink %s: %s", path, strerror(errno));
		target[n] = '\0';
		fprintf(f, " -> %s", target);
	}
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
		fprintf(f, " rdev=%u:%u", major(st->st_rdev), minor(st->st_rdev));
	if (dg.flags & HX_DIGEST_MTIME)
		fprintf(f, " mtime=%jd.%09ld", (intmax_t)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	if (dg.flags & HX_DIGEST_IDENTITY)
		fprintf(f, " ino=%ju ctime=%jd.%09ld", (uintmax_t)st->st_ino,
			(intmax_t)st->st_ctim.tv_sec, st->st_ctim.tv_nsec);
	digest_xattrs(f, path);
	fclose(f);
	e->line = line;
	return 0;
}

static int cmp_entry_path(const void *a, const void *b)
{
	return strcmp(((const struct digest_entry *)a)->path,
		      ((const struct digest_entry *)b)->path);
}

char *hx_tree_digest(const char *dir, int flags)
{
	char *out = NULL;
	size_t size = 0;
	FILE *f;

	memset(&dg, 0, sizeof(dg));
	dg.rootlen = strlen(dir);
	dg.flags = flags;
	ck_assert_msg(nftw(dir, digest_one, 32, FTW_PHYS) == 0, "digest: nftw %s: %s", dir,
		      strerror(errno));
	if (dg.n)
		qsort(dg.v, dg.n, sizeof(*dg.v), cmp_entry_path);
	f = open_memstream(&out, &size);
	ck_assert(f);
	for (size_t i = 0; i < dg.n; i++) {
		const char *group = "";

		/* the first path (in sorted order) of the same inode */
		for (size_t j = 0; dg.v[i].multi && j < dg.n; j++)
			if (dg.v[j].multi && dg.v[j].dev == dg.v[i].dev &&
			    dg.v[j].ino == dg.v[i].ino) {
				group = dg.v[j].path;
				break;
			}
		fprintf(f, "%s%s%s\n", dg.v[i].line, *group ? " link=" : "", group);
	}
	fclose(f);
	for (size_t i = 0; i < dg.n; i++) {
		free(dg.v[i].line);
		free(dg.v[i].path);
	}
	free(dg.v);
	memset(&dg, 0, sizeof(dg));
	return out;
}

void hx_assert_same_digest(const char *what, const char *got, const char *want)
{
	const char *g = got, *w = want;

	while (*g && *w) {
		size_t gl = strcspn(g, "\n"), wl = strcspn(w, "\n");

		if (gl != wl || memcmp(g, w, gl) != 0)
			ck_abort_msg("%s: trees differ\n  got:  %.*s\n  want: %.*s", what, (int)gl, g,
				     (int)wl, w);
		g += gl + (g[gl] == '\n');
		w += wl + (w[wl] == '\n');
	}
	ck_assert_msg(!*g && !*w, "%s: trees differ\n  got:  %.*s\n  want: %.*s", what,
		      (int)strcspn(g, "\n"), *g ? g : "(end)", (int)strcspn(w, "\n"),
		      *w ? w : "(end)");
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
