/*
 * test_daemon.c — the memfs program itself: command line, options, mounting
 * and unmounting, signals, crashes, mount(8) and fstab, threads, permissions.
 *
 * Everything here is about memfs as a daemon, so every test skips under
 * HX_ORACLE=tmpfs (where tmpfs has the same limits, the tests compare with a
 * tmpfs mounted with the same options in the same test).
 *
 * Tests that start memfs themselves never leave it behind: the daemon gets
 * SIGTERM if the test process dies (PR_SET_PDEATHSIG), and the tests whose
 * daemon cannot have that (killed with -9, or daemonized by mount(8)) record
 * their failures, clean up, and only then assert.
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MEMFS_ONLY()                                                                               \
	do {                                                                                       \
		if (hx_oracle())                                                                   \
			return;                                                                    \
	} while (0)

#define RUN_TIMEOUT_MS 10000
#define MOUNT_TIMEOUT_MS 10000

/* Record the first failure and jump to the clean-up label `out`. */
#define REQUIRE(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			if (!failure[0])                                                           \
				snprintf(failure, sizeof(failure), __VA_ARGS__);                   \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static const char *memfs_bin(void)
{
	const char *bin = getenv("MEMFS_BIN");
	ck_assert_msg(bin && *bin, "MEMFS_BIN is not set");
	return bin;
}

/* The options every mount of this run gets (MEMFS_EXTRA_OPTS), possibly "". */
static const char *extra_opts(void)
{
	const char *e = getenv("MEMFS_EXTRA_OPTS");
	return e ? e : "";
}

/* A fresh directory on the scratch tmpfs (this also enters the harness's private mount namespace).
 */
static void scratch_dir(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s.XXXXXX", hx_tmpfs(), name);
	ck_assert_msg(mkdtemp(buf), "mkdtemp %s: %s", buf, strerror(errno));
}

static int is_mounted(const char *dir)
{
	struct stat a, b;
	char parent[PATH_MAX + 4];
	snprintf(parent, sizeof(parent), "%s/..", dir);
	if (stat(dir, &a) < 0)
		return errno == ENOTCONN; /* a dead FUSE mount is still a mount */
	if (stat(parent, &b) < 0)
		return 0;
	return a.st_dev != b.st_dev;
}

/* ---- /proc/self/mountinfo ---------------------------------------------- */

struct mountinfo {
	char source[256];
	char fstype[64];
	char super_opts[512];
};

/* Find the mount at dir; returns 1 and fills mi if there is one. */
static int mountinfo_lookup(const char *dir, struct mountinfo *mi)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	int found = 0;
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *tok[64];
		int n = 0;
		for (char *t = strtok_r(line, " \n", &save); t && n < 64;
		     t = strtok_r(NULL, " \n", &save))
			tok[n++] = t;
		if (n < 10 || strcmp(tok[4], dir) != 0)
			continue;
		for (int i = 6; i + 2 < n; i++) {
			if (strcmp(tok[i], "-") != 0)
				continue;
			snprintf(mi->fstype, sizeof(mi->fstype), "%s", tok[i + 1]);
			snprintf(mi->source, sizeof(mi->source), "%s", tok[i + 2]);
			snprintf(mi->super_opts, sizeof(mi->super_opts), "%s",
				 i + 3 < n ? tok[i + 3] : "");
			found = 1; /* the last one wins: the top of a stack of mounts */
			break;
		}
	}
	fclose(f);
	return found;
}

/* Number of FUSE mounts in this mount namespace. */
static int count_fuse_mounts(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096];
	int count = 0;
	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");
		if (sep && (strncmp(sep + 3, "fuse.", 5) == 0 || strncmp(sep + 3, "fuse ", 5) == 0))
			count++;
	}
	fclose(f);
	return count;
}

/* Does a comma-separated option list hold this option? */
static int has_opt(const char *list, const char *opt)
{
	size_t len = strlen(opt);
	for (const char *p = list; p && *p;) {
		if (strncmp(p, opt, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return 1;
		p = strchr(p, ',');
		if (p)
			p++;
	}
	return 0;
}

/* ---- running memfs ------------------------------------------------------ */

struct run {
	int status; /* exit status, or -1 if killed by a signal or timed out */
	char out[16384];
	char err[16384];
};

static void slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	buf[0] = '\0';
	if (!f)
		return;
	n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Run memfs with args (NULL-terminated, without argv[0]), capturing stdout and stderr. */
static void run_memfs(struct run *r, const char *const *args)
{
	const char *bin = memfs_bin();
	char outf[PATH_MAX], errf[PATH_MAX];
	const char *argv[32];
	int n = 0, status;

	snprintf(outf, sizeof(outf), "%s/run.out", hx_tmpfs());
	snprintf(errf, sizeof(errf), "%s/run.err", hx_tmpfs());
	argv[n++] = bin;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;

	pid_t parent = getpid();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int o = open(outf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int e = open(errf, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int i = open("/dev/null", O_RDONLY);
		if (o < 0 || e < 0 || i < 0)
			_exit(126);
		dup2(o, 1);
		dup2(e, 2);
		dup2(i, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(126);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	r->status = -1;
	for (int waited = 0;; waited += 10) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		if (w == pid) {
			if (WIFEXITED(status))
				r->status = WEXITSTATUS(status);
			break;
		}
		if (waited >= RUN_TIMEOUT_MS) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			break;
		}
		sleep_ms(10);
	}
	slurp(outf, r->out, sizeof(r->out));
	slurp(errf, r->err, sizeof(r->err));
}

/* Start `memfs -f [-o opts] dir` as our child; wait until it is mounted.  Returns its pid, or 0
 * (log in *why). */
static pid_t spawn_memfs(const char *dir, const char *opts, char *why, size_t why_size)
{
	const char *bin = memfs_bin();
	char all[1024] = "";
	char log[PATH_MAX];
	pid_t parent = getpid();
	int status;

	snprintf(all, sizeof(all), "%s%s%s", opts ? opts : "",
		 opts && *opts && *extra_opts() ? "," : "", extra_opts());
	snprintf(log, sizeof(log), "%s.log", dir);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		/* Its own process group: a Check timeout's killpg must leave it to SIGTERM. */
		setsid();
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(126);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (all[0])
			execl(bin, bin, "-f", "-o", all, dir, (char *)NULL);
		else
			execl(bin, bin, "-f", dir, (char *)NULL);
		_exit(127);
	}
	for (int waited = 0;; waited += 10) {
		if (is_mounted(dir))
			return pid;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			char l[2048];
			slurp(log, l, sizeof(l));
			snprintf(why, why_size,
				 "memfs -f -o '%s' %s exited (status 0x%x) before mounting: %s",
				 all, dir, status, l);
			return 0;
		}
		if (waited >= MOUNT_TIMEOUT_MS) {
			kill(pid, SIGTERM);
			sleep_ms(500);
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			snprintf(why, why_size, "memfs -o '%s' %s: not mounted after %d ms", all,
				 dir, MOUNT_TIMEOUT_MS);
			return 0;
		}
		sleep_ms(10);
	}
}

/* Wait up to timeout_ms for our child; returns 1 with *status filled, or 0 on timeout. */
static int wait_child(pid_t pid, int *status, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return 1;
		sleep_ms(10);
	}
	return 0;
}

/* Last-resort clean-up of a daemon we started: detach its mount and make sure it is gone. */
static void force_cleanup(pid_t pid, const char *dir)
{
	if (dir && is_mounted(dir))
		hx_sh("fusermount3 -u -z '%s' >/dev/null 2>&1", dir);
	if (pid > 0) {
		int status;
		if (!wait_child(pid, &status, 5000)) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
		}
	}
}

static const char *describe_status(int status, char *buf, size_t size)
{
	if (WIFEXITED(status))
		snprintf(buf, size, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, size, "status 0x%x", status);
	return buf;
}

/* ---- --help and --version ----------------------------------------------- */

static const char *const help_args[][2] = {{"--help", NULL}, {"-h", NULL}};

START_TEST(help_prints_usage_with_every_memfs_option_and_exits_0)
{
	MEMFS_ONLY();
	static const char *const names[] = {
	    "size",
	    "nr_inodes",
	    "mode",
	    "uid",
	    "gid",
	    "entry_timeout",
	    "attr_timeout",
	    "negative_timeout",
	    "nocache",
	    "no_keep_cache",
	    "writeback",
	    "no_readdirplus",
	    "no_splice",
	    "no_cache_symlinks",
	    "no_cache_readdir",
	    "max_write",
	    "no_uring",
	    "no_default_permissions",
	};
	struct run *r = malloc(sizeof(*r));
	int before = count_fuse_mounts();

	run_memfs(r, help_args[_i]);
	ck_assert_msg(r->status == 0, "memfs %s: exit %d, stderr: %s", help_args[_i][0], r->status,
		      r->err);
	ck_assert_msg(strcasestr(r->out, "usage") != NULL, "memfs %s: no usage on stdout:\n%s",
		      help_args[_i][0], r->out);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		/* As a word: "mode" must not be satisfied by "nomode" or "mode_x". */
		char pattern[128];
		regex_t re;
		snprintf(pattern, sizeof(pattern), "(^|[^a-z_])%s([^a-z_]|$)", names[i]);
		ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE | REG_NOSUB), 0);
		int found = regexec(&re, r->out, 0, NULL, 0) == 0;
		regfree(&re);
		ck_assert_msg(found, "memfs %s does not list option '%s':\n%s", help_args[_i][0],
			      names[i], r->out);
	}
	ck_assert_int_eq(count_fuse_mounts(), before);
	free(r);
}
END_TEST

static const char *const version_args[][2] = {{"-V", NULL}, {"--version", NULL}};

START_TEST(version_prints_memfs_and_its_version_and_exits_0)
{
	MEMFS_ONLY();
	struct run *r = malloc(sizeof(*r));
	regex_t re;

	run_memfs(r, version_args[_i]);
	ck_assert_msg(r->status == 0, "memfs %s: exit %d, stderr: %s", version_args[_i][0],
		      r->status, r->err);
	ck_assert_int_eq(
	    regcomp(&re, "memfs.*[0-9]+\\.[0-9]+", REG_EXTENDED | REG_NEWLINE | REG_NOSUB), 0);
	int found = regexec(&re, r->out, 0, NULL, 0) == 0;
	regfree(&re);
	ck_assert_msg(found,
		      "memfs %s: no line with memfs and a version on stdout:\n%s\nstderr:\n%s",
		      version_args[_i][0], r->out, r->err);
	free(r);
}
END_TEST

/* ---- bad command lines -------------------------------------------------- */

enum mountpoint_kind { MP_DIR, MP_MISSING, MP_FILE, MP_NONE };

struct bad_case {
	const char *opts;	 /* -o value, or NULL */
	enum mountpoint_kind mp; /* what to pass as the mount point */
	const char *names;	 /* what the message must mention ("@" = the mount point path) */
};

static const struct bad_case bad_cases[] = {
    {"size=abc", MP_DIR, "size"},
    {"size=-1", MP_DIR, "size"},
    {"size=0", MP_DIR, "size"},
    {"size=12q", MP_DIR, "size"},
    {"nr_inodes=0", MP_DIR, "nr_inodes"},
    {"nr_inodes=abc", MP_DIR, "nr_inodes"},
    {"mode=999", MP_DIR, "mode"},
    {"uid=abc", MP_DIR, "uid"},
    {"bogus_option", MP_DIR, "bogus_option"},
    {"fsname=", MP_DIR, "fsname"},		   /* the kernel refuses an empty source */
    {"subtype=x,subtype=", MP_DIR, "subtype"}, /* the last one counts */
    {NULL, MP_MISSING, "@"},
    {NULL, MP_FILE, "@"},
    {"size=64m", MP_NONE, "mount"},
};

START_TEST(bad_command_line_prints_one_line_exits_1_and_mounts_nothing)
{
	MEMFS_ONLY();
	const struct bad_case *c = &bad_cases[_i];
	char dir[PATH_MAX], mp[PATH_MAX + 16];
	const char *args[8];
	int n = 0;
	struct run *r = malloc(sizeof(*r));

	scratch_dir(dir, sizeof(dir), "bad");
	switch (c->mp) {
	case MP_DIR:
		snprintf(mp, sizeof(mp), "%s", dir);
		break;
	case MP_MISSING:
		snprintf(mp, sizeof(mp), "%s/does-not-exist", dir);
		break;
	case MP_FILE:
		snprintf(mp, sizeof(mp), "%s/regular-file", dir);
		hx_write_file(mp, "x", 1);
		break;
	case MP_NONE:
		mp[0] = '\0';
		break;
	}
	if (c->opts) {
		args[n++] = "-o";
		args[n++] = c->opts;
	}
	if (mp[0])
		args[n++] = mp;
	args[n] = NULL;

	int before = count_fuse_mounts();
	run_memfs(r, args);
	int mounted = count_fuse_mounts() != before || is_mounted(dir);
	if (mounted) /* memfs took it: daemonized and mounted; take it down before failing */
		hx_sh("fusermount3 -u -z '%s' >/dev/null 2>&1", dir);
	ck_assert_msg(!mounted, "memfs -o %s %s mounted something (exit %d)", c->opts, mp,
		      r->status);

	ck_assert_msg(r->status == 1, "memfs -o %s '%s': exit status %d (want 1); stderr:\n%s",
		      c->opts, mp, r->status, r->err);
	size_t len = strlen(r->err);
	char *nl = strchr(r->err, '\n');
	ck_assert_msg(len > 0 && nl == r->err + len - 1,
		      "memfs -o %s '%s': want exactly one line on stderr, got:\n%s", c->opts, mp,
		      r->err);
	ck_assert_msg(strncmp(r->err, "memfs: ", 7) == 0,
		      "memfs -o %s '%s': stderr does not start with 'memfs: ': %s", c->opts, mp,
		      r->err);
	const char *want = strcmp(c->names, "@") == 0 ? mp : c->names;
	ck_assert_msg(strcasestr(r->err, want) != NULL,
		      "memfs -o %s '%s': the message does not name '%s': %s", c->opts, mp, want,
		      r->err);
	ck_assert_msg(r->out[0] == '\0', "memfs -o %s: printed on stdout: %s", c->opts, r->out);
	free(r);
}
END_TEST

/* ---- options as seen by the kernel -------------------------------------- */

START_TEST(size_nr_inodes_mode_uid_gid_show_in_statfs_and_root_stat)
{
	MEMFS_ONLY();
	struct hx_mount m;
	struct statvfs sv;
	struct stat st;

	hx_mount(&m, "size=1G,nr_inodes=1000,mode=0750,uid=1234,gid=5678");
	ck_assert_int_eq(statvfs(m.dir, &sv), 0);
	ck_assert_int_eq(stat(m.dir, &st), 0);
	hx_umount(&m);

	ck_assert_uint_eq(sv.f_bsize, 4096);
	ck_assert_uint_eq(sv.f_frsize, 4096);
	ck_assert_uint_eq(sv.f_blocks, (1ULL << 30) / 4096);
	ck_assert_uint_eq(sv.f_bfree, sv.f_blocks);
	ck_assert_uint_eq(sv.f_bavail, sv.f_bfree);
	ck_assert_uint_eq(sv.f_files, 1000);
	ck_assert_uint_eq(sv.f_ffree, 999); /* the root is one inode */
	ck_assert_uint_eq(sv.f_namemax, 255);
	ck_assert_msg(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750, "root mode 0%o",
		      st.st_mode);
	ck_assert_uint_eq(st.st_uid, 1234);
	ck_assert_uint_eq(st.st_gid, 5678);
}
END_TEST

/* Size and inode limits as tmpfs parses the same option (suffixes, percent of RAM, defaults). */
static const char *const limit_specs[] = {
    "",
    "size=64m",
    "size=512k",
    "size=1048576",
    "size=2g",
    "size=1t",
    "size=10%",
    "size=50%",
    "nr_inodes=1000",
    "nr_inodes=1k",
    "nr_inodes=2m",
    "size=3G,nr_inodes=7K",
};

START_TEST(size_and_nr_inodes_give_the_same_limits_as_tmpfs)
{
	MEMFS_ONLY();
	const char *spec = limit_specs[_i];
	char tdir[PATH_MAX];
	struct statvfs tv, mv;
	struct hx_mount m;

	scratch_dir(tdir, sizeof(tdir), "tmpfs");
	ck_assert_msg(mount("oracle", tdir, "tmpfs", 0, spec) == 0, "mount tmpfs -o '%s': %s", spec,
		      strerror(errno));
	int rc = statvfs(tdir, &tv);
	umount2(tdir, MNT_DETACH);
	ck_assert_int_eq(rc, 0);

	hx_mount(&m, spec[0] ? spec : NULL);
	rc = statvfs(m.dir, &mv);
	hx_umount(&m);
	ck_assert_int_eq(rc, 0);

	ck_assert_msg(mv.f_blocks == tv.f_blocks, "-o '%s': f_blocks %llu, tmpfs %llu", spec,
		      (unsigned long long)mv.f_blocks, (unsigned long long)tv.f_blocks);
	ck_assert_msg(mv.f_files == tv.f_files, "-o '%s': f_files %llu, tmpfs %llu", spec,
		      (unsigned long long)mv.f_files, (unsigned long long)tv.f_files);
	ck_assert_msg(mv.f_ffree == tv.f_ffree, "-o '%s': f_ffree %llu, tmpfs %llu", spec,
		      (unsigned long long)mv.f_ffree, (unsigned long long)tv.f_ffree);
	ck_assert_uint_eq(mv.f_bsize, tv.f_bsize);
	ck_assert_uint_eq(mv.f_namemax, tv.f_namemax);
}
END_TEST

START_TEST(default_mount_is_fuse_memfs_with_default_permissions_in_mountinfo)
{
	MEMFS_ONLY();
	struct mountinfo mi;
	ck_assert_msg(mountinfo_lookup(hx_mnt.dir, &mi), "%s not in /proc/self/mountinfo",
		      hx_mnt.dir);
	ck_assert_str_eq(mi.fstype, "fuse.memfs");
	ck_assert_msg(has_opt(mi.super_opts, "default_permissions"), "super options: %s",
		      mi.super_opts);
}
END_TEST

START_TEST(no_default_permissions_and_fsname_reach_the_mount)
{
	MEMFS_ONLY();
	struct hx_mount m;
	struct mountinfo mi;
	hx_mount(&m, "no_default_permissions,fsname=scratchfs");
	int found = mountinfo_lookup(m.dir, &mi);
	hx_umount(&m);
	ck_assert(found);
	ck_assert_str_eq(mi.fstype, "fuse.memfs");
	ck_assert_str_eq(mi.source, "scratchfs");
	ck_assert_msg(!has_opt(mi.super_opts, "default_permissions"), "super options: %s",
		      mi.super_opts);
}
END_TEST

/* ---- unmounting: signals, fusermount3, kill -9 --------------------------- */

static const int term_signals[] = {SIGTERM, SIGINT};

START_TEST(sigterm_and_sigint_unmount_cleanly_and_exit_0)
{
	MEMFS_ONLY();
	int sig = term_signals[_i];
	char dir[PATH_MAX], file[PATH_MAX + 8], failure[16384] = "", why[4096], desc[64];
	struct mountinfo mi;
	int status;

	scratch_dir(dir, sizeof(dir), "sig");
	snprintf(file, sizeof(file), "%s/file", dir);
	/* No auto_unmount: only memfs itself can take the mount down. */
	pid_t pid = spawn_memfs(dir, NULL, why, sizeof(why));
	REQUIRE(pid > 0, "%s", why);
	int fd = open(file, O_CREAT | O_WRONLY, 0644); /* the mount is in use, with an inode */
	REQUIRE(fd >= 0 && write(fd, "data", 4) == 4, "write: %s", strerror(errno));
	close(fd);
	REQUIRE(kill(pid, sig) == 0, "kill: %s", strerror(errno));
	REQUIRE(wait_child(pid, &status, 20000), "memfs still running 20 s after signal %d", sig);
	pid = 0;
	REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "memfs after signal %d: %s", sig,
		describe_status(status, desc, sizeof(desc)));
	REQUIRE(!mountinfo_lookup(dir, &mi), "still in mountinfo after signal %d (%s)", sig,
		mi.fstype);
	REQUIRE(!is_mounted(dir), "still mounted after signal %d", sig);
out:
	force_cleanup(pid, dir);
	ck_assert_msg(!failure[0], "%s", failure);
}
END_TEST

START_TEST(fusermount3_u_unmounts_cleanly_and_daemon_exits_0)
{
	MEMFS_ONLY();
	char dir[PATH_MAX], failure[16384] = "", why[4096], desc[64];
	struct mountinfo mi;
	int status;

	scratch_dir(dir, sizeof(dir), "fu");
	pid_t pid = spawn_memfs(dir, NULL, why, sizeof(why));
	REQUIRE(pid > 0, "%s", why);
	REQUIRE(mountinfo_lookup(dir, &mi), "not in mountinfo");
	int rc = hx_sh("fusermount3 -u '%s'", dir);
	REQUIRE(rc == 0, "fusermount3 -u: exit %d", rc);
	REQUIRE(!mountinfo_lookup(dir, &mi), "still in mountinfo after fusermount3 -u");
	REQUIRE(wait_child(pid, &status, 20000), "memfs still running 20 s after fusermount3 -u");
	pid = 0;
	REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "memfs after fusermount3 -u: %s",
		describe_status(status, desc, sizeof(desc)));
out:
	force_cleanup(pid, dir);
	ck_assert_msg(!failure[0], "%s", failure);
}
END_TEST

START_TEST(kill_9_leaves_enotconn_until_fusermount3_u_cleans_up)
{
	MEMFS_ONLY();
	char dir[PATH_MAX], file[PATH_MAX + 8], failure[16384] = "", why[4096];
	struct stat st;
	struct statvfs sv;
	struct mountinfo mi;
	int status;

	scratch_dir(dir, sizeof(dir), "k9");
	snprintf(file, sizeof(file), "%s/file", dir);
	pid_t pid = spawn_memfs(dir, NULL, why, sizeof(why)); /* without auto_unmount */
	REQUIRE(pid > 0, "%s", why);
	int fd = open(file, O_CREAT | O_WRONLY, 0644);
	REQUIRE(fd >= 0, "create: %s", strerror(errno));
	close(fd);

	REQUIRE(kill(pid, SIGKILL) == 0, "kill -9: %s", strerror(errno));
	REQUIRE(wait_child(pid, &status, 10000), "memfs survived SIGKILL?");
	pid = 0;

	/*
	 * Over io_uring the kernel tears the daemon's rings down after the
	 * process is gone (its io_uring context is freed by a worker), and
	 * until the last reference to /dev/fuse goes with it a request gets
	 * ECONNABORTED; then ENOTCONN, as over /dev/fuse.  Wait that out.
	 */
	for (int i = 0; i < 500; i++) {
		errno = 0;
		if (stat(dir, &st) == -1 && errno == ECONNABORTED)
			usleep(10000);
		else
			break;
	}
	REQUIRE(stat(dir, &st) == -1 && errno == ENOTCONN,
		"stat of a dead mount: %s (want ENOTCONN)", strerror(errno));
	errno = 0;
	REQUIRE(statvfs(dir, &sv) == -1 && errno == ENOTCONN, "statfs of a dead mount: %s",
		strerror(errno));
	errno = 0;
	REQUIRE(open(file, O_RDONLY) == -1 && errno == ENOTCONN, "open in a dead mount: %s",
		strerror(errno));
	REQUIRE(mountinfo_lookup(dir, &mi), "a killed daemon's mount vanished by itself");

	int rc = hx_sh("fusermount3 -u '%s'", dir);
	REQUIRE(rc == 0, "fusermount3 -u of a dead mount: exit %d", rc);
	REQUIRE(!mountinfo_lookup(dir, &mi), "still in mountinfo after fusermount3 -u");
	REQUIRE(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), "mount point after clean-up: %s",
		strerror(errno));
	REQUIRE(access(file, F_OK) == -1 && errno == ENOENT,
		"the file shows through the old mount point");
out:
	force_cleanup(pid, dir);
	ck_assert_msg(!failure[0], "%s", failure);
}
END_TEST

/* ---- mount(8) and fstab ------------------------------------------------- */

/* Find the memfs process that serves dir (exe is MEMFS_BIN, dir in its command line). */
static pid_t find_daemon(const char *dir)
{
	char bin[PATH_MAX];
	DIR *d = opendir("/proc");
	struct dirent *de;
	pid_t found = 0;

	if (!realpath(memfs_bin(), bin) || !d)
		return 0;
	while ((de = readdir(d))) {
		char path[300], exe[PATH_MAX], cmd[8192];
		ssize_t n;
		pid_t pid = (pid_t)atoi(de->d_name);
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/exe", pid);
		n = readlink(path, exe, sizeof(exe) - 1);
		if (n < 0)
			continue;
		exe[n] = '\0';
		if (strcmp(exe, bin) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			continue;
		n = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (n <= 0)
			continue;
		for (ssize_t i = 0; i < n; i++) /* the arguments are NUL-separated: look at each */
			if (strcmp(cmd + i, dir) == 0 && (i == 0 || cmd[i - 1] == '\0'))
				found = pid;
	}
	closedir(d);
	return found;
}

static const char *const mount_ways[] = {"mount -t", "fstab"};

START_TEST(mount_t_fuse_memfs_and_fstab_line_mount_a_working_memfs)
{
	MEMFS_ONLY();
	char dir[PATH_MAX], bindir[PATH_MAX], link[PATH_MAX + 8], fstab[PATH_MAX + 8],
	    file[PATH_MAX + 8];
	char opts[512], failure[16384] = "", desc[64], why[4096] = "";
	struct mountinfo mi;
	struct statvfs sv;
	pid_t pid = 0;
	int status, rc;

	scratch_dir(dir, sizeof(dir), "mnt");
	scratch_dir(bindir, sizeof(bindir), "bin");
	snprintf(link, sizeof(link), "%s/memfs", bindir);
	ck_assert_int_eq(symlink(memfs_bin(), link), 0);
	/*
	 * mount.fuse3 runs the program named by the subtype ("memfs") through
	 * /bin/sh, and mount(8) gives helpers no PATH, so the shell looks in
	 * its default path, which starts with /usr/local/sbin.  Put memfs
	 * there by a bind mount, only in this test's private mount namespace.
	 */
	/* The harness makes its scratch dirs under /tmp/memfs-hx only inside its own mount
	 * namespace. */
	ck_assert_msg(
	    strncmp(bindir, "/tmp/memfs-hx/", 14) == 0,
	    "not in the harness's private mount namespace (%s): won't touch /usr/local/sbin",
	    bindir);
	ck_assert_msg(mount(bindir, "/usr/local/sbin", NULL, MS_BIND, NULL) == 0,
		      "bind %s on /usr/local/sbin: %s", bindir, strerror(errno));
	snprintf(opts, sizeof(opts), "size=64m%s%s", *extra_opts() ? "," : "", extra_opts());
	snprintf(file, sizeof(file), "%s/hello", dir);
	/* memfs daemonizes under mount(8): become its reaper so its exit status reaches us. */
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);

	if (_i == 0) {
		rc = hx_sh("mount -t fuse.memfs memfs '%s' -o '%s' >'%s.log' 2>&1", dir, opts, dir);
	} else {
		snprintf(fstab, sizeof(fstab), "%s/fstab", bindir);
		FILE *f = fopen(fstab, "w");
		ck_assert_ptr_nonnull(f);
		fprintf(f, "# memfs scratch space\nmemfs  %s  fuse.memfs  %s  0  0\n", dir, opts);
		ck_assert_int_eq(fclose(f), 0);
		rc = hx_sh("mount -T '%s' '%s' >'%s.log' 2>&1", fstab, dir, dir);
	}
	if (rc != 0) {
		char logf[PATH_MAX + 8];
		snprintf(logf, sizeof(logf), "%s.log", dir);
		slurp(logf, why, sizeof(why));
	}
	REQUIRE(rc == 0, "%s: exit %d: %s", mount_ways[_i], rc, why);
	REQUIRE(mountinfo_lookup(dir, &mi), "%s: exit 0 but nothing in mountinfo", mount_ways[_i]);
	pid = find_daemon(dir);
	REQUIRE(pid > 0, "%s: no memfs process serving %s", mount_ways[_i], dir);
	REQUIRE(strcmp(mi.fstype, "fuse.memfs") == 0, "%s: type %s", mount_ways[_i], mi.fstype);
	REQUIRE(statvfs(dir, &sv) == 0, "statfs: %s", strerror(errno));
	REQUIRE(sv.f_blocks == (64u << 20) / 4096, "%s: size=64m gave f_blocks %llu",
		mount_ways[_i], (unsigned long long)sv.f_blocks);

	/* It works as a filesystem. */
	int fd = open(file, O_CREAT | O_RDWR, 0644);
	REQUIRE(fd >= 0, "create: %s", strerror(errno));
	ssize_t n = write(fd, "hello", 5);
	close(fd);
	REQUIRE(n == 5, "write: %zd", n);
	size_t len;
	char *back = hx_read_file(file, &len);
	int same = len == 5 && memcmp(back, "hello", 5) == 0;
	free(back);
	REQUIRE(same, "read back differs");

	rc = hx_sh("fusermount3 -u '%s'", dir);
	REQUIRE(rc == 0, "fusermount3 -u: exit %d", rc);
	REQUIRE(!mountinfo_lookup(dir, &mi), "still mounted after fusermount3 -u");
	REQUIRE(wait_child(pid, &status, 20000), "memfs %d still running after fusermount3 -u",
		pid);
	pid = 0;
	REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "daemonized memfs: %s",
		describe_status(status, desc, sizeof(desc)));
out:
	if (pid == 0 && is_mounted(dir))
		pid = find_daemon(dir);
	if (is_mounted(dir))
		hx_sh("fusermount3 -u -z '%s' >/dev/null 2>&1", dir);
	if (pid > 0 && !wait_child(pid, &status, 5000)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	umount2("/usr/local/sbin", MNT_DETACH);
	ck_assert_msg(!failure[0], "%s", failure);
}
END_TEST

/*
 * memfs SOURCE MOUNTPOINT with an empty SOURCE (found by tools/fuzz/fuzz_options):
 * the kernel refuses a mount with an empty source, so memfs names it "memfs"
 * instead of failing with libfuse's "mount failed: Invalid argument".
 */
START_TEST(an_empty_source_mounts_as_memfs)
{
	MEMFS_ONLY();
	char dir[PATH_MAX], failure[16384] = "", desc[64];
	struct mountinfo mi;
	int status = 0, mounted = 0;

	scratch_dir(dir, sizeof(dir), "src");
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setsid();
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		execl(memfs_bin(), memfs_bin(), "-f", "", dir, (char *)NULL);
		_exit(127);
	}
	for (int waited = 0; waited < MOUNT_TIMEOUT_MS && !mounted; waited += 10) {
		mounted = is_mounted(dir);
		if (!mounted && waitpid(pid, &status, WNOHANG) == pid) {
			pid = 0;
			break;
		}
		sleep_ms(10);
	}
	REQUIRE(mounted, "memfs -f '' %s did not mount (%s)", dir,
		pid ? "timed out" : describe_status(status, desc, sizeof(desc)));
	REQUIRE(mountinfo_lookup(dir, &mi), "not in mountinfo");
	REQUIRE(strcmp(mi.source, "memfs") == 0, "source '%s', want 'memfs'", mi.source);
	REQUIRE(hx_sh("fusermount3 -u '%s'", dir) == 0, "fusermount3 -u failed");
	REQUIRE(wait_child(pid, &status, 20000), "memfs still running after fusermount3 -u");
	pid = 0;
	REQUIRE(WIFEXITED(status) && WEXITSTATUS(status) == 0, "memfs: %s",
		describe_status(status, desc, sizeof(desc)));
out:
	force_cleanup(pid, dir);
	ck_assert_msg(!failure[0], "%s", failure);
}
END_TEST

/* ---- threads and permissions -------------------------------------------- */

static int task_count(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	DIR *d = opendir(path);
	int n = 0;
	struct dirent *de;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

START_TEST(default_session_is_multithreaded_under_parallel_load)
{
	MEMFS_ONLY();
	enum { WORKERS = 6 };
	pid_t kids[WORKERS];
	int most = task_count(hx_mnt.pid);

	/* Create and unlink files from several processes: these always reach the daemon. */
	for (int w = 0; w < WORKERS; w++) {
		kids[w] = fork();
		ck_assert_int_ge(kids[w], 0);
		if (kids[w] == 0) {
			char name[PATH_MAX + 32];
			struct timespec t0, t;
			clock_gettime(CLOCK_MONOTONIC, &t0);
			for (int i = 0;; i++) {
				snprintf(name, sizeof(name), "%s/w%d-%d", hx_mnt.dir, w, i);
				int fd = open(name, O_CREAT | O_WRONLY, 0644);
				if (fd < 0)
					_exit(1);
				close(fd);
				if (unlink(name) < 0)
					_exit(2);
				clock_gettime(CLOCK_MONOTONIC, &t);
				if (t.tv_sec - t0.tv_sec >= 2)
					_exit(0);
			}
		}
	}
	for (int i = 0; i < 150; i++) {
		int n = task_count(hx_mnt.pid);
		if (n > most)
			most = n;
		sleep_ms(10);
	}
	for (int w = 0; w < WORKERS; w++) {
		int status;
		waitpid(kids[w], &status, 0);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "load worker %d failed: 0x%x", w, status);
	}
	ck_assert_msg(most > 1, "memfs ran with %d thread(s) under parallel load", most);
}
END_TEST

/* Open path as uid/gid 65534 in a child; returns 0 or the errno. */
static int open_as_nobody(const char *path, int flags)
{
	pid_t pid = fork();
	int status;
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(200);
		int fd = open(path, flags);
		_exit(fd >= 0 ? 0 : errno);
	}
	waitpid(pid, &status, 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 200, "child: 0x%x", status);
	return WEXITSTATUS(status);
}

START_TEST(default_permissions_keep_other_users_out_of_a_0600_root_file)
{
	MEMFS_ONLY();
	struct hx_mount m;
	char secret[PATH_MAX + 8], public[PATH_MAX + 8];

	hx_mount(&m, "allow_other");
	snprintf(secret, sizeof(secret), "%s/secret", m.dir);
	snprintf(public, sizeof(public), "%s/public", m.dir);
	hx_write_file(secret, "secret", 6);
	hx_write_file(public, "public", 6);
	ck_assert_int_eq(chmod(secret, 0600), 0);
	ck_assert_int_eq(chmod(public, 0644), 0);

	int e_public = open_as_nobody(public, O_RDONLY);
	int e_secret = open_as_nobody(secret, O_RDONLY);
	int e_write = open_as_nobody(public, O_WRONLY);
	hx_umount(&m);

	/* allow_other lets the other user in at all ... */
	ck_assert_msg(e_public == 0, "nobody cannot read a 0644 file: %s", strerror(e_public));
	/* ... and the kernel's permission check keeps it out of what is not its own. */
	ck_assert_msg(e_secret == EACCES, "nobody opening a 0600 root file: %s (want EACCES)",
		      e_secret ? strerror(e_secret) : "success");
	ck_assert_msg(e_write == EACCES, "nobody writing a 0644 root file: %s (want EACCES)",
		      e_write ? strerror(e_write) : "success");
}
END_TEST

static Suite *daemon_suite(void)
{
	Suite *s = suite_create("daemon");

	TCase *cl = tcase_create("command_line");
	tcase_set_timeout(cl, 60);
	tcase_add_loop_test(cl, help_prints_usage_with_every_memfs_option_and_exits_0, 0, 2);
	tcase_add_loop_test(cl, version_prints_memfs_and_its_version_and_exits_0, 0, 2);
	tcase_add_loop_test(cl, bad_command_line_prints_one_line_exits_1_and_mounts_nothing, 0,
			    (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
	suite_add_tcase(s, cl);

	TCase *mo = tcase_create("mounting");
	tcase_set_timeout(mo, 60);
	tcase_add_test(mo, size_nr_inodes_mode_uid_gid_show_in_statfs_and_root_stat);
	tcase_add_loop_test(mo, size_and_nr_inodes_give_the_same_limits_as_tmpfs, 0,
			    (int)(sizeof(limit_specs) / sizeof(limit_specs[0])));
	tcase_add_test(mo, no_default_permissions_and_fsname_reach_the_mount);
	tcase_add_loop_test(mo, sigterm_and_sigint_unmount_cleanly_and_exit_0, 0, 2);
	tcase_add_test(mo, fusermount3_u_unmounts_cleanly_and_daemon_exits_0);
	tcase_add_test(mo, kill_9_leaves_enotconn_until_fusermount3_u_cleans_up);
	tcase_add_loop_test(mo, mount_t_fuse_memfs_and_fstab_line_mount_a_working_memfs, 0, 2);
	tcase_add_test(mo, default_permissions_keep_other_users_out_of_a_0600_root_file);
	tcase_add_test(mo, an_empty_source_mounts_as_memfs);
	suite_add_tcase(s, mo);

	TCase *fx = tcase_create("default_mount");
	tcase_set_timeout(fx, 60);
	tcase_add_checked_fixture(fx, hx_setup, hx_teardown);
	tcase_add_test(fx, default_mount_is_fuse_memfs_with_default_permissions_in_mountinfo);
	tcase_add_test(fx, default_session_is_multithreaded_under_parallel_load);
	suite_add_tcase(s, fx);
	return s;
}

int main(void)
{
	return hx_run(daemon_suite());
}
