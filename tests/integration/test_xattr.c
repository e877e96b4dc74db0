/*
 * test_xattr.c — extended attributes: set/get/list/remove in the user.,
 * trusted. and security. namespaces, XATTR_CREATE / XATTR_REPLACE, size
 * probes, ERANGE / ENODATA / E2BIG and the name and value limits, xattrs on
 * directories, symlinks and special files, unknown namespaces, rename and
 * hard links, many attributes on one file.
 *
 * Every edge case also runs on a tmpfs directory (hx_tmpfs()) and the errno
 * is compared with Linux's.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "harness.h"

#define OK(expr)                                                                      \
	do {                                                                          \
		if ((long)(expr) < 0)                                                 \
			ck_abort_msg("%s failed: %s", #expr, strerrorname_np(errno)); \
	} while (0)

#define FAILS(expr, e)                                                                     \
	do {                                                                               \
		errno = 0;                                                                 \
		long r_ = (long)(expr);                                                    \
		int e_ = errno;                                                            \
		ck_assert_msg(r_ == -1 && e_ == (e), "%s: want -1/%s, got %ld/%s", #expr, \
			      strerrorname_np(e), r_, r_ == -1 ? strerrorname_np(e_) : "-"); \
	} while (0)

static const char *J(const char *base, const char *rel)
{
	static char bufs[16][PATH_MAX];
	static int n;
	char *b = bufs[n++ % 16];
	int len = snprintf(b, PATH_MAX, "%s/%s", base, rel);
	ck_assert_msg(len < PATH_MAX, "path too long: %s/%s", base, rel);
	return b;
}

static void touch(const char *path)
{
	hx_write_file(path, "contents", 8);
}

/* The value of name on path must be exactly want[0..len). */
static void check_value(const char *path, const char *name, const void *want, size_t len)
{
	char *buf = malloc(len + 16);
	ck_assert_ptr_nonnull(buf);
	ssize_t n = getxattr(path, name, buf, len + 16);
	ck_assert_msg(n == (ssize_t)len, "getxattr %s %s: %zd (%s), want %zu bytes", path, name, n,
		      n < 0 ? strerrorname_np(errno) : "-", len);
	ck_assert_msg(memcmp(buf, want, len) == 0, "getxattr %s %s: wrong bytes", path, name);
	free(buf);
}

/* Whether a listxattr result holds name; how many names it holds. */
static int list_has(const char *list, ssize_t len, const char *name)
{
	for (ssize_t off = 0; off < len; off += strlen(list + off) + 1)
		if (strcmp(list + off, name) == 0)
			return 1;
	return 0;
}

static int list_count(const char *list, ssize_t len)
{
	int n = 0;
	for (ssize_t off = 0; off < len; off += strlen(list + off) + 1)
		n++;
	return n;
}

/* Results of one case on a base directory, compared between memfs and tmpfs. */
#define MAX_RESULTS 16
struct results {
	int n;
	long v[MAX_RESULTS]; /* errno, or a size */
	const char *what[MAX_RESULTS];
};

static void rec(struct results *r, const char *what, long v)
{
	ck_assert_int_lt(r->n, MAX_RESULTS);
	r->what[r->n] = what;
	r->v[r->n++] = v;
}

/* A syscall's result recorded as -errno or its value. */
static long res(long rc)
{
	return rc < 0 ? -errno : rc;
}

typedef void (*case_fn)(const char *base, struct results *r);

static void same_as_tmpfs(case_fn fn)
{
	struct results m = {0}, t = {0};
	fn(hx_mnt.dir, &m);
	fn(hx_tmpfs(), &t);
	ck_assert_int_eq(m.n, t.n);
	for (int i = 0; i < m.n; i++) {
		if (m.v[i] == t.v[i])
			continue;
		ck_abort_msg("%s: memfs %ld%s%s, tmpfs %ld%s%s", m.what[i], m.v[i],
			     m.v[i] < 0 ? " " : "", m.v[i] < 0 ? strerrorname_np((int)-m.v[i]) : "",
			     t.v[i], t.v[i] < 0 ? " " : "",
			     t.v[i] < 0 ? strerrorname_np((int)-t.v[i]) : "");
	}
}

/* ---- tests ---- */

START_TEST(set_get_list_and_remove_work_in_user_trusted_and_security_namespaces)
{
	touch(P("f"));
	static const char *names[] = {"user.alpha", "trusted.beta", "security.gamma"};
	static const char *values[] = {"one", "two\0with nul", "three\xff"};
	static const size_t lens[] = {3, 12, 6};
	for (int i = 0; i < 3; i++)
		OK(setxattr(P("f"), names[i], values[i], lens[i], 0));
	for (int i = 0; i < 3; i++)
		check_value(P("f"), names[i], values[i], lens[i]);

	char list[1024];
	ssize_t n = listxattr(P("f"), list, sizeof list);
	ck_assert_int_eq(n, strlen("user.alpha") + strlen("trusted.beta") + strlen("security.gamma") + 3);
	ck_assert_int_eq(list_count(list, n), 3);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(list_has(list, n, names[i]), "%s not listed", names[i]);

	/* Replace with a longer and then a shorter value. */
	OK(setxattr(P("f"), "user.alpha", "a much longer value", 19, 0));
	check_value(P("f"), "user.alpha", "a much longer value", 19);
	OK(setxattr(P("f"), "user.alpha", "s", 1, 0));
	check_value(P("f"), "user.alpha", "s", 1);

	/* Through a file descriptor as well. */
	int fd = open(P("f"), O_RDONLY);
	OK(fd);
	OK(fsetxattr(fd, "user.byfd", "fd", 2, 0));
	char buf[16];
	ck_assert_int_eq(fgetxattr(fd, "user.byfd", buf, sizeof buf), 2);
	ck_assert_int_eq(flistxattr(fd, list, sizeof list), n + (ssize_t)strlen("user.byfd") + 1);
	OK(fremovexattr(fd, "user.byfd"));
	close(fd);

	for (int i = 0; i < 3; i++) {
		OK(removexattr(P("f"), names[i]));
		FAILS(getxattr(P("f"), names[i], buf, sizeof buf), ENODATA);
	}
	ck_assert_int_eq(listxattr(P("f"), list, sizeof list), 0);
	/* An empty value is a value. */
	OK(setxattr(P("f"), "user.empty", "", 0, 0));
	ck_assert_int_eq(getxattr(P("f"), "user.empty", buf, sizeof buf), 0);
	ck_assert_int_eq(getxattr(P("f"), "user.empty", NULL, 0), 0);
	ck_assert_int_eq(listxattr(P("f"), list, sizeof list), strlen("user.empty") + 1);
	/* The file's data is untouched by all this. */
	size_t len;
	char *data = hx_read_file(P("f"), &len);
	ck_assert_uint_eq(len, 8);
	free(data);
}
END_TEST

static void flags_case(const char *base, struct results *r)
{
	const char *f = J(base, "flags");
	touch(f);
	rec(r, "CREATE new", res(setxattr(f, "user.a", "1", 1, XATTR_CREATE)));
	rec(r, "CREATE existing", res(setxattr(f, "user.a", "2", 1, XATTR_CREATE)));
	rec(r, "REPLACE missing", res(setxattr(f, "user.b", "1", 1, XATTR_REPLACE)));
	rec(r, "REPLACE existing", res(setxattr(f, "user.a", "3", 1, XATTR_REPLACE)));
	rec(r, "CREATE|REPLACE existing",
	    res(setxattr(f, "user.a", "4", 1, XATTR_CREATE | XATTR_REPLACE)));
	rec(r, "CREATE|REPLACE missing",
	    res(setxattr(f, "user.c", "4", 1, XATTR_CREATE | XATTR_REPLACE)));
	rec(r, "bad flags", res(setxattr(f, "user.a", "5", 1, 4)));
	rec(r, "REPLACE trusted missing", res(setxattr(f, "trusted.x", "1", 1, XATTR_REPLACE)));
	char v;
	rec(r, "value after all", res(getxattr(f, "user.a", &v, 1)));
	rec(r, "the byte", v);
	rec(r, "user.b exists", res(getxattr(f, "user.b", NULL, 0)));
}

START_TEST(xattr_create_and_replace_flags_fail_with_eexist_and_enodata)
{
	touch(P("f"));
	OK(setxattr(P("f"), "user.a", "1", 1, XATTR_CREATE));
	FAILS(setxattr(P("f"), "user.a", "2", 1, XATTR_CREATE), EEXIST);
	check_value(P("f"), "user.a", "1", 1);
	FAILS(setxattr(P("f"), "user.b", "1", 1, XATTR_REPLACE), ENODATA);
	FAILS(getxattr(P("f"), "user.b", NULL, 0), ENODATA);
	OK(setxattr(P("f"), "user.a", "3", 1, XATTR_REPLACE));
	check_value(P("f"), "user.a", "3", 1);
	same_as_tmpfs(flags_case);
}
END_TEST

static void probe_case(const char *base, struct results *r)
{
	const char *f = J(base, "probe");
	touch(f);
	char big[300];
	memset(big, 'v', sizeof big);
	setxattr(f, "user.one", big, 300, 0);
	setxattr(f, "trusted.second", "xy", 2, 0);
	char buf[512];
	rec(r, "get probe", res(getxattr(f, "user.one", NULL, 0)));
	rec(r, "get exact", res(getxattr(f, "user.one", buf, 300)));
	rec(r, "get one short", res(getxattr(f, "user.one", buf, 299)));
	rec(r, "get tiny", res(getxattr(f, "user.one", buf, 1)));
	rec(r, "list probe", res(listxattr(f, NULL, 0)));
	rec(r, "list exact", res(listxattr(f, buf, 24)));
	rec(r, "list one short", res(listxattr(f, buf, 23)));
	rec(r, "list tiny", res(listxattr(f, buf, 1)));
	rec(r, "get missing probe", res(getxattr(f, "user.none", NULL, 0)));
	rec(r, "get missing", res(getxattr(f, "user.none", buf, sizeof buf)));
	rec(r, "remove missing", res(removexattr(f, "user.none")));
	rec(r, "remove missing trusted", res(removexattr(f, "trusted.none")));
	rec(r, "list of a bare file", res(listxattr(J(base, "."), NULL, 0)));
}

START_TEST(size_probes_give_sizes_and_small_buffers_give_erange)
{
	touch(P("f"));
	char value[300];
	memset(value, 'v', sizeof value);
	OK(setxattr(P("f"), "user.one", value, sizeof value, 0));
	OK(setxattr(P("f"), "trusted.second", "xy", 2, 0));
	char buf[512];
	ck_assert_int_eq(getxattr(P("f"), "user.one", NULL, 0), 300);
	ck_assert_int_eq(getxattr(P("f"), "user.one", buf, 300), 300);
	FAILS(getxattr(P("f"), "user.one", buf, 299), ERANGE);
	FAILS(getxattr(P("f"), "user.one", buf, 1), ERANGE);
	ssize_t need = strlen("user.one") + 1 + strlen("trusted.second") + 1;
	ck_assert_int_eq(listxattr(P("f"), NULL, 0), need);
	ck_assert_int_eq(listxattr(P("f"), buf, need), need);
	FAILS(listxattr(P("f"), buf, need - 1), ERANGE);
	FAILS(listxattr(P("f"), buf, 1), ERANGE);
	/* A file without attributes lists nothing; a size probe says 0. */
	touch(P("bare"));
	ck_assert_int_eq(listxattr(P("bare"), NULL, 0), 0);
	ck_assert_int_eq(listxattr(P("bare"), buf, sizeof buf), 0);
	same_as_tmpfs(probe_case);
}
END_TEST

START_TEST(missing_attributes_give_enodata)
{
	touch(P("f"));
	char buf[16];
	FAILS(getxattr(P("f"), "user.none", buf, sizeof buf), ENODATA);
	FAILS(getxattr(P("f"), "user.none", NULL, 0), ENODATA);
	FAILS(getxattr(P("f"), "trusted.none", buf, sizeof buf), ENODATA);
	FAILS(getxattr(P("f"), "security.none", buf, sizeof buf), ENODATA);
	FAILS(removexattr(P("f"), "user.none"), ENODATA);
	OK(setxattr(P("f"), "user.x", "1", 1, 0));
	OK(removexattr(P("f"), "user.x"));
	FAILS(removexattr(P("f"), "user.x"), ENODATA);
	/* Names differ by namespace and by case. */
	OK(setxattr(P("f"), "user.name", "1", 1, 0));
	FAILS(getxattr(P("f"), "trusted.name", buf, sizeof buf), ENODATA);
	FAILS(getxattr(P("f"), "user.Name", buf, sizeof buf), ENODATA);
	FAILS(getxattr(P("f"), "user.name2", buf, sizeof buf), ENODATA);
	FAILS(getxattr(P("f"), "user.nam", buf, sizeof buf), ENODATA);
	FAILS(getxattr(P("missing"), "user.name", buf, sizeof buf), ENOENT);
}
END_TEST

static void name_len_case(const char *base, struct results *r)
{
	const char *f = J(base, "names");
	touch(f);
	char name[300];
	for (int len = 254; len <= 257; len++) {
		memcpy(name, "user.", 5);
		memset(name + 5, 'n', len - 5);
		name[len] = '\0';
		rec(r, "set", res(setxattr(f, name, "v", 1, 0)));
		rec(r, "get", res(getxattr(f, name, NULL, 0)));
		rec(r, "remove", res(removexattr(f, name)));
	}
	rec(r, "empty name", res(setxattr(f, "", "v", 1, 0)));
}

START_TEST(names_up_to_255_bytes_work_and_256_give_erange)
{
	touch(P("f"));
	char name[300];
	memcpy(name, "user.", 5);
	memset(name + 5, 'x', 250);
	name[255] = '\0';
	OK(setxattr(P("f"), name, "v", 1, 0));
	check_value(P("f"), name, "v", 1);
	char list[512];
	ck_assert_int_eq(listxattr(P("f"), list, sizeof list), 256);
	ck_assert_str_eq(list, name);
	OK(removexattr(P("f"), name));
	name[255] = 'x';
	name[256] = '\0';
	FAILS(setxattr(P("f"), name, "v", 1, 0), ERANGE);
	FAILS(getxattr(P("f"), name, NULL, 0), ERANGE);
	FAILS(removexattr(P("f"), name), ERANGE);
	same_as_tmpfs(name_len_case);
}
END_TEST

static void value_size_case(const char *base, struct results *r)
{
	const char *f = J(base, "values");
	touch(f);
	char *v = malloc(65537);
	memset(v, 'z', 65537);
	rec(r, "user 65536", res(setxattr(f, "user.big", v, 65536, 0)));
	rec(r, "user 65537", res(setxattr(f, "user.big2", v, 65537, 0)));
	rec(r, "trusted 65536", res(setxattr(f, "trusted.big", v, 65536, 0)));
	rec(r, "trusted 65537", res(setxattr(f, "trusted.big2", v, 65537, 0)));
	rec(r, "get 65536", res(getxattr(f, "user.big", v, 65537)));
	rec(r, "probe 65536", res(getxattr(f, "user.big", NULL, 0)));
	rec(r, "get short", res(getxattr(f, "user.big", v, 65535)));
	free(v);
}

START_TEST(values_up_to_65536_bytes_work_and_65537_give_e2big)
{
	touch(P("f"));
	unsigned char *v = malloc(65537);
	for (int i = 0; i < 65537; i++)
		v[i] = (unsigned char)(i * 7 + i / 256);
	OK(setxattr(P("f"), "user.big", v, 65536, 0));
	check_value(P("f"), "user.big", v, 65536);
	ck_assert_int_eq(getxattr(P("f"), "user.big", NULL, 0), 65536);
	FAILS(setxattr(P("f"), "user.big2", v, 65537, 0), E2BIG);
	FAILS(getxattr(P("f"), "user.big2", NULL, 0), ENODATA);
	/* Replacing the big value with a small one and back. */
	OK(setxattr(P("f"), "user.big", v, 10, XATTR_REPLACE));
	check_value(P("f"), "user.big", v, 10);
	OK(setxattr(P("f"), "trusted.big", v + 1, 65536, 0));
	check_value(P("f"), "trusted.big", v + 1, 65536);
	free(v);
	same_as_tmpfs(value_size_case);
}
END_TEST

static void kinds_case(const char *base, struct results *r)
{
	const char *d = J(base, "kinds");
	mkdir(d, 0755);
	touch(J(d, "file"));
	symlink("file", J(d, "sym"));
	symlink("nowhere", J(d, "dangling"));
	mkfifo(J(d, "fifo"), 0644);
	mknod(J(d, "sock"), S_IFSOCK | 0644, 0);
	rec(r, "user on dir", res(setxattr(d, "user.d", "1", 1, 0)));
	rec(r, "lset user on symlink", res(lsetxattr(J(d, "sym"), "user.s", "1", 1, 0)));
	rec(r, "lset trusted on symlink", res(lsetxattr(J(d, "sym"), "trusted.s", "22", 2, 0)));
	rec(r, "lset security on symlink", res(lsetxattr(J(d, "sym"), "security.s", "1", 1, 0)));
	rec(r, "lget trusted on symlink", res(lgetxattr(J(d, "sym"), "trusted.s", NULL, 0)));
	rec(r, "llist symlink", res(llistxattr(J(d, "sym"), NULL, 0)));
	rec(r, "lget user on symlink", res(lgetxattr(J(d, "sym"), "user.s", NULL, 0)));
	rec(r, "set through symlink", res(setxattr(J(d, "sym"), "user.t", "1", 1, 0)));
	rec(r, "get on target", res(getxattr(J(d, "file"), "user.t", NULL, 0)));
	rec(r, "list target", res(listxattr(J(d, "file"), NULL, 0)));
	rec(r, "set through dangling", res(setxattr(J(d, "dangling"), "user.t", "1", 1, 0)));
	rec(r, "lset trusted on dangling",
	    res(lsetxattr(J(d, "dangling"), "trusted.t", "1", 1, 0)));
	rec(r, "user on fifo", res(setxattr(J(d, "fifo"), "user.f", "1", 1, 0)));
	rec(r, "trusted on fifo", res(setxattr(J(d, "fifo"), "trusted.f", "1", 1, 0)));
	rec(r, "user on socket", res(setxattr(J(d, "sock"), "user.f", "1", 1, 0)));
	rec(r, "lremove trusted on symlink", res(lremovexattr(J(d, "sym"), "trusted.s")));
}

START_TEST(directories_and_symlinks_carry_xattrs_but_not_user_ones_on_symlinks)
{
	OK(mkdir(P("d"), 0755));
	OK(setxattr(P("d"), "user.dir", "dv", 2, 0));
	check_value(P("d"), "user.dir", "dv", 2);
	touch(P("d/file"));
	OK(symlink("file", P("d/sym")));
	FAILS(lsetxattr(P("d/sym"), "user.s", "1", 1, 0), EPERM);
	OK(lsetxattr(P("d/sym"), "trusted.s", "sym", 3, 0));
	char buf[16];
	ck_assert_int_eq(lgetxattr(P("d/sym"), "trusted.s", buf, sizeof buf), 3);
	/* The link's attribute is not the target's, and the other way round. */
	FAILS(getxattr(P("d/file"), "trusted.s", buf, sizeof buf), ENODATA);
	OK(setxattr(P("d/sym"), "user.target", "t", 1, 0));
	check_value(P("d/file"), "user.target", "t", 1);
	FAILS(lgetxattr(P("d/sym"), "user.target", buf, sizeof buf), ENODATA);
	ck_assert_int_eq(llistxattr(P("d/sym"), buf, sizeof buf), strlen("trusted.s") + 1);
	OK(mkfifo(P("d/fifo"), 0644));
	FAILS(setxattr(P("d/fifo"), "user.f", "1", 1, 0), EPERM);
	/* The directory's attributes survive entries coming and going. */
	OK(unlink(P("d/fifo")));
	check_value(P("d"), "user.dir", "dv", 2);
	same_as_tmpfs(kinds_case);
}
END_TEST

static const char *const odd_names[] = {
	"foo.bar", "user.", "trusted.", "security.", "system.foo", "user", "User.a", "xattr",
	"os2.foo", ".user.a",
};

static void namespace_case(const char *base, struct results *r)
{
	const char *f = J(base, "ns");
	touch(f);
	for (size_t i = 0; i < sizeof odd_names / sizeof *odd_names; i++) {
		rec(r, odd_names[i], res(setxattr(f, odd_names[i], "1", 1, 0)));
	}
	rec(r, "list after", res(listxattr(f, NULL, 0)));
}

static void namespace_get_case(const char *base, struct results *r)
{
	const char *f = J(base, "nsget");
	touch(f);
	for (size_t i = 0; i < sizeof odd_names / sizeof *odd_names; i++)
		rec(r, odd_names[i], res(getxattr(f, odd_names[i], NULL, 0)));
}

static void namespace_remove_case(const char *base, struct results *r)
{
	const char *f = J(base, "nsrm");
	touch(f);
	for (size_t i = 0; i < sizeof odd_names / sizeof *odd_names; i++)
		rec(r, odd_names[i], res(removexattr(f, odd_names[i])));
}

START_TEST(unknown_namespaces_are_not_supported)
{
	touch(P("f"));
	char buf[16];
	FAILS(setxattr(P("f"), "foo.bar", "1", 1, 0), EOPNOTSUPP);
	FAILS(getxattr(P("f"), "foo.bar", buf, sizeof buf), EOPNOTSUPP);
	FAILS(removexattr(P("f"), "foo.bar"), EOPNOTSUPP);
	FAILS(setxattr(P("f"), "system.foo", "1", 1, 0), EOPNOTSUPP);
	ck_assert_int_eq(listxattr(P("f"), buf, sizeof buf), 0);
	same_as_tmpfs(namespace_case);
	same_as_tmpfs(namespace_get_case);
	same_as_tmpfs(namespace_remove_case);
}
END_TEST

START_TEST(xattrs_survive_rename_and_are_shared_by_hard_links)
{
	touch(P("f"));
	OK(setxattr(P("f"), "user.k", "kept", 4, 0));
	OK(setxattr(P("f"), "trusted.k", "too", 3, 0));
	OK(mkdir(P("d"), 0755));
	OK(rename(P("f"), P("d/g")));
	check_value(P("d/g"), "user.k", "kept", 4);
	check_value(P("d/g"), "trusted.k", "too", 3);

	/* Renaming over a file with attributes: the moved file's win. */
	touch(P("other"));
	OK(setxattr(P("other"), "user.other", "o", 1, 0));
	OK(rename(P("d/g"), P("other")));
	check_value(P("other"), "user.k", "kept", 4);
	char buf[64];
	FAILS(getxattr(P("other"), "user.other", buf, sizeof buf), ENODATA);

	/* A directory's attributes move with it. */
	OK(setxattr(P("d"), "user.dir", "dd", 2, 0));
	OK(rename(P("d"), P("e")));
	check_value(P("e"), "user.dir", "dd", 2);

	/* Hard links: one inode, one set of attributes. */
	OK(link(P("other"), P("e/hard")));
	OK(setxattr(P("e/hard"), "user.via_link", "L", 1, 0));
	check_value(P("other"), "user.via_link", "L", 1);
	OK(removexattr(P("other"), "user.k"));
	FAILS(getxattr(P("e/hard"), "user.k", buf, sizeof buf), ENODATA);
	ck_assert_int_eq(listxattr(P("e/hard"), NULL, 0), listxattr(P("other"), NULL, 0));
	/* ... and they stay with the last name. */
	OK(unlink(P("other")));
	check_value(P("e/hard"), "user.via_link", "L", 1);
	check_value(P("e/hard"), "trusted.k", "too", 3);

	/* An open, unlinked file keeps them too. */
	int fd = open(P("e/hard"), O_RDONLY);
	OK(fd);
	OK(unlink(P("e/hard")));
	ck_assert_int_eq(fgetxattr(fd, "user.via_link", buf, sizeof buf), 1);
	OK(fsetxattr(fd, "user.late", "x", 1, 0));
	ck_assert_int_eq(fgetxattr(fd, "user.late", buf, sizeof buf), 1);
	close(fd);
	/* A new file of the same name starts without attributes. */
	touch(P("e/hard"));
	ck_assert_int_eq(listxattr(P("e/hard"), NULL, 0), 0);
}
END_TEST

#define MANY 1000

START_TEST(many_xattrs_on_one_file_are_all_kept)
{
	touch(P("f"));
	char name[64], value[64];
	for (int i = 0; i < MANY; i++) {
		snprintf(name, sizeof name, "%s.attr%04d", i % 3 ? "user" : "trusted", i);
		int len = snprintf(value, sizeof value, "value-%d", i * 31);
		OK(setxattr(P("f"), name, value, len, XATTR_CREATE));
	}
	ssize_t need = listxattr(P("f"), NULL, 0);
	ck_assert_int_gt(need, 0);
	char *list = malloc(need);
	ck_assert_int_eq(listxattr(P("f"), list, need), need);
	ck_assert_int_eq(list_count(list, need), MANY);
	for (int i = 0; i < MANY; i++) {
		snprintf(name, sizeof name, "%s.attr%04d", i % 3 ? "user" : "trusted", i);
		ck_assert_msg(list_has(list, need, name), "%s not listed", name);
		int len = snprintf(value, sizeof value, "value-%d", i * 31);
		check_value(P("f"), name, value, len);
	}
	free(list);
	/* Remove every other one. */
	for (int i = 0; i < MANY; i += 2) {
		snprintf(name, sizeof name, "%s.attr%04d", i % 3 ? "user" : "trusted", i);
		OK(removexattr(P("f"), name));
	}
	need = listxattr(P("f"), NULL, 0);
	list = malloc(need);
	ck_assert_int_eq(listxattr(P("f"), list, need), need);
	ck_assert_int_eq(list_count(list, need), MANY / 2);
	for (int i = 0; i < MANY; i++) {
		snprintf(name, sizeof name, "%s.attr%04d", i % 3 ? "user" : "trusted", i);
		ck_assert_msg(list_has(list, need, name) == (i % 2), "%s: listed %d", name,
			      list_has(list, need, name));
	}
	free(list);
	/* The file still works. */
	size_t len;
	free(hx_read_file(P("f"), &len));
	ck_assert_uint_eq(len, 8);
}
END_TEST

START_TEST(values_are_kept_byte_for_byte)
{
	touch(P("f"));
	unsigned char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	OK(setxattr(P("f"), "user.bytes", all, sizeof all, 0));
	check_value(P("f"), "user.bytes", all, sizeof all);
	/* Names with unusual bytes. */
	OK(setxattr(P("f"), "user.with space", "1", 1, 0));
	OK(setxattr(P("f"), "user.\xc3\xa9t\xc3\xa9", "2", 1, 0));
	OK(setxattr(P("f"), "user.a/b", "3", 1, 0));
	check_value(P("f"), "user.with space", "1", 1);
	check_value(P("f"), "user.\xc3\xa9t\xc3\xa9", "2", 1);
	check_value(P("f"), "user.a/b", "3", 1);
	ck_assert_int_eq(listxattr(P("f"), NULL, 0),
			 strlen("user.bytes") + strlen("user.with space") +
				 strlen("user.\xc3\xa9t\xc3\xa9") + strlen("user.a/b") + 4);
}
END_TEST

static Suite *xattr_suite(void)
{
	Suite *s = suite_create("xattr");
	TCase *tc = tcase_create("xattr");
	tcase_add_checked_fixture(tc, hx_setup, hx_teardown);
	tcase_add_test(tc, set_get_list_and_remove_work_in_user_trusted_and_security_namespaces);
	tcase_add_test(tc, xattr_create_and_replace_flags_fail_with_eexist_and_enodata);
	tcase_add_test(tc, size_probes_give_sizes_and_small_buffers_give_erange);
	tcase_add_test(tc, missing_attributes_give_enodata);
	tcase_add_test(tc, names_up_to_255_bytes_work_and_256_give_erange);
	tcase_add_test(tc, values_up_to_65536_bytes_work_and_65537_give_e2big);
	tcase_add_test(tc, directories_and_symlinks_carry_xattrs_but_not_user_ones_on_symlinks);
	tcase_add_test(tc, unknown_namespaces_are_not_supported);
	tcase_add_test(tc, xattrs_survive_rename_and_are_shared_by_hard_links);
	tcase_add_test(tc, many_xattrs_on_one_file_are_all_kept);
	tcase_add_test(tc, values_are_kept_byte_for_byte);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return hx_run(xattr_suite());
}
