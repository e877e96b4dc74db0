/*
 * harness.h — mounting a real memfs for integration tests.
 *
 * Each test mounts a fresh memfs on a new temporary directory, runs real
 * syscalls in it, and unmounts.  A mount never outlives its test:
 *  - the daemon runs in the foreground as a child of the test process with
 *    -o auto_unmount (fusermount3 unmounts if the daemon dies) and
 *    PR_SET_PDEATHSIG (the daemon gets SIGTERM if the test process dies);
 *  - every mount lives in a private mount namespace of the test process
 *    (harness.c), so even a test that dies on a failed assertion (Check
 *    leaves with _exit, skipping the teardown) or a timeout leaves nothing
 *    mounted on the host;
 *  - hx_umount() runs in the checked fixture's teardown of a test that
 *    passed its assertions.
 * hx_umount() asserts that the daemon exited with status 0, so a sanitizer
 * report or a leak at exit fails the test that caused it.  The daemon writes
 * to the test's stderr, so its messages (and a crash report) sit next to the
 * test's own.
 *
 * Environment:
 *  MEMFS_BIN         the memfs binary (set by meson test)
 *  MEMFS_EXTRA_OPTS  -o options added to every mount (e.g. "nocache")
 *  HX_TIMES          print how long each passing test took (its teardown)
 *  HX_ORACLE=tmpfs   mount a tmpfs instead of memfs: proves a test's
 *                    expectations against Linux itself (memfs-only tests
 *                    check hx_oracle() and return early).
 *
 * Oracle comparisons: hx_tmpfs() gives a scratch tmpfs directory in the same
 * test, so a case can be run on both and the results compared.
 *
 * Lower layers (-o lower=, issue 3): hx_lower(i) gives a fresh tmpfs
 * directory for layer i of the current test; a test fills the layers, then
 * mounts over them with hx_mount_lower().  Under HX_ORACLE=tmpfs that mount
 * is a tmpfs holding a copy of the merged layers made by cp -a and rsync
 * (hx_copy_lowers), so an overlay test's expectations are proven against
 * what Linux gives for the same tree.  hx_copy_lowers() also makes that copy
 * in any directory, for comparisons inside one test.
 */
#ifndef HX_HARNESS_H
#define HX_HARNESS_H

#include <check.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

struct hx_mount {
	char dir[PATH_MAX]; /* the mount point (a fresh temp directory) */
	pid_t pid;          /* the daemon, 0 when not running (or a tmpfs) */
	int is_tmpfs;       /* mounted as the oracle (HX_ORACLE=tmpfs) */
	int keep_dir;       /* the mount point was given (hx_mount_on): not removed */
};

/* The mount of the current test (hx_setup fills it). */
extern struct hx_mount hx_mnt;

/*
 * Mount a new memfs with extra comma-separated -o options (NULL: none) on a
 * fresh temp dir; waits until it is mounted.  ck_abort on failure.
 */
void hx_mount(struct hx_mount *m, const char *opts);
/* hx_mount on the existing directory dir, which hx_umount then leaves in place. */
void hx_mount_on(struct hx_mount *m, const char *dir, const char *opts);
/* Unmount (fusermount3 -u), wait for the daemon, assert it exited 0, rmdir. */
void hx_umount(struct hx_mount *m);

/* Checked-fixture pair: hx_mount(&hx_mnt, NULL) / hx_umount(&hx_mnt). */
void hx_setup(void);
void hx_teardown(void);

/* m->dir + "/" + rel, in one of 8 rotating static buffers. */
const char *hx_path(const struct hx_mount *m, const char *rel);
/* hx_path(&hx_mnt, rel) */
const char *P(const char *rel);

/*
 * A directory on a tmpfs for oracle comparisons: empty at a test's first call,
 * the same directory for every later call in that test; it disappears with
 * the test process.
 */
const char *hx_tmpfs(void);

/* Create (or truncate) the file at path with the given contents; ck_assert on error. */
void hx_write_file(const char *path, const void *buf, size_t len);
/* Read a whole file into a malloc'd, NUL-terminated buffer (caller frees); *len gets its size. */
void *hx_read_file(const char *path, size_t *len);

/* Run a shell command; returns its exit status (or -1). */
int hx_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Tests that only make sense on memfs (options, daemon behaviour) skip under HX_ORACLE. */
int hx_oracle(void);

/* ---- lower layers ---- */

#define HX_MAX_LOWERS 8

/*
 * Lower layer i (0 <= i < HX_MAX_LOWERS) of the current test: an empty tmpfs
 * directory (mode 0755) at a test's first call, the same one for every later
 * call in that test; it disappears with the test process.
 */
const char *hx_lower(int i);

/*
 * Mount on m a memfs with -o lower=L0:L1:...:L(n-1) (layer 0 on top, Li =
 * hx_lower(i)) plus the comma-separated opts (NULL: none).  Under
 * HX_ORACLE=tmpfs: a tmpfs filled by hx_copy_lowers(m->dir, n), then
 * chown -R by the lower_uid= / lower_gid= in opts.
 */
void hx_mount_lower(struct hx_mount *m, int nlayers, const char *opts);

/*
 * What Linux makes of lowers 0..n-1 merged, in the existing directory dst:
 * cp -a of the bottom layer, then rsync -aHAX --force of each layer above it
 * over the result (an upper name replaces what is below, directories merge).
 */
void hx_copy_lowers(const char *dst, int nlayers);

/* Checked fixture for tests that fill lowers first: resets hx_tmpfs() and
 * hx_lower() like hx_setup, mounts nothing (pair it with hx_teardown). */
void hx_setup_nomount(void);

/* echo what > /proc/sys/vm/drop_caches (2: dentries and inodes, the kernel
 * forgets every unused FUSE inode; 3: the page cache too).  ck_assert on error. */
void hx_drop_caches(int what);

/* A field of /proc/PID/status in kB ("VmRSS", "RssAnon"), -1 if absent. */
long hx_status_kb(pid_t pid, const char *field);

/* ---- comparing trees ---- */

enum {
	HX_DIGEST_MTIME = 1, /* also every entry's mtime (to the nanosecond) */
	HX_DIGEST_NO_OWNER = 2, /* leave out uid and gid */
	HX_DIGEST_IDENTITY = 4, /* also st_ino and ctime: proves nothing was changed at all */
};

/*
 * A text description of everything below dir (not dir itself, nothing
 * followed), one line per entry, sorted by path: type, mode, owner, link
 * count and hard-link group (the first path of the same inode), size and a
 * hash of the bytes (regular files), target (symlinks), rdev (devices),
 * every xattr name and value (and what the flags add).  Directory sizes are left out: they are not
 * comparable between filesystems.  malloc'd; the caller frees.
 */
char *hx_tree_digest(const char *dir, int flags);

/* ck_assert that two digests are equal, showing the first lines that differ. */
void hx_assert_same_digest(const char *what, const char *got, const char *want);

/* Run an SRunner over the suite, return the process exit code. */
int hx_run(Suite *s);

#endif
