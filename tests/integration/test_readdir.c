/*
 * test_readdir.c — directory listings: "." and "..", d_ino and d_type, big
 * directories, listings that stay correct while the directory changes
 * between getdents calls, telldir/seekdir/rewinddir, empty and removed
 * directories.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "harness.h"

#define OK(expr)                                                                      \
	do {                                                                          \
		if ((long)(expr) < 0)                                                 \
			ck_abort_msg("%s failed: %s", #expr, strerrorname_np(errno)); \
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

static struct stat st_of(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		ck_abort_msg("lstat %s: %s", path, strerrorname_np(errno));
	return st;
}

static void touch(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	if (fd < 0)
		ck_abort_msg("create %s: %s", path, strerrorname_np(errno));
	close(fd);
}

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/* A listing: names with their d_ino and d_type, in order. */
struct entry {
	char name[256];
	ino_t ino;
	unsigned char type;
};
struct listing {
	struct entry *e;
	size_t n, cap;
};

static void add(struct listing *l, const char *name, ino_t ino, unsigned char type)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 64;
		l->e = realloc(l->e, l->cap * sizeof *l->e);
		ck_assert_ptr_nonnull(l->e);
	}
	snprintf(l->e[l->n].name, sizeof l->e[l->n].name, "%s", name);
	l->e[l->n].ino = ino;
	l->e[l->n].type = type;
	l->n++;
}

static size_t count(const struct listing *l, const char *name)
{
	size_t c = 0;
	for (size_t i = 0; i < l->n; i++)
		c += strcmp(l->e[i].name, name) == 0;
	return c;
}

static const struct entry *find(const struct listing *l, const char *name)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->e[i].name, name) == 0)
			return &l->e[i];
	return NULL;
}

/* readdir(3) over a whole directory stream from where it is. */
static struct listing read_rest(DIR *d)
{
	struct listing l = {0};
	struct dirent *de;
	errno = 0;
	while ((de = readdir(d)) != NULL)
		add(&l, de->d_name, de->d_ino, de->d_type);
	ck_assert_msg(errno == 0, "readdir: %s", strerrorname_np(errno));
	return l;
}

static struct listing list_dir(const char *path)
{
	DIR *d = opendir(path);
	ck_assert_msg(d != NULL, "opendir %s: %s", path, strerrorname_np(errno));
	struct listing l = read_rest(d);
	closedir(d);
	return l;
}

/* One getdents64 call with a buffer of bufsize bytes; appends to l and
 * returns the byte count (0 at the end). */
static long getdents_once(int fd, size_t bufsize, struct listing *l)
{
	char buf[65536];
	ck_assert(bufsize <= sizeof buf);
	long n = syscall(SYS_getdents64, fd, buf, bufsize);
	if (n < 0)
		return -errno;
	for (long off = 0; off < n;) {
		struct linux_dirent64 *d = (struct linux_dirent64 *)(buf + off);
		add(l, d->d_name, d->d_ino, d->d_type);
		off += d->d_reclen;
	}
	return n;
}

/* ---- tests ---- */

START_TEST(dot_and_dotdot_are_listed_with_the_right_inodes)
{
	OK(mkdir(P("d"), 0755));
	OK(mkdir(P("d/sub"), 0755));
	struct listing l = list_dir(P("d/sub"));
	ck_assert_int_eq(l.n, 2);
	const struct entry *dot = find(&l, "."), *dotdot = find(&l, "..");
	ck_assert_ptr_nonnull(dot);
	ck_assert_ptr_nonnull(dotdot);
	ck_assert_uint_eq(dot->ino, st_of(P("d/sub")).st_ino);
	ck_assert_uint_eq(dotdot->ino, st_of(P("d")).st_ino);
	ck_assert_int_eq(dot->type, DT_DIR);
	ck_assert_int_eq(dotdot->type, DT_DIR);
	free(l.e);

	/* After a move, ".." names the new parent. */
	OK(mkdir(P("e"), 0755));
	OK(rename(P("d/sub"), P("e/sub")));
	l = list_dir(P("e/sub"));
	ck_assert_uint_eq(find(&l, "..")->ino, st_of(P("e")).st_ino);
	free(l.e);

	/* The mount's root lists both as well. */
	l = list_dir(hx_mnt.dir);
	ck_assert_uint_eq(count(&l, "."), 1);
	ck_assert_uint_eq(count(&l, ".."), 1);
	ck_assert_uint_eq(find(&l, ".")->ino, st_of(hx_mnt.dir).st_ino);
	free(l.e);
}
END_TEST

START_TEST(entries_have_the_inode_and_type_stat_reports)
{
	OK(mkdir(P("d"), 0755));
	touch(P("d/reg"));
	OK(mkdir(P("d/dir"), 0755));
	OK(symlink("reg", P("d/sym")));
	OK(mkfifo(P("d/fifo"), 0644));
	OK(mknod(P("d/sock"), S_IFSOCK | 0644, 0));
	OK(mknod(P("d/chr"), S_IFCHR | 0644, makedev(1, 3)));
	OK(mknod(P("d/blk"), S_IFBLK | 0644, makedev(7, 0)));
	OK(link(P("d/reg"), P("d/hard")));
	static const struct {
		const char *name;
		unsigned char type;
	} want[] = {
		{"reg", DT_REG},   {"dir", DT_DIR},   {"sym", DT_LNK}, {"fifo", DT_FIFO},
		{"sock", DT_SOCK}, {"chr", DT_CHR},   {"blk", DT_BLK}, {"hard", DT_REG},
	};
	struct listing l = list_dir(P("d"));
	ck_assert_int_eq(l.n, 2 + sizeof want / sizeof *want);
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		const struct entry *e = find(&l, want[i].name);
		ck_assert_msg(e != NULL, "%s missing", want[i].name);
		ck_assert_msg(e->type == want[i].type, "%s: d_type %d, want %d", want[i].name,
			      e->type, want[i].type);
		char rel[64];
		snprintf(rel, sizeof rel, "d/%s", want[i].name);
		ck_assert_msg(e->ino == st_of(P(rel)).st_ino, "%s: d_ino %ju, st_ino %ju",
			      want[i].name, (uintmax_t)e->ino, (uintmax_t)st_of(P(rel)).st_ino);
	}
	ck_assert_uint_eq(find(&l, "reg")->ino, find(&l, "hard")->ino);
	free(l.e);

	/* Small getdents64 buffers give the same answer. */
	int fd = open(P("d"), O_RDONLY | O_DIRECTORY);
	OK(fd);
	struct listing g = {0};
	long n;
	while ((n = getdents_once(fd, 64, &g)) > 0)
		;
	ck_assert_int_eq(n, 0);
	close(fd);
	ck_assert_int_eq(g.n, 2 + sizeof want / sizeof *want);
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		ck_assert_uint_eq(count(&g, want[i].name), 1);
		ck_assert_int_eq(find(&g, want[i].name)->type, want[i].type);
	}
	free(g.e);
}
END_TEST

START_TEST(getdents_with_a_too_small_buffer_fails_with_einval)
{
	touch(P("x"));
	int fd = open(hx_mnt.dir, O_RDONLY | O_DIRECTORY);
	OK(fd);
	struct listing l = {0};
	ck_assert_int_eq(getdents_once(fd, 8, &l), -EINVAL);
	/* Nothing was consumed. */
	while (getdents_once(fd, 4096, &l) > 0)
		;
	ck_assert_uint_eq(count(&l, "x"), 1);
	ck_assert_uint_eq(count(&l, "."), 1);
	close(fd);
	free(l.e);
}
END_TEST

#define BIG 5000

START_TEST(a_listing_of_5000_entries_returns_each_once)
{
	OK(mkdir(P("big"), 0755));
	char name[64];
	for (int i = 0; i < BIG; i++) {
		snprintf(name, sizeof name, "big/entry-%05d-%s", i, i % 2 ? "odd" : "even");
		OK(mknod(P(name), S_IFREG | 0644, 0));
	}
	static int seen[BIG];
	memset(seen, 0, sizeof seen);
	struct listing l = list_dir(P("big"));
	ck_assert_int_eq(l.n, BIG + 2);
	for (size_t k = 0; k < l.n; k++) {
		int i;
		if (strcmp(l.e[k].name, ".") == 0 || strcmp(l.e[k].name, "..") == 0)
			continue;
		ck_assert_msg(sscanf(l.e[k].name, "entry-%d-", &i) == 1 && i >= 0 && i < BIG,
			      "unexpected name %s", l.e[k].name);
		seen[i]++;
	}
	for (int i = 0; i < BIG; i++)
		ck_assert_msg(seen[i] == 1, "entry %d seen %d times", i, seen[i]);
	free(l.e);
	ck_assert_int_eq(st_of(P("big")).st_nlink, 2);

	/* The same with 1 KiB getdents64 buffers. */
	int fd = open(P("big"), O_RDONLY | O_DIRECTORY);
	OK(fd);
	struct listing g = {0};
	long n;
	int calls = 0;
	while ((n = getdents_once(fd, 1024, &g)) > 0)
		calls++;
	ck_assert_int_eq(n, 0);
	ck_assert_int_gt(calls, 100);
	close(fd);
	ck_assert_int_eq(g.n, BIG + 2);
	memset(seen, 0, sizeof seen);
	for (size_t k = 0; k < g.n; k++) {
		int i;
		if (sscanf(g.e[k].name, "entry-%d-", &i) == 1)
			seen[i]++;
	}
	for (int i = 0; i < BIG; i++)
		ck_assert_msg(seen[i] == 1, "entry %d seen %d times", i, seen[i]);
	free(g.e);
}
END_TEST

/*
 * Kept entries exist during the whole listing; victims are removed while
 * it runs (half of them after being listed, half before); new entries are
 * created while it runs.  Each kept entry must appear once; nothing twice.
 */
static void check_listing_under_change(const char *dir, size_t bufsize)
{
	enum { KEPT = 600, VICTIMS = 600 };
	char name[64];
	OK(mkdir(dir, 0755));
	/* Interleave creation so victims sit among kept entries. */
	for (int i = 0; i < KEPT; i++) {
		snprintf(name, sizeof name, "kept%04d", i);
		touch(J(dir, name));
		snprintf(name, sizeof name, "victim%04d", i);
		touch(J(dir, name));
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	OK(fd);
	struct listing l = {0};
	int next_victim_back = VICTIMS - 1, created = 0;
	size_t scan = 0; /* entries of l already considered for removal */
	long n;
	int calls = 0;
	while ((n = getdents_once(fd, bufsize, &l)) > 0) {
		ck_assert_msg(++calls < 5000, "listing not finished after %d calls, %zu entries",
			      calls, l.n);
		/* Remove up to two victims already listed (earlier offsets)... */
		int removed = 0;
		for (; scan < l.n && removed < 2; scan++) {
			if (strncmp(l.e[scan].name, "victim", 6) == 0 &&
			    unlink(J(dir, l.e[scan].name)) == 0)
				removed++;
		}
		/* ... one not yet listed (from the end) ... */
		while (next_victim_back >= 0) {
			snprintf(name, sizeof name, "victim%04d", next_victim_back--);
			if (unlink(J(dir, name)) == 0)
				break;
		}
		/* ... and create two new entries (a bounded number: where new
		 * entries land after the cursor, the listing must still end). */
		for (int j = 0; j < 2 && created < 200; j++) {
			snprintf(name, sizeof name, "new%05d", created++);
			touch(J(dir, name));
		}
	}
	ck_assert_msg(n == 0, "getdents64: %s", strerrorname_np((int)-n));
	close(fd);

	for (int i = 0; i < KEPT; i++) {
		snprintf(name, sizeof name, "kept%04d", i);
		size_t c = count(&l, name);
		ck_assert_msg(c == 1, "%s listed %zu times (buffer %zu)", name, c, bufsize);
	}
	for (size_t k = 0; k < l.n; k++)
		ck_assert_msg(count(&l, l.e[k].name) == 1, "%s listed twice (buffer %zu)",
			      l.e[k].name, bufsize);
	ck_assert_uint_eq(count(&l, "."), 1);
	ck_assert_uint_eq(count(&l, ".."), 1);
	ck_assert_int_gt(created, 20);
	free(l.e);
}

START_TEST(entries_present_for_the_whole_listing_appear_exactly_once_while_it_changes)
{
	check_listing_under_change(P("small"), 200);
	check_listing_under_change(P("medium"), 1024);
}
END_TEST

START_TEST(seekdir_to_a_saved_offset_continues_after_that_entry_is_removed)
{
	char name[64];
	OK(mkdir(P("d"), 0755));
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "f%03d", i);
		touch(J(P("d"), name));
	}
	DIR *d = opendir(P("d"));
	ck_assert_ptr_nonnull(d);
	/* Read 100 entries, remember the position. */
	struct listing before = {0};
	for (int i = 0; i < 100; i++) {
		struct dirent *de = readdir(d);
		ck_assert_ptr_nonnull(de);
		add(&before, de->d_name, de->d_ino, de->d_type);
	}
	long pos = telldir(d);
	ck_assert_int_ne(pos, -1);
	/* The next entry is the one at that offset; the rest follows. */
	struct listing rest = read_rest(d);
	ck_assert_int_gt(rest.n, 150);

	/* Remove the entry at the saved offset and two others after it. */
	size_t removed[3] = {0, 5, rest.n - 1};
	for (int i = 0; i < 3; i++)
		OK(unlink(J(P("d"), rest.e[removed[i]].name)));
	seekdir(d, pos);
	struct listing again = read_rest(d);

	/*
	 * POSIX: the entries that still exist come back exactly once and in
	 * the same order, nothing from before the offset comes back; whether
	 * the removed ones are returned is unspecified (tmpfs does not; a
	 * kernel readdir cache may).
	 */
	size_t j = 0;
	for (size_t i = 0; i < again.n; i++) {
		ck_assert_msg(count(&before, again.e[i].name) == 0,
			      "%s, from before the offset, returned after seekdir", again.e[i].name);
		while (j < rest.n && strcmp(rest.e[j].name, again.e[i].name) != 0)
			j++;
		ck_assert_msg(j < rest.n, "%s returned after seekdir: unknown, repeated or out of order",
			      again.e[i].name);
		j++;
	}
	for (size_t k = 0; k < rest.n; k++) {
		int gone = k == removed[0] || k == removed[1] || k == removed[2];
		size_t c = count(&again, rest.e[k].name);
		ck_assert_msg(gone ? c <= 1 : c == 1, "%s%s returned %zu times after seekdir",
			      gone ? "removed " : "", rest.e[k].name, c);
	}
	ck_assert_uint_ge(again.n, rest.n - 3);

	/* Seeking back to the same offset works repeatedly. */
	seekdir(d, pos);
	struct dirent *de;
	do {
		de = readdir(d);
		ck_assert_ptr_nonnull(de);
	} while (strcmp(de->d_name, rest.e[0].name) == 0);
	ck_assert_str_eq(de->d_name, rest.e[1].name);
	closedir(d);

	/* A new stream sees none of the removed entries. */
	struct listing fresh = list_dir(P("d"));
	ck_assert_uint_eq(fresh.n, before.n + rest.n - 3);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(count(&fresh, rest.e[removed[i]].name), 0);
	free(before.e);
	free(rest.e);
	free(again.e);
	free(fresh.e);
}
END_TEST

START_TEST(getdents_offsets_stay_valid_after_earlier_entries_are_removed)
{
	/* The same with lseek on the raw offsets (d_off) of getdents64. */
	char name[64];
	OK(mkdir(P("d"), 0755));
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof name, "e%03d", i);
		touch(J(P("d"), name));
	}
	int fd = open(P("d"), O_RDONLY | O_DIRECTORY);
	OK(fd);
	struct listing first = {0};
	ck_assert_int_gt(getdents_once(fd, 2048, &first), 0);
	off_t pos = lseek(fd, 0, SEEK_CUR);
	struct listing rest = {0};
	while (getdents_once(fd, 2048, &rest) > 0)
		;
	/* Remove everything listed before the position. */
	for (size_t i = 0; i < first.n; i++)
		if (strcmp(first.e[i].name, ".") && strcmp(first.e[i].name, ".."))
			OK(unlink(J(P("d"), first.e[i].name)));
	ck_assert_int_eq(lseek(fd, pos, SEEK_SET), pos);
	struct listing again = {0};
	while (getdents_once(fd, 2048, &again) > 0)
		;
	ck_assert_int_eq(again.n, rest.n);
	for (size_t i = 0; i < rest.n; i++)
		ck_assert_str_eq(again.e[i].name, rest.e[i].name);
	close(fd);
	free(first.e);
	free(rest.e);
	free(again.e);
}
END_TEST

START_TEST(rewinddir_sees_new_entries_and_not_removed_ones)
{
	OK(mkdir(P("d"), 0755));
	touch(P("d/old"));
	touch(P("d/doomed"));
	DIR *d = opendir(P("d"));
	ck_assert_ptr_nonnull(d);
	struct listing l = read_rest(d);
	ck_assert_int_eq(l.n, 4);
	free(l.e);
	touch(P("d/new"));
	OK(mkdir(P("d/newdir"), 0755));
	OK(unlink(P("d/doomed")));
	rewinddir(d);
	l = read_rest(d);
	closedir(d);
	ck_assert_int_eq(l.n, 5);
	ck_assert_uint_eq(count(&l, "old"), 1);
	ck_assert_uint_eq(count(&l, "new"), 1);
	ck_assert_uint_eq(count(&l, "newdir"), 1);
	ck_assert_int_eq(find(&l, "newdir")->type, DT_DIR);
	ck_assert_uint_eq(count(&l, "doomed"), 0);
	free(l.e);
}
END_TEST

START_TEST(an_empty_directory_lists_only_dot_and_dotdot)
{
	OK(mkdir(P("e"), 0755));
	struct listing l = list_dir(P("e"));
	ck_assert_int_eq(l.n, 2);
	ck_assert_uint_eq(count(&l, "."), 1);
	ck_assert_uint_eq(count(&l, ".."), 1);
	free(l.e);
	/* Emptied again after use. */
	touch(P("e/x"));
	OK(mkdir(P("e/y"), 0755));
	OK(unlink(P("e/x")));
	OK(rmdir(P("e/y")));
	l = list_dir(P("e"));
	ck_assert_int_eq(l.n, 2);
	free(l.e);
	/* A second getdents at the end returns 0 again. */
	int fd = open(P("e"), O_RDONLY | O_DIRECTORY);
	OK(fd);
	struct listing g = {0};
	while (getdents_once(fd, 4096, &g) > 0)
		;
	ck_assert_int_eq(getdents_once(fd, 4096, &g), 0);
	ck_assert_int_eq(g.n, 2);
	close(fd);
	free(g.e);
}
END_TEST

/* Open a directory, list part of it, rmdir it (after emptying), go on. */
struct removed_result {
	long first_rc;    /* getdents64 after rmdir: bytes or -errno */
	size_t n_entries; /* entries that call returned */
	int create_errno; /* openat(O_CREAT) inside the dead directory */
	nlink_t nlink;    /* fstat of the open directory */
};

static struct removed_result listing_of_removed_dir(const char *base)
{
	struct removed_result r;
	const char *dir = J(base, "gone");
	OK(mkdir(dir, 0755));
	touch(J(dir, "a"));
	int fd = open(dir, O_RDONLY | O_DIRECTORY);
	OK(fd);
	OK(unlink(J(dir, "a")));
	OK(rmdir(dir));
	struct listing l = {0};
	r.first_rc = getdents_once(fd, 4096, &l);
	r.n_entries = l.n;
	free(l.e);
	int f = openat(fd, "new", O_CREAT | O_WRONLY, 0644);
	r.create_errno = f < 0 ? errno : 0;
	if (f >= 0)
		close(f);
	struct stat st;
	OK(fstat(fd, &st));
	r.nlink = st.st_nlink;
	/* rewinding and reading again must not crash either */
	lseek(fd, 0, SEEK_SET);
	l = (struct listing){0};
	getdents_once(fd, 4096, &l);
	free(l.e);
	close(fd);
	return r;
}

START_TEST(readdir_of_an_open_directory_after_rmdir_behaves_like_tmpfs)
{
	struct removed_result m = listing_of_removed_dir(hx_mnt.dir);
	struct removed_result t = listing_of_removed_dir(hx_tmpfs());
	ck_assert_int_eq(m.first_rc, t.first_rc);
	ck_assert_uint_eq(m.n_entries, t.n_entries);
	ck_assert_int_eq(m.create_errno, t.create_errno);
	ck_assert_uint_eq(m.nlink, t.nlink);
	ck_assert_uint_eq(m.nlink, 0);
	/* The filesystem still works. */
	OK(mkdir(P("gone"), 0755));
	struct listing l = list_dir(P("gone"));
	ck_assert_int_eq(l.n, 2);
	free(l.e);
}
END_TEST

START_TEST(listing_a_directory_while_its_entries_are_renamed_in_and_out)
{
	/* Entries moved out of the directory disappear, moved in appear, kept
	 * ones appear once (rename inside the directory may show either name). */
	char name[64], to[64];
	OK(mkdir(P("d"), 0755));
	OK(mkdir(P("elsewhere"), 0755));
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "d/k%03d", i);
		touch(P(name));
		snprintf(name, sizeof name, "d/m%03d", i);
		touch(P(name));
	}
	int fd = open(P("d"), O_RDONLY | O_DIRECTORY);
	OK(fd);
	struct listing l = {0};
	int i = 0;
	while (getdents_once(fd, 512, &l) > 0) {
		for (int j = 0; j < 3 && i < 300; j++, i++) {
			snprintf(name, sizeof name, "d/m%03d", i);
			snprintf(to, sizeof to, "elsewhere/m%03d", i);
			OK(rename(P(name), P(to)));
		}
	}
	close(fd);
	for (i = 0; i < 300; i++) {
		snprintf(name, sizeof name, "k%03d", i);
		ck_assert_msg(count(&l, name) == 1, "%s listed %zu times", name, count(&l, name));
	}
	for (size_t k = 0; k < l.n; k++)
		ck_assert_msg(count(&l, l.e[k].name) == 1, "%s listed twice", l.e[k].name);
	free(l.e);
}
END_TEST

static Suite *readdir_suite(void)
{
	Suite *s = suite_create("readdir");
	TCase *tc = tcase_create("readdir");
	tcase_add_checked_fixture(tc, hx_setup, hx_teardown);
	tcase_add_test(tc, dot_and_dotdot_are_listed_with_the_right_inodes);
	tcase_add_test(tc, entries_have_the_inode_and_type_stat_reports);
	tcase_add_test(tc, getdents_with_a_too_small_buffer_fails_with_einval);
	tcase_add_test(tc, a_listing_of_5000_entries_returns_each_once);
	tcase_add_test(tc, entries_present_for_the_whole_listing_appear_exactly_once_while_it_changes);
	tcase_add_test(tc, seekdir_to_a_saved_offset_continues_after_that_entry_is_removed);
	tcase_add_test(tc, getdents_offsets_stay_valid_after_earlier_entries_are_removed);
	tcase_add_test(tc, rewinddir_sees_new_entries_and_not_removed_ones);
	tcase_add_test(tc, an_empty_directory_lists_only_dot_and_dotdot);
	tcase_add_test(tc, readdir_of_an_open_directory_after_rmdir_behaves_like_tmpfs);
	tcase_add_test(tc, listing_a_directory_while_its_entries_are_renamed_in_and_out);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return hx_run(readdir_suite());
}
