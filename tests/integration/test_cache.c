/*
 * test_cache.c — the cache= modes keep their promises, seen from the
 * kernel's page cache (mincore(2) on a mapping of the file tells which of
 * its pages the kernel holds):
 *  - cache=always: a file's pages survive close and the next open, which
 *    asks memfs nothing (the kernel opens by itself, FUSE_NO_OPEN_SUPPORT);
 *  - cache=auto: every open drops them;
 *  - cache=none: the kernel never holds a copy of what was written or
 *    read, and shared mappings still work and stay coherent with read(2)
 *    and write(2).
 * Files made while the kernel opens by itself (MKNOD, then an open that
 * asks nothing) behave as tmpfs files: O_EXCL, a read-only mode on a
 * creating open, umask, O_TRUNC.  And the option is checked strictly.
 *
 * Each test picks its own mode: MEMFS_EXTRA_OPTS (which would add another
 * cache=) is dropped for its mounts.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define OK(expr)                                                                                   \
	do {                                                                                       \
		if ((long)(expr) < 0)                                                              \
			ck_abort_msg("%s failed: %s", #expr, strerrorname_np(errno));              \
	} while (0)

#define FILE_BYTES (4u << 20)

static void mount_with(const char *opts)
{
	unsetenv("MEMFS_EXTRA_OPTS");
	hx_mount(&hx_mnt, opts);
}

static void setup_always(void)
{
	mount_with("cache=always");
}

static void setup_auto(void)
{
	mount_with("cache=auto");
}

static void setup_none(void)
{
	mount_with("cache=none");
}

static unsigned char pattern(size_t i)
{
	return (unsigned char)(i * 131 + i / 4096);
}

static void write_pattern(const char *path)
{
	unsigned char *buf = malloc(FILE_BYTES);

	ck_assert(buf);
	for (size_t i = 0; i < FILE_BYTES; i++)
		buf[i] = pattern(i);
	hx_write_file(path, buf, FILE_BYTES);
	free(buf);
}

/* Read the whole file through read(2) and check every byte. */
static void read_and_check(const char *path)
{
	size_t len;
	unsigned char *buf = hx_read_file(path, &len);

	ck_assert_int_eq(len, FILE_BYTES);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != pattern(i))
			ck_abort_msg("%s: byte %zu is %u, want %u", path, i, buf[i], pattern(i));
	free(buf);
}

/* How many of the file's pages the kernel's page cache holds now. */
static size_t cached_pages(const char *path)
{
	size_t pages = FILE_BYTES / 4096, n = 0;
	unsigned char vec[FILE_BYTES / 4096];
	int fd = open(path, O_RDONLY);
	void *map;

	OK(fd);
	map = mmap(NULL, FILE_BYTES, PROT_READ, MAP_SHARED, fd, 0);
	ck_assert_msg(map != MAP_FAILED, "mmap %s: %s", path, strerrorname_np(errno));
	OK(mincore(map, FILE_BYTES, vec));
	for (size_t i = 0; i < pages; i++)
		n += vec[i] & 1;
	OK(munmap(map, FILE_BYTES));
	OK(close(fd));
	return n;
}

START_TEST(cache_always_keeps_a_files_pages_across_close_and_open)
{
	if (hx_oracle()) /* tmpfs holds every page: it is the page cache */
		return;
	write_pattern(P("f"));
	read_and_check(P("f"));
	ck_assert_int_eq(cached_pages(P("f")), FILE_BYTES / 4096);
	/* the next opens and reads find them still there */
	read_and_check(P("f"));
	ck_assert_int_eq(cached_pages(P("f")), FILE_BYTES / 4096);
}
END_TEST

START_TEST(cache_auto_drops_a_files_pages_at_every_open)
{
	if (hx_oracle()) /* tmpfs holds every page: it is the page cache */
		return;
	write_pattern(P("f"));
	read_and_check(P("f"));
	/* cached_pages() opens the file: the open has dropped them */
	ck_assert_int_eq(cached_pages(P("f")), 0);
}
END_TEST

START_TEST(cache_none_never_holds_a_second_copy_of_file_contents)
{
	if (hx_oracle()) /* tmpfs holds every page: it is the page cache */
		return;
	write_pattern(P("f"));
	ck_assert_int_eq(cached_pages(P("f")), 0);
	read_and_check(P("f"));
	read_and_check(P("f"));
	ck_assert_int_eq(cached_pages(P("f")), 0);
}
END_TEST

/* With direct I/O a MAP_SHARED mapping still works and agrees with read/write. */
START_TEST(cache_none_shared_mappings_agree_with_read_and_write)
{
	int fd;
	char *map, buf[8];

	hx_write_file(P("m"), "", 0);
	fd = open(P("m"), O_RDWR);
	OK(fd);
	OK(ftruncate(fd, 8192));
	map = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_msg(map != MAP_FAILED, "mmap MAP_SHARED: %s", strerrorname_np(errno));
	memcpy(map + 4096, "mapped", 6);
	OK(msync(map, 8192, MS_SYNC));
	ck_assert_int_eq(pread(fd, buf, 6, 4096), 6);
	ck_assert(memcmp(buf, "mapped", 6) == 0);
	ck_assert_int_eq(pwrite(fd, "written", 7, 100), 7);
	ck_assert(memcmp(map + 100, "written", 7) == 0);
	OK(munmap(map, 8192));
	OK(close(fd));
}
END_TEST

/* ---- files created while the kernel opens without asking ---- */

struct create_result {
	int excl_errno;	       /* O_CREAT|O_EXCL of an existing name */
	mode_t ro_mode;	       /* a 0444 file made by open(O_CREAT|O_WRONLY) */
	ssize_t ro_written;    /* what write(2) on that descriptor did */
	mode_t umask_mode;     /* 0666 with umask 027 */
	off_t trunc_size;      /* O_CREAT|O_TRUNC of an existing 5-byte file */
	nlink_t unlinked_gone; /* st_nlink of an open file after unlink */
	char unlinked_data[6];
};

static struct create_result create_cases(const char *dir)
{
	struct create_result r = {0};
	char path[PATH_MAX];
	mode_t old;
	struct stat st;
	int fd;

	snprintf(path, sizeof path, "%s/exists", dir);
	hx_write_file(path, "12345", 5);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
	r.excl_errno = fd < 0 ? errno : 0;
	if (fd >= 0)
		close(fd);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	OK(fd);
	OK(close(fd));
	OK(stat(path, &st));
	r.trunc_size = st.st_size;

	snprintf(path, sizeof path, "%s/readonly", dir);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0444);
	OK(fd);
	r.ro_written = write(fd, "data", 4);
	OK(fstat(fd, &st));
	r.ro_mode = st.st_mode & 07777;
	OK(close(fd));

	old = umask(027);
	snprintf(path, sizeof path, "%s/masked", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0666);
	umask(old);
	OK(fd);
	OK(close(fd));
	OK(stat(path, &st));
	r.umask_mode = st.st_mode & 07777;

	snprintf(path, sizeof path, "%s/unlinked", dir);
	fd = open(path, O_CREAT | O_RDWR, 0644);
	OK(fd);
	ck_assert_int_eq(write(fd, "alive", 5), 5);
	OK(unlink(path));
	OK(fstat(fd, &st));
	r.unlinked_gone = st.st_nlink;
	ck_assert_int_eq(pread(fd, r.unlinked_data, 5, 0), 5);
	OK(close(fd));
	return r;
}

START_TEST(files_created_without_open_requests_behave_as_on_tmpfs)
{
	struct create_result m = create_cases(hx_mnt.dir), t = create_cases(hx_tmpfs());

	ck_assert_int_eq(m.excl_errno, EEXIST);
	ck_assert_int_eq(m.excl_errno, t.excl_errno);
	ck_assert_int_eq(m.trunc_size, t.trunc_size);
	ck_assert_int_eq(m.ro_written, 4);
	ck_assert_int_eq(m.ro_written, t.ro_written);
	ck_assert_int_eq(m.ro_mode, t.ro_mode);
	ck_assert_int_eq(m.umask_mode, t.umask_mode);
	ck_assert_int_eq(m.unlinked_gone, t.unlinked_gone);
	ck_assert_str_eq(m.unlinked_data, "alive");
}
END_TEST

/* ---- the option itself ---- */

/* Run memfs with one -o value on an existing directory; exit status and stderr. */
static int run_memfs_opts(const char *opts, char *err, size_t size)
{
	char cmd[PATH_MAX * 2 + 256];
	const char *bin = getenv("MEMFS_BIN");
	FILE *p;
	size_t n;
	int status;

	ck_assert(bin);
	snprintf(cmd, sizeof cmd, "'%s' -f -o '%s' '%s' 2>&1", bin, opts, hx_tmpfs());
	p = popen(cmd, "r");
	ck_assert(p);
	n = fread(err, 1, size - 1, p);
	err[n] = '\0';
	status = pclose(p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

START_TEST(bad_cache_values_are_refused_before_mounting)
{
	static const char *const bad[] = {"cache=bogus", "cache=", "cache=ALWAYS",
					  "cache=always,no_keep_cache"};
	char err[4096];

	if (hx_oracle())
		return;
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ck_assert_int_eq(run_memfs_opts(bad[i], err, sizeof err), 1);
		ck_assert_msg(strncmp(err, "memfs: ", 7) == 0 && strstr(err, "cache"), "-o %s: %s",
			      bad[i], err);
		ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "-o %s: not one line: %s",
			      bad[i], err);
	}
}
END_TEST

START_TEST(help_lists_the_cache_option)
{
	char out[16384];
	char cmd[PATH_MAX + 32];
	FILE *p;
	size_t n;

	if (hx_oracle())
		return;
	snprintf(cmd, sizeof cmd, "'%s' --help", getenv("MEMFS_BIN"));
	p = popen(cmd, "r");
	ck_assert(p);
	n = fread(out, 1, sizeof out - 1, p);
	out[n] = '\0';
	ck_assert_int_eq(pclose(p), 0);
	ck_assert_msg(strstr(out, "cache=MODE") && strstr(out, "always") && strstr(out, "auto") &&
			  strstr(out, "none"),
		      "--help does not describe cache=:\n%s", out);
}
END_TEST

static Suite *cache_suite(void)
{
	Suite *s = suite_create("cache");
	TCase *always = tcase_create("always"), *autom = tcase_create("auto"),
	      *none = tcase_create("none"), *opt = tcase_create("option");

	tcase_add_checked_fixture(always, setup_always, hx_teardown);
	tcase_add_test(always, cache_always_keeps_a_files_pages_across_close_and_open);
	tcase_add_test(always, files_created_without_open_requests_behave_as_on_tmpfs);
	suite_add_tcase(s, always);

	tcase_add_checked_fixture(autom, setup_auto, hx_teardown);
	tcase_add_test(autom, cache_auto_drops_a_files_pages_at_every_open);
	suite_add_tcase(s, autom);

	tcase_add_checked_fixture(none, setup_none, hx_teardown);
	tcase_add_test(none, cache_none_never_holds_a_second_copy_of_file_contents);
	tcase_add_test(none, cache_none_shared_mappings_agree_with_read_and_write);
	suite_add_tcase(s, none);

	tcase_add_test(opt, bad_cache_values_are_refused_before_mounting);
	tcase_add_test(opt, help_lists_the_cache_option);
	suite_add_tcase(s, opt);
	return s;
}

int main(void)
{
	return hx_run(cache_suite());
}
