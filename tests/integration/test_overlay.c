/*
 * test_overlay.c — the tree of a memfs laid over read-only lower directories
 * (-o lower=, issue 3): lazy listing and its memory, whiteouts and opaque
 * directories, rename, lower hard links, inode identity, names and xattrs,
 * several layers, hostile and changing lower trees, refused lowers, and the
 * whole merged view against rsync and the untouched lowers.  The contents
 * of lower files (copy-up, mappings) are test_overlay_data.c.
 *
 * Each test fills hx_lower(i) first, then mounts over it (hx_mount_lower).
 * Where Linux's answer is the question, the same operations run on a copy
 * of the lowers on tmpfs (hx_copy_lowers) and the trees are compared; under
 * HX_ORACLE=tmpfs the whole suite runs on such a copy.  Tests that watch the
 * daemon itself (what it reads, its memory, its refusals) return early
 * there.
 */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "ovl.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#endif

/* ---- helpers ---- */

static const char *L0(const char *rel)
{
	return J(hx_lower(0), rel);
}

static struct stat st_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		ck_abort_msg("lstat %s: %s", path, strerrorname_np(errno));
	return st;
}

static int renameat2_(const char *from, const char *to, unsigned flags)
{
	return (int)syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, flags);
}

static void set_times(const char *path, time_t sec)
{
	struct timespec ts[2] = {{sec, 123456789}, {sec, 987654321}};

	OK(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW));
}

static void set_xattr(const char *path, const char *name, const char *value)
{
	if (lsetxattr(path, name, value, strlen(value), 0) < 0)
		ck_abort_msg("setxattr %s %s: %s", path, name, strerrorname_np(errno));
}

static void check_xattr(const char *path, const char *name, const char *want)
{
	char buf[256];
	ssize_t n = lgetxattr(path, name, buf, sizeof(buf));

	ck_assert_msg(n >= 0, "getxattr %s %s: %s", path, name, strerrorname_np(errno));
	ck_assert_msg((size_t)n == strlen(want) && memcmp(buf, want, n) == 0,
		      "getxattr %s %s: want \"%s\", got \"%.*s\"", path, name, want, (int)n, buf);
}

/* The sorted, space-separated xattr names of path. */
static char *xattr_names(const char *path)
{
	char list[4096], *names[64], *out = calloc(1, sizeof(list) + 64);
	ssize_t len = llistxattr(path, list, sizeof(list));
	int n = 0;

	ck_assert_msg(len >= 0, "listxattr %s: %s", path, strerrorname_np(errno));
	for (ssize_t off = 0; off < len && n < 64; off += (ssize_t)strlen(list + off) + 1)
		names[n++] = list + off;
	for (int i = 1; i < n; i++) /* insertion sort: a handful of names */
		for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];
			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	for (int i = 0; i < n; i++) {
		strcat(out, i ? " " : "");
		strcat(out, names[i]);
	}
	return out;
}

static void check_xattr_names(const char *path, const char *want)
{
	char *got = xattr_names(path);

	ck_assert_msg(strcmp(got, want) == 0, "xattrs of %s: want \"%s\", got \"%s\"", path, want,
		      got);
	free(got);
}

/* Under the oracle these tests would watch a tmpfs, not the daemon. */
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

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Make n empty files dir/<prefix>NNNNNN (mknod: the quickest way on tmpfs). */
static void make_files(const char *dir, const char *prefix, int n)
{
	int dfd = open(dir, O_DIRECTORY | O_RDONLY);
	char name[64];

	ck_assert_msg(dfd >= 0, "open %s: %s", dir, strerrorname_np(errno));
	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "%s%06d", prefix, i);
		if (mknodat(dfd, name, S_IFREG | 0644, 0) < 0)
			ck_abort_msg("mknod %s/%s: %s", dir, name, strerrorname_np(errno));
	}
	close(dfd);
}

/* Read every entry of dir with getdents only (no stat); the count. */
static long list_count(const char *dir)
{
	DIR *d = opendir(dir);
	long n = 0;

	ck_assert_msg(d, "opendir %s: %s", dir, strerrorname_np(errno));
	errno = 0;
	while (readdir(d))
		n++;
	ck_assert_msg(errno == 0, "readdir %s: %s", dir, strerrorname_np(errno));
	closedir(d);
	return n - 2;
}

/* ---- lazy listing: what the daemon reads, watched with inotify ---- */

struct watched {
	int wd;
	char path[PATH_MAX]; /* relative to the lower root ("" for it) */
	int opens;	     /* the directory itself opened (O_PATH opens are not seen) */
};

static struct watched *watches;
static int nwatches;
static int inotify_fd;

static int add_watch(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag != FTW_D)
		return 0;
	watches = realloc(watches, (nwatches + 1) * sizeof(*watches));
	ck_assert(watches);
	struct watched *w = &watches[nwatches++];

	w->wd = inotify_add_watch(inotify_fd, path, IN_OPEN | IN_CLOSE_NOWRITE | IN_ONLYDIR);
	ck_assert_msg(w->wd >= 0, "inotify_add_watch %s: %s", path, strerrorname_np(errno));
	snprintf(w->path, sizeof(w->path), "%s", path + strlen(hx_lower(0)));
	w->opens = 0;
	return 0;
}

/* Count the opens of watched directories reported so far. */
static void drain_events(void)
{
	char buf[65536] __attribute__((aligned(__alignof__(struct inotify_event))));
	ssize_t n;

	while ((n = read(inotify_fd, buf, sizeof(buf))) > 0)
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;

			/* an event of the directory itself has no name */
			if (ev->len == 0 && (ev->mask & IN_OPEN))
				for (int i = 0; i < nwatches; i++)
					if (watches[i].wd == ev->wd)
						watches[i].opens++;
			p += sizeof(*ev) + ev->len;
		}
	ck_assert_msg(n < 0 && errno == EAGAIN, "read inotify: %s", strerrorname_np(errno));
}

static int opens_of(const char *rel)
{
	for (int i = 0; i < nwatches; i++)
		if (strcmp(watches[i].path, rel) == 0)
			return watches[i].opens;
	ck_abort_msg("no watch on %s", rel);
	return -1;
}

/* Every watched directory but those in allowed (NULL-terminated) was never opened. */
static void check_only_opened(const char *when, const char *const *allowed)
{
	drain_events();
	for (int i = 0; i < nwatches; i++) {
		int ok = 0;

		for (const char *const *a = allowed; *a; a++)
			ok |= strcmp(watches[i].path, *a) == 0;
		ck_assert_msg(ok || watches[i].opens == 0,
			      "%s: the daemon read lower directory '%s' (%d opens)", when,
			      watches[i].path, watches[i].opens);
	}
}

START_TEST(mount_reads_only_the_top_lower_directory_and_a_lookup_only_its_own)
{
	MEMFS_ONLY();
	/* 50,000 files in 100 directories, and a few levels of small ones */
	ov_mkdirs(L0("bulk"), 0755);
	for (int i = 0; i < 100; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "bulk/b%02d", i);
		ov_mkdirs(L0(rel), 0755);
		make_files(L0(rel), "f", 500);
	}
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 3; j++) {
			char rel[64];

			snprintf(rel, sizeof(rel), "d%d/s%d/t", i, j);
			ov_mkdirs(L0(rel), 0755);
			ov_put(J(L0(rel), "file"), "x");
		}
	make_files(hx_lower(0), "top", 100);

	inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	ck_assert_msg(inotify_fd >= 0, "inotify_init1: %s", strerrorname_np(errno));
	OK(nftw(hx_lower(0), add_watch, 16, FTW_PHYS));

	double t0 = now_s();
	hx_mount_lower(&hx_mnt, 1, NULL);
	double mount_s = now_s() - t0;

	fprintf(stderr, "mount over %d lower directories, 50,000+ files: %.3f s\n", nwatches,
		mount_s);
	ck_assert_msg(mount_s < 2.0, "mount took %.3f s", mount_s);
	check_only_opened("after mount", (const char *const[]){"", NULL});
	int root_opens = opens_of("");
	ck_assert_msg(root_opens > 0, "the root listing was not seen: inotify watches nothing");

	/* readdir of the root: served from memory, nothing below is read */
	ck_assert_int_eq(list_count(hx_mnt.dir), 100 + 4);
	check_only_opened("after readdir of the root", (const char *const[]){"", NULL});
	ck_assert_int_eq(opens_of(""), root_opens);

	/* a lookup lists that directory, and nothing below it */
	st_of(P("d1"));
	check_only_opened("after stat of d1", (const char *const[]){"", "/d1", NULL});
	ck_assert_msg(opens_of("/d1") >= 1, "stat of d1 did not list it");
	int d1_opens = opens_of("/d1");

	ov_check_ls(P("d1"), "s0 s1 s2");
	st_of(P("d1/s2"));
	check_only_opened("after ls d1 and stat d1/s2",
			  (const char *const[]){"", "/d1", "/d1/s2", NULL});
	ck_assert_int_eq(opens_of("/d1"), d1_opens);

	/* once listed, a directory lives in memory: the kernel forgetting it
	 * does not make the daemon read it again */
	hx_drop_caches(2);
	st_of(P("d1"));
	ov_check_ls(P("d1"), "s0 s1 s2");
	ov_check_ls(P("d1/s2"), "t");
	check_only_opened("after drop_caches", (const char *const[]){"", "/d1", "/d1/s2", NULL});
	ck_assert_int_eq(opens_of("/d1"), d1_opens);
	ck_assert_int_eq(opens_of(""), root_opens);
	close(inotify_fd);
}
END_TEST

/* Whether the daemon runs with AddressSanitizer (its runtime is mapped). */
static int daemon_is_sanitized(pid_t pid)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "grep -q -e libasan -e __asan /proc/%d/maps", (int)pid);
	return hx_sh("%s", cmd) == 0;
}

START_TEST(listing_a_lower_directory_costs_at_most_200_bytes_per_entry)
{
	const int n = 200000;

	MEMFS_ONLY();
	if (getenv("MEMFS_WRAPPER")) {
		fprintf(stderr, "%s: the daemon runs under a wrapper: its memory is not memfs's\n",
			__func__);
		return;
	}
	ov_mkdirs(L0("warmup"), 0755);
	make_files(L0("warmup"), "entry-", 2000);
	ov_mkdirs(L0("many"), 0755);
	make_files(L0("many"), "entry-", n);
	/* under AddressSanitizer: no quarantine keeping freed memory resident */
	char asan[1024];
	snprintf(asan, sizeof(asan), "%s:quarantine_size_mb=0",
		 getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "");
	setenv("ASAN_OPTIONS", asan, 1);
	hx_mount_lower(&hx_mnt, 1, NULL);

	/* a first listing brings up the worker threads and their buffers */
	ck_assert_int_eq(list_count(P("warmup")), 2000);
	long before_kb = hx_status_kb(hx_mnt.pid, "RssAnon");
	double t0 = now_s();

	ck_assert_int_eq(list_count(P("many")), n);
	double list_s = now_s() - t0;
	long after_kb = hx_status_kb(hx_mnt.pid, "RssAnon");

	ck_assert_msg(before_kb > 0 && after_kb > 0, "no RssAnon in /proc/%d/status",
		      (int)hx_mnt.pid);
	double per_entry = (double)(after_kb - before_kb) * 1024.0 / n;
	/* AddressSanitizer's allocator adds a header and a redzone to every
	 * allocation (171 bytes an entry measure 295 under it, without its
	 * quarantine); the build
	 * without sanitizers (suite plain) holds memfs to the real bound */
	double bound = daemon_is_sanitized(hx_mnt.pid) ? 400.0 : 200.0;

	fprintf(stderr,
		"listing %d lower entries: %.2f s, daemon RssAnon +%ld KiB = %.0f bytes "
		"per entry (at most %.0f)\n",
		n, list_s, after_kb - before_kb, per_entry, bound);
	ck_assert_msg(per_entry <= bound,
		      "a listed lower entry costs the daemon %.0f bytes (RssAnon %ld -> %ld KiB)",
		      per_entry, before_kb, after_kb);
}
END_TEST

/* ---- whiteouts and opaque directories ---- */

START_TEST(unlink_and_rmdir_hide_lower_entries_for_good_and_leave_no_trace)
{
	ov_put(L0("f"), "lower f");
	ov_mkdirs(L0("d/sub"), 0755);
	ov_put(L0("d/x"), "x");
	ov_put(L0("d/sub/y"), "y");
	ov_mkdirs(L0("e"), 0755);
	ov_symlink("f", L0("l"));
	OK(mkfifo(L0("p"), 0644));
	char *lower_before = hx_tree_digest(hx_lower(0), HX_DIGEST_IDENTITY);
	hx_mount_lower(&hx_mnt, 1, NULL);

	FAILS(rmdir(P("d")), ENOTEMPTY);
	FAILS(unlink(P("d")), EISDIR);
	FAILS(rmdir(P("f")), ENOTDIR);
	FAILS(rmdir(P("d/sub")), ENOTEMPTY);
	OK(unlink(P("f")));
	OK(unlink(P("l")));
	OK(unlink(P("p")));
	OK(unlink(P("d/x")));
	OK(unlink(P("d/sub/y")));
	OK(rmdir(P("d/sub")));
	OK(rmdir(P("d")));
	OK(rmdir(P("e")));
	for (int round = 0; round < 2; round++) {
		const char *const gone[] = {"f", "l", "p", "d", "e", "d/x", "d/sub"};

		for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++) {
			struct stat st;
			int e = err_of(lstat(P(gone[i]), &st));

			ck_assert_msg(e == ENOENT || (e == ENOTDIR && gone[i][0] == 'd'),
				      "round %d: lstat %s after removal: %s", round, gone[i],
				      ename(e));
		}
		FAILS(open(P("f"), O_RDONLY), ENOENT);
		/* no marker shows: no name, no xattr, no space */
		ov_check_ls(hx_mnt.dir, "");
		check_xattr_names(hx_mnt.dir, "");
		ck_assert_int_eq(st_of(hx_mnt.dir).st_nlink, 2);
		hx_drop_caches(2); /* the kernel forgets: memfs must still hide them */
	}
	if (!hx_oracle())
		ck_assert_uint_eq(ov_used(hx_mnt.dir), 0);
	char *lower_after = hx_tree_digest(hx_lower(0), HX_DIGEST_IDENTITY);
	hx_assert_same_digest("lower after removals", lower_after, lower_before);
	free(lower_before);
	free(lower_after);
}
END_TEST

START_TEST(rmdir_then_mkdir_of_a_lower_directory_gives_an_empty_directory)
{
	ov_mkdirs(L0("d/b"), 0700);
	ov_put(L0("d/a"), "a");
	ov_put(L0("d/b/c"), "c");
	set_xattr(L0("d"), "user.x", "lower");
	ov_mkdirs(L0("g"), 0755);
	ov_put(L0("g/k"), "k");
	hx_mount_lower(&hx_mnt, 1, NULL);
	umask(022);

	OK(unlink(P("d/a")));
	OK(unlink(P("d/b/c")));
	OK(rmdir(P("d/b")));
	OK(rmdir(P("d")));
	OK(mkdir(P("d"), 0755));
	for (int round = 0; round < 2; round++) {
		struct stat st = st_of(P("d"));

		ov_check_ls(P("d"), round ? "a" : "");
		ck_assert_int_eq(st.st_nlink, 2);
		ck_assert_int_eq(st.st_mode, S_IFDIR | 0755);
		FAILS(lgetxattr(P("d"), "user.x", NULL, 0), ENODATA);
		FAILS(lstat(P("d/b"), &st), ENOENT);
		if (round == 0) {
			/* a name of the old lower directory is a new empty file */
			int fd = open(P("d/a"), O_RDWR | O_CREAT, 0644);

			OK(fd);
			ck_assert_int_eq(lseek(fd, 0, SEEK_END), 0);
			close(fd);
		}
		ov_check(P("d/a"), "");
		hx_drop_caches(2);
	}

	/* rename over a lower directory follows its lower contents */
	OK(mkdir(P("new"), 0755));
	ov_put(P("new/n"), "n");
	FAILS(rename(P("new"), P("g")), ENOTEMPTY);
	OK(unlink(P("g/k")));
	OK(rename(P("new"), P("g")));
	ov_check_ls(P("g"), "n");
	hx_drop_caches(2);
	ov_check_ls(P("g"), "n");
	ov_check(P("g/n"), "n");
}
END_TEST

START_TEST(creating_over_a_removed_lower_name_gives_a_fresh_empty_file)
{
	ov_put(L0("f"), "lower content");
	OK(chmod(L0("f"), 0600));
	OK(lchown(L0("f"), 1234, 1234));
	set_xattr(L0("f"), "user.tag", "lower");
	ov_put(L0("g"), "lower g");
	ov_put(L0("h1"), "linked");
	OK(link(L0("h1"), L0("h2")));
	ov_mkdirs(L0("dir/sub"), 0755);
	ov_put(L0("dir/sub/z"), "z");
	ov_put(L0("file2dir"), "was a file");
	hx_mount_lower(&hx_mnt, 1, NULL);
	umask(022);

	OK(unlink(P("f")));
	int fd = open(P("f"), O_RDWR | O_CREAT | O_EXCL, 0644);
	OK(fd);
	struct stat st;
	char buf[64];
	OK(fstat(fd, &st));
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(st.st_mode, S_IFREG | 0644);
	ck_assert_int_eq(st.st_uid, getuid());
	ck_assert_int_eq(st.st_nlink, 1);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 0);
	FAILS(fgetxattr(fd, "user.tag", buf, sizeof(buf)), ENODATA);
	ck_assert_int_eq(write(fd, "new", 3), 3);
	close(fd);

	/* O_CREAT without O_EXCL over a removed name: empty too */
	OK(unlink(P("g")));
	fd = open(P("g"), O_RDONLY | O_CREAT, 0644);
	OK(fd);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 0);
	close(fd);

	/* one name of a lower hard link removed and made again */
	OK(unlink(P("h2")));
	ov_put(P("h2"), "other");
	ck_assert_int_eq(st_of(P("h1")).st_nlink, 1);
	ck_assert_int_ne(st_of(P("h1")).st_ino, st_of(P("h2")).st_ino);

	/* other types over removed names */
	OK(unlink(P("dir/sub/z")));
	OK(rmdir(P("dir/sub")));
	ov_symlink("target", P("dir/sub"));
	OK(unlink(P("file2dir")));
	OK(mkdir(P("file2dir"), 0755));

	for (int round = 0; round < 2; round++) {
		ov_check(P("f"), "new");
		ck_assert_int_eq(st_of(P("f")).st_mode, S_IFREG | 0644);
		check_xattr_names(P("f"), "");
		ov_check(P("g"), "");
		ov_check(P("h1"), "linked");
		ov_check(P("h2"), "other");
		char target[64];
		ssize_t n = readlink(P("dir/sub"), target, sizeof(target));
		ck_assert_msg(n == 6 && memcmp(target, "target", 6) == 0,
			      "dir/sub: not the new link");
		ov_check_ls(P("file2dir"), "");
		hx_drop_caches(2);
	}
}
END_TEST

/* ---- rename ---- */

/* Operations run on the mount and on a tmpfs copy: each step's errno is kept. */
struct step_log {
	int err[64];
	int n;
};

static void step(struct step_log *log, int rc)
{
	ck_assert(log->n < 64);
	log->err[log->n++] = rc < 0 ? errno : 0;
}

static void compare_logs(const char *what, const struct step_log *got, const struct step_log *want)
{
	ck_assert_int_eq(got->n, want->n);
	for (int i = 0; i < got->n; i++)
		ck_assert_msg(got->err[i] == want->err[i], "%s: step %d gives %s, tmpfs %s", what,
			      i + 1, ename(got->err[i]), ename(want->err[i]));
}

static void fill_rename_tree(const char *l)
{
	ov_mkdirs(J(l, "tree/sub/deep"), 0755);
	ov_put(J(l, "tree/a"), "A");
	ov_put(J(l, "tree/sub/b"), "B");
	ov_put(J(l, "tree/sub/deep/c"), "C");
	ov_symlink("a", J(l, "tree/link"));
	ov_put(J(l, "tree/sub/h1"), "H");
	OK(link(J(l, "tree/sub/h1"), J(l, "tree/sub/deep/h2")));
	ov_mkdirs(J(l, "other"), 0750);
	ov_put(J(l, "other/o"), "O");
	ov_put(J(l, "top"), "T");
	ov_put(J(l, "dst"), "D");
	ov_mkdirs(J(l, "empty"), 0755);
}

/* pwrite of s at off into path: 0 or -1 (errno), like the other steps. */
static int write_step(const char *path, const char *s, off_t off)
{
	int fd = open(path, O_WRONLY);

	if (fd < 0)
		return -1;
	ssize_t n = pwrite(fd, s, strlen(s), off);
	int e = errno;

	close(fd);
	errno = e;
	return n == (ssize_t)strlen(s) ? 0 : -1;
}

static void rename_steps(const char *b, struct step_log *log)
{
	step(log, rename(J(b, "tree"), J(b, "moved"))); /* a lower dir never looked into */
	step(log, rename(J(b, "top"), J(b, "moved/sub/top2")));
	step(log, rename(J(b, "moved/sub/deep"), J(b, "deep2")));
	step(log, rename(J(b, "other/o"), J(b, "dst"))); /* lower file over lower file */
	step(log, rename(J(b, "other"), J(b, "empty"))); /* lower dir over an empty one */
	step(log, mkdir(J(b, "tree"), 0755));		 /* the old name, new and empty */
	step(log, rename(J(b, "moved/link"), J(b, "tree/link")));
	step(log, rename(J(b, "deep2"), J(b, "moved/sub/deep2")));
	step(log, rename(J(b, "moved"), J(b, "moved/sub/inside"))); /* EINVAL */
	step(log, rename(J(b, "empty"), J(b, "moved/sub")));	    /* ENOTEMPTY */
	step(log, rename(J(b, "moved/sub/deep2/c"), J(b, "c")));
	step(log, rename(J(b, "moved/sub/deep2/h2"), J(b, "moved/h2")));
	/* copy-up after the renames: the lower bytes come from where the file
	 * was, not from its new name */
	step(log, write_step(J(b, "moved/h2"), "xy", 3));
	step(log, write_step(J(b, "c"), "z", 2));
	step(log, write_step(J(b, "dst"), "w", 1));
	step(log, write_step(J(b, "moved/sub/top2"), "t", 0));
}

START_TEST(rename_moves_lower_files_and_whole_lower_directories_as_on_tmpfs)
{
	struct step_log got = {0}, want = {0};
	char copy[PATH_MAX];

	snprintf(copy, sizeof(copy), "%s/copy", hx_tmpfs());

	fill_rename_tree(hx_lower(0));
	ov_mkdirs(copy, 0755);
	hx_copy_lowers(copy, 1);
	hx_mount_lower(&hx_mnt, 1, NULL);
	umask(022);

	rename_steps(hx_mnt.dir, &got);
	rename_steps(copy, &want);
	compare_logs("rename", &got, &want);
	for (int i = 0; i < got.n; i++)
		ck_assert_msg(got.err[i] != EXDEV, "step %d: EXDEV", i + 1);
	char *w = hx_tree_digest(copy, 0);
	for (int round = 0; round < 2; round++) {
		char *g = hx_tree_digest(hx_mnt.dir, 0);

		hx_assert_same_digest(round ? "after drop_caches" : "after renames", g, w);
		free(g);
		hx_drop_caches(2);
	}
	ov_check(P("moved/sub/deep2/../b"), "B");
	ck_assert_int_eq(st_of(P("moved/sub/deep2/..")).st_ino, st_of(P("moved/sub")).st_ino);
	free(w);
}
END_TEST

static void exchange_steps(const char *b, struct step_log *log)
{
	step(log, renameat2_(J(b, "a"), J(b, "b"), RENAME_EXCHANGE));
	step(log, renameat2_(J(b, "d1"), J(b, "d2"), RENAME_EXCHANGE));
	step(log, renameat2_(J(b, "a"), J(b, "d1"), RENAME_EXCHANGE)); /* file and dir */
	step(log, renameat2_(J(b, "d2/x"), J(b, "d1/z/w"), RENAME_EXCHANGE));
	step(log, renameat2_(J(b, "g"), J(b, "b"), RENAME_NOREPLACE)); /* EEXIST */
	step(log, renameat2_(J(b, "g"), J(b, "n"), RENAME_NOREPLACE)); /* EEXIST */
	step(log, unlink(J(b, "b")));
	step(log, renameat2_(J(b, "g"), J(b, "b"), RENAME_NOREPLACE)); /* a removed name is free */
	step(log, renameat2_(J(b, "b"), J(b, "g"), RENAME_EXCHANGE));  /* ENOENT */
	step(log, renameat2_(J(b, "n"), J(b, "fresh"), RENAME_NOREPLACE));
	step(log, renameat2_(J(b, "fresh"), J(b, "d2/fresh"), RENAME_NOREPLACE));
	step(log, renameat2_(J(b, "d2"), J(b, "a/into"), RENAME_NOREPLACE));
}

START_TEST(rename_exchange_and_noreplace_work_on_lower_entries_as_on_tmpfs)
{
	struct step_log got = {0}, want = {0};
	char copy[PATH_MAX];

	snprintf(copy, sizeof(copy), "%s/copy", hx_tmpfs());
	const char *l = hx_lower(0);

	ov_put(J(l, "a"), "A");
	ov_put(J(l, "b"), "B");
	ov_put(J(l, "g"), "G");
	ov_mkdirs(J(l, "d1"), 0755);
	ov_put(J(l, "d1/x"), "X1");
	ov_mkdirs(J(l, "d2/z"), 0700);
	ov_put(J(l, "d2/y"), "Y2");
	ov_put(J(l, "d2/z/w"), "W");
	ov_mkdirs(J(l, "n"), 0755);
	ov_mkdirs(copy, 0755);
	hx_copy_lowers(copy, 1);
	hx_mount_lower(&hx_mnt, 1, NULL);

	exchange_steps(hx_mnt.dir, &got);
	exchange_steps(copy, &want);
	compare_logs("renameat2", &got, &want);
	char *w = hx_tree_digest(copy, 0);
	for (int round = 0; round < 2; round++) {
		char *g = hx_tree_digest(hx_mnt.dir, 0);

		hx_assert_same_digest(round ? "after drop_caches" : "after renameat2", g, w);
		free(g);
		/* ".." of an exchanged directory is its new parent */
		ck_assert_int_eq(st_of(P("a/z/..")).st_ino, st_of(P("a")).st_ino);
		hx_drop_caches(2);
	}
	free(w);
}
END_TEST

/* ---- hard links ---- */

START_TEST(lower_hard_links_are_one_inode_through_every_name_and_after_forget)
{
	const char *l = hx_lower(0);

	ov_put(J(l, "a"), "one");
	OK(link(J(l, "a"), J(l, "b")));
	ov_mkdirs(J(l, "sub/deeper"), 0755);
	OK(link(J(l, "a"), J(l, "sub/c")));
	OK(link(J(l, "a"), J(l, "sub/deeper/d")));
	ov_put(J(l, "solo"), "s");
	hx_mount_lower(&hx_mnt, 1, NULL);

	struct stat a = st_of(P("a")), b = st_of(P("b"));
	ck_assert_int_eq(a.st_ino, b.st_ino);
	ck_assert_int_eq(a.st_nlink, 4);
	ck_assert_int_ne(a.st_ino, st_of(P("solo")).st_ino);

	/* a write through one name, before the other directories are listed */
	int fd = open(P("b"), O_WRONLY);
	OK(fd);
	ck_assert_int_eq(pwrite(fd, "ONE", 3, 0), 3);
	close(fd);
	const char *const names[] = {"a", "b", "sub/c", "sub/deeper/d"};
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 4; i++) {
			struct stat st = st_of(P(names[i]));

			ck_assert_msg(st.st_ino == a.st_ino, "round %d: %s has st_ino %ju, a %ju",
				      round, names[i], (uintmax_t)st.st_ino, (uintmax_t)a.st_ino);
			ck_assert_msg(st.st_nlink == 4, "round %d: %s has st_nlink %ju", round,
				      names[i], (uintmax_t)st.st_nlink);
			ov_check(P(names[i]), "ONE");
		}
		hx_drop_caches(2);
	}

	/* st_nlink = lower links + added - removed */
	OK(link(P("sub/c"), P("e")));
	ck_assert_int_eq(st_of(P("a")).st_nlink, 5);
	OK(unlink(P("b")));
	ck_assert_int_eq(st_of(P("sub/deeper/d")).st_nlink, 4);
	OK(unlink(P("sub/c")));
	OK(rename(P("sub/deeper/d"), P("sub/d")));
	ck_assert_int_eq(st_of(P("sub/d")).st_nlink, 3);
	OK(unlink(P("sub/d")));
	hx_drop_caches(2);
	ck_assert_int_eq(st_of(P("e")).st_nlink, 2);
	fd = open(P("e"), O_RDWR);
	OK(fd);
	OK(unlink(P("a")));
	OK(unlink(P("e")));
	struct stat st;
	char buf[16];
	OK(fstat(fd, &st));
	ck_assert_int_eq(st.st_nlink, 0);
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), 3);
	ck_assert(memcmp(buf, "ONE", 3) == 0);
	close(fd);
	ov_check_ls(hx_mnt.dir, "solo sub");

	/* lower itself never changed */
	ov_check(J(l, "a"), "one");
	ck_assert_int_eq(st_of(J(l, "a")).st_nlink, 4);
}
END_TEST

START_TEST(link_of_a_lower_file_shares_it_without_copying_data)
{
	const char *l = hx_lower(0);

	ov_put_pattern(J(l, "x"), 1 << 20, 7);
	ov_mkdirs(J(l, "dir"), 0755);
	ov_put(J(l, "dir/y"), "y");
	hx_mount_lower(&hx_mnt, 1, NULL);
	uint64_t used0 = ov_used(hx_mnt.dir);

	OK(link(P("x"), P("dir/x2")));
	struct stat x = st_of(P("x")), x2 = st_of(P("dir/x2"));
	ck_assert_int_eq(x.st_ino, x2.st_ino);
	ck_assert_int_eq(x2.st_nlink, 2);
	ov_check_same_file(P("dir/x2"), J(l, "x"));
	ck_assert_uint_eq(ov_used(hx_mnt.dir), used0);
	if (!hx_oracle())
		ck_assert_uint_eq(used0, 0);

	int fd = open(P("dir/x2"), O_WRONLY);
	OK(fd);
	ck_assert_int_eq(pwrite(fd, "Z", 1, 4096 * 10), 1);
	close(fd);
	hx_drop_caches(2);
	char c = 0;
	fd = open(P("x"), O_RDONLY);
	OK(fd);
	ck_assert_int_eq(pread(fd, &c, 1, 4096 * 10), 1);
	close(fd);
	ck_assert_int_eq(c, 'Z');
	OK(unlink(P("x")));
	ck_assert_int_eq(st_of(P("dir/x2")).st_nlink, 1);
	ck_assert_int_eq(st_of(P("dir/x2")).st_ino, x.st_ino);
	ck_assert_int_eq(st_of(J(l, "x")).st_nlink, 1);
}
END_TEST

START_TEST(a_lower_directory_reached_by_two_paths_shows_as_two_directories)
{
	const char *l = hx_lower(0);

	ov_mkdirs(J(l, "real"), 0755);
	ov_mkdirs(J(l, "other"), 0755);
	ov_put(J(l, "real/a"), "a");
	/* a bind mount: two lower directories with one st_dev and st_ino */
	OK(mount(J(l, "real"), J(l, "other"), NULL, MS_BIND, NULL));
	ck_assert_int_eq(st_of(J(l, "real")).st_ino, st_of(J(l, "other")).st_ino);
	hx_mount_lower(&hx_mnt, 1, NULL);

	struct stat r = st_of(P("real")), o = st_of(P("other"));
	ck_assert_int_ne(r.st_ino, o.st_ino);
	ck_assert_int_eq(r.st_nlink, 2);
	ov_put(P("real/new"), "n");
	OK(unlink(P("other/a")));
	ov_check_ls(P("real"), "a new");
	ov_check_ls(P("other"), "");
	hx_drop_caches(2);
	ov_check_ls(P("real"), "a new");
	ov_check_ls(P("other"), "");
	ov_check(P("real/a"), "a");
}
END_TEST

/* ---- identity ---- */

struct ident {
	char path[PATH_MAX];
	ino_t ino;
};

/* Every entry below base: readdir's d_ino and d_type checked against lstat
 * (read before anything below it is looked up), st_dev the mount's. */
static int walk_ids(const char *base, const char *rel, dev_t dev, struct ident *out, int n, int max)
{
	char dirpath[PATH_MAX];
	struct {
		char name[256];
		ino_t ino;
		unsigned char type;
	} ents[256];
	int nents = 0;
	struct dirent *de;
	DIR *d;

	ck_assert((size_t)snprintf(dirpath, sizeof(dirpath), "%s%s%s", base, *rel ? "/" : "", rel) <
		  sizeof(dirpath));
	d = opendir(dirpath);
	ck_assert_msg(d, "opendir %s: %s", dirpath, strerrorname_np(errno));
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ck_assert(nents < 256);
		snprintf(ents[nents].name, sizeof(ents[nents].name), "%s", de->d_name);
		ents[nents].ino = de->d_ino;
		ents[nents].type = de->d_type;
		nents++;
	}
	closedir(d);
	for (int i = 0; i < nents; i++) {
		char sub[PATH_MAX];

		ck_assert((size_t)snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "",
					   ents[i].name) < sizeof(sub));
		struct stat st = st_of(J(base, sub));

		ck_assert_msg(st.st_ino == ents[i].ino, "%s: d_ino %ju, st_ino %ju", sub,
			      (uintmax_t)ents[i].ino, (uintmax_t)st.st_ino);
		ck_assert_msg(ents[i].type == DT_UNKNOWN ||
				  (mode_t)DTTOIF(ents[i].type) == (st.st_mode & S_IFMT),
			      "%s: d_type %d for mode %o", sub, ents[i].type, st.st_mode);
		ck_assert_msg(st.st_dev == dev, "%s: st_dev %ju, the mount's %ju", sub,
			      (uintmax_t)st.st_dev, (uintmax_t)dev);
		ck_assert(n < max);
		snprintf(out[n].path, sizeof(out[n].path), "%s", sub);
		out[n++].ino = st.st_ino;
		if (S_ISDIR(st.st_mode))
			n = walk_ids(base, sub, dev, out, n, max);
	}
	return n;
}

static ino_t ino_in(const struct ident *ids, int n, const char *path)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(ids[i].path, path))
			return ids[i].ino;
	ck_abort_msg("%s not found by the walk", path);
	return 0;
}

START_TEST(inode_numbers_are_unique_stable_and_those_readdir_gives)
{
	enum { MAX = 2048 };
	static struct ident first[MAX], again[MAX];

	/* two tmpfs layers: their own inode numbers collide */
	for (int layer = 0; layer < 2; layer++) {
		const char *l = hx_lower(layer);
		char rel[64];

		ov_mkdirs(J(l, "shared/deep"), 0755);
		/* fewer than 64 names in a merged directory: see
		 * a_merged_directory_of_many_names_lists_each_name_once */
		for (int i = 0; i < 20; i++) {
			snprintf(rel, sizeof(rel), "L%d-file%02d", layer, i);
			ov_put(J(l, rel), rel);
			snprintf(rel, sizeof(rel), "shared/L%d-%02d", layer, i);
			ov_put(J(l, rel), rel);
			snprintf(rel, sizeof(rel), "L%d-dir%d/x", layer, i % 5);
			ov_mkdirs(J(l, rel), 0755);
		}
		ov_symlink("target", J(l, layer ? "link1" : "link0"));
		ov_put(J(l, "shared/deep/both"), layer ? "lower" : "upper");
	}
	hx_mount_lower(&hx_mnt, 2, NULL);
	dev_t dev = st_of(hx_mnt.dir).st_dev;
	int n = walk_ids(hx_mnt.dir, "", dev, first, 0, MAX);

	ck_assert_int_eq(n, 2 * (20 + 20 + 5 + 5 + 1) + 3);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (first[i].ino == first[j].ino)
				ck_abort_msg("%s and %s share st_ino %ju", first[i].path,
					     first[j].path, (uintmax_t)first[i].ino);
	for (int i = 0; i < n; i++)
		ck_assert_msg(first[i].ino != st_of(hx_mnt.dir).st_ino, "%s has the root's st_ino",
			      first[i].path);

	/* copy-up, metadata changes, renames and the kernel forgetting */
	int fd = open(P("L0-file03"), O_WRONLY | O_APPEND);
	OK(fd);
	ck_assert_int_eq(write(fd, "more", 4), 4);
	close(fd);
	OK(truncate(P("shared/L1-07"), 1));
	OK(chmod(P("L1-file09"), 0600));
	set_xattr(P("L0-dir1"), "user.k", "v");
	OK(rename(P("shared"), P("L0-dir2/renamed")));
	OK(rename(P("L1-file10"), P("L1-dir3/x/moved")));
	hx_drop_caches(2);
	int m = walk_ids(hx_mnt.dir, "", dev, again, 0, MAX);

	ck_assert_int_eq(m, n);
	for (int i = 0; i < n; i++) {
		char path[PATH_MAX];

		strcpy(path, first[i].path);
		if (!strncmp(path, "shared", 6))
			snprintf(path, sizeof(path), "L0-dir2/renamed%s", first[i].path + 6);
		else if (!strcmp(path, "L1-file10"))
			snprintf(path, sizeof(path), "L1-dir3/x/moved");
		ck_assert_msg(
		    ino_in(again, m, path) == first[i].ino, "%s: st_ino %ju, was %ju as %s", path,
		    (uintmax_t)ino_in(again, m, path), (uintmax_t)first[i].ino, first[i].path);
	}
}
END_TEST

START_TEST(a_merged_directory_of_many_names_lists_each_name_once)
{
	char rel[64], want[8192] = "";

	/* 100 names in each layer, half of them in both */
	for (int i = 0; i < 150; i++) {
		snprintf(rel, sizeof(rel), "n%03d", i);
		if (i < 100)
			ov_put(J(hx_lower(0), rel), "top");
		if (i >= 50)
			ov_put(J(hx_lower(1), rel), "bottom");
		strcat(want, i ? " " : "");
		strcat(want, rel);
	}
	ov_mkdirs(J(hx_lower(0), "sub"), 0755);
	ov_mkdirs(J(hx_lower(1), "sub"), 0755);
	for (int i = 0; i < 150; i++) {
		snprintf(rel, sizeof(rel), "sub/s%03d", i);
		ov_put(J(hx_lower(i % 2), rel), rel);
	}
	hx_mount_lower(&hx_mnt, 2, NULL);
	strcat(want, " sub");
	ov_check_ls(hx_mnt.dir, want);
	ov_check(P("n050"), "top");
	ov_check(P("n120"), "bottom");
	ck_assert_int_eq(list_count(P("sub")), 150);
	ov_check(P("sub/s149"), "sub/s149");
}
END_TEST

/* ---- no reserved names ---- */

static const char *const overlay_xattrs[] = {
    "trusted.overlay.opaque",	   "trusted.overlay.whiteout",
    "trusted.overlay.redirect",	   "trusted.overlay.origin",
    "trusted.overlay.metacopy",	   "user.overlay.opaque",
    "user.overlay.whiteout",	   "user.fuseoverlayfs.opaque",
    "user.fuseoverlayfs.whiteout", "trusted.fuseoverlayfs.x",
    "trusted.memfs.whiteout",	   "user.memfs.opaque",
    "trusted.unionfs.whiteout",	   "user.wh.x",
};
#define N_OVERLAY_XATTRS (sizeof(overlay_xattrs) / sizeof(overlay_xattrs[0]))

START_TEST(any_trusted_and_user_xattr_name_can_be_set_on_lower_and_new_entries)
{
	const char *l = hx_lower(0);

	ov_put(J(l, "f"), "f");
	ov_mkdirs(J(l, "d"), 0755);
	ov_put(J(l, "d/g"), "g");
	ov_mkdirs(J(l, "opaque-in-lower"), 0755);
	ov_put(J(l, "opaque-in-lower/k"), "k");
	set_xattr(J(l, "opaque-in-lower"), "trusted.overlay.opaque", "y");
	set_xattr(J(l, "opaque-in-lower"), "user.fuseoverlayfs.opaque", "y");
	hx_mount_lower(&hx_mnt, 1, NULL);
	ov_put(P("new"), "n");
	OK(mkdir(P("newdir"), 0755));

	const char *const paths[] = {"f", "d", "new", "newdir"};
	for (size_t p = 0; p < 4; p++) {
		char want[2048] = "";

		for (size_t i = 0; i < N_OVERLAY_XATTRS; i++) {
			char value[64];

			snprintf(value, sizeof(value), "y%zu", i);
			if (lsetxattr(P(paths[p]), overlay_xattrs[i], value, strlen(value),
				      XATTR_CREATE) < 0)
				ck_abort_msg("setxattr %s %s: %s", paths[p], overlay_xattrs[i],
					     strerrorname_np(errno));
		}
		hx_drop_caches(2);
		for (size_t i = 0; i < N_OVERLAY_XATTRS; i++) {
			char value[64];

			snprintf(value, sizeof(value), "y%zu", i);
			check_xattr(P(paths[p]), overlay_xattrs[i], value);
		}
		/* sorted like xattr_names() */
		const char *sorted[N_OVERLAY_XATTRS];
		memcpy(sorted, overlay_xattrs, sizeof(sorted));
		for (size_t i = 1; i < N_OVERLAY_XATTRS; i++)
			for (size_t j = i; j > 0 && strcmp(sorted[j - 1], sorted[j]) > 0; j--) {
				const char *t = sorted[j];
				sorted[j] = sorted[j - 1];
				sorted[j - 1] = t;
			}
		for (size_t i = 0; i < N_OVERLAY_XATTRS; i++) {
			strcat(want, i ? " " : "");
			strcat(want, sorted[i]);
		}
		check_xattr_names(P(paths[p]), want);
	}
	/* an "opaque" xattr makes nothing opaque */
	ov_check_ls(P("d"), "g");
	ov_check_ls(P("opaque-in-lower"), "k");
	check_xattr(P("opaque-in-lower"), "trusted.overlay.opaque", "y");
	for (size_t i = 0; i < N_OVERLAY_XATTRS; i++)
		OK(lremovexattr(P("d"), overlay_xattrs[i]));
	check_xattr_names(P("d"), "");
	ov_check_ls(P("d"), "g");
	/* and lower still has no such xattr */
	check_xattr_names(J(l, "d"), "");
	check_xattr_names(J(l, "f"), "");
}
END_TEST

START_TEST(whiteout_like_names_and_nodes_are_ordinary_files)
{
	const char *l = hx_lower(0);

	ov_put(J(l, "foo"), "foo");
	ov_put(J(l, "bar"), "bar");
	ov_put(J(l, ".wh.bar"), "a file named like a whiteout");
	ov_mkdirs(J(l, "od"), 0755);
	ov_put(J(l, "od/k"), "k");
	ov_put(J(l, "od/.wh..wh..opq"), "opq");
	ov_put(J(l, ".wh.__dir_opaque"), "");
	ov_mkdirs(J(l, "d2"), 0755);
	ov_put(J(l, "d2/m"), "m");
	OK(mknod(J(l, "gone"), S_IFCHR | 0644, makedev(0, 0))); /* overlayfs's whiteout */
	hx_mount_lower(&hx_mnt, 1, NULL);

	ov_put(P(".wh.foo"), "made through the mount");
	ov_put(P("d2/.wh..wh..opq"), "");
	OK(mkdir(P(".wh.dir"), 0755));
	OK(mknod(P("nul"), S_IFCHR | 0644, makedev(0, 0)));
	for (int round = 0; round < 2; round++) {
		ov_check_ls(hx_mnt.dir, ".wh.__dir_opaque .wh.bar .wh.dir .wh.foo bar d2 foo gone "
					"nul od");
		ov_check(P("foo"), "foo");
		ov_check(P("bar"), "bar");
		ov_check(P(".wh.bar"), "a file named like a whiteout");
		ov_check(P(".wh.foo"), "made through the mount");
		ov_check_ls(P("od"), ".wh..wh..opq k");
		ov_check_ls(P("d2"), ".wh..wh..opq m");
		struct stat st = st_of(P("gone"));
		ck_assert_msg(S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0),
			      "gone: mode %o rdev %ju", st.st_mode, (uintmax_t)st.st_rdev);
		ck_assert(S_ISCHR(st_of(P("nul")).st_mode));
		hx_drop_caches(2);
	}
	OK(unlink(P(".wh.bar")));
	ov_check(P("bar"), "bar");
	OK(unlink(P("gone")));
	ck_assert(!ov_exists(P("gone")));
}
END_TEST

/* ---- xattrs of lower entries ---- */

START_TEST(lower_xattrs_are_visible_and_changes_stay_in_memory)
{
	const char *l = hx_lower(0);

	ov_put(J(l, "f"), "f");
	set_xattr(J(l, "f"), "user.a", "1");
	set_xattr(J(l, "f"), "user.b", "two");
	set_xattr(J(l, "f"), "trusted.t", "T");
	set_xattr(J(l, "f"), "security.s", "S");
	ov_put(J(l, "first-create"), "");
	set_xattr(J(l, "first-create"), "user.c", "lower");
	ov_put(J(l, "first-replace"), "");
	set_xattr(J(l, "first-replace"), "user.r", "lower");
	ov_put(J(l, "first-remove"), "");
	set_xattr(J(l, "first-remove"), "user.gone", "lower");
	ov_mkdirs(J(l, "d"), 0755);
	set_xattr(J(l, "d"), "user.d", "D");
	ov_symlink("f", J(l, "link"));
	set_xattr(J(l, "link"), "trusted.l", "L");
	ov_mkdirs(J(l, "from/inner"), 0755);
	ov_put(J(l, "from/inner/moved"), "m");
	set_xattr(J(l, "from/inner/moved"), "user.m", "moved");
	char *lower_before = hx_tree_digest(l, HX_DIGEST_IDENTITY);
	hx_mount_lower(&hx_mnt, 1, NULL);

	/* renamed before anything asked for its xattrs: they follow it */
	OK(rename(P("from"), P("to")));
	OK(rename(P("to/inner/moved"), P("moved-out")));
	check_xattr(P("moved-out"), "user.m", "moved");

	/* the first request on an entry is a change: the lower xattrs count */
	FAILS(lsetxattr(P("first-create"), "user.c", "x", 1, XATTR_CREATE), EEXIST);
	OK(lsetxattr(P("first-replace"), "user.r", "mem", 3, XATTR_REPLACE));
	OK(lremovexattr(P("first-remove"), "user.gone"));

	check_xattr_names(P("f"), "security.s trusted.t user.a user.b");
	check_xattr(P("f"), "user.a", "1");
	check_xattr(P("f"), "user.b", "two");
	check_xattr(P("f"), "trusted.t", "T");
	check_xattr(P("f"), "security.s", "S");
	check_xattr(P("d"), "user.d", "D");
	check_xattr(P("link"), "trusted.l", "L");
	char buf[8];
	FAILS(lgetxattr(P("f"), "user.b", buf, 2), ERANGE);
	ck_assert_int_eq(lgetxattr(P("f"), "user.b", NULL, 0), 3);

	OK(lsetxattr(P("f"), "user.b", "changed", 7, XATTR_REPLACE));
	OK(lsetxattr(P("f"), "user.new", "N", 1, XATTR_CREATE));
	OK(lremovexattr(P("f"), "user.a"));
	OK(lremovexattr(P("d"), "user.d"));
	OK(lsetxattr(P("link"), "trusted.l", "L2", 2, 0));
	for (int round = 0; round < 2; round++) {
		check_xattr_names(P("f"), "security.s trusted.t user.b user.new");
		check_xattr(P("f"), "user.b", "changed");
		FAILS(lgetxattr(P("f"), "user.a", buf, sizeof(buf)), ENODATA);
		check_xattr_names(P("d"), "");
		check_xattr(P("link"), "trusted.l", "L2");
		check_xattr(P("first-create"), "user.c", "lower");
		check_xattr(P("first-replace"), "user.r", "mem");
		FAILS(lgetxattr(P("first-remove"), "user.gone", buf, sizeof(buf)), ENODATA);
		hx_drop_caches(2);
	}
	char *lower_after = hx_tree_digest(l, HX_DIGEST_IDENTITY);
	hx_assert_same_digest("lower after xattr changes", lower_after, lower_before);
	free(lower_before);
	free(lower_after);
}
END_TEST

/* ---- several layers ---- */

static void fill_three_layers(void)
{
	const char *t = hx_lower(0), *m = hx_lower(1), *b = hx_lower(2);

	ov_put(J(t, "f"), "top");
	ov_put(J(m, "f"), "mid");
	ov_put(J(b, "f"), "bottom");
	ov_mkdirs(J(t, "d"), 0700);
	ov_mkdirs(J(m, "d"), 0755);
	ov_mkdirs(J(b, "d/deep"), 0755);
	ov_put(J(t, "d/a"), "top-a");
	ov_put(J(m, "d/a"), "mid-a");
	ov_put(J(m, "d/b"), "mid-b");
	ov_put(J(b, "d/c"), "bottom-c");
	ov_put(J(b, "d/deep/e"), "bottom-e");
	set_xattr(J(t, "d"), "user.layer", "top");
	set_xattr(J(m, "d"), "user.layer", "mid");
	/* a file above hides a directory below, and the other way round */
	ov_put(J(t, "x"), "top-x");
	ov_mkdirs(J(m, "x"), 0755);
	ov_put(J(m, "x/hidden"), "hidden");
	ov_mkdirs(J(t, "y"), 0755);
	ov_put(J(t, "y/top"), "y");
	ov_put(J(m, "y"), "mid-y");
	/* a file in the middle stops the merge of the directories around it */
	ov_mkdirs(J(t, "q"), 0755);
	ov_put(J(t, "q/t"), "t");
	ov_put(J(m, "q"), "mid-q");
	ov_mkdirs(J(b, "q"), 0755);
	ov_put(J(b, "q/hidden"), "hidden");
	/* directories of the lower layers only */
	ov_mkdirs(J(m, "z"), 0755);
	ov_put(J(m, "z/k"), "k");
	ov_mkdirs(J(b, "z"), 0755);
	ov_put(J(b, "z/m"), "m");
	ov_symlink("f", J(b, "onlybottom"));
	ov_put(J(b, "shadow"), "bottom");
	ov_symlink("elsewhere", J(t, "shadow"));
	for (int i = 0; i < 3; i++) /* the root's attributes are the top layer's */
		OK(chmod(hx_lower(i), i ? 0755 : 0751));
}

START_TEST(upper_layers_hide_names_below_and_directories_merge_as_on_tmpfs)
{
	char copy[PATH_MAX];

	snprintf(copy, sizeof(copy), "%s/copy", hx_tmpfs());

	fill_three_layers();
	ov_mkdirs(copy, 0755);
	hx_copy_lowers(copy, 3);
	hx_mount_lower(&hx_mnt, 3, NULL);

	ov_check_ls(hx_mnt.dir, "d f onlybottom q shadow x y z");
	ov_check(P("f"), "top");
	ov_check_ls(P("d"), "a b c deep");
	ov_check(P("d/a"), "top-a");
	ov_check(P("d/b"), "mid-b");
	ov_check(P("d/c"), "bottom-c");
	ov_check(P("d/deep/e"), "bottom-e");
	ck_assert_int_eq(st_of(P("d")).st_mode, S_IFDIR | 0700);
	ck_assert_int_eq(st_of(P("d")).st_nlink, 3);
	ck_assert_int_eq(st_of(hx_mnt.dir).st_mode & 07777, 0751);
	check_xattr(P("d"), "user.layer", "top");
	ov_check(P("x"), "top-x");
	ov_check_ls(P("y"), "top");
	ov_check_ls(P("q"), "t");
	ov_check_ls(P("z"), "k m");
	ck_assert(S_ISLNK(st_of(P("shadow")).st_mode));
	char *w = hx_tree_digest(copy, HX_DIGEST_MTIME);
	char *g = hx_tree_digest(hx_mnt.dir, HX_DIGEST_MTIME);
	hx_assert_same_digest("three layers merged", g, w);
	free(g);
	free(w);
}
END_TEST

static void removal_steps(const char *b, struct step_log *log)
{
	step(log, unlink(J(b, "f")));
	step(log, unlink(J(b, "d/a")));
	step(log, unlink(J(b, "d/b")));
	step(log, rmdir(J(b, "d"))); /* ENOTEMPTY: c and deep/ of the bottom layer */
	step(log, unlink(J(b, "d/c")));
	step(log, unlink(J(b, "d/deep/e")));
	step(log, rmdir(J(b, "d/deep")));
	step(log, rmdir(J(b, "d")));
	step(log, mkdir(J(b, "d"), 0755));
	step(log, unlink(J(b, "z/k")));
	step(log, unlink(J(b, "shadow")));
	step(log, unlink(J(b, "onlybottom")));
	step(log, unlink(J(b, "x")));
	step(log, mkdir(J(b, "x"), 0755));
}

START_TEST(a_removal_hides_a_name_in_every_layer)
{
	struct step_log got = {0}, want = {0};
	char copy[PATH_MAX];

	snprintf(copy, sizeof(copy), "%s/copy", hx_tmpfs());

	fill_three_layers();
	ov_mkdirs(copy, 0755);
	hx_copy_lowers(copy, 3);
	hx_mount_lower(&hx_mnt, 3, NULL);
	umask(022);

	removal_steps(hx_mnt.dir, &got);
	removal_steps(copy, &want);
	compare_logs("removals", &got, &want);
	char *w = hx_tree_digest(copy, 0);
	for (int round = 0; round < 2; round++) {
		ck_assert(!ov_exists(P("f")));
		ck_assert(!ov_exists(P("shadow")));
		ov_check_ls(P("d"), "");
		ov_check_ls(P("x"), "");
		ov_check_ls(P("z"), "m");
		char *g = hx_tree_digest(hx_mnt.dir, 0);
		hx_assert_same_digest("after removals", g, w);
		free(g);
		hx_drop_caches(2);
	}
	free(w);
}
END_TEST

/* ---- safety ---- */

START_TEST(a_hostile_lower_tree_shows_its_symlinks_as_they_are_and_nothing_outside)
{
	const char *l = hx_lower(0);
	char secret[PATH_MAX];

	snprintf(secret, sizeof(secret), "%s/secret", hx_tmpfs());
	char longup[400] = "";

	ov_mkdirs(J(secret, "inner"), 0755);
	ov_put(J(secret, "s.txt"), "SECRET");
	ov_put(J(secret, "inner/t"), "SECRET");
	ov_symlink("/", J(l, "root"));
	ov_symlink("..", J(l, "up"));
	ov_symlink("../..", J(l, "upup"));
	ov_symlink(secret, J(l, "abs"));
	ov_symlink(J(secret, "s.txt"), J(l, "abs-file"));
	ov_symlink("loop2", J(l, "loop1"));
	ov_symlink("loop1", J(l, "loop2"));
	ov_symlink("self", J(l, "self"));
	ov_symlink("./../../..", J(l, "esc"));
	for (int i = 0; i < 100; i++)
		strcat(longup, "../");
	ov_symlink(longup, J(l, "longup"));
	ov_mkdirs(J(l, "d/real"), 0755);
	ov_put(J(l, "d/real/r"), "public");
	ov_symlink("../../..", J(l, "d/link"));
	ov_symlink(secret, J(l, "d/real/abs"));
	ov_symlink("d/real", J(l, "rel"));
	ov_mkdirs(J(l, "chain"), 0755);
	ov_symlink("../chain/b", J(l, "chain/a"));
	ov_symlink("a", J(l, "chain/b"));
	ov_symlink("/proc/self/root", J(l, "magic"));
	hx_mount_lower(&hx_mnt, 1, NULL);

	/* the whole tree, walked without following: the lower's names, link
	 * targets and contents, nothing else (no SECRET anywhere) */
	char *w = hx_tree_digest(l, 0);
	char *g = hx_tree_digest(hx_mnt.dir, 0);
	hx_assert_same_digest("hostile tree", g, w);
	ck_assert_msg(!strstr(g, "SECRET"), "the mount shows outside data");
	free(g);
	free(w);
	const char *const links[] = {"root", "up",     "upup",	 "abs", "abs-file", "loop1", "self",
				     "esc",  "longup", "d/link", "rel", "chain/a",  "magic"};
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		char want[PATH_MAX], got[PATH_MAX];
		ssize_t wn = readlink(J(l, links[i]), want, sizeof(want));
		ssize_t gn = readlink(P(links[i]), got, sizeof(got));

		ck_assert_msg(gn == wn && memcmp(got, want, wn) == 0,
			      "readlink %s: \"%.*s\", lower has \"%.*s\"", links[i], (int)gn, got,
			      (int)wn, want);
		ck_assert(S_ISLNK(st_of(P(links[i])).st_mode));
	}
	/* following is the kernel's business, as on any filesystem */
	struct stat st;
	FAILS(stat(P("loop1"), &st), ELOOP);
	FAILS(stat(P("self"), &st), ELOOP);
	FAILS(stat(P("chain/a"), &st), ELOOP);
	ov_check(P("rel/r"), "public");
	ov_check_ls(P("rel"), "abs r");
}
END_TEST

/*
 * The daemon itself never follows a symlink: a lower directory listed as a
 * directory and then replaced by a symlink to outside data must not let
 * the daemon read, list or show anything of that data.  _i: 0 with
 * openat2, 1 with the component walk (MEMFS_LOWER_NO_OPENAT2).
 */
START_TEST(a_lower_directory_swapped_for_a_symlink_is_never_followed)
{
	const char *l = hx_lower(0);
	char secret[PATH_MAX];

	snprintf(secret, sizeof(secret), "%s/secret", hx_tmpfs());

	ov_mkdirs(J(secret, "sub"), 0755);
	ov_put(J(secret, "x"), "SECRET-x");
	ov_put(J(secret, "y"), "SECRET-y");
	set_xattr(J(secret, "y"), "user.secret", "SECRET");
	ov_put(J(secret, "sub/zsecret"), "SECRET-z");
	ov_mkdirs(J(l, "d/sub"), 0755);
	ov_put(J(l, "d/x"), "public-x");
	ov_put(J(l, "d/y"), "public-y");
	ov_put(J(l, "d/sub/zpublic"), "public-z");
	ov_put(J(l, "f"), "public-f");
	ov_mkdirs(J(l, "e/sub"), 0755);
	ov_put(J(l, "e/sub/w"), "public-w");
	if (_i)
		setenv("MEMFS_LOWER_NO_OPENAT2", "1", 1);
	hx_mount_lower(&hx_mnt, 1, NULL);
	unsetenv("MEMFS_LOWER_NO_OPENAT2");
	ov_check_ls(P("d"), "sub x y"); /* d listed: x, y, sub are names not looked up */
	ov_check_ls(P("e"), "sub");

	OK(rename(J(l, "d"), J(l, "d.orig")));
	ov_symlink(secret, J(l, "d"));
	OK(rename(J(l, "f"), J(l, "f.orig")));
	ov_symlink(J(secret, "x"), J(l, "f"));
	OK(rename(J(l, "e/sub"), J(l, "e/sub.orig")));
	ov_symlink(secret, J(l, "e/sub"));

	const char *const files[] = {"d/x", "d/y", "f", "e/sub/x"};
	for (size_t i = 0; i < 4; i++) {
		int fd = open(P(files[i]), O_RDONLY);
		char buf[64] = "";
		ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

		ck_assert_msg(n <= 0 || !strstr(buf, "SECRET"),
			      "%s: the daemon followed a lower symlink and read \"%s\"", files[i],
			      buf);
		if (fd >= 0)
			close(fd);
		char v[64] = "";
		ck_assert_msg(lgetxattr(P(files[i]), "user.secret", v, sizeof(v)) < 0,
			      "%s: the daemon read an xattr of a file outside the lower tree",
			      files[i]);
	}
	DIR *dir = opendir(P("d/sub"));
	for (struct dirent *de; dir && (de = readdir(dir));)
		ck_assert_msg(strcmp(de->d_name, "zsecret") != 0,
			      "d/sub: the daemon listed a directory outside the lower tree");
	if (dir)
		closedir(dir);
	dir = opendir(P("e/sub"));
	for (struct dirent *de; dir && (de = readdir(dir));)
		ck_assert_msg(strcmp(de->d_name, "x") != 0 && strcmp(de->d_name, "sub") != 0,
			      "e/sub: the daemon listed a directory outside the lower tree");
	if (dir)
		closedir(dir);
	/* the rest of the mount is fine */
	ov_put(P("new"), "n");
	ov_check(P("new"), "n");
}
END_TEST

/* ---- a lower that changes underneath ---- */

START_TEST(a_lower_entry_removed_underneath_fails_alone)
{
	const char *l = hx_lower(0);

	MEMFS_ONLY(); /* a tmpfs copy does not see its source change */
	ov_put(J(l, "a"), "A");
	ov_put(J(l, "b"), "B");
	ov_put(J(l, "g"), "G");
	ov_mkdirs(J(l, "e/inner"), 0755);
	ov_put(J(l, "e/k"), "k");
	ov_mkdirs(J(l, "d"), 0755);
	ov_put(J(l, "d/x"), "X");
	hx_mount_lower(&hx_mnt, 1, NULL);
	ov_check_ls(hx_mnt.dir, "a b d e g");
	st_of(P("g")); /* an inode already, never opened */

	OK(unlink(J(l, "a")));
	OK(unlink(J(l, "g")));
	ck_assert_int_eq(hx_sh("rm -r '%s'", J(l, "e")), 0);

	struct stat st;
	int e = err_of(lstat(P("a"), &st));
	ck_assert_msg(e == ENOENT || e == EIO, "lstat a: %s", ename(e));
	int fd = open(P("g"), O_RDONLY);
	char buf[8];
	e = fd < 0 ? errno : err_of(read(fd, buf, sizeof(buf)));
	ck_assert_msg(e == ENOENT || e == EIO, "open+read of g removed underneath: %s", ename(e));
	if (fd >= 0)
		close(fd);
	DIR *d = opendir(P("e"));
	e = d ? 0 : errno;
	if (d)
		closedir(d);
	ck_assert_msg(e == ENOENT || e == EIO, "opendir e removed underneath: %s", ename(e));

	/* everything else goes on */
	ov_check(P("b"), "B");
	ov_check(P("d/x"), "X");
	ov_put(P("new"), "new");
	ov_check(P("new"), "new");
	ck_assert_int_eq(kill(hx_mnt.pid, 0), 0);
}
END_TEST

START_TEST(a_name_removed_underneath_can_be_made_again_through_the_mount)
{
	const char *l = hx_lower(0);

	MEMFS_ONLY();
	ov_put(J(l, "a"), "A");
	ov_mkdirs(J(l, "e"), 0755);
	hx_mount_lower(&hx_mnt, 1, NULL);
	ov_check_ls(hx_mnt.dir, "a e");
	OK(unlink(J(l, "a")));
	OK(rmdir(J(l, "e")));
	struct stat st;
	int e = err_of(lstat(P("a"), &st));
	ck_assert_msg(e == ENOENT || e == EIO, "lstat a: %s", ename(e));

	e = err_of(unlink(P("a")));
	ck_assert_msg(e == 0 || e == ENOENT, "unlink a: %s", ename(e));
	int fd = open(P("a"), O_WRONLY | O_CREAT, 0644);
	ck_assert_msg(fd >= 0, "open(O_CREAT) of a name removed underneath: %s",
		      strerrorname_np(errno));
	ck_assert_int_eq(write(fd, "again", 5), 5);
	close(fd);
	ov_check(P("a"), "again");
	ck_assert_msg(mkdir(P("e"), 0755) == 0, "mkdir of a name removed underneath: %s",
		      strerrorname_np(errno));
	ov_check_ls(hx_mnt.dir, "a e");
	ov_check_ls(P("e"), "");
}
END_TEST

/* ---- refused up front ---- */

/* Count the lines of /proc/self/mountinfo. */
static int mount_count(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	int n = 0, c;

	ck_assert(f);
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

/*
 * Run memfs -f -o opts mnt (as uid/gid if uid != 0) and expect it to refuse:
 * a non-zero exit within 20 s, exactly one line on stderr that starts with
 * "memfs: " and contains must_say, nothing mounted.
 */
static void expect_refusal(const char *opts, const char *mnt, uid_t uid, const char *must_say)
{
	const char *bin = getenv("MEMFS_BIN");
	int pipefd[2], status = 0, mounts = mount_count();
	char out[4096] = "";
	size_t used = 0;
	pid_t pid;

	ck_assert_msg(bin, "MEMFS_BIN is not set");
	OK(pipe2(pipefd, O_CLOEXEC));
	pid = fork();
	OK(pid);
	if (pid == 0) {
		dup2(pipefd[1], STDERR_FILENO);
		dup2(pipefd[1], STDOUT_FILENO);
		if (uid && (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 ||
			    setresuid(uid, uid, uid) < 0))
			_exit(125);
		execl(bin, bin, "-f", "-o", opts, mnt, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	double t0 = now_s();
	int open_pipe = 1;

	while (waitpid(pid, &status, WNOHANG) != pid) {
		struct pollfd p = {pipefd[0], POLLIN, 0};

		if (now_s() - t0 > 20) {
			kill(pid, SIGTERM);
			waitpid(pid, &status, 0);
			hx_sh("fusermount3 -u -z '%s' 2>/dev/null", mnt);
			ck_abort_msg("memfs -o %s %s: still running after 20 s (it mounted)", opts,
				     mnt);
		}
		if (open_pipe && poll(&p, 1, 10) > 0) {
			ssize_t n = read(pipefd[0], out + used, sizeof(out) - 1 - used);

			if (n > 0)
				used += (size_t)n;
			else
				open_pipe = 0;
		} else if (!open_pipe) {
			usleep(10000);
		}
	}
	for (ssize_t n; (n = read(pipefd[0], out + used, sizeof(out) - 1 - used)) > 0;)
		used += (size_t)n;
	close(pipefd[0]);
	out[used] = '\0';
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0,
		      "memfs -o %s: want a failure exit, got status %#x", opts, status);
	ck_assert_msg(WEXITSTATUS(status) != 125 && WEXITSTATUS(status) != 127,
		      "memfs -o %s: could not be started", opts);
	ck_assert_msg(strncmp(out, "memfs: ", 7) == 0 && strchr(out, '\n') == out + used - 1,
		      "memfs -o %s: want one line \"memfs: ...\", got \"%s\"", opts, out);
	ck_assert_msg(strstr(out, must_say), "memfs -o %s: \"%s\" does not say \"%s\"", opts, out,
		      must_say);
	ck_assert_int_eq(mount_count(), mounts);
}

START_TEST(a_lower_that_is_missing_not_a_directory_or_unreadable_is_refused)
{
	const char *t = hx_tmpfs(), *l = hx_lower(0);
	char mnt[PATH_MAX];

	snprintf(mnt, sizeof(mnt), "%s/mnt", t);
	char opts[PATH_MAX * 3];

	MEMFS_ONLY();
	ov_mkdirs(mnt, 0777);
	OK(chmod(mnt, 0777));
	ov_put(J(l, "file"), "f");
	OK(mkfifo(J(l, "fifo"), 0644));
	ov_symlink("nowhere", J(l, "dangling"));
	ov_mkdirs(J(l, "ok"), 0755);

	const char *const missing[] = {J(l, "missing"), J(l, "file"), J(l, "fifo"),
				       J(l, "dangling"), J(l, "file/below")};
	for (size_t i = 0; i < 5; i++) {
		snprintf(opts, sizeof(opts), "lower=%s", missing[i]);
		expect_refusal(opts, mnt, 0, missing[i]);
		/* a bad one anywhere in the list */
		snprintf(opts, sizeof(opts), "lower=%s:%s", J(l, "ok"), missing[i]);
		expect_refusal(opts, mnt, 0, missing[i]);
	}
	expect_refusal("lower=", mnt, 0, "lower");
	snprintf(opts, sizeof(opts), "lower=%s::%s", J(l, "ok"), J(l, "ok"));
	expect_refusal(opts, mnt, 0, "lower");

	/* unreadable for an unprivileged user (root reads anything) */
	const uid_t nobody = 65534;
	ov_mkdirs(J(l, "private"), 0700);
	ov_mkdirs(J(l, "search-only"), 0311);
	OK(chmod(J(l, "search-only"), 0311));
	ov_mkdirs(J(l, "read-only"), 0444);
	OK(chmod(J(l, "read-only"), 0444));
	ov_mkdirs(J(l, "private/inside"), 0755);
	ov_mkdirs(J(l, "open"), 0755);
	OK(chmod(l, 0755));
	const char *const unreadable[] = {J(l, "private"), J(l, "search-only"), J(l, "read-only"),
					  J(l, "private/inside")};
	for (size_t i = 0; i < 4; i++) {
		snprintf(opts, sizeof(opts), "lower=%s", unreadable[i]);
		expect_refusal(opts, mnt, nobody, unreadable[i]);
		snprintf(opts, sizeof(opts), "lower=%s:%s", J(l, "open"), unreadable[i]);
		expect_refusal(opts, mnt, nobody, unreadable[i]);
	}
}
END_TEST

START_TEST(a_mount_point_inside_a_lower_directory_is_refused)
{
	const char *l = hx_lower(0), *t = hx_tmpfs();
	char opts[PATH_MAX * 2];

	MEMFS_ONLY();
	ov_mkdirs(J(l, "sub/deeper"), 0755);
	ov_put(J(l, "file"), "lower file");
	ov_symlink(J(l, "sub"), J(t, "via-link"));
	ov_symlink(l, J(t, "lower-link"));

	snprintf(opts, sizeof(opts), "lower=%s", l);
	expect_refusal(opts, J(l, "sub"), 0, "inside lower");
	expect_refusal(opts, J(l, "sub/deeper"), 0, "inside lower");
	expect_refusal(opts, J(t, "via-link"), 0, "inside lower");
	snprintf(opts, sizeof(opts), "lower=%s", J(t, "lower-link"));
	expect_refusal(opts, J(l, "sub"), 0, "inside lower");
	snprintf(opts, sizeof(opts), "lower=%s:%s", t, l);
	expect_refusal(opts, J(l, "sub/deeper"), 0, "inside lower");

	/* the lower directory itself may be the mount point: it is opened
	 * before the mount covers it */
	snprintf(opts, sizeof(opts), "lower=%s", l);
	hx_mount_on(&hx_mnt, l, opts);
	ov_check(J(l, "file"), "lower file");
	ov_check_ls(l, "file sub");
	ov_put(J(l, "file"), "in memory");
	ov_check(J(l, "file"), "in memory");
	hx_umount(&hx_mnt);
	ov_check(J(l, "file"), "lower file");
}
END_TEST

/* ---- lower_uid, lower_gid ---- */

START_TEST(lower_uid_and_lower_gid_own_every_lower_entry_and_grant_its_access)
{
	const char *l = hx_lower(0);

	ov_put(J(l, "f"), "private to its owner");
	OK(chmod(J(l, "f"), 0600));
	ov_mkdirs(J(l, "d"), 0700);
	ov_put(J(l, "d/g"), "g");
	OK(lchown(J(l, "d/g"), 1000, 1000));
	ov_symlink("f", J(l, "link"));
	hx_mount_lower(&hx_mnt, 1, "lower_uid=4321,lower_gid=8765,allow_other");

	const char *const names[] = {"", "f", "d", "d/g", "link"};
	for (size_t i = 0; i < 5; i++) {
		struct stat st = st_of(*names[i] ? P(names[i]) : hx_mnt.dir);

		ck_assert_msg(st.st_uid == 4321 && st.st_gid == 8765, "%s: owned by %u:%u",
			      names[i], st.st_uid, st.st_gid);
	}
	ck_assert_int_eq(st_of(P("f")).st_mode, S_IFREG | 0600);
	ov_put(P("new"), "n");
	ck_assert_int_eq(st_of(P("new")).st_uid, getuid());
	OK(lchown(P("d/g"), 1, 2));
	ck_assert_int_eq(st_of(P("d/g")).st_uid, 1);
	ck_assert_int_eq(st_of(J(l, "d/g")).st_uid, 1000);

	/* the owner it shows is the owner the kernel checks */
	pid_t pid = fork();
	OK(pid);
	if (pid == 0) {
		char buf[64];
		if (setgroups(0, NULL) < 0 || setresgid(8765, 8765, 8765) < 0 ||
		    setresuid(4321, 4321, 4321) < 0)
			_exit(10);
		int fd = open(P("f"), O_RDWR);
		if (fd < 0 || read(fd, buf, sizeof(buf)) != 20)
			_exit(11);
		if (pwrite(fd, "P", 1, 0) != 1)
			_exit(12);
		close(fd);
		if (open(P("d/g"), O_RDONLY) < 0) /* d is 0700, its owner's */
			_exit(13);
		_exit(0);
	}
	int status;
	OK(waitpid(pid, &status, 0));
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "uid 4321 could not use files it owns through the mount (step %d)",
		      WEXITSTATUS(status));
	ov_check(P("f"), "Private to its owner");
	ov_check(J(l, "f"), "private to its owner");
	ck_assert_int_eq(st_of(J(l, "f")).st_uid, 0);
}
END_TEST

/* ---- the whole view ---- */

/* A lower tree with every kind of entry, mode, owner, xattr and time. */
static void fill_rich_tree(const char *l, int seed)
{
	char rel[64];

	ov_mkdirs(J(l, "docs/old/older"), 0755);
	ov_mkdirs(J(l, "bin"), 0750);
	ov_mkdirs(J(l, "empty"), 0700);
	ov_mkdirs(J(l, "gone/inside"), 0755);
	ov_put(J(l, "README"), "read me\n");
	ov_put(J(l, "empty-file"), "");
	ov_put_pattern(J(l, "docs/big"), 300 * 1024 + 17, seed);
	ov_put_pattern(J(l, "docs/old/older/blob"), 9000, seed + 1);
	ov_put(J(l, "gone/inside/x"), "x");
	ov_put(J(l, "gone/y"), "y");
	int fd = open(J(l, "sparse"), O_WRONLY | O_CREAT, 0644);
	OK(fd);
	ck_assert_int_eq(pwrite(fd, "middle", 6, 1 << 20), 6);
	OK(ftruncate(fd, 4 << 20));
	close(fd);
	ov_put(J(l, "bin/tool"), "#!/bin/sh\n");
	OK(chmod(J(l, "bin/tool"), 04755));
	ov_put(J(l, "secret"), "s");
	OK(chmod(J(l, "secret"), 0600));
	OK(lchown(J(l, "secret"), 1000, 1001));
	ov_put(J(l, "h1"), "hard");
	OK(link(J(l, "h1"), J(l, "docs/h2")));
	OK(link(J(l, "h1"), J(l, "docs/old/h3")));
	ov_symlink("README", J(l, "rel-link"));
	ov_symlink("/etc/passwd", J(l, "abs-link"));
	ov_symlink("nowhere", J(l, "dangling"));
	OK(lchown(J(l, "dangling"), 7, 8));
	OK(mkfifo(J(l, "fifo"), 0640));
	OK(mknod(J(l, "null"), S_IFCHR | 0666, makedev(1, 3)));
	OK(mknod(J(l, "blk"), S_IFBLK | 0600, makedev(7, 0)));
	for (int i = 0; i < 20; i++) {
		snprintf(rel, sizeof(rel), "docs/n%02d", i);
		ov_put(J(l, rel), rel);
	}
	set_xattr(J(l, "README"), "user.mime", "text/plain");
	set_xattr(J(l, "docs"), "user.dir", "docs");
	set_xattr(J(l, "docs/big"), "trusted.origin", "x");
	set_xattr(J(l, "rel-link"), "trusted.link", "l");
	OK(hx_sh("find '%s' -depth -exec touch -h -d @%d.5 {} +", l, 1000000000 + seed * 1000));
}

/* Changes of every kind; the entries they touch get a fixed time at the end. */
static void change_rich_tree(const char *b)
{
	int fd = open(J(b, "README"), O_WRONLY | O_APPEND);
	OK(fd);
	ck_assert_int_eq(write(fd, "more\n", 5), 5);
	close(fd);
	fd = open(J(b, "docs/big"), O_WRONLY);
	OK(fd);
	ck_assert_int_eq(pwrite(fd, "XYZ", 3, 100000), 3);
	close(fd);
	fd = open(J(b, "sparse"), O_WRONLY);
	OK(fd);
	ck_assert_int_eq(pwrite(fd, "end", 3, (4 << 20) - 3), 3);
	close(fd);
	OK(truncate(J(b, "docs/old/older/blob"), 5000));
	OK(chmod(J(b, "docs/n00"), 0400));
	OK(lchown(J(b, "docs/n01"), 42, 43));
	OK(lchown(J(b, "rel-link"), 5, 6));
	set_xattr(J(b, "docs/n02"), "user.new", "v");
	OK(lremovexattr(J(b, "README"), "user.mime"));
	set_xattr(J(b, "empty"), "trusted.t", "t");
	OK(unlink(J(b, "docs/h2")));
	OK(hx_sh("rm -r '%s'", J(b, "gone")));
	OK(rename(J(b, "docs/n03"), J(b, "bin/n03")));
	OK(rename(J(b, "docs/old"), J(b, "old")));
	OK(mkdir(J(b, "fresh"), 0755));
	ov_put(J(b, "fresh/file"), "fresh");
	OK(link(J(b, "docs/n04"), J(b, "fresh/n04-link")));
	ov_symlink("../README", J(b, "fresh/link"));
	OK(unlink(J(b, "fifo")));
	OK(mkdir(J(b, "fifo"), 0711));
	const char *const touched[] = {
	    "",		 "README",   "docs/big", "sparse", "old/older/blob", "docs/n00",
	    "docs/n01",	 "rel-link", "docs/n02", "empty",  "docs",	     "old",
	    "old/older", "bin",	     "bin/n03",	 "fresh",  "fresh/file",     "fresh/link",
	    "fifo",	 "docs/n04", "h1"};
	for (size_t i = 0; i < sizeof(touched) / sizeof(touched[0]); i++)
		set_times(*touched[i] ? J(b, touched[i]) : b, 1500000000 + (time_t)i);
}

START_TEST(rsync_of_the_merged_view_equals_the_lower_tree_plus_the_changes)
{
	char expect[PATH_MAX], got[PATH_MAX];

	snprintf(expect, sizeof(expect), "%s/expect", hx_tmpfs());
	snprintf(got, sizeof(got), "%s/got", hx_tmpfs());

	fill_rich_tree(hx_lower(0), 1);
	ov_mkdirs(expect, 0755);
	ov_mkdirs(got, 0755);
	hx_copy_lowers(expect, 1);
	hx_mount_lower(&hx_mnt, 1, NULL);
	change_rich_tree(hx_mnt.dir);
	change_rich_tree(expect);

	int rc = hx_sh("rsync -aHAX '%s'/ '%s'/", hx_mnt.dir, got);
	ck_assert_msg(rc == 0, "rsync -aHAX of the mount: exit status %d", rc);
	rc =
	    hx_sh("rsync -naHAXc --delete --itemize-changes '%s'/ '%s'/ | grep . >&2", expect, got);
	ck_assert_msg(rc == 1, "rsync -n --itemize-changes lists differences (above)");
	char *w = hx_tree_digest(expect, HX_DIGEST_MTIME);
	char *g = hx_tree_digest(got, HX_DIGEST_MTIME);
	hx_assert_same_digest("rsync -aHAX copy of the mount", g, w);
	free(g);
	g = hx_tree_digest(hx_mnt.dir, HX_DIGEST_MTIME);
	hx_assert_same_digest("the mount", g, w);
	free(g);
	free(w);
}
END_TEST

/* Post-order list of every entry below dir (nftw FTW_DEPTH): paths from dir. */
static char **all_entries;
static int n_entries;

static int collect(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level == 0)
		return 0;
	all_entries = realloc(all_entries, (n_entries + 1) * sizeof(*all_entries));
	all_entries[n_entries++] = strdup(path);
	return 0;
}

START_TEST(lower_directories_are_unchanged_after_everything_is_written_renamed_and_removed)
{
	fill_rich_tree(hx_lower(0), 1);
	fill_rich_tree(hx_lower(1), 2);
	ov_put(J(hx_lower(1), "only-below"), "below");
	char *before0 = hx_tree_digest(hx_lower(0), HX_DIGEST_MTIME | HX_DIGEST_IDENTITY);
	char *before1 = hx_tree_digest(hx_lower(1), HX_DIGEST_MTIME | HX_DIGEST_IDENTITY);
	hx_mount_lower(&hx_mnt, 2, NULL);

	/* change every entry: bytes, size, mode, owner, times, xattrs */
	n_entries = 0;
	OK(nftw(hx_mnt.dir, collect, 16, FTW_PHYS | FTW_DEPTH));
	ck_assert_int_gt(n_entries, 40);
	for (int i = 0; i < n_entries; i++) {
		const char *p = all_entries[i];
		struct stat st = st_of(p);

		if (S_ISREG(st.st_mode)) {
			int fd = open(p, O_RDWR);
			OK(fd);
			ck_assert_int_eq(pwrite(fd, "W", 1, st.st_size / 2), 1);
			ck_assert_int_eq(pwrite(fd, "tail", 4, st.st_size + 1), 4);
			OK(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 1));
			close(fd);
			OK(truncate(p, st.st_size / 3));
		}
		if (!S_ISLNK(st.st_mode))
			OK(chmod(p, 0700));
		if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
			set_xattr(p, "user.changed", "yes");
		OK(lchown(p, 99, 98));
		set_xattr(p, "trusted.changed", "yes");
		OK(lremovexattr(p, "trusted.changed"));
		set_times(p, 1234567890);
	}
	for (int i = 0; i < n_entries; i++)
		free(all_entries[i]);
	n_entries = 0;
	/* rename every top-level entry (names read first: a listing may or may
	 * not show names made while it runs), then move some into others */
	char *names = ov_ls(hx_mnt.dir), *save = NULL;
	for (char *name = strtok_r(names, " ", &save); name; name = strtok_r(NULL, " ", &save)) {
		char to[300];

		snprintf(to, sizeof(to), "%s.renamed", name);
		OK(rename(P(name), P(to)));
	}
	free(names);
	OK(rename(P("docs.renamed"), P("bin.renamed/docs")));
	OK(rename(P("README.renamed"), P("bin.renamed/docs/old/README")));
	OK(renameat2_(P("empty.renamed"), P("bin.renamed/docs/old/older"), RENAME_EXCHANGE));
	/* and remove everything */
	OK(nftw(hx_mnt.dir, collect, 16, FTW_PHYS | FTW_DEPTH));
	for (int i = 0; i < n_entries; i++) {
		struct stat st = st_of(all_entries[i]);

		if (S_ISDIR(st.st_mode))
			OK(rmdir(all_entries[i]));
		else
			OK(unlink(all_entries[i]));
		free(all_entries[i]);
	}
	free(all_entries);
	all_entries = NULL;
	ov_check_ls(hx_mnt.dir, "");
	hx_drop_caches(2);
	ov_check_ls(hx_mnt.dir, "");

	for (int round = 0; round < 2; round++) {
		char *after0 = hx_tree_digest(hx_lower(0), HX_DIGEST_MTIME | HX_DIGEST_IDENTITY);
		char *after1 = hx_tree_digest(hx_lower(1), HX_DIGEST_MTIME | HX_DIGEST_IDENTITY);

		hx_assert_same_digest("lower 0", after0, before0);
		hx_assert_same_digest("lower 1", after1, before1);
		free(after0);
		free(after1);
		if (round == 0)
			hx_umount(&hx_mnt);
	}
	free(before0);
	free(before1);
}
END_TEST

/* A TCase per area, so CK_RUN_CASE=<area> runs one of them. */
static TCase *area(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, hx_setup_nomount, hx_teardown);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *overlay_suite(void)
{
	Suite *s = suite_create("overlay");
	TCase *tc = area(s, "lazy");

	tcase_add_test(tc, mount_reads_only_the_top_lower_directory_and_a_lookup_only_its_own);
	tcase_add_test(tc, listing_a_lower_directory_costs_at_most_200_bytes_per_entry);
	tc = area(s, "removal");
	tcase_add_test(tc, unlink_and_rmdir_hide_lower_entries_for_good_and_leave_no_trace);
	tcase_add_test(tc, rmdir_then_mkdir_of_a_lower_directory_gives_an_empty_directory);
	tcase_add_test(tc, creating_over_a_removed_lower_name_gives_a_fresh_empty_file);
	tc = area(s, "rename");
	tcase_add_test(tc, rename_moves_lower_files_and_whole_lower_directories_as_on_tmpfs);
	tcase_add_test(tc, rename_exchange_and_noreplace_work_on_lower_entries_as_on_tmpfs);
	tc = area(s, "links");
	tcase_add_test(tc, lower_hard_links_are_one_inode_through_every_name_and_after_forget);
	tcase_add_test(tc, link_of_a_lower_file_shares_it_without_copying_data);
	tcase_add_test(tc, a_lower_directory_reached_by_two_paths_shows_as_two_directories);
	tc = area(s, "identity");
	tcase_add_test(tc, inode_numbers_are_unique_stable_and_those_readdir_gives);
	tcase_add_test(tc, a_merged_directory_of_many_names_lists_each_name_once);
	tc = area(s, "names");
	tcase_add_test(tc, any_trusted_and_user_xattr_name_can_be_set_on_lower_and_new_entries);
	tcase_add_test(tc, whiteout_like_names_and_nodes_are_ordinary_files);
	tcase_add_test(tc, lower_xattrs_are_visible_and_changes_stay_in_memory);
	tc = area(s, "layers");
	tcase_add_test(tc, upper_layers_hide_names_below_and_directories_merge_as_on_tmpfs);
	tcase_add_test(tc, a_removal_hides_a_name_in_every_layer);
	tc = area(s, "safety");
	tcase_add_test(tc, a_hostile_lower_tree_shows_its_symlinks_as_they_are_and_nothing_outside);
	tcase_add_loop_test(tc, a_lower_directory_swapped_for_a_symlink_is_never_followed, 0, 2);
	tcase_add_test(tc, a_lower_entry_removed_underneath_fails_alone);
	tcase_add_test(tc, a_name_removed_underneath_can_be_made_again_through_the_mount);
	tc = area(s, "refusal");
	tcase_add_test(tc, a_lower_that_is_missing_not_a_directory_or_unreadable_is_refused);
	tcase_add_test(tc, a_mount_point_inside_a_lower_directory_is_refused);
	tc = area(s, "view");
	tcase_add_test(tc, lower_uid_and_lower_gid_own_every_lower_entry_and_grant_its_access);
	tcase_add_test(tc, rsync_of_the_merged_view_equals_the_lower_tree_plus_the_changes);
	tcase_add_test(
	    tc, lower_directories_are_unchanged_after_everything_is_written_renamed_and_removed);
	return s;
}

int main(void)
{
	return hx_run(overlay_suite());
}
