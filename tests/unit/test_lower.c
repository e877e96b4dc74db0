/*
 * test_lower.c — unit tests of src/lower.c: one read-only lower directory
 * reached safely.
 *
 * Each test builds a hostile lower tree in a fresh temp dir (make_tree):
 * symlinks to "/", "..", "../../etc", absolute paths, a file and a
 * directory outside the tree, a loop, a link to itself, a symlinked
 * directory in the middle of a path, a dangling link, a FIFO and a name
 * with newlines; next to it, outside the tree, a "secret" file whose inode
 * number every check compares against, so "never reaches outside" is
 * proven by what was opened, not by an error code.
 *
 * The safety tests run twice (loop index RESOLVE_*): with openat2 where the
 * kernel has it, and with the component walk forced through
 * MEMFS_LOWER_NO_OPENAT2.  One more runs with openat2 made to fail with
 * ENOSYS by a seccomp filter, to prove the fallback happens by itself.
 *
 * Checks that must run in a child process (another uid, a seccomp filter,
 * another process truncating a file, a fatal SIGBUS) go through in_child()
 * and report a number back, never through ck_assert.
 *
 * Under valgrind (CK_FORK=no valgrind ./test_unit_lower) every
 * mfs_lower_open prints "unhandled syscall 437": valgrind 3.19 does not know
 * openat2 and answers ENOSYS, so the lower falls back to the walk, and
 * the tests expect exactly that (kernel_has_openat2 sees the same ENOSYS).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "lower.h"

#define PAGE 4096
#define NOBODY 65534
#define NEWLINE_NAME "new\nline\n"

enum { RESOLVE_OPENAT2, RESOLVE_WALK };

/* ---- the hostile tree ---- */

struct tree {
	/* sized well under PATH_MAX, so that paths built from them always fit */
	char base[256];	   /* the temp dir holding both */
	char lower[320];   /* base/lower: the lower root */
	char outside[320]; /* base/outside: must never be reached */
	char secret[384];  /* base/outside/secret */
	ino_t outside_ino, secret_ino, lower_ino;
	bool trusted_xattrs; /* lsetxattr trusted.* works here (CAP_SYS_ADMIN) */
};

/* Paths whose last component is a symlink and whose other components are not. */
static const char *const final_links[] = {
    "link_root",
    "link_up",
    "link_etc",
    "link_abs_secret",
    "link_rel_secret",
    "link_outside",
    "link_abs_outside",
    "link_proc",
    "link_file",
    "loop_a",
    "loop_b",
    "self",
    "mid",
    "dangling",
    "dir/up",
};

/* Paths with a symlink before the last component. */
static const char *const through_links[] = {
    "link_root/etc/passwd",
    "link_root/tmp",
    "link_up/outside/secret",
    "link_up/lower/file",
    "link_etc/passwd",
    "link_abs_secret/x",
    "link_outside/secret",
    "link_abs_outside/secret",
    "link_proc/etc/passwd",
    "loop_a/x",
    "self/x",
    "mid/sub",
    "mid/sub/deep",
    "dir/up/file",
    "dir/up/link_outside/secret",
    "dir/up/mid/sub/deep",
    "dangling/x",
};

static void put_file(const char *dir, const char *name, const char *contents)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, contents, strlen(contents)), (ssize_t)strlen(contents));
	close(fd);
}

static void put_link(const char *dir, const char *name, const char *target)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(symlink(target, path), 0);
}

static void put_dir(const char *dir, const char *name, mode_t mode)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_int_eq(mkdir(path, mode), 0);
	ck_assert_int_eq(chmod(path, mode), 0); /* past the umask */
}

static ino_t ino_of(const char *path)
{
	struct stat st;

	ck_assert_int_eq(lstat(path, &st), 0);
	return st.st_ino;
}

/* A temp dir where user.* xattrs work: TMPDIR or /tmp, else /dev/shm. */
static void make_base(char *base, size_t size)
{
	const char *tmp = getenv("TMPDIR");
	const char *dirs[] = {tmp && tmp[0] ? tmp : "/tmp", "/dev/shm"};

	for (size_t i = 0; i < 2; i++) {
		snprintf(base, size, "%s/memfs-lower-XXXXXX", dirs[i]);
		ck_assert_ptr_nonnull(mkdtemp(base));
		if (setxattr(base, "user.probe", "1", 1, 0) == 0) {
			ck_assert_int_eq(chmod(base, 0755), 0); /* others may search it */
			return;
		}
		ck_assert_int_eq(rmdir(base), 0);
	}
	ck_abort_msg("no temp dir with user xattrs");
}

static void make_tree(struct tree *t)
{
	char path[PATH_MAX];

	memset(t, 0, sizeof(*t));
	make_base(t->base, sizeof(t->base));
	snprintf(t->lower, sizeof(t->lower), "%s/lower", t->base);
	snprintf(t->outside, sizeof(t->outside), "%s/outside", t->base);
	snprintf(t->secret, sizeof(t->secret), "%s/secret", t->outside);
	put_dir(t->base, "lower", 0755);
	put_dir(t->base, "outside", 0755);
	put_file(t->outside, "secret", "outside the tree\n");
	ck_assert_int_eq(setxattr(t->secret, "user.secret", "outside", 7, 0), 0);

	put_file(t->lower, "file", "hello, lower\n");
	put_file(t->lower, "empty", "");
	put_file(t->lower, NEWLINE_NAME, "newline contents\n");
	put_dir(t->lower, "dir", 0755);
	snprintf(path, sizeof(path), "%s/dir", t->lower);
	put_dir(path, "sub", 0755);
	put_link(path, "up", "..");
	snprintf(path, sizeof(path), "%s/dir/sub", t->lower);
	put_file(path, "deep", "deep\n");
	put_link(t->lower, "link_root", "/");
	put_link(t->lower, "link_up", "..");
	put_link(t->lower, "link_etc", "../../etc");
	put_link(t->lower, "link_abs_secret", t->secret);
	put_link(t->lower, "link_rel_secret", "../outside/secret");
	put_link(t->lower, "link_outside", "../outside");
	put_link(t->lower, "link_abs_outside", t->outside);
	put_link(t->lower, "link_proc", "/proc/self/root");
	put_link(t->lower, "link_file", "file");
	put_link(t->lower, "loop_a", "loop_b");
	put_link(t->lower, "loop_b", "loop_a");
	put_link(t->lower, "self", "self");
	put_link(t->lower, "mid", "dir");
	put_link(t->lower, "dangling", "nowhere/at/all");
	snprintf(path, sizeof(path), "%s/fifo", t->lower);
	ck_assert_int_eq(mkfifo(path, 0644), 0);

	t->outside_ino = ino_of(t->outside);
	t->secret_ino = ino_of(t->secret);
	t->lower_ino = ino_of(t->lower);
	snprintf(path, sizeof(path), "%s/link_file", t->lower);
	t->trusted_xattrs = lsetxattr(path, "trusted.mark", "link", 4, 0) == 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void remove_tree(struct tree *t)
{
	ck_assert_int_eq(nftw(t->base, remove_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/*
 * Run fn(arg) in a child process.  Returns what fn returned, or -1 if the
 * child died before returning (*status, if not NULL, says how).  The child
 * reports through a pipe, then kills itself with SIGKILL so that nothing runs
 * at its exit: under valgrind a leak check of the memory it inherited would
 * otherwise change its exit status.
 */
static int in_child(int (*fn)(void *), void *arg, int *status)
{
	int pipe_fd[2], result = -1, st;
	pid_t pid;

	ck_assert_int_eq(pipe(pipe_fd), 0);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(pipe_fd[0]);
		result = fn(arg);
		if (write(pipe_fd[1], &result, sizeof(result)) != sizeof(result))
			result = -1;
		kill(getpid(), SIGKILL);
	}
	close(pipe_fd[1]);
	if (read(pipe_fd[0], &result, sizeof(result)) != sizeof(result))
		result = -1;
	close(pipe_fd[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	if (status)
		*status = st;
	return result;
}

/* ---- opening a lower ---- */

static bool kernel_has_openat2(void)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_BENEATH};
	long fd = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how));

	if (fd < 0)
		return false;
	close((int)fd);
	return true;
}

static int open_lower_with(const char *path, int resolver, struct mfs_lower **out)
{
	int err;

	if (resolver == RESOLVE_WALK)
		setenv("MEMFS_LOWER_NO_OPENAT2", "1", 1);
	err = mfs_lower_open(path, out);
	unsetenv("MEMFS_LOWER_NO_OPENAT2");
	return err;
}

/* Open t's lower with the resolver asked for, and check it is the one in use. */
static struct mfs_lower *open_lower(const struct tree *t, int resolver)
{
	struct mfs_lower *l = NULL;

	ck_assert_int_eq(open_lower_with(t->lower, resolver, &l), 0);
	ck_assert_ptr_nonnull(l);
	ck_assert_int_eq(mfs_lower_uses_openat2(l),
			 resolver == RESOLVE_OPENAT2 && kernel_has_openat2());
	return l;
}

/* ---- the safety checks, usable in a child process too ---- */

static bool is_refusal(long err)
{
	return err == -ELOOP || err == -EXDEV || err == -ENOTDIR;
}

static bool in_list(const char *path, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], path) == 0)
			return true;
	return false;
}

#define NFINAL (sizeof(final_links) / sizeof(final_links[0]))
#define NTHROUGH (sizeof(through_links) / sizeof(through_links[0]))

static int failf(char *why, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, n, fmt, ap);
	va_end(ap);
	return 1;
}

/*
 * Open one path with flags: it must be refused, or (a final symlink with
 * O_PATH) give the link itself, never anything outside.
 */
static int check_open(struct mfs_lower *l, const struct tree *t, const char *path, int flags,
		      char *why, size_t n)
{
	bool final = in_list(path, final_links, NFINAL);
	bool may_open = final && (flags & O_PATH) && !(flags & O_DIRECTORY);
	int fd = mfs_lower_openat(l, path, flags);
	char full[PATH_MAX];
	struct stat st, want;

	if (fd < 0) {
		if (!is_refusal(fd))
			return failf(why, n, "%s (flags %#x): error %d, not a refusal", path, flags,
				     fd);
		if (may_open)
			return failf(why, n, "%s (flags %#x): link itself refused (%d)", path,
				     flags, fd);
		return 0;
	}
	if (fstat(fd, &st) < 0)
		return failf(why, n, "fstat");
	close(fd);
	if (st.st_ino == t->secret_ino || st.st_ino == t->outside_ino)
		return failf(why, n, "%s (flags %#x): REACHED OUTSIDE THE TREE", path, flags);
	if (!may_open)
		return failf(why, n, "%s (flags %#x): opened (mode %o)", path, flags, st.st_mode);
	snprintf(full, sizeof(full), "%s/%s", t->lower, path);
	if (lstat(full, &want) < 0 || !S_ISLNK(st.st_mode) || st.st_ino != want.st_ino)
		return failf(why, n, "%s: O_PATH gave something other than the link", path);
	return 0;
}

/* Every hostile path, opened with every kind of flags. */
static int hostile_violation(struct mfs_lower *l, const struct tree *t, char *why, size_t n)
{
	static const int flag_sets[] = {
	    O_RDONLY, O_RDONLY | O_DIRECTORY, O_RDONLY | O_NONBLOCK, O_PATH, O_PATH | O_DIRECTORY,
	};

	for (size_t f = 0; f < sizeof(flag_sets) / sizeof(flag_sets[0]); f++) {
		for (size_t i = 0; i < NFINAL; i++)
			if (check_open(l, t, final_links[i], flag_sets[f], why, n))
				return 1;
		for (size_t i = 0; i < NTHROUGH; i++)
			if (check_open(l, t, through_links[i], flag_sets[f], why, n))
				return 1;
	}
	return 0;
}

/* ---- listing ---- */

struct listing {
	size_t n;
	char names[64][64];
	mode_t modes[64];
	ino_t inos[64];
};

static int collect(void *ctx, const char *name, const struct stat *lst)
{
	struct listing *ls = ctx;

	ck_assert_uint_lt(ls->n, 64);
	snprintf(ls->names[ls->n], sizeof(ls->names[0]), "%s", name);
	ls->modes[ls->n] = lst->st_mode;
	ls->inos[ls->n] = lst->st_ino;
	ls->n++;
	return 0;
}

/* Index of name in ls, or -1. */
static int find(const struct listing *ls, const char *name)
{
	int found = -1;

	for (size_t i = 0; i < ls->n; i++) {
		if (strcmp(ls->names[i], name) == 0) {
			ck_assert_msg(found < 0, "%s listed twice", name);
			found = (int)i;
		}
	}
	return found;
}

START_TEST(listing_shows_every_entry_once_with_symlinks_as_symlinks)
{
	struct tree t;
	struct mfs_lower *l;
	struct listing ls = {0};

	make_tree(&t);
	l = open_lower(&t, _i);
	ck_assert_int_eq(mfs_lower_list(l, "", collect, &ls), 0);
	/* 4 files and dirs, 14 links at the top, the FIFO */
	ck_assert_uint_eq(ls.n, 4 + 14 + 1);
	ck_assert_int_lt(find(&ls, "."), 0);
	ck_assert_int_lt(find(&ls, ".."), 0);
	for (size_t i = 0; i < NFINAL; i++) {
		if (strchr(final_links[i], '/'))
			continue;
		int k = find(&ls, final_links[i]);

		ck_assert_msg(k >= 0, "%s not listed", final_links[i]);
		ck_assert_msg(S_ISLNK(ls.modes[k]), "%s not a symlink", final_links[i]);
	}
	ck_assert(S_ISREG(ls.modes[find(&ls, "file")]));
	ck_assert(S_ISREG(ls.modes[find(&ls, "empty")]));
	ck_assert(S_ISREG(ls.modes[find(&ls, NEWLINE_NAME)]));
	ck_assert(S_ISDIR(ls.modes[find(&ls, "dir")]));
	ck_assert(S_ISFIFO(ls.modes[find(&ls, "fifo")]));
	for (size_t i = 0; i < ls.n; i++) {
		ck_assert_uint_ne(ls.inos[i], t.secret_ino);
		ck_assert_uint_ne(ls.inos[i], t.outside_ino);
	}

	memset(&ls, 0, sizeof(ls));
	ck_assert_int_eq(mfs_lower_list(l, "dir", collect, &ls), 0);
	ck_assert_uint_eq(ls.n, 2);
	ck_assert(S_ISDIR(ls.modes[find(&ls, "sub")]));
	ck_assert(S_ISLNK(ls.modes[find(&ls, "up")]));
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(listing_through_any_symlink_fails_and_lists_nothing)
{
	struct tree t;
	struct mfs_lower *l;

	make_tree(&t);
	l = open_lower(&t, _i);
	for (size_t i = 0; i < NFINAL + NTHROUGH; i++) {
		const char *p = i < NFINAL ? final_links[i] : through_links[i - NFINAL];
		struct listing ls = {0};
		int err = mfs_lower_list(l, p, collect, &ls);

		ck_assert_msg(is_refusal(err), "list %s: %d", p, err);
		ck_assert_uint_eq(ls.n, 0);
	}
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

static int stop_at_second(void *ctx, const char *name, const struct stat *lst)
{
	int *calls = ctx;

	(void)name, (void)lst;
	return ++*calls == 2 ? 42 : 0;
}

START_TEST(listing_stops_when_the_callback_says_so_and_returns_its_value)
{
	struct tree t;
	struct mfs_lower *l;
	int calls = 0;

	make_tree(&t);
	l = open_lower(&t, _i);
	ck_assert_int_eq(mfs_lower_list(l, ".", stop_at_second, &calls), 42);
	ck_assert_int_eq(calls, 2);
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

struct remover {
	const char *dir;
	int calls;
};

/* On the first entry, remove every other entry of the directory. */
static int remove_the_others(void *ctx, const char *name, const struct stat *lst)
{
	struct remover *r = ctx;
	char path[PATH_MAX];
	const char *names[] = {"a", "b", "c", "d", "e"};

	(void)lst;
	if (r->calls++ == 0)
		for (size_t i = 0; i < 5; i++) {
			if (strcmp(names[i], name) == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", r->dir, names[i]);
			ck_assert_int_eq(unlink(path), 0);
		}
	return 0;
}

START_TEST(an_entry_removed_during_listing_is_skipped)
{
	struct tree t;
	struct mfs_lower *l;
	char dir[PATH_MAX], deep[PATH_MAX + 8];
	struct remover r = {dir, 0};
	const char *names[] = {"a", "b", "c", "d", "e"};

	make_tree(&t);
	snprintf(dir, sizeof(dir), "%s/dir/sub", t.lower);
	snprintf(deep, sizeof(deep), "%s/deep", dir);
	ck_assert_int_eq(unlink(deep), 0);
	for (size_t i = 0; i < 5; i++)
		put_file(dir, names[i], "x");
	l = open_lower(&t, _i);
	/* readdir has read all five names at once; four are gone when they come up */
	ck_assert_int_eq(mfs_lower_list(l, "dir/sub", remove_the_others, &r), 0);
	ck_assert_int_eq(r.calls, 1);
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(listing_a_file_or_a_missing_directory_fails)
{
	struct tree t;
	struct mfs_lower *l;
	struct listing ls = {0};

	make_tree(&t);
	l = open_lower(&t, _i);
	ck_assert_int_eq(mfs_lower_list(l, "file", collect, &ls), -ENOTDIR);
	ck_assert_int_eq(mfs_lower_list(l, "fifo", collect, &ls), -ENOTDIR);
	ck_assert_int_eq(mfs_lower_list(l, "nothing", collect, &ls), -ENOENT);
	ck_assert_int_eq(mfs_lower_list(l, "file/x", collect, &ls), -ENOTDIR);
	ck_assert_uint_eq(ls.n, 0);
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

/* ---- walking ---- */

START_TEST(opening_through_any_symlink_fails_and_never_reaches_outside)
{
	struct tree t;
	struct mfs_lower *l;
	char why[512] = "";

	make_tree(&t);
	l = open_lower(&t, _i);
	ck_assert_msg(hostile_violation(l, &t, why, sizeof(why)) == 0, "%s", why);
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(a_final_symlink_is_only_ever_opened_as_itself)
{
	struct tree t;
	struct mfs_lower *l;

	make_tree(&t);
	l = open_lower(&t, _i);
	for (size_t i = 0; i < NFINAL; i++) {
		int fd = mfs_lower_openat(l, final_links[i], O_PATH);
		struct stat st;

		ck_assert_msg(fd >= 0, "%s: %d", final_links[i], fd);
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert(S_ISLNK(st.st_mode));
		close(fd);
		ck_assert_int_eq(mfs_lower_openat(l, final_links[i], O_RDONLY), -ELOOP);
	}
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(dot_dot_absolute_and_empty_components_are_einval_before_any_lookup)
{
	static const char *const bad[] = {
	    "..",	  "../outside/secret", "dir/..", "dir/../file", "nothing/../file",
	    "/",	  "/etc/passwd",       "/file",	 "dir//sub",	"dir/",
	    "./file",	  "dir/./sub",	       "dir/.",	 "./",		"//",
	    "nothing/..", "a/b/../../..",
	};
	struct tree t;
	struct mfs_lower *l;
	struct stat st;
	struct listing ls = {0};
	struct mfs_lower_map m;
	char buf[64];

	make_tree(&t);
	l = open_lower(&t, _i);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(mfs_lower_openat(l, bad[i], O_PATH) == -EINVAL, "%s", bad[i]);
		ck_assert_int_eq(mfs_lower_openat(l, bad[i], O_RDONLY), -EINVAL);
		ck_assert_int_eq(mfs_lower_lstat(l, bad[i], &st), -EINVAL);
		ck_assert_int_eq(mfs_lower_readlink(l, bad[i], buf, sizeof(buf)), -EINVAL);
		ck_assert_int_eq(mfs_lower_list(l, bad[i], collect, &ls), -EINVAL);
		ck_assert_int_eq(mfs_lower_listxattr(l, bad[i], buf, sizeof(buf)), -EINVAL);
		ck_assert_int_eq(mfs_lower_getxattr(l, bad[i], "user.x", buf, sizeof(buf)),
				 -EINVAL);
		ck_assert_int_eq(mfs_lower_map(l, bad[i], &m), -EINVAL);
	}
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(overlong_names_and_paths_are_enametoolong)
{
	struct tree t;
	struct mfs_lower *l;
	char name[NAME_MAX + 2];
	static char path[PATH_MAX + 8];

	make_tree(&t);
	l = open_lower(&t, _i);
	memset(name, 'n', NAME_MAX + 1);
	name[NAME_MAX + 1] = '\0';
	ck_assert_int_eq(mfs_lower_openat(l, name, O_PATH), -ENAMETOOLONG);
	name[NAME_MAX] = '\0'; /* 255 bytes: a valid name that is not there */
	ck_assert_int_eq(mfs_lower_openat(l, name, O_PATH), -ENOENT);
	for (size_t i = 0; i < sizeof(path) - 1; i += 2)
		memcpy(path + i, "d/", 2);
	path[sizeof(path) - 2] = 'd';
	path[sizeof(path) - 1] = '\0';
	ck_assert_int_eq(mfs_lower_openat(l, path, O_PATH), -ENAMETOOLONG);
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(the_root_is_named_by_empty_and_dot)
{
	struct tree t;
	struct mfs_lower *l;
	struct stat st;

	make_tree(&t);
	l = open_lower(&t, _i);
	for (int i = 0; i < 2; i++) {
		const char *root = i ? "." : "";
		int fd = mfs_lower_openat(l, root, O_RDONLY | O_DIRECTORY);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(fstat(fd, &st), 0);
		ck_assert_uint_eq(st.st_ino, t.lower_ino);
		close(fd);
		ck_assert_int_eq(mfs_lower_lstat(l, root, &st), 0);
		ck_assert(S_ISDIR(st.st_mode));
		ck_assert_uint_eq(st.st_ino, t.lower_ino);
	}
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(plain_paths_open_what_they_name)
{
	struct tree t;
	struct mfs_lower *l;
	char buf[64] = "";
	char full[PATH_MAX];
	int fd;

	make_tree(&t);
	l = open_lower(&t, _i);
	fd = mfs_lower_openat(l, "dir/sub/deep", O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(read(fd, buf, sizeof(buf)), 5);
	ck_assert_str_eq(buf, "deep\n");
	ck_assert_int_ne(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
	close(fd);
	fd = mfs_lower_openat(l, "dir/sub", O_PATH | O_DIRECTORY);
	ck_assert_int_ge(fd, 0);
	snprintf(full, sizeof(full), "%s/dir/sub", t.lower);
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_uint_eq(st.st_ino, ino_of(full));
	close(fd);
	ck_assert_int_eq(mfs_lower_openat(l, "dir/sub/nothing", O_RDONLY), -ENOENT);
	ck_assert_int_eq(mfs_lower_openat(l, "file/x", O_RDONLY), -ENOTDIR);
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(write_flags_are_erofs_and_change_nothing)
{
	static const int writes[] = {
	    O_WRONLY,	       O_RDWR, O_RDONLY | O_CREAT, O_RDONLY | O_TRUNC, O_RDONLY | O_APPEND,
	    O_TMPFILE | O_RDWR};
	struct tree t;
	struct mfs_lower *l;
	char full[PATH_MAX];
	struct stat st;

	make_tree(&t);
	l = open_lower(&t, _i);
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++) {
		ck_assert_int_eq(mfs_lower_openat(l, "file", writes[i]), -EROFS);
		ck_assert_int_eq(mfs_lower_openat(l, "new", writes[i]), -EROFS);
		ck_assert_int_eq(mfs_lower_openat(l, "dir", writes[i]), -EROFS);
	}
	snprintf(full, sizeof(full), "%s/file", t.lower);
	ck_assert_int_eq(stat(full, &st), 0);
	ck_assert_int_eq(st.st_size, 13);
	snprintf(full, sizeof(full), "%s/new", t.lower);
	ck_assert_int_eq(lstat(full, &st), -1);
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

/* A seccomp filter that makes openat2 fail with ENOSYS, as on an old kernel. */
static int deny_openat2(void)
{
	struct sock_filter filter[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {.len = sizeof(filter) / sizeof(filter[0]), .filter = filter};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/* In a child: openat2 gone, the lower must fall back to the walk by itself. */
static int walk_without_openat2(void *arg)
{
	const struct tree *t = arg;
	struct mfs_lower *l;
	char why[512];
	int fd, err = 0;

	if (deny_openat2() < 0)
		return 10;
	if (mfs_lower_open(t->lower, &l) < 0)
		return 11;
	if (mfs_lower_uses_openat2(l))
		err = 12;
	else if (hostile_violation(l, t, why, sizeof(why))) {
		fprintf(stderr, "%s\n", why);
		err = 13;
	} else if ((fd = mfs_lower_openat(l, "dir/sub/deep", O_RDONLY)) < 0) {
		err = 14;
	} else {
		close(fd);
	}
	mfs_lower_close(l);
	return err;
}

START_TEST(without_openat2_the_walk_is_used_and_is_as_safe)
{
	struct tree t;

	make_tree(&t);
	ck_assert_int_eq(in_child(walk_without_openat2, &t, NULL), 0);
	remove_tree(&t);
}
END_TEST

/* ---- metadata ---- */

START_TEST(readlink_returns_every_target_exactly_as_stored)
{
	struct {
		const char *path, *target;
	} links[] = {
	    {"link_root", "/"},
	    {"link_up", ".."},
	    {"link_etc", "../../etc"},
	    {"link_rel_secret", "../outside/secret"},
	    {"link_outside", "../outside"},
	    {"link_proc", "/proc/self/root"},
	    {"loop_a", "loop_b"},
	    {"self", "self"},
	    {"mid", "dir"},
	    {"dir/up", ".."},
	    {"dangling", "nowhere/at/all"},
	};
	struct tree t;
	struct mfs_lower *l;
	char buf[PATH_MAX];
	ssize_t n;

	make_tree(&t);
	l = open_lower(&t, _i);
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		n = mfs_lower_readlink(l, links[i].path, buf, sizeof(buf));
		ck_assert_int_eq(n, (ssize_t)strlen(links[i].target));
		ck_assert_int_eq(memcmp(buf, links[i].target, (size_t)n), 0);
	}
	n = mfs_lower_readlink(l, "link_abs_secret", buf, sizeof(buf));
	ck_assert_int_eq(n, (ssize_t)strlen(t.secret));
	ck_assert_int_eq(memcmp(buf, t.secret, (size_t)n), 0);
	/* the buffer must hold the target and one byte more */
	ck_assert_int_eq(mfs_lower_readlink(l, "loop_a", buf, 6), -ERANGE);
	ck_assert_int_eq(mfs_lower_readlink(l, "loop_a", buf, 7), 6);
	ck_assert_int_eq(mfs_lower_readlink(l, "loop_a", buf, 0), -ERANGE);
	/* not symlinks, or a symlink on the way */
	ck_assert_int_eq(mfs_lower_readlink(l, "file", buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(mfs_lower_readlink(l, "dir", buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(mfs_lower_readlink(l, "", buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(mfs_lower_readlink(l, "nothing", buf, sizeof(buf)), -ENOENT);
	for (size_t i = 0; i < NTHROUGH; i++)
		ck_assert(is_refusal(mfs_lower_readlink(l, through_links[i], buf, sizeof(buf))));
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(lstat_describes_a_final_symlink_and_refuses_one_on_the_way)
{
	struct tree t;
	struct mfs_lower *l;
	struct stat st, want;
	char full[PATH_MAX];

	make_tree(&t);
	l = open_lower(&t, _i);
	for (size_t i = 0; i < NFINAL; i++) {
		snprintf(full, sizeof(full), "%s/%s", t.lower, final_links[i]);
		ck_assert_int_eq(lstat(full, &want), 0);
		ck_assert_int_eq(mfs_lower_lstat(l, final_links[i], &st), 0);
		ck_assert(S_ISLNK(st.st_mode));
		ck_assert_uint_eq(st.st_ino, want.st_ino);
		ck_assert_int_eq(st.st_size, want.st_size);
	}
	for (size_t i = 0; i < NTHROUGH; i++)
		ck_assert_msg(is_refusal(mfs_lower_lstat(l, through_links[i], &st)), "%s",
			      through_links[i]);
	ck_assert_int_eq(mfs_lower_lstat(l, "fifo", &st), 0);
	ck_assert(S_ISFIFO(st.st_mode));
	ck_assert_int_eq(mfs_lower_lstat(l, NEWLINE_NAME, &st), 0);
	ck_assert_int_eq(st.st_size, 17);
	ck_assert_int_eq(mfs_lower_lstat(l, "nothing", &st), -ENOENT);
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

/* ---- xattrs ---- */

static bool list_has(const char *list, ssize_t n, const char *name)
{
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1)
		if (strcmp(list + i, name) == 0)
			return true;
	return false;
}

START_TEST(xattrs_of_files_and_directories_are_read_as_stored)
{
	struct tree t;
	struct mfs_lower *l;
	char path[PATH_MAX], buf[256];
	ssize_t n;

	make_tree(&t);
	snprintf(path, sizeof(path), "%s/file", t.lower);
	ck_assert_int_eq(setxattr(path, "user.color", "blue", 4, 0), 0);
	ck_assert_int_eq(setxattr(path, "user.empty", "", 0, 0), 0);
	snprintf(path, sizeof(path), "%s/dir/sub", t.lower);
	ck_assert_int_eq(setxattr(path, "user.kind", "directory", 9, 0), 0);
	snprintf(path, sizeof(path), "%s/%s", t.lower, NEWLINE_NAME);
	ck_assert_int_eq(setxattr(path, "user.nl", "yes", 3, 0), 0);
	l = open_lower(&t, _i);

	n = mfs_lower_listxattr(l, "file", NULL, 0);
	ck_assert_int_ge(n, (ssize_t)sizeof("user.color") + (ssize_t)sizeof("user.empty"));
	ck_assert_int_eq(mfs_lower_listxattr(l, "file", buf, sizeof(buf)), n);
	ck_assert(list_has(buf, n, "user.color"));
	ck_assert(list_has(buf, n, "user.empty"));
	ck_assert_int_eq(mfs_lower_listxattr(l, "file", buf, 3), -ERANGE);

	ck_assert_int_eq(mfs_lower_getxattr(l, "file", "user.color", NULL, 0), 4);
	ck_assert_int_eq(mfs_lower_getxattr(l, "file", "user.color", buf, sizeof(buf)), 4);
	ck_assert_int_eq(memcmp(buf, "blue", 4), 0);
	ck_assert_int_eq(mfs_lower_getxattr(l, "file", "user.color", buf, 3), -ERANGE);
	ck_assert_int_eq(mfs_lower_getxattr(l, "file", "user.empty", buf, sizeof(buf)), 0);
	ck_assert_int_eq(mfs_lower_getxattr(l, "file", "user.none", buf, sizeof(buf)), -ENODATA);

	ck_assert_int_eq(mfs_lower_getxattr(l, "dir/sub", "user.kind", buf, sizeof(buf)), 9);
	ck_assert_int_eq(memcmp(buf, "directory", 9), 0);
	ck_assert_int_eq(mfs_lower_getxattr(l, NEWLINE_NAME, "user.nl", buf, sizeof(buf)), 3);
	/* the root's attributes are its own, not those of the temp dir above it */
	ck_assert_int_eq(mfs_lower_getxattr(l, "", "user.probe", buf, sizeof(buf)), -ENODATA);
	ck_assert_int_eq(mfs_lower_getxattr(l, "nothing", "user.x", buf, sizeof(buf)), -ENOENT);
	/* a FIFO is described, never opened: this would block otherwise */
	ck_assert_int_ge(mfs_lower_listxattr(l, "fifo", buf, sizeof(buf)), 0);
	ck_assert_int_eq(mfs_lower_getxattr(l, "fifo", "user.x", buf, sizeof(buf)), -ENODATA);
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(xattrs_of_a_symlink_are_its_own_never_its_targets)
{
	struct tree t;
	struct mfs_lower *l;
	char path[PATH_MAX], buf[256];
	ssize_t n;

	make_tree(&t);
	snprintf(path, sizeof(path), "%s/file", t.lower);
	ck_assert_int_eq(setxattr(path, "user.color", "blue", 4, 0), 0);
	ck_assert_int_eq(setxattr(path, "trusted.mark", "file", 4, 0) == 0, t.trusted_xattrs);
	l = open_lower(&t, _i);

	/* link_file -> file: the file's attributes do not show through the link */
	ck_assert_int_eq(mfs_lower_getxattr(l, "link_file", "user.color", buf, sizeof(buf)),
			 -ENODATA);
	n = mfs_lower_listxattr(l, "link_file", buf, sizeof(buf));
	ck_assert_int_ge(n, 0);
	ck_assert(!list_has(buf, n, "user.color"));
	ck_assert_int_eq(list_has(buf, n, "trusted.mark"), t.trusted_xattrs);
	/* nor do those of a file outside the tree */
	ck_assert_int_eq(mfs_lower_getxattr(l, "link_abs_secret", "user.secret", buf, sizeof(buf)),
			 -ENODATA);
	ck_assert_int_eq(mfs_lower_getxattr(l, "link_rel_secret", "user.secret", buf, sizeof(buf)),
			 -ENODATA);
	if (t.trusted_xattrs) {
		/* the link's own attribute, set by make_tree with lsetxattr */
		ck_assert_int_eq(
		    mfs_lower_getxattr(l, "link_file", "trusted.mark", buf, sizeof(buf)), 4);
		ck_assert_int_eq(memcmp(buf, "link", 4), 0);
		ck_assert_int_eq(mfs_lower_getxattr(l, "file", "trusted.mark", buf, sizeof(buf)),
				 4);
		ck_assert_int_eq(memcmp(buf, "file", 4), 0);
	}
	for (size_t i = 0; i < NTHROUGH; i++) {
		ck_assert(is_refusal(mfs_lower_listxattr(l, through_links[i], buf, sizeof(buf))));
		ck_assert(is_refusal(
		    mfs_lower_getxattr(l, through_links[i], "user.secret", buf, sizeof(buf))));
	}
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

/* ---- mappings ---- */

static void put_pattern(const char *path, size_t size)
{
	unsigned char *buf = malloc(size);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < size; i++)
		buf[i] = (unsigned char)(i * 7 + i / PAGE);
	ck_assert_int_eq(write(fd, buf, size), (ssize_t)size);
	close(fd);
	free(buf);
}

static unsigned char pattern_at(size_t i)
{
	return (unsigned char)(i * 7 + i / PAGE);
}

START_TEST(mapping_reads_back_the_bytes_of_the_file)
{
	const size_t size = 3 * PAGE + 1234;
	struct tree t;
	struct mfs_lower *l;
	struct mfs_lower_map m;
	char path[PATH_MAX];
	unsigned char *buf = malloc(size);
	struct stat st;

	make_tree(&t);
	snprintf(path, sizeof(path), "%s/dir/big", t.lower);
	put_pattern(path, size);
	ck_assert_int_eq(stat(path, &st), 0);
	l = open_lower(&t, _i);

	ck_assert_int_eq(mfs_lower_map(l, "dir/big", &m), 0);
	ck_assert_ptr_nonnull(m.addr);
	ck_assert_uint_eq(m.size_bytes, size);
	ck_assert_uint_eq(m.dev, st.st_dev);
	ck_assert_uint_eq(m.ino, st.st_ino);
	ck_assert_int_eq(m.mtime.tv_sec, st.st_mtim.tv_sec);
	ck_assert_int_eq(m.mtime.tv_nsec, st.st_mtim.tv_nsec);
	ck_assert_int_eq(mfs_lower_copy(buf, m.addr, size), 0);
	for (size_t i = 0; i < size; i++)
		if (buf[i] != pattern_at(i))
			ck_abort_msg("byte %zu differs", i);
	ck_assert_int_eq(mfs_lower_copy(buf, (const char *)m.addr + PAGE - 10, 20), 0);
	ck_assert_int_eq(buf[0], pattern_at(PAGE - 10));
	ck_assert_int_eq(buf[19], pattern_at(PAGE + 9));
	ck_assert_int_eq(mfs_lower_copy(buf, m.addr, 0), 0);
	mfs_lower_unmap(&m);
	ck_assert_ptr_null(m.addr);
	ck_assert_uint_eq(m.size_bytes, 0);
	mfs_lower_unmap(&m); /* twice: nothing */

	ck_assert_int_eq(mfs_lower_map(l, NEWLINE_NAME, &m), 0);
	ck_assert_uint_eq(m.size_bytes, 17);
	ck_assert_int_eq(memcmp(m.addr, "newline contents\n", 17), 0);
	mfs_lower_unmap(&m);

	ck_assert_int_eq(mfs_lower_map(l, "empty", &m), 0);
	ck_assert_ptr_null(m.addr);
	ck_assert_uint_eq(m.size_bytes, 0);
	ck_assert_uint_ne(m.ino, 0);
	mfs_lower_unmap(&m);
	free(buf);
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

START_TEST(mapping_refuses_directories_fifos_symlinks_and_missing_files)
{
	struct tree t;
	struct mfs_lower *l;
	struct mfs_lower_map m;

	make_tree(&t);
	l = open_lower(&t, _i);
	alarm(20); /* a FIFO waited on would hang here */
	ck_assert_int_eq(mfs_lower_map(l, "fifo", &m), -EINVAL);
	alarm(0);
	ck_assert_ptr_null(m.addr);
	ck_assert_int_eq(mfs_lower_map(l, "dir", &m), -EISDIR);
	ck_assert_int_eq(mfs_lower_map(l, "", &m), -EISDIR);
	ck_assert_int_eq(mfs_lower_map(l, "link_file", &m), -ELOOP);
	ck_assert_int_eq(mfs_lower_map(l, "nothing", &m), -ENOENT);
	for (size_t i = 0; i < NTHROUGH; i++)
		ck_assert(is_refusal(mfs_lower_map(l, through_links[i], &m)));
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

/* In a child, as nobody when root: map a file owned by someone else. */
static int map_as_nobody(void *arg)
{
	const struct tree *t = arg;
	struct mfs_lower *l;
	struct mfs_lower_map m;
	int err;

	if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0))
		return 99;
	if (mfs_lower_open(t->lower, &l) < 0)
		return 98;
	err = mfs_lower_map(l, "file", &m);
	if (err == 0 && (m.size_bytes != 13 || memcmp(m.addr, "hello, lower\n", 13) != 0))
		err = 97;
	mfs_lower_unmap(&m);
	mfs_lower_close(l);
	return err;
}

START_TEST(mapping_a_file_the_daemon_does_not_own_works_without_o_noatime)
{
	struct tree t;

	make_tree(&t);
	/* O_NOATIME is EPERM on another user's file: the map must retry without it */
	ck_assert_int_eq(in_child(map_as_nobody, &t, NULL), 0);
	remove_tree(&t);
}
END_TEST

static int truncate_to_a_page_and_100_bytes(void *path)
{
	return truncate(path, PAGE + 100) == 0 ? 0 : errno;
}

/* A mapped 4-page file, truncated underneath to one page and 100 bytes. */
struct truncated {
	struct tree t;
	struct mfs_lower *l;
	struct mfs_lower_map m;
	const unsigned char *p;
};

static void make_truncated(struct truncated *tr)
{
	char path[PATH_MAX];

	make_tree(&tr->t);
	snprintf(path, sizeof(path), "%s/victim", tr->t.lower);
	put_pattern(path, 4 * PAGE);
	tr->l = open_lower(&tr->t, RESOLVE_OPENAT2);
	ck_assert_int_eq(mfs_lower_map(tr->l, "victim", &tr->m), 0);
	ck_assert_uint_eq(tr->m.size_bytes, 4 * PAGE);
	tr->p = tr->m.addr;
	/* by another process, as a user of the lower tree would */
	ck_assert_int_eq(in_child(truncate_to_a_page_and_100_bytes, path, NULL), 0);
}

static void free_truncated(struct truncated *tr)
{
	mfs_lower_unmap(&tr->m);
	mfs_lower_close(tr->l);
	remove_tree(&tr->t);
}

START_TEST(copy_of_a_range_truncated_away_is_eio_and_the_process_survives)
{
	struct truncated tr;
	unsigned char buf[4 * PAGE];

	make_truncated(&tr);
	for (int round = 0; round < 100; round++) {
		/* wholly gone, partly gone, gone at the last byte */
		ck_assert_int_eq(mfs_lower_copy(buf, tr.p + 2 * PAGE, PAGE), -EIO);
		ck_assert_int_eq(mfs_lower_copy(buf, tr.p, 4 * PAGE), -EIO);
		ck_assert_int_eq(mfs_lower_copy(buf, tr.p + PAGE, 2 * PAGE), -EIO);
		ck_assert_int_eq(mfs_lower_copy(buf, tr.p + 3 * PAGE + PAGE - 1, 1), -EIO);
		/* what is left reads as before, and the page holding the new end too */
		memset(buf, 0, sizeof(buf));
		ck_assert_int_eq(mfs_lower_copy(buf, tr.p, PAGE + 100), 0);
		for (size_t i = 0; i < PAGE + 100; i++)
			if (buf[i] != pattern_at(i))
				ck_abort_msg("round %d byte %zu differs", round, i);
		ck_assert_int_eq(mfs_lower_copy(buf, tr.p + PAGE + 100, PAGE - 100), 0);
		ck_assert_int_eq(buf[0], 0); /* past the end, in the last page: zeros */
	}
	free_truncated(&tr);
}
END_TEST

struct copier {
	const unsigned char *p;
	int failures;
};

static void *copy_loop(void *arg)
{
	struct copier *c = arg;
	unsigned char buf[PAGE];

	for (int i = 0; i < 300; i++) {
		if (mfs_lower_copy(buf, c->p + 2 * PAGE + (size_t)(i % 7) * 512, 512) != -EIO)
			c->failures++;
		if (mfs_lower_copy(buf, c->p + (size_t)(i % 4) * 8, 512) != 0 ||
		    buf[0] != pattern_at((size_t)(i % 4) * 8))
			c->failures++;
	}
	return NULL;
}

START_TEST(truncation_faults_are_recovered_on_many_threads_at_once)
{
	enum { NTHREADS = 8 };
	struct truncated tr;
	pthread_t th[NTHREADS];
	struct copier c[NTHREADS];

	make_truncated(&tr);
	for (int i = 0; i < NTHREADS; i++) {
		c[i] = (struct copier){tr.p, 0};
		ck_assert_int_eq(pthread_create(&th[i], NULL, copy_loop, &c[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
		ck_assert_int_eq(c[i].failures, 0);
	}
	free_truncated(&tr);
}
END_TEST

/* valgrind preloads its own libraries into the program it runs. */
static bool under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");

	return preload && strstr(preload, "vgpreload");
}

/*
 * Run fn in a child that must die of SIGBUS; fn returns only on failure.
 * Under a sanitizer, its SIGBUS handler (ours passed the signal on to it)
 * reports and exits nonzero; valgrind turns a fatal SIGBUS from a truncated
 * mapping into SIGSEGV.
 */
static void assert_dies_of_sigbus(int (*fn)(void *), struct truncated *tr, const char *what)
{
	int status, result = in_child(fn, tr, &status);
	int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;

	ck_assert_msg(result == -1, "%s: survived (%d)", what, result);
	ck_assert_msg(sig == SIGBUS || (sig == SIGSEGV && under_valgrind()) ||
			  (WIFEXITED(status) && WEXITSTATUS(status) != 0),
		      "%s: status %#x", what, status);
}

/* The sanitizer's report of an expected crash is noise. */
static void silence_stderr(void)
{
	int null = open("/dev/null", O_WRONLY);

	dup2(null, STDERR_FILENO);
}

static int read_vanished_page_directly(void *arg)
{
	const struct truncated *tr = arg;
	unsigned char buf[8];

	if (mfs_lower_copy(buf, tr->p + 2 * PAGE, 8) != -EIO)
		return 1;
	silence_stderr();
	/* a plain read of a vanished page, outside mfs_lower_copy: a bug, must crash */
	*(volatile unsigned char *)buf = *(volatile const unsigned char *)(tr->p + 3 * PAGE);
	return 0;
}

static int fault_on_the_destination(void *arg)
{
	const struct truncated *tr = arg;
	unsigned char buf[8] = "12345678";
	char path[PATH_MAX];
	unsigned char *dst;
	int fd;

	if (mfs_lower_copy(buf, tr->p + 2 * PAGE, 8) != -EIO)
		return 1;
	/* a writable shared mapping whose file then shrinks to nothing */
	snprintf(path, sizeof(path), "%s/dst", tr->t.base);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 2 * PAGE) < 0)
		return 2;
	dst = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (dst == MAP_FAILED || ftruncate(fd, 0) < 0)
		return 3;
	silence_stderr();
	/* the fault is in the destination, not in the guarded source range */
	return 10 + mfs_lower_copy(dst + PAGE, buf, 8);
}

static int raise_sigbus(void *arg)
{
	const struct truncated *tr = arg;
	unsigned char buf[8];

	if (mfs_lower_copy(buf, tr->p, 8) != 0)
		return 1;
	silence_stderr();
	raise(SIGBUS); /* sent, not a fault */
	return 0;
}

START_TEST(a_sigbus_outside_a_guarded_copy_still_kills_the_process)
{
	struct truncated tr;

	make_truncated(&tr);
	assert_dies_of_sigbus(read_vanished_page_directly, &tr, "direct read");
	assert_dies_of_sigbus(fault_on_the_destination, &tr, "destination");
	assert_dies_of_sigbus(raise_sigbus, &tr, "raise");
	free_truncated(&tr);
}
END_TEST

/* ---- the root ---- */

START_TEST(a_missing_root_is_enoent_and_a_file_root_is_enotdir)
{
	struct tree t;
	struct mfs_lower *l = (struct mfs_lower *)&t;
	char path[PATH_MAX];

	make_tree(&t);
	snprintf(path, sizeof(path), "%s/nothing", t.base);
	ck_assert_int_eq(mfs_lower_open(path, &l), -ENOENT);
	ck_assert_ptr_null(l);
	ck_assert_int_eq(mfs_lower_open("", &l), -ENOENT);
	snprintf(path, sizeof(path), "%s/file", t.lower);
	ck_assert_int_eq(mfs_lower_open(path, &l), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/file/x", t.lower);
	ck_assert_int_eq(mfs_lower_open(path, &l), -ENOTDIR);
	snprintf(path, sizeof(path), "%s/fifo", t.lower);
	ck_assert_int_eq(mfs_lower_open(path, &l), -ENOTDIR);
	ck_assert_ptr_null(l);
	remove_tree(&t);
}
END_TEST

START_TEST(a_root_given_through_a_symlink_is_the_directory_it_names)
{
	struct tree t;
	struct mfs_lower *l;
	char path[PATH_MAX];
	struct stat st;

	make_tree(&t);
	/* the user chose this path: it is resolved normally, unlike those below it */
	snprintf(path, sizeof(path), "%s/mid", t.lower);
	ck_assert_int_eq(open_lower_with(path, _i, &l), 0);
	ck_assert_int_eq(mfs_lower_lstat(l, "sub/deep", &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(mfs_lower_lstat(l, "up", &st), 0);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert(is_refusal(mfs_lower_lstat(l, "up/file", &st)));
	mfs_lower_close(l);
	remove_tree(&t);
}
END_TEST

/*
 * In a child: without privileges (root becomes nobody; anyone else keeps
 * the modes as they are), open each of the 3 roots.  Returns a bitmask, bit
 * i set if root i opened; 100 + i if it failed with something but EACCES.
 */
static int open_unprivileged(void *arg)
{
	const char *const *roots = arg;
	int opened = 0;

	if (geteuid() == 0 && (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0))
		return 99;
	for (int i = 0; i < 3; i++) {
		struct mfs_lower *l;
		int err = mfs_lower_open(roots[i], &l);

		if (err == 0) {
			opened |= 1 << i;
			mfs_lower_close(l);
		} else if (err != -EACCES) {
			return 100 + i;
		}
	}
	return opened;
}

START_TEST(an_unlistable_or_unsearchable_root_is_eacces)
{
	struct tree t;
	char roots[3][PATH_MAX];
	const char *r[3] = {roots[0], roots[1], roots[2]};

	make_tree(&t);
	/* as root, tested as nobody (other bits); otherwise as the owner (owner bits) */
	put_dir(t.base, "noread", geteuid() == 0 ? 0711 : 0300);   /* searchable, not listable */
	put_dir(t.base, "nosearch", geteuid() == 0 ? 0744 : 0600); /* listable, not searchable */
	snprintf(roots[0], PATH_MAX, "%s/noread", t.base);
	snprintf(roots[1], PATH_MAX, "%s/nosearch", t.base);
	snprintf(roots[2], PATH_MAX, "%s", t.lower);			/* control: 0755 opens */
	ck_assert_int_eq(in_child(open_unprivileged, r, NULL), 1 << 2); /* only the control opens */
	chmod(roots[0], 0755); /* so that remove_tree can list it */
	remove_tree(&t);
}
END_TEST

/* ---- resources ---- */

/* Lines of /proc/self/maps that map a file whose path contains what. */
static int mappings_of(const char *what)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[PATH_MAX + 256];
	int n = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, what) != NULL;
	fclose(f);
	return n;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	ck_assert_ptr_nonnull(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

START_TEST(close_and_unmap_leave_no_descriptor_or_mapping_behind)
{
	struct tree t;
	char path[PATH_MAX], buf[PATH_MAX];
	int fds;

	make_tree(&t);
	snprintf(path, sizeof(path), "%s/big", t.lower);
	put_pattern(path, 5 * PAGE);
	fds = count_fds();
	ck_assert_int_eq(mappings_of(t.base), 0);
	for (int i = 0; i < 50; i++) {
		struct mfs_lower *l = open_lower(&t, _i);
		struct mfs_lower_map m;
		struct listing ls = {0};
		struct stat st;

		ck_assert_int_eq(mfs_lower_map(l, "big", &m), 0);
		ck_assert_int_eq(mfs_lower_copy(buf, m.addr, 100), 0);
		ck_assert_int_eq(mappings_of(t.base), 1); /* the check can see one */
		mfs_lower_unmap(&m);
		ck_assert_int_eq(mfs_lower_map(l, "fifo", &m), -EINVAL);
		ck_assert_int_eq(mfs_lower_map(l, "dir", &m), -EISDIR);
		ck_assert_int_eq(mfs_lower_list(l, "", collect, &ls), 0);
		ck_assert_int_eq(mfs_lower_list(l, "link_up", collect, &ls) < 0, 1);
		ck_assert_int_eq(mfs_lower_lstat(l, "dir/sub/deep", &st), 0);
		ck_assert(is_refusal(mfs_lower_lstat(l, "mid/sub/deep", &st)));
		ck_assert_int_ge(mfs_lower_readlink(l, "link_up", buf, sizeof(buf)), 0);
		ck_assert_int_ge(mfs_lower_listxattr(l, "file", buf, sizeof(buf)), 0);
		ck_assert_int_eq(mfs_lower_getxattr(l, "file", "user.x", buf, sizeof(buf)),
				 -ENODATA);
		mfs_lower_close(l);
	}
	ck_assert_int_eq(count_fds(), fds);
	ck_assert_int_eq(mappings_of(t.base), 0);
	remove_tree(&t);
}
END_TEST

static Suite *lower_suite(void)
{
	Suite *s = suite_create("lower");
	TCase *walk = tcase_create("walk");
	TCase *list = tcase_create("list");
	TCase *meta = tcase_create("metadata");
	TCase *map = tcase_create("map");
	TCase *root = tcase_create("root");

	/* loop index: RESOLVE_OPENAT2, then RESOLVE_WALK */
	tcase_add_loop_test(walk, opening_through_any_symlink_fails_and_never_reaches_outside, 0,
			    2);
	tcase_add_loop_test(walk, a_final_symlink_is_only_ever_opened_as_itself, 0, 2);
	tcase_add_loop_test(
	    walk, dot_dot_absolute_and_empty_components_are_einval_before_any_lookup, 0, 2);
	tcase_add_loop_test(walk, overlong_names_and_paths_are_enametoolong, 0, 2);
	tcase_add_loop_test(walk, the_root_is_named_by_empty_and_dot, 0, 2);
	tcase_add_loop_test(walk, plain_paths_open_what_they_name, 0, 2);
	tcase_add_loop_test(walk, write_flags_are_erofs_and_change_nothing, 0, 2);
	tcase_add_test(walk, without_openat2_the_walk_is_used_and_is_as_safe);
	suite_add_tcase(s, walk);

	tcase_add_loop_test(list, listing_shows_every_entry_once_with_symlinks_as_symlinks, 0, 2);
	tcase_add_loop_test(list, listing_through_any_symlink_fails_and_lists_nothing, 0, 2);
	tcase_add_loop_test(list, listing_stops_when_the_callback_says_so_and_returns_its_value, 0,
			    2);
	tcase_add_loop_test(list, an_entry_removed_during_listing_is_skipped, 0, 2);
	tcase_add_loop_test(list, listing_a_file_or_a_missing_directory_fails, 0, 2);
	suite_add_tcase(s, list);

	tcase_add_loop_test(meta, readlink_returns_every_target_exactly_as_stored, 0, 2);
	tcase_add_loop_test(meta, lstat_describes_a_final_symlink_and_refuses_one_on_the_way, 0, 2);
	tcase_add_loop_test(meta, xattrs_of_files_and_directories_are_read_as_stored, 0, 2);
	tcase_add_loop_test(meta, xattrs_of_a_symlink_are_its_own_never_its_targets, 0, 2);
	suite_add_tcase(s, meta);

	tcase_add_loop_test(map, mapping_reads_back_the_bytes_of_the_file, 0, 2);
	tcase_add_loop_test(map, mapping_refuses_directories_fifos_symlinks_and_missing_files, 0,
			    2);
	tcase_add_test(map, mapping_a_file_the_daemon_does_not_own_works_without_o_noatime);
	tcase_add_test(map, copy_of_a_range_truncated_away_is_eio_and_the_process_survives);
	tcase_add_test(map, truncation_faults_are_recovered_on_many_threads_at_once);
	tcase_add_test(map, a_sigbus_outside_a_guarded_copy_still_kills_the_process);
	suite_add_tcase(s, map);

	tcase_add_test(root, a_missing_root_is_enoent_and_a_file_root_is_enotdir);
	tcase_add_loop_test(root, a_root_given_through_a_symlink_is_the_directory_it_names, 0, 2);
	tcase_add_test(root, an_unlistable_or_unsearchable_root_is_eacces);
	tcase_add_loop_test(root, close_and_unmap_leave_no_descriptor_or_mapping_behind, 0, 2);
	suite_add_tcase(s, root);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(lower_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
