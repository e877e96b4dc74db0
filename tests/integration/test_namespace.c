/*
 * test_namespace.c — names in the tree: mknod, mkdir/rmdir, unlink,
 * symlink/readlink, link, rename (plain, replacing, NOREPLACE, EXCHANGE),
 * directory link counts, kernel lookup counting, 255-byte names.
 *
 * Where Linux's answer is not obvious, the same case runs on a tmpfs
 * directory (hx_tmpfs()) in the same test and the results are compared.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "harness.h"

/* ---- helpers ---- */

#define OK(expr)                                                                      \
	do {                                                                          \
		if ((long)(expr) < 0)                                                 \
			ck_abort_msg("%s failed: %s", #expr, strerrorname_np(errno)); \
	} while (0)

/* expr must fail with errno e. */
#define FAILS(expr, e)                                                                     \
	do {                                                                               \
		errno = 0;                                                                 \
		long r_ = (long)(expr);                                                    \
		int e_ = errno;                                                            \
		ck_assert_msg(r_ == -1 && e_ == (e), "%s: want -1/%s, got %ld/%s", #expr, \
			      strerrorname_np(e), r_, r_ == -1 ? strerrorname_np(e_) : "-"); \
	} while (0)

/* base + "/" + rel in one of 16 rotating buffers. */
static const char *J(const char *base, const char *rel)
{
	static char bufs[16][PATH_MAX];
	static int n;
	char *b = bufs[n++ % 16];
	int len = snprintf(b, PATH_MAX, "%s/%s", base, rel);
	ck_assert_msg(len < PATH_MAX, "path too long: %s/%s", base, rel);
	return b;
}

static struct stat st_of(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		ck_abort_msg("lstat %s: %s", path, strerrorname_np(errno));
	return st;
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

/* errno of a syscall result: 0 on success. */
static int err_of(long rc)
{
	return rc < 0 ? errno : 0;
}

static const char *ename(int e)
{
	return e ? strerrorname_np(e) : "success";
}

static void write_str(const char *path, const char *s)
{
	hx_write_file(path, s, strlen(s));
}

static void check_content(const char *path, const char *want)
{
	size_t len;
	char *got = hx_read_file(path, &len);
	ck_assert_msg(len == strlen(want) && memcmp(got, want, len) == 0,
		      "%s: want \"%s\", got %zu bytes \"%.*s\"", path, want, len, (int)len, got);
	free(got);
}

static void check_fd_content(int fd, const char *want)
{
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof buf, 0);
	ck_assert_msg(n == (ssize_t)strlen(want) && memcmp(buf, want, n) == 0,
		      "fd content: want \"%s\", got %zd bytes", want, n);
}

/* Run a case on memfs and on tmpfs; both must give the same errno. */
typedef int (*case_fn)(const char *base);
static void same_as_tmpfs(const char *what, case_fn fn)
{
	int got = fn(hx_mnt.dir);
	int want = fn(hx_tmpfs());
	ck_assert_msg(got == want, "%s: memfs gives %s, tmpfs gives %s", what, ename(got),
		      ename(want));
}

/* ---- mknod ---- */

START_TEST(mknod_creates_regular_fifo_socket_and_device_nodes)
{
	umask(022);
	OK(mknod(P("reg"), S_IFREG | 0640, 0));
	OK(mknod(P("fifo"), S_IFIFO | 0666, 0));
	OK(mknod(P("sock"), S_IFSOCK | 0600, 0));
	OK(mknod(P("chr"), S_IFCHR | 0644, makedev(1, 3)));
	OK(mknod(P("blk"), S_IFBLK | 0660, makedev(7, 42)));
	OK(mknod(P("bigdev"), S_IFCHR | 0600, makedev(4095, 1048575)));

	struct stat st = st_of(P("reg"));
	ck_assert_int_eq(st.st_mode, S_IFREG | 0640);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(st.st_nlink, 1);
	st = st_of(P("fifo"));
	ck_assert_int_eq(st.st_mode, S_IFIFO | 0644);
	st = st_of(P("sock"));
	ck_assert_int_eq(st.st_mode, S_IFSOCK | 0600);
	st = st_of(P("chr"));
	ck_assert_int_eq(st.st_mode, S_IFCHR | 0644);
	ck_assert_uint_eq(major(st.st_rdev), 1);
	ck_assert_uint_eq(minor(st.st_rdev), 3);
	st = st_of(P("blk"));
	ck_assert_int_eq(st.st_mode, S_IFBLK | 0640);
	ck_assert_uint_eq(major(st.st_rdev), 7);
	ck_assert_uint_eq(minor(st.st_rdev), 42);
	st = st_of(P("bigdev"));
	ck_assert_uint_eq(major(st.st_rdev), 4095);
	ck_assert_uint_eq(minor(st.st_rdev), 1048575);

	/* Distinct inodes. */
	ck_assert_uint_ne(st_of(P("reg")).st_ino, st_of(P("fifo")).st_ino);
	ck_assert_uint_ne(st_of(P("chr")).st_ino, st_of(P("blk")).st_ino);
}
END_TEST

START_TEST(mknod_regular_file_can_be_written_and_fifo_carries_data)
{
	OK(mknod(P("reg"), S_IFREG | 0644, 0));
	write_str(P("reg"), "hello");
	check_content(P("reg"), "hello");

	OK(mkfifo(P("fifo"), 0644));
	int fd = open(P("fifo"), O_RDWR | O_NONBLOCK);
	OK(fd);
	OK(write(fd, "abc", 3));
	char buf[8];
	ck_assert_int_eq(read(fd, buf, sizeof buf), 3);
	ck_assert(memcmp(buf, "abc", 3) == 0);
	close(fd);
	/* A FIFO's data never reaches the filesystem. */
	ck_assert_int_eq(st_of(P("fifo")).st_size, 0);
}
END_TEST

START_TEST(mknod_over_an_existing_name_fails_with_eexist)
{
	write_str(P("f"), "x");
	OK(mkdir(P("d"), 0755));
	FAILS(mknod(P("f"), S_IFIFO | 0644, 0), EEXIST);
	FAILS(mknod(P("d"), S_IFCHR | 0644, makedev(1, 3)), EEXIST);
	FAILS(mknod(P("missing/x"), S_IFIFO | 0644, 0), ENOENT);
	FAILS(mknod(P("f/x"), S_IFIFO | 0644, 0), ENOTDIR);
	check_content(P("f"), "x");
}
END_TEST

/* ---- mkdir, rmdir, unlink ---- */

START_TEST(mkdir_and_rmdir_follow_linux_errors)
{
	OK(mkdir(P("d"), 0755));
	struct stat st = st_of(P("d"));
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_int_eq(st.st_nlink, 2);
	FAILS(mkdir(P("d"), 0755), EEXIST);

	OK(mkdir(P("d/sub"), 0755));
	FAILS(rmdir(P("d")), ENOTEMPTY);
	OK(rmdir(P("d/sub")));

	write_str(P("d/file"), "x");
	FAILS(rmdir(P("d")), ENOTEMPTY);
	FAILS(rmdir(P("d/file")), ENOTDIR);
	FAILS(rmdir(P("d/file/x")), ENOTDIR);
	FAILS(mkdir(P("d/file/x"), 0755), ENOTDIR);
	FAILS(rmdir(P("d/missing")), ENOENT);
	FAILS(mkdir(P("missing/x"), 0755), ENOENT);
	OK(unlink(P("d/file")));

	/* Special nodes, symlinks: rmdir says ENOTDIR, rmdir of "." EINVAL. */
	OK(symlink("d", P("link")));
	FAILS(rmdir(P("link")), ENOTDIR);
	FAILS(rmdir(P("d/.")), EINVAL);

	OK(rmdir(P("d")));
	ck_assert(!exists(P("d")));
	FAILS(rmdir(P("d")), ENOENT);
	/* The name can be used again. */
	OK(mkdir(P("d"), 0700));
	ck_assert_int_eq(st_of(P("d")).st_mode & 07777, 0700);
}
END_TEST

START_TEST(unlink_removes_files_and_refuses_directories)
{
	write_str(P("f"), "x");
	OK(mkdir(P("d"), 0755));
	OK(mkfifo(P("fifo"), 0644));
	OK(symlink("d", P("sl")));

	FAILS(unlink(P("d")), EISDIR);
	ck_assert(exists(P("d")));
	FAILS(unlink(P("missing")), ENOENT);
	FAILS(unlink(P("f/x")), ENOTDIR);

	/* Unlinking a symlink to a directory removes the link, not the dir. */
	OK(unlink(P("sl")));
	ck_assert(!exists(P("sl")));
	ck_assert(exists(P("d")));
	OK(unlink(P("fifo")));
	OK(unlink(P("f")));
	ck_assert(!exists(P("f")));
	FAILS(unlink(P("f")), ENOENT);
	FAILS(open(P("f"), O_RDONLY), ENOENT);
}
END_TEST

/* ---- symlink, readlink ---- */

static void check_link(const char *path, const char *target)
{
	char buf[PATH_MAX + 1];
	ssize_t n = readlink(path, buf, sizeof buf);
	ck_assert_msg(n == (ssize_t)strlen(target) && memcmp(buf, target, n) == 0,
		      "readlink %s: want %zu bytes, got %zd", path, strlen(target), n);
	struct stat st = st_of(path);
	ck_assert(S_ISLNK(st.st_mode));
	ck_assert_int_eq(st.st_size, strlen(target));
	ck_assert_int_eq(st.st_mode & 07777, 0777);
}

START_TEST(symlink_target_is_kept_byte_for_byte)
{
	static const char *targets[] = {
		"a",
		"../../x//y/./z/",
		"/absolute/path with spaces/\t\n",
		"\x01\x7f\x80\xfe\xff high bytes \xc3\xa9",
		"trailing-slash/",
		"....",
	};
	char name[32];
	for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
		snprintf(name, sizeof name, "l%zu", i);
		OK(symlink(targets[i], P(name)));
		check_link(P(name), targets[i]);
	}

	/* A long target: 4095 bytes is the Linux maximum. */
	char *big = malloc(4096);
	memset(big, 'q', 4095);
	for (int i = 100; i < 4095; i += 100)
		big[i] = '/';
	big[4095] = '\0';
	OK(symlink(big, P("big")));
	check_link(P("big"), big);
	free(big);

	/* readlink into a short buffer truncates without a NUL. */
	char buf[4] = {'#', '#', '#', '#'};
	ck_assert_int_eq(readlink(P("l1"), buf, 3), 3);
	ck_assert(memcmp(buf, "../#", 4) == 0);
}
END_TEST

static int symlink_4096(const char *base)
{
	char *t = malloc(4097);
	memset(t, 'x', 4096);
	t[4096] = '\0';
	int e = err_of(symlink(t, J(base, "too_long")));
	free(t);
	return e;
}

static int symlink_empty(const char *base)
{
	return err_of(symlink("", J(base, "empty")));
}

static int readlink_of_file(const char *base)
{
	char buf[16];
	hx_write_file(J(base, "rl_file"), "x", 1);
	return err_of(readlink(J(base, "rl_file"), buf, sizeof buf));
}

START_TEST(symlink_errors_match_tmpfs)
{
	same_as_tmpfs("symlink target of 4096 bytes", symlink_4096);
	same_as_tmpfs("symlink with an empty target", symlink_empty);
	same_as_tmpfs("readlink of a regular file", readlink_of_file);
	OK(symlink("x", P("s")));
	FAILS(symlink("y", P("s")), EEXIST);
	check_link(P("s"), "x");
}
END_TEST

START_TEST(relative_absolute_and_dangling_symlinks_resolve_as_linux)
{
	OK(mkdir(P("d"), 0755));
	write_str(P("d/target"), "data");
	OK(symlink("target", P("d/rel")));
	OK(symlink("d/target", P("rel2")));
	OK(symlink("../d/target", P("d/up")));
	OK(symlink(P("d/target"), P("abs")));
	OK(symlink("d", P("dirlink")));
	check_content(P("d/rel"), "data");
	check_content(P("rel2"), "data");
	check_content(P("d/up"), "data");
	check_content(P("abs"), "data");
	check_content(P("dirlink/target"), "data");
	check_content(P("dirlink/up"), "data");

	/* stat follows, lstat does not. */
	struct stat st;
	OK(stat(P("abs"), &st));
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_size, 4);
	ck_assert_uint_eq(st.st_ino, st_of(P("d/target")).st_ino);

	/* Dangling: lstat works, stat and open say ENOENT; creating through it
	 * creates the target. */
	OK(symlink("nowhere", P("dangling")));
	check_link(P("dangling"), "nowhere");
	FAILS(stat(P("dangling"), &st), ENOENT);
	FAILS(open(P("dangling"), O_RDONLY), ENOENT);
	int fd = open(P("dangling"), O_WRONLY | O_CREAT, 0644);
	OK(fd);
	close(fd);
	ck_assert(exists(P("nowhere")));
	FAILS(open(P("dangling"), O_WRONLY | O_CREAT | O_EXCL, 0644), EEXIST);
	FAILS(open(P("abs"), O_RDONLY | O_NOFOLLOW), ELOOP);

	/* A loop. */
	OK(symlink("loop2", P("loop1")));
	OK(symlink("loop1", P("loop2")));
	FAILS(open(P("loop1"), O_RDONLY), ELOOP);

	/* Removing the target leaves the link dangling. */
	OK(unlink(P("d/target")));
	FAILS(open(P("d/rel"), O_RDONLY), ENOENT);
	check_link(P("d/rel"), "target");
}
END_TEST

/* ---- link ---- */

START_TEST(hard_links_share_inode_data_and_count_names)
{
	write_str(P("a"), "first");
	OK(mkdir(P("d"), 0755));
	OK(link(P("a"), P("d/b")));
	struct stat sa = st_of(P("a")), sb = st_of(P("d/b"));
	ck_assert_uint_eq(sa.st_ino, sb.st_ino);
	ck_assert_int_eq(sa.st_nlink, 2);
	ck_assert_int_eq(sb.st_nlink, 2);
	OK(link(P("d/b"), P("c")));
	ck_assert_int_eq(st_of(P("a")).st_nlink, 3);
	ck_assert_int_eq(st_of(P("d/b")).st_nlink, 3);

	/* Data written through one name is read through the others. */
	write_str(P("d/b"), "second version");
	check_content(P("a"), "second version");
	check_content(P("c"), "second version");
	/* Attributes are shared too. */
	OK(chmod(P("c"), 0600));
	ck_assert_int_eq(st_of(P("a")).st_mode & 07777, 0600);

	/* Unlinking names one by one keeps the data with the last one. */
	OK(unlink(P("a")));
	ck_assert_int_eq(st_of(P("d/b")).st_nlink, 2);
	ck_assert_int_eq(st_of(P("c")).st_nlink, 2);
	OK(unlink(P("d/b")));
	ck_assert_int_eq(st_of(P("c")).st_nlink, 1);
	ck_assert_uint_eq(st_of(P("c")).st_ino, sa.st_ino);
	check_content(P("c"), "second version");

	/* A link to a removed name. */
	FAILS(link(P("a"), P("x")), ENOENT);
}
END_TEST

START_TEST(link_refuses_directories_existing_names_and_missing_parents)
{
	OK(mkdir(P("d"), 0755));
	write_str(P("f"), "x");
	FAILS(link(P("d"), P("d2")), EPERM);
	ck_assert_int_eq(st_of(P("d")).st_nlink, 2);
	FAILS(link(P("f"), P("d")), EEXIST);
	FAILS(link(P("f"), P("f")), EEXIST);
	FAILS(link(P("f"), P("missing/f")), ENOENT);
	FAILS(link(P("f"), P("f/g")), ENOTDIR);
	ck_assert_int_eq(st_of(P("f")).st_nlink, 1);

	/* Hard links to symlinks and special files are allowed. */
	OK(symlink("f", P("sl")));
	OK(linkat(AT_FDCWD, P("sl"), AT_FDCWD, P("sl2"), 0));
	ck_assert_int_eq(st_of(P("sl2")).st_nlink, 2);
	check_link(P("sl2"), "f");
	OK(mkfifo(P("fifo"), 0644));
	OK(link(P("fifo"), P("fifo2")));
	ck_assert_int_eq(st_of(P("fifo")).st_nlink, 2);
	ck_assert(S_ISFIFO(st_of(P("fifo2")).st_mode));
}
END_TEST

START_TEST(link_of_an_open_unlinked_file_fails_with_enoent)
{
	/* Linux: linkat(AT_EMPTY_PATH) of an unlinked file is ENOENT. */
	write_str(P("f"), "x");
	int fd = open(P("f"), O_RDONLY);
	OK(fd);
	OK(unlink(P("f")));
	FAILS(linkat(fd, "", AT_FDCWD, P("g"), AT_EMPTY_PATH), ENOENT);
	close(fd);
}
END_TEST

/* ---- rename ---- */

START_TEST(rename_moves_a_file_and_keeps_its_inode)
{
	write_str(P("a"), "payload");
	ino_t ino = st_of(P("a")).st_ino;
	OK(mkdir(P("d"), 0755));
	OK(rename(P("a"), P("b")));
	ck_assert(!exists(P("a")));
	ck_assert_uint_eq(st_of(P("b")).st_ino, ino);
	check_content(P("b"), "payload");
	OK(rename(P("b"), P("d/c")));
	ck_assert(!exists(P("b")));
	ck_assert_uint_eq(st_of(P("d/c")).st_ino, ino);
	check_content(P("d/c"), "payload");
	ck_assert_int_eq(st_of(P("d/c")).st_nlink, 1);
	/* The old names are really gone (no stale lookup). */
	FAILS(open(P("a"), O_RDONLY), ENOENT);
	FAILS(open(P("b"), O_RDONLY), ENOENT);
}
END_TEST

START_TEST(rename_over_a_file_drops_its_link_and_open_fd_keeps_data)
{
	write_str(P("src"), "new data");
	write_str(P("dst"), "old data");
	OK(link(P("dst"), P("dst_link")));
	ino_t src_ino = st_of(P("src")).st_ino;
	ino_t dst_ino = st_of(P("dst")).st_ino;
	int fd = open(P("dst"), O_RDONLY);
	OK(fd);

	OK(rename(P("src"), P("dst")));
	ck_assert(!exists(P("src")));
	ck_assert_uint_eq(st_of(P("dst")).st_ino, src_ino);
	check_content(P("dst"), "new data");
	/* The replaced inode lost one name. */
	struct stat st = st_of(P("dst_link"));
	ck_assert_uint_eq(st.st_ino, dst_ino);
	ck_assert_int_eq(st.st_nlink, 1);
	OK(fstat(fd, &st));
	ck_assert_int_eq(st.st_nlink, 1);

	/* Replace it again: now it has no name, only the open fd. */
	write_str(P("other"), "third");
	OK(rename(P("other"), P("dst_link")));
	check_content(P("dst_link"), "third");
	OK(fstat(fd, &st));
	ck_assert_uint_eq(st.st_ino, dst_ino);
	ck_assert_int_eq(st.st_nlink, 0);
	check_fd_content(fd, "old data");
	close(fd);
	check_content(P("dst"), "new data");
}
END_TEST

START_TEST(rename_of_a_directory_over_an_empty_directory_replaces_it)
{
	OK(mkdir(P("a"), 0755));
	write_str(P("a/inside"), "x");
	OK(mkdir(P("b"), 0700));
	ino_t a_ino = st_of(P("a")).st_ino;
	nlink_t root_links = st_of(hx_mnt.dir).st_nlink;
	int fd = open(P("b"), O_RDONLY | O_DIRECTORY);
	OK(fd);

	OK(rename(P("a"), P("b")));
	ck_assert(!exists(P("a")));
	struct stat st = st_of(P("b"));
	ck_assert_uint_eq(st.st_ino, a_ino);
	ck_assert_int_eq(st.st_mode & 07777, 0755);
	check_content(P("b/inside"), "x");
	ck_assert_int_eq(st_of(hx_mnt.dir).st_nlink, root_links - 1);
	/* The replaced directory is dead: no links, nothing can be created. */
	OK(fstat(fd, &st));
	ck_assert_int_eq(st.st_nlink, 0);
	FAILS(openat(fd, "new", O_CREAT | O_WRONLY, 0644), ENOENT);
	close(fd);
}
END_TEST

static int rename_case_dirs(const char *base)
{
	/* directory onto a non-empty directory */
	mkdir(J(base, "rd1"), 0755);
	mkdir(J(base, "rd2"), 0755);
	hx_write_file(J(base, "rd2/f"), "x", 1);
	return err_of(rename(J(base, "rd1"), J(base, "rd2")));
}

static int rename_case_noreplace_dir(const char *base)
{
	mkdir(J(base, "nd1"), 0755);
	mkdir(J(base, "nd2"), 0755);
	return err_of(renameat2(AT_FDCWD, J(base, "nd1"), AT_FDCWD, J(base, "nd2"),
				RENAME_NOREPLACE));
}

static int rename_case_both_flags(const char *base)
{
	hx_write_file(J(base, "bf1"), "x", 1);
	hx_write_file(J(base, "bf2"), "x", 1);
	return err_of(renameat2(AT_FDCWD, J(base, "bf1"), AT_FDCWD, J(base, "bf2"),
				RENAME_NOREPLACE | RENAME_EXCHANGE));
}

static int rename_case_dot(const char *base)
{
	mkdir(J(base, "dot"), 0755);
	return err_of(rename(J(base, "dot/."), J(base, "dot2")));
}

static int rename_case_onto_dotdot(const char *base)
{
	mkdir(J(base, "dd"), 0755);
	mkdir(J(base, "dd/sub"), 0755);
	return err_of(rename(J(base, "dd/sub"), J(base, "dd/sub/..")));
}

START_TEST(rename_errors_match_linux)
{
	OK(mkdir(P("d"), 0755));
	OK(mkdir(P("d/sub"), 0755));
	OK(mkdir(P("d/sub/deeper"), 0755));
	OK(mkdir(P("full"), 0755));
	write_str(P("full/f"), "x");
	write_str(P("f"), "x");

	/* A directory onto a non-empty directory. */
	FAILS(rename(P("d"), P("full")), ENOTEMPTY);
	same_as_tmpfs("dir onto non-empty dir", rename_case_dirs);
	/* A directory onto a file, a file onto a directory. */
	FAILS(rename(P("d"), P("f")), ENOTDIR);
	FAILS(rename(P("f"), P("d")), EISDIR);
	/* A directory under itself. */
	FAILS(rename(P("d"), P("d/sub/x")), EINVAL);
	FAILS(rename(P("d"), P("d/x")), EINVAL);
	FAILS(rename(P("d/sub"), P("d/sub/deeper/x")), EINVAL);
	/* An ancestor onto a descendant (non-empty) and vice versa. */
	FAILS(rename(P("d/sub/deeper"), P("d")), ENOTEMPTY);
	same_as_tmpfs("rename of d/. ", rename_case_dot);
	same_as_tmpfs("rename onto sub/..", rename_case_onto_dotdot);
	/* ENOENT: source missing, target parent missing. */
	FAILS(rename(P("missing"), P("x")), ENOENT);
	FAILS(rename(P("f"), P("missing/x")), ENOENT);
	FAILS(rename(P("f"), P("f/x")), ENOTDIR);
	FAILS(renameat2(AT_FDCWD, P("f"), AT_FDCWD, P("missing"), RENAME_EXCHANGE), ENOENT);
	FAILS(renameat2(AT_FDCWD, P("missing"), AT_FDCWD, P("f"), RENAME_EXCHANGE), ENOENT);
	same_as_tmpfs("RENAME_NOREPLACE onto a dir", rename_case_noreplace_dir);
	same_as_tmpfs("RENAME_NOREPLACE|RENAME_EXCHANGE", rename_case_both_flags);

	/* Nothing moved. */
	ck_assert(exists(P("d/sub/deeper")));
	check_content(P("full/f"), "x");
	check_content(P("f"), "x");
	ck_assert(!exists(P("x")));
}
END_TEST

START_TEST(rename_to_itself_or_between_hard_links_is_a_successful_no_op)
{
	write_str(P("f"), "data");
	ino_t ino = st_of(P("f")).st_ino;
	OK(rename(P("f"), P("f")));
	ck_assert_uint_eq(st_of(P("f")).st_ino, ino);
	check_content(P("f"), "data");

	OK(mkdir(P("d"), 0755));
	OK(rename(P("d"), P("d")));
	ck_assert(exists(P("d")));

	OK(link(P("f"), P("d/g")));
	OK(rename(P("f"), P("d/g")));
	/* POSIX: both names stay. */
	ck_assert(exists(P("f")));
	ck_assert(exists(P("d/g")));
	ck_assert_int_eq(st_of(P("f")).st_nlink, 2);
	ck_assert_int_eq(st_of(P("d/g")).st_nlink, 2);
	check_content(P("d/g"), "data");
	OK(rename(P("d/g"), P("f")));
	ck_assert(exists(P("d/g")));
	ck_assert_int_eq(st_of(P("f")).st_nlink, 2);

	/* The same with RENAME_NOREPLACE: the name exists, so EEXIST. */
	FAILS(renameat2(AT_FDCWD, P("f"), AT_FDCWD, P("f"), RENAME_NOREPLACE), EEXIST);
	/* RENAME_EXCHANGE of a name with itself succeeds. */
	OK(renameat2(AT_FDCWD, P("f"), AT_FDCWD, P("f"), RENAME_EXCHANGE));
	check_content(P("f"), "data");
}
END_TEST

START_TEST(rename_noreplace_refuses_existing_names_and_moves_to_new_ones)
{
	write_str(P("a"), "A");
	write_str(P("b"), "B");
	OK(mkdir(P("d"), 0755));
	FAILS(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("b"), RENAME_NOREPLACE), EEXIST);
	FAILS(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("d"), RENAME_NOREPLACE), EEXIST);
	check_content(P("a"), "A");
	check_content(P("b"), "B");
	OK(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("d/c"), RENAME_NOREPLACE));
	ck_assert(!exists(P("a")));
	check_content(P("d/c"), "A");
}
END_TEST

START_TEST(rename_exchange_swaps_two_files)
{
	write_str(P("a"), "content of a");
	OK(mkdir(P("d"), 0755));
	write_str(P("d/b"), "bbb");
	ino_t ia = st_of(P("a")).st_ino, ib = st_of(P("d/b")).st_ino;
	OK(renameat2(AT_FDCWD, P("a"), AT_FDCWD, P("d/b"), RENAME_EXCHANGE));
	ck_assert_uint_eq(st_of(P("a")).st_ino, ib);
	ck_assert_uint_eq(st_of(P("d/b")).st_ino, ia);
	check_content(P("a"), "bbb");
	check_content(P("d/b"), "content of a");
	ck_assert_int_eq(st_of(P("a")).st_nlink, 1);
	ck_assert_int_eq(st_of(P("d/b")).st_nlink, 1);
}
END_TEST

START_TEST(rename_exchange_of_a_file_and_a_directory_moves_link_counts)
{
	OK(mkdir(P("p1"), 0755));
	OK(mkdir(P("p2"), 0755));
	OK(mkdir(P("p1/dir"), 0755));
	write_str(P("p1/dir/inside"), "in");
	write_str(P("p2/file"), "file");
	ino_t p1 = st_of(P("p1")).st_ino, p2 = st_of(P("p2")).st_ino;
	ck_assert_int_eq(st_of(P("p1")).st_nlink, 3);
	ck_assert_int_eq(st_of(P("p2")).st_nlink, 2);

	OK(renameat2(AT_FDCWD, P("p1/dir"), AT_FDCWD, P("p2/file"), RENAME_EXCHANGE));
	ck_assert(S_ISREG(st_of(P("p1/dir")).st_mode));
	ck_assert(S_ISDIR(st_of(P("p2/file")).st_mode));
	check_content(P("p1/dir"), "file");
	check_content(P("p2/file/inside"), "in");
	ck_assert_int_eq(st_of(P("p1")).st_nlink, 2);
	ck_assert_int_eq(st_of(P("p2")).st_nlink, 3);
	/* ".." of the moved directory is its new parent. */
	ck_assert_uint_eq(st_of(P("p2/file/..")).st_ino, p2);
	ck_assert_uint_ne(st_of(P("p2/file/..")).st_ino, p1);
	/* Removable afterwards (counts consistent). */
	OK(unlink(P("p2/file/inside")));
	OK(rmdir(P("p2/file")));
	ck_assert_int_eq(st_of(P("p2")).st_nlink, 2);
	OK(unlink(P("p1/dir")));
	OK(rmdir(P("p1")));
	OK(rmdir(P("p2")));
}
END_TEST

START_TEST(rename_exchange_of_directories_in_different_parents_updates_dotdot)
{
	OK(mkdir(P("p1"), 0755));
	OK(mkdir(P("p2"), 0755));
	OK(mkdir(P("p1/x"), 0755));
	OK(mkdir(P("p1/x/xsub"), 0755));
	OK(mkdir(P("p2/y"), 0755));
	ino_t p1 = st_of(P("p1")).st_ino, p2 = st_of(P("p2")).st_ino;
	ino_t x = st_of(P("p1/x")).st_ino, y = st_of(P("p2/y")).st_ino;
	ck_assert_uint_eq(st_of(P("p1/x/..")).st_ino, p1);

	OK(renameat2(AT_FDCWD, P("p1/x"), AT_FDCWD, P("p2/y"), RENAME_EXCHANGE));
	ck_assert_uint_eq(st_of(P("p1/x")).st_ino, y);
	ck_assert_uint_eq(st_of(P("p2/y")).st_ino, x);
	ck_assert_uint_eq(st_of(P("p1/x/..")).st_ino, p1);
	ck_assert_uint_eq(st_of(P("p2/y/..")).st_ino, p2);
	ck_assert_uint_eq(st_of(P("p2/y/xsub/../..")).st_ino, p2);
	/* Each parent still has one subdirectory; the moved ones keep theirs. */
	ck_assert_int_eq(st_of(P("p1")).st_nlink, 3);
	ck_assert_int_eq(st_of(P("p2")).st_nlink, 3);
	ck_assert_int_eq(st_of(P("p2/y")).st_nlink, 3);
	ck_assert_int_eq(st_of(P("p1/x")).st_nlink, 2);

	/* Through a fresh lookup, too: rename a parent and look again. */
	OK(rename(P("p2"), P("p3")));
	ck_assert_uint_eq(st_of(P("p3/y/..")).st_ino, p2);
	/* A directory cannot be exchanged with its own ancestor. */
	FAILS(renameat2(AT_FDCWD, P("p3"), AT_FDCWD, P("p3/y/xsub"), RENAME_EXCHANGE), EINVAL);
	FAILS(renameat2(AT_FDCWD, P("p3/y/xsub"), AT_FDCWD, P("p3"), RENAME_EXCHANGE), EINVAL);
}
END_TEST

START_TEST(rename_of_a_directory_to_another_parent_updates_dotdot_and_counts)
{
	OK(mkdir(P("a"), 0755));
	OK(mkdir(P("b"), 0755));
	OK(mkdir(P("a/moving"), 0755));
	OK(mkdir(P("a/moving/child"), 0755));
	ino_t b = st_of(P("b")).st_ino;
	OK(rename(P("a/moving"), P("b/moved")));
	ck_assert_int_eq(st_of(P("a")).st_nlink, 2);
	ck_assert_int_eq(st_of(P("b")).st_nlink, 3);
	ck_assert_int_eq(st_of(P("b/moved")).st_nlink, 3);
	ck_assert_uint_eq(st_of(P("b/moved/..")).st_ino, b);
	ck_assert_uint_eq(st_of(P("b/moved/child/../..")).st_ino, b);
	/* The old parent is empty now. */
	OK(rmdir(P("a")));
}
END_TEST

START_TEST(directory_nlink_is_two_plus_subdirectories)
{
	nlink_t root = st_of(hx_mnt.dir).st_nlink;
	OK(mkdir(P("d"), 0755));
	ck_assert_int_eq(st_of(hx_mnt.dir).st_nlink, root + 1);
	ck_assert_int_eq(st_of(P("d")).st_nlink, 2);
	for (int i = 0; i < 5; i++) {
		char n[16];
		snprintf(n, sizeof n, "d/s%d", i);
		OK(mkdir(P(n), 0755));
		ck_assert_int_eq(st_of(P("d")).st_nlink, 3 + i);
	}
	/* Non-directories do not count. */
	write_str(P("d/file"), "x");
	OK(mkfifo(P("d/fifo"), 0644));
	OK(symlink("s0", P("d/sl")));
	ck_assert_int_eq(st_of(P("d")).st_nlink, 7);

	OK(rmdir(P("d/s0")));
	ck_assert_int_eq(st_of(P("d")).st_nlink, 6);
	/* Rename within the directory: unchanged. */
	OK(rename(P("d/s1"), P("d/s1b")));
	ck_assert_int_eq(st_of(P("d")).st_nlink, 6);
	/* Rename over an empty directory in the same parent: one fewer. */
	OK(rename(P("d/s1b"), P("d/s2")));
	ck_assert_int_eq(st_of(P("d")).st_nlink, 5);
	/* Rename out of the directory. */
	OK(rename(P("d/s3"), P("s3")));
	ck_assert_int_eq(st_of(P("d")).st_nlink, 4);
	ck_assert_int_eq(st_of(hx_mnt.dir).st_nlink, root + 2);
	/* Rename a file over nothing: unchanged. */
	OK(rename(P("d/file"), P("file")));
	ck_assert_int_eq(st_of(P("d")).st_nlink, 4);
	/* Through an open directory descriptor as well (fstat). */
	int fd = open(P("d"), O_RDONLY | O_DIRECTORY);
	OK(fd);
	struct stat st;
	OK(mkdirat(fd, "new", 0755));
	OK(fstat(fd, &st));
	ck_assert_int_eq(st.st_nlink, 5);
	close(fd);
}
END_TEST

/* ---- lookup counting ---- */

START_TEST(lookups_of_unlinked_open_files_and_churn_leak_nothing)
{
	/* Inode leaks would exhaust a small inode limit; the daemon's clean,
	 * leak-free exit under ASan at unmount is checked by hx_umount. */
	struct hx_mount m;
	hx_mount(&m, "nr_inodes=200");
	const char *base = m.dir;

	hx_write_file(J(base, "f"), "kept", 4);
	OK(link(J(base, "f"), J(base, "other")));
	hx_write_file(J(base, "g"), "g", 1);
	int fd = open(J(base, "f"), O_RDWR);
	OK(fd);
	OK(unlink(J(base, "f")));
	struct stat st;
	FAILS(stat(J(base, "f"), &st), ENOENT);
	ck_assert_int_eq(st_of(J(base, "other")).st_nlink, 1);
	ck_assert_int_eq(st_of(J(base, "g")).st_size, 1);
	OK(unlink(J(base, "other")));
	OK(fstat(fd, &st));
	ck_assert_int_eq(st.st_nlink, 0);
	ck_assert_int_eq(pwrite(fd, "more", 4, 4), 4);
	check_fd_content(fd, "keptmore");
	close(fd);

	/* 40 rounds of 100 files, far more than nr_inodes allows at once. */
	char name[64];
	for (int round = 0; round < 40; round++) {
		int open_fds[10];
		for (int i = 0; i < 100; i++) {
			snprintf(name, sizeof name, "churn_%d_%d", round, i);
			int f = open(J(base, name), O_CREAT | O_RDWR, 0644);
			if (f < 0)
				ck_abort_msg("round %d file %d: %s", round, i, strerrorname_np(errno));
			if (i < 10)
				open_fds[i] = f; /* kept open across its unlink */
			else
				close(f);
			OK(stat(J(base, name), &st));
		}
		if (round % 2)
			OK(mkdir(J(base, "dir"), 0755));
		for (int i = 0; i < 100; i++) {
			snprintf(name, sizeof name, "churn_%d_%d", round, i);
			if (round % 2 && i % 3 == 0) {
				char to[80];
				snprintf(to, sizeof to, "dir/%s", name);
				OK(rename(J(base, name), J(base, to)));
				OK(unlink(J(base, to)));
			} else {
				OK(unlink(J(base, name)));
			}
			FAILS(stat(J(base, name), &st), ENOENT);
		}
		if (round % 2)
			OK(rmdir(J(base, "dir")));
		for (int i = 0; i < 10; i++) {
			ck_assert_int_eq(write(open_fds[i], "z", 1), 1);
			close(open_fds[i]);
		}
	}
	hx_umount(&m);
}
END_TEST

/* ---- long names ---- */

static int name_256_case(const char *base)
{
	char n[257];
	memset(n, 'n', 256);
	n[256] = '\0';
	int e1 = err_of(open(J(base, n), O_CREAT | O_WRONLY, 0644));
	int e2 = err_of(mkdir(J(base, n), 0755));
	struct stat st;
	int e3 = err_of(lstat(J(base, n), &st));
	return e1 != e2 || e2 != e3 ? -1 : e1;
}

START_TEST(names_of_255_bytes_work_and_256_are_too_long)
{
	char n255[256], other[256], n256[257];
	memset(n255, 'a', 255);
	n255[255] = '\0';
	memset(other, 'b', 255);
	other[254] = '\xff';
	other[255] = '\0';
	memset(n256, 'c', 256);
	n256[256] = '\0';

	write_str(P(n255), "long");
	check_content(P(n255), "long");
	OK(mkdir(P(other), 0755));
	char path[600];
	snprintf(path, sizeof path, "%s/%s", other, n255);
	OK(symlink(n255, P(path)));
	check_link(P(path), n255);
	OK(rename(P(n255), P(path)));
	ck_assert(S_ISREG(st_of(P(path)).st_mode));
	OK(link(P(path), P(n255)));
	ck_assert_int_eq(st_of(P(n255)).st_nlink, 2);

	/* 256 bytes: ENAMETOOLONG everywhere, like tmpfs. */
	FAILS(open(P(n256), O_CREAT | O_WRONLY, 0644), ENAMETOOLONG);
	FAILS(mkdir(P(n256), 0755), ENAMETOOLONG);
	FAILS(mknod(P(n256), S_IFIFO | 0644, 0), ENAMETOOLONG);
	FAILS(symlink("x", P(n256)), ENAMETOOLONG);
	FAILS(link(P(n255), P(n256)), ENAMETOOLONG);
	FAILS(rename(P(n255), P(n256)), ENAMETOOLONG);
	struct stat st;
	FAILS(lstat(P(n256), &st), ENAMETOOLONG);
	same_as_tmpfs("256-byte names", name_256_case);
	ck_assert(exists(P(n255)));
}
END_TEST

static Suite *namespace_suite(void)
{
	Suite *s = suite_create("namespace");
	TCase *tc = tcase_create("namespace");
	tcase_add_checked_fixture(tc, hx_setup, hx_teardown);
	tcase_add_test(tc, mknod_creates_regular_fifo_socket_and_device_nodes);
	tcase_add_test(tc, mknod_regular_file_can_be_written_and_fifo_carries_data);
	tcase_add_test(tc, mknod_over_an_existing_name_fails_with_eexist);
	tcase_add_test(tc, mkdir_and_rmdir_follow_linux_errors);
	tcase_add_test(tc, unlink_removes_files_and_refuses_directories);
	tcase_add_test(tc, symlink_target_is_kept_byte_for_byte);
	tcase_add_test(tc, symlink_errors_match_tmpfs);
	tcase_add_test(tc, relative_absolute_and_dangling_symlinks_resolve_as_linux);
	tcase_add_test(tc, hard_links_share_inode_data_and_count_names);
	tcase_add_test(tc, link_refuses_directories_existing_names_and_missing_parents);
	tcase_add_test(tc, link_of_an_open_unlinked_file_fails_with_enoent);
	tcase_add_test(tc, rename_moves_a_file_and_keeps_its_inode);
	tcase_add_test(tc, rename_over_a_file_drops_its_link_and_open_fd_keeps_data);
	tcase_add_test(tc, rename_of_a_directory_over_an_empty_directory_replaces_it);
	tcase_add_test(tc, rename_errors_match_linux);
	tcase_add_test(tc, rename_to_itself_or_between_hard_links_is_a_successful_no_op);
	tcase_add_test(tc, rename_noreplace_refuses_existing_names_and_moves_to_new_ones);
	tcase_add_test(tc, rename_exchange_swaps_two_files);
	tcase_add_test(tc, rename_exchange_of_a_file_and_a_directory_moves_link_counts);
	tcase_add_test(tc, rename_exchange_of_directories_in_different_parents_updates_dotdot);
	tcase_add_test(tc, rename_of_a_directory_to_another_parent_updates_dotdot_and_counts);
	tcase_add_test(tc, directory_nlink_is_two_plus_subdirectories);
	tcase_add_test(tc, lookups_of_unlinked_open_files_and_churn_leak_nothing);
	tcase_add_test(tc, names_of_255_bytes_work_and_256_are_too_long);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return hx_run(namespace_suite());
}
