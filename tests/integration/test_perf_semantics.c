/*
 * test_perf_semantics.c — what the request-saving protocol features must
 * not change.  memfs asks the kernel for FUSE_HANDLE_KILLPRIV_V2 (the
 * daemon clears set-id bits itself, so the kernel stops sending a
 * GETXATTR before every write) and FUSE_PARALLEL_DIROPS (src/fuse_compat.c).
 *
 *  - Set-id clearing: every way a file's contents or owner change (write,
 *    O_DIRECT write, truncate, ftruncate, O_TRUNC, fallocate,
 *    copy_file_range, chown), done by the owner, by another user in and out
 *    of the file's group, by root and by root without CAP_FSETID, leaves
 *    the same mode on memfs as on tmpfs; and the kernel's cached mode
 *    (statx asking for STATX_MODE only, which does not refresh it) is the
 *    new one at once.
 *  - security.capability goes on a write and on chown, as on tmpfs.
 *  - Lookups, readdirs, creates and unlinks in one directory from several
 *    processes at once give consistent answers.
 *
 * The users are plain uids without passwd entries (the children drop to
 * them with setresuid), so the mount is made with -o allow_other.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "harness.h"

#define OK(expr)                                                                                   \
	do {                                                                                       \
		if ((long)(expr) < 0)                                                              \
			ck_abort_msg("%s failed: %s", #expr, strerrorname_np(errno));              \
	} while (0)

#define OWNER_UID 1234
#define OWNER_GID 5678
#define OTHER_UID 4321 /* in no group of the files */

static const char *J(const char *base, const char *rel)
{
	static char bufs[16][PATH_MAX];
	static int n;
	char *b = bufs[n++ % 16];

	ck_assert(snprintf(b, PATH_MAX, "%s/%s", base, rel) < PATH_MAX);
	return b;
}

static struct stat st_of(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		ck_abort_msg("lstat %s: %s", path, strerrorname_np(errno));
	return st;
}

static void setup_allow_other(void)
{
	hx_mount(&hx_mnt, "allow_other");
}

/* ---- set-id clearing, memfs against tmpfs ---- */

enum actor { OWNER, OTHER, ROOT, ROOT_NO_FSETID };
static const char *const actor_name[] = {"owner", "other", "root", "root without CAP_FSETID"};

enum op {
	W_APPEND,   /* open O_APPEND, write 4 bytes */
	W_64K,	    /* pwrite 64 KiB at 0 */
	W_DIRECT,   /* O_DIRECT pwrite of 4 KiB at 0 */
	TRUNCATE,   /* truncate(path, 2) */
	FTRUNCATE,  /* ftruncate(fd, 1) */
	O_TRUNCATE, /* open(O_WRONLY | O_TRUNC) */
	FALLOCATE,  /* fallocate(fd, 0, 0, 8192) */
	COPY_INTO,  /* copy_file_range of 4 bytes from "src" into it */
	CHOWN_ROOT, /* chown(path, OWNER_UID, OWNER_GID) */
	CHGRP_OWN,  /* chown(path, -1, OWNER_GID) */
	CHOWN_NONE, /* chown(path, -1, -1) */
	N_OPS
};
static const char *const op_name[] = {
    "append",	 "64 KiB write",    "O_DIRECT write", "truncate", "ftruncate",	  "O_TRUNC open",
    "fallocate", "copy_file_range", "chown",	      "chgrp",	  "chown(-1, -1)"};

/* Drop CAP_FSETID from the effective and permitted sets, staying uid 0. */
static int drop_fsetid(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[0].effective &= ~(1u << CAP_FSETID);
	d[0].permitted &= ~(1u << CAP_FSETID);
	return (int)syscall(SYS_capset, &h, d);
}

static int become(enum actor a)
{
	switch (a) {
	case OWNER:
		return setgroups(0, NULL) || setresgid(OWNER_GID, OWNER_GID, OWNER_GID) ||
		       setresuid(OWNER_UID, OWNER_UID, OWNER_UID);
	case OTHER:
		return setgroups(0, NULL) || setresgid(OTHER_UID, OTHER_UID, OTHER_UID) ||
		       setresuid(OTHER_UID, OTHER_UID, OTHER_UID);
	case ROOT:
		return 0;
	case ROOT_NO_FSETID:
		return drop_fsetid();
	}
	return -1;
}

static int do_op(enum op op, const char *path, const char *src)
{
	static char buf[65536] __attribute__((aligned(4096)));
	int fd = -1, rc = 0, in;
	loff_t off = 0;

	memset(buf, 'z', sizeof buf);
	switch (op) {
	case W_APPEND:
		fd = open(path, O_WRONLY | O_APPEND);
		rc = fd < 0 ? -1 : write(fd, buf, 4) == 4 ? 0 : -1;
		break;
	case W_64K:
		fd = open(path, O_WRONLY);
		rc = fd < 0 ? -1 : pwrite(fd, buf, sizeof buf, 0) == sizeof buf ? 0 : -1;
		break;
	case W_DIRECT:
		fd = open(path, O_WRONLY | O_DIRECT);
		rc = fd < 0 ? -1 : pwrite(fd, buf, 4096, 0) == 4096 ? 0 : -1;
		break;
	case TRUNCATE:
		return truncate(path, 2) < 0 ? errno : 0;
	case FTRUNCATE:
		fd = open(path, O_WRONLY);
		rc = fd < 0 ? -1 : ftruncate(fd, 1);
		break;
	case O_TRUNCATE:
		fd = open(path, O_WRONLY | O_TRUNC);
		rc = fd < 0 ? -1 : 0;
		break;
	case FALLOCATE:
		fd = open(path, O_WRONLY);
		rc = fd < 0 ? -1 : fallocate(fd, 0, 0, 8192);
		break;
	case COPY_INTO:
		in = open(src, O_RDONLY);
		fd = open(path, O_WRONLY);
		rc = in < 0 || fd < 0				      ? -1
		     : copy_file_range(in, NULL, fd, &off, 4, 0) == 4 ? 0
								      : -1;
		if (in >= 0)
			close(in);
		break;
	case CHOWN_ROOT:
		return chown(path, OWNER_UID, OWNER_GID) < 0 ? errno : 0;
	case CHGRP_OWN:
		return chown(path, (uid_t)-1, OWNER_GID) < 0 ? errno : 0;
	case CHOWN_NONE:
		return chown(path, (uid_t)-1, (gid_t)-1) < 0 ? errno : 0;
	default:
		return EINVAL;
	}
	if (rc < 0)
		rc = errno ? errno : EIO;
	if (fd >= 0 && close(fd) < 0 && !rc)
		rc = errno;
	return rc;
}

#define SETUP_FAILED 250

/* Run op on path in a child that became actor; its errno (0 for success). */
static int run_as(enum actor a, enum op op, const char *path, const char *src)
{
	pid_t pid = fork();
	int status;

	ck_assert_msg(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		if (become(a))
			_exit(SETUP_FAILED);
		_exit(do_op(op, path, src));
	}
	while (waitpid(pid, &status, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != SETUP_FAILED,
		      "could not become %s", actor_name[a]);
	return WEXITSTATUS(status);
}

struct outcome {
	int err;
	mode_t mode;	    /* st_mode & 07777 after the operation */
	mode_t cached_mode; /* statx(STATX_MODE): the kernel's view, unrefreshed */
	off_t size;
};

/* One case on the directory base: a fresh file, the operation, the result. */
static struct outcome run_case(const char *base, int n, mode_t mode, enum actor a, enum op op)
{
	char name[32];
	const char *path, *src = J(base, "src");
	struct outcome o;
	struct statx stx;

	if (access(src, F_OK) < 0) {
		hx_write_file(src, "SRCDATA", 7);
		OK(chmod(src, 0644));
	}
	snprintf(name, sizeof name, "f%d", n);
	path = J(base, name);
	hx_write_file(path, "0123456789", 10);
	if (op != CHOWN_ROOT)
		OK(chown(path, OWNER_UID, OWNER_GID));
	OK(chmod(path, mode));
	ck_assert_int_eq(st_of(path).st_mode & 07777, mode);
	o.err = run_as(a, op, path, src);
	OK(statx(AT_FDCWD, path, 0, STATX_MODE, &stx));
	o.cached_mode = stx.stx_mode & 07777;
	struct stat st = st_of(path);
	o.mode = st.st_mode & 07777;
	o.size = st.st_size;
	return o;
}

struct kcase {
	mode_t mode;
	enum actor actor;
};

/* Who may write a file of OWNER_UID:OWNER_GID with that mode, and is it interesting. */
static const struct kcase write_cases[] = {
    {06775, OWNER},	     /* suid + sgid with group exec: both go */
    {02664, OWNER},	     /* sgid without group exec, writer in the group: stays */
    {06777, OTHER},	     /* another user, not in the group */
    {02666, OTHER},	     /* sgid without group exec, writer not in the group */
    {04777, OTHER},	     /* suid only */
    {06755, ROOT},	     /* CAP_FSETID: nothing goes */
    {06755, ROOT_NO_FSETID}, /* uid 0 is not enough */
    {00775, OWNER},	     /* nothing to clear */
};

START_TEST(setid_bits_are_cleared_as_on_tmpfs_by_every_kind_of_modification)
{
	const char *mem = hx_mnt.dir, *tmp = hx_tmpfs();
	int n = 0;

	for (int op = W_APPEND; op <= COPY_INTO; op++) {
		for (size_t i = 0; i < sizeof write_cases / sizeof *write_cases; i++, n++) {
			const struct kcase *c = &write_cases[i];
			struct outcome m = run_case(mem, n, c->mode, c->actor, op);
			struct outcome t = run_case(tmp, n, c->mode, c->actor, op);

			ck_assert_msg(m.err == t.err && m.mode == t.mode && m.size == t.size,
				      "%s of a %04o file by %s: memfs %s mode %04o size %ld, "
				      "tmpfs %s mode %04o size %ld",
				      op_name[op], c->mode, actor_name[c->actor],
				      strerrorname_np(m.err) ? strerrorname_np(m.err) : "ok",
				      m.mode, (long)m.size,
				      strerrorname_np(t.err) ? strerrorname_np(t.err) : "ok",
				      t.mode, (long)t.size);
			ck_assert_msg(m.cached_mode == m.mode,
				      "%s of a %04o file by %s: the kernel still caches mode "
				      "%04o, memfs has %04o",
				      op_name[op], c->mode, actor_name[c->actor], m.cached_mode,
				      m.mode);
		}
	}
}
END_TEST

START_TEST(chown_clears_setid_bits_as_on_tmpfs)
{
	static const struct {
		mode_t mode;
		enum actor actor;
		enum op op;
	} cases[] = {
	    {04755, ROOT, CHOWN_ROOT},	{06755, ROOT, CHOWN_ROOT},
	    {02745, ROOT, CHOWN_ROOT},	{02755, ROOT, CHOWN_ROOT},
	    {06755, ROOT, CHOWN_NONE},	{02745, ROOT, CHOWN_NONE},
	    {06755, OWNER, CHGRP_OWN},	{02745, OWNER, CHGRP_OWN},
	    {06755, OWNER, CHOWN_NONE}, {04700, ROOT_NO_FSETID, CHOWN_NONE},
	};
	const char *mem = hx_mnt.dir, *tmp = hx_tmpfs();

	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct outcome m =
		    run_case(mem, (int)i, cases[i].mode, cases[i].actor, cases[i].op);
		struct outcome t =
		    run_case(tmp, (int)i, cases[i].mode, cases[i].actor, cases[i].op);

		ck_assert_msg(m.err == t.err && m.mode == t.mode,
			      "%s of a %04o file by %s: memfs %d mode %04o, tmpfs %d mode %04o",
			      op_name[cases[i].op], cases[i].mode, actor_name[cases[i].actor],
			      m.err, m.mode, t.err, t.mode);
		ck_assert_int_eq(m.cached_mode, m.mode);
	}
}
END_TEST

/* A directory's set-id bits are never cleared by chown (Linux keeps them). */
START_TEST(chown_of_a_directory_keeps_its_setid_bits)
{
	OK(mkdir(P("d"), 0755));
	OK(chmod(P("d"), 06775));
	OK(chown(P("d"), OWNER_UID, OWNER_GID));
	ck_assert_int_eq(st_of(P("d")).st_mode & 07777, 06775);
}
END_TEST

/* ---- security.capability ---- */

/* A valid file capability (revision 2): cap_net_bind_service permitted. */
static void set_capability(const char *path)
{
	struct {
		unsigned magic_etc;
		struct {
			unsigned permitted, inheritable;
		} data[2];
	} cap = {VFS_CAP_REVISION_2, {{1u << CAP_NET_BIND_SERVICE, 0}, {0, 0}}};

	if (setxattr(path, "security.capability", &cap, sizeof cap, 0) < 0)
		ck_abort_msg("setxattr security.capability on %s: %s", path,
			     strerrorname_np(errno));
}

static int has_capability(const char *path)
{
	char buf[64];

	if (getxattr(path, "security.capability", buf, sizeof buf) >= 0)
		return 1;
	ck_assert_msg(errno == ENODATA, "getxattr %s: %s", path, strerrorname_np(errno));
	return 0;
}

/* Whether the capability survives op by actor on base's file n. */
static int capability_survives(const char *base, int n, enum actor a, enum op op)
{
	char name[32];
	const char *path;

	snprintf(name, sizeof name, "cap%d", n);
	path = J(base, name);
	hx_write_file(path, "0123456789", 10);
	OK(chown(path, OWNER_UID, OWNER_GID));
	OK(chmod(path, 0777));
	set_capability(path);
	ck_assert(has_capability(path));
	ck_assert_int_eq(run_as(a, op, path, J(base, "src")), 0);
	return has_capability(path);
}

START_TEST(security_capability_goes_on_write_truncate_and_chown_as_on_tmpfs)
{
	static const struct {
		enum actor actor;
		enum op op;
	} cases[] = {
	    {ROOT, W_APPEND},	{OWNER, W_APPEND},  {OTHER, W_64K},	{ROOT, TRUNCATE},
	    {OWNER, FALLOCATE}, {ROOT, CHOWN_ROOT}, {ROOT, CHOWN_NONE},
	};
	const char *mem = hx_mnt.dir, *tmp = hx_tmpfs();

	hx_write_file(J(mem, "src"), "SRCDATA", 7);
	hx_write_file(J(tmp, "src"), "SRCDATA", 7);
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int m = capability_survives(mem, (int)i, cases[i].actor, cases[i].op);
		int t = capability_survives(tmp, (int)i, cases[i].actor, cases[i].op);

		ck_assert_msg(m == t, "%s by %s: security.capability %s on memfs, %s on tmpfs",
			      op_name[cases[i].op], actor_name[cases[i].actor], m ? "kept" : "gone",
			      t ? "kept" : "gone");
	}
}
END_TEST

/* A second write after a first one cleared the bit: still cleared, data all there. */
START_TEST(repeated_writes_by_a_user_keep_the_bits_cleared_and_the_data)
{
	hx_write_file(P("f"), "", 0);
	OK(chown(P("f"), OWNER_UID, OWNER_GID));
	for (int round = 0; round < 3; round++) {
		OK(chmod(P("f"), 06775));
		for (int i = 0; i < 50; i++)
			ck_assert_int_eq(run_as(OWNER, W_APPEND, P("f"), NULL), 0);
		ck_assert_int_eq(st_of(P("f")).st_mode & 07777, 0775);
	}
	ck_assert_int_eq(st_of(P("f")).st_size, 3 * 50 * 4);
}
END_TEST

/* ---- parallel directory operations ---- */

#define DIROPS_PROCS 4
#define DIROPS_ROUNDS 300

/*
 * Worker w creates, looks up, lists and removes its own names in the
 * shared directory while the others do the same; it also looks up names
 * the others own, which may or may not exist.  Any answer but "there" or
 * ENOENT, or a listing that misses one of the worker's own live files,
 * fails it.
 */
static int dirops_worker(const char *dir, int w)
{
	char mine[PATH_MAX], theirs[PATH_MAX];
	struct stat st;

	for (int r = 0; r < DIROPS_ROUNDS; r++) {
		snprintf(mine, sizeof mine, "%s/w%d-%d", dir, w, r);
		int fd = open(mine, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0 || close(fd) < 0)
			return 1;
		if (stat(mine, &st) < 0 || !S_ISREG(st.st_mode))
			return 2;
		snprintf(theirs, sizeof theirs, "%s/w%d-%d", dir, (w + 1) % DIROPS_PROCS, r);
		if (stat(theirs, &st) < 0 ? errno != ENOENT : !S_ISREG(st.st_mode))
			return 3;
		if (r % 25 == 0) {
			DIR *d = opendir(dir);
			struct dirent *e;
			int seen = 0;
			if (!d)
				return 4;
			while ((e = readdir(d)))
				seen += strcmp(e->d_name, strrchr(mine, '/') + 1) == 0;
			closedir(d);
			if (seen != 1)
				return 5;
		}
		if (r % 2 && unlink(mine) < 0)
			return 6;
	}
	return 0;
}

START_TEST(parallel_lookups_readdirs_and_changes_in_one_directory_stay_consistent)
{
	pid_t pids[DIROPS_PROCS];
	int status, n = 0;
	DIR *d;
	struct dirent *e;

	OK(mkdir(P("shared"), 0755));
	for (int w = 0; w < DIROPS_PROCS; w++) {
		pids[w] = fork();
		ck_assert(pids[w] >= 0);
		if (pids[w] == 0)
			_exit(dirops_worker(P("shared"), w));
	}
	for (int w = 0; w < DIROPS_PROCS; w++) {
		ck_assert(waitpid(pids[w], &status, 0) == pids[w]);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "worker %d failed at step %d", w, WEXITSTATUS(status));
	}
	d = opendir(P("shared"));
	ck_assert(d);
	while ((e = readdir(d)))
		n += e->d_name[0] == 'w';
	closedir(d);
	/* every even round's file is left */
	ck_assert_int_eq(n, DIROPS_PROCS * DIROPS_ROUNDS / 2);
}
END_TEST

/* ---- FUSE over io_uring (src/uring.h) ---------------------------------- */

/* The daemon's ring threads: how many, and their voluntary context switches. */
static int ring_threads(pid_t pid, long *switches)
{
	char path[PATH_MAX], line[256];
	struct dirent *e;
	DIR *d;
	int n = 0;

	*switches = 0;
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	ck_assert_msg(d, "%s: %s", path, strerror(errno));
	while ((e = readdir(d))) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid, e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue; /* the thread went */
		if (!fgets(line, sizeof(line), f) || strncmp(line, "memfs-uring", 11) != 0) {
			fclose(f);
			continue;
		}
		fclose(f);
		n++;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, e->d_name);
		f = fopen(path, "r");
		while (f && fgets(line, sizeof(line), f))
			if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
				*switches += atol(line + 24);
		if (f)
			fclose(f);
	}
	closedir(d);
	return n;
}

START_TEST(requests_come_over_io_uring_where_the_kernel_offers_it)
{
	const char *extra = getenv("MEMFS_EXTRA_OPTS"), *wrapper = getenv("MEMFS_WRAPPER");
	/* no rings with -o no_uring, nor under valgrind (src/uring.c says why) */
	int want = !(extra && strstr(extra, "no_uring")) && !(wrapper && strstr(wrapper, "valgrind"));
	char buf[4096] __attribute__((aligned(4096)));
	long before, after;
	char on = 'N';
	int fd, n;
	FILE *f;

	if (hx_oracle())
		return; /* a property of the daemon, not of file semantics */
	f = fopen("/sys/module/fuse/parameters/enable_uring", "r");
	if (f) {
		if (fread(&on, 1, 1, f) != 1)
			on = 'N';
		fclose(f);
	}
	/* 2: io_uring off for everyone; 1: for the unprivileged only */
	f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	if (f) {
		int dis = 0;
		if (fscanf(f, "%d", &dis) == 1 && (dis == 2 || (dis == 1 && geteuid() != 0)))
			want = 0;
		fclose(f);
	}
	n = ring_threads(hx_mnt.pid, &before);
	if (on != 'Y' || !want) {
		/* not offered (tools/test turns it on) or refused: none at all */
		ck_assert_int_eq(n, 0);
		return;
	}
	ck_assert_int_eq(n, get_nprocs_conf()); /* one per CPU the kernel has a queue for */
	memset(buf, 'u', sizeof(buf));
	hx_write_file(P("f"), buf, sizeof(buf));
	fd = open(P("f"), O_RDONLY | O_DIRECT);
	ck_assert_msg(fd >= 0, "open O_DIRECT: %s", strerror(errno));
	for (int i = 0; i < 400; i++)
		ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	close(fd);
	ck_assert(buf[0] == 'u' && buf[4095] == 'u');
	/* each read woke a ring thread (nothing else wakes them) */
	ring_threads(hx_mnt.pid, &after);
	ck_assert_msg(after - before >= 200, "ring threads woke %ld times for 400 reads",
		      after - before);
}
END_TEST

static Suite *perf_semantics_suite(void)
{
	Suite *s = suite_create("perf_semantics");
	TCase *users = tcase_create("setid");
	TCase *dirops = tcase_create("dirops");

	tcase_add_checked_fixture(users, setup_allow_other, hx_teardown);
	tcase_set_timeout(users, 120);
	tcase_add_test(users, setid_bits_are_cleared_as_on_tmpfs_by_every_kind_of_modification);
	tcase_add_test(users, chown_clears_setid_bits_as_on_tmpfs);
	tcase_add_test(users, chown_of_a_directory_keeps_its_setid_bits);
	tcase_add_test(users, security_capability_goes_on_write_truncate_and_chown_as_on_tmpfs);
	tcase_add_test(users, repeated_writes_by_a_user_keep_the_bits_cleared_and_the_data);
	suite_add_tcase(s, users);

	tcase_add_checked_fixture(dirops, hx_setup, hx_teardown);
	tcase_add_test(dirops, requests_come_over_io_uring_where_the_kernel_offers_it);
	tcase_add_test(dirops,
		       parallel_lookups_readdirs_and_changes_in_one_directory_stay_consistent);
	suite_add_tcase(s, dirops);
	return s;
}

int main(void)
{
	return hx_run(perf_semantics_suite());
}
