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
 *  HX_ORACLE=tmpfs   mount a tmpfs instead of memfs: proves a test's
 *                    expectations against Linux itself (memfs-only tests
 *                    check hx_oracle() and return early).
 *
 * Oracle comparisons: hx_tmpfs() gives a scratch tmpfs directory in the same
 * test, so a case can be run on both and the results compared.
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
};

/* The mount of the current test (hx_setup fills it). */
extern struct hx_mount hx_mnt;

/*
 * Mount a new memfs with extra comma-separated -o options (NULL: none) on a
 * fresh temp dir; waits until it is mounted.  ck_abort on failure.
 */
void hx_mount(struct hx_mount *m, const char *opts);
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

/* Run an SRunner over the suite, return the process exit code. */
int hx_run(Suite *s);

#endif
