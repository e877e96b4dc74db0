/*
 * test_mmap.c — memory-mapped files: shared and private mappings, their
 * agreement with read(2)/write(2), msync, size changes under a mapping,
 * mappings shared between processes, and the pattern SQLite's WAL mode uses
 * for its -shm file (two processes, a mapped index, byte-range locks).
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

static const char *in(const char *dir, const char *rel)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 8];
	int n = snprintf(b, PATH_MAX, "%s/%s", dir, rel);

	ck_assert_msg(n < PATH_MAX, "path too long: %s/%s", dir, rel);
	return b;
}

static void fill_pattern(unsigned char *buf, size_t len, uint64_t seed)
{
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		buf[i] = (unsigned char)(x | 1);
	}
}

static int all_zero(const unsigned char *buf, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (buf[i])
			return 0;
	return 1;
}

static int open_rw(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT, 0644);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	return fd;
}

static void *map(int fd, size_t len, int prot, int flags, off_t off)
{
	void *p = mmap(NULL, len, prot, flags, fd, off);

	ck_assert_msg(p != MAP_FAILED, "mmap: %s", strerror(errno));
	return p;
}

static void pread_all(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	ck_assert_msg(n == (ssize_t)len, "pread %zu at %lld: %zd (%s)", len, (long long)off, n,
		      n < 0 ? strerror(errno) : "short");
}

static void pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n = pwrite(fd, buf, len, off);

	ck_assert_msg(n == (ssize_t)len, "pwrite %zu at %lld: %zd (%s)", len, (long long)off, n,
		      n < 0 ? strerror(errno) : "short");
}

/* Touch *p; return the signal it raised (SIGBUS past EOF) or 0. */
static sigjmp_buf fault_jmp;

static void on_fault(int sig)
{
	siglongjmp(fault_jmp, sig);
}

static int touch(volatile unsigned char *p, int write)
{
	struct sigaction sa = {.sa_handler = on_fault}, old_bus, old_segv;
	int sig;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &old_bus);
	sigaction(SIGSEGV, &sa, &old_segv);
	sig = sigsetjmp(fault_jmp, 1);
	if (sig == 0) {
		if (write)
			*p = 0x5a;
		else
			(void)*p;
	}
	sigaction(SIGBUS, &old_bus, NULL);
	sigaction(SIGSEGV, &old_segv, NULL);
	return sig;
}

START_TEST(shared_mapping_writes_are_seen_by_read)
{
	unsigned char data[3 * PAGE], back[3 * PAGE];
	int fd = open_rw(P("f")), fd2;
	unsigned char *m;

	ck_assert_int_eq(ftruncate(fd, sizeof(data)), 0);
	m = map(fd, sizeof(data), PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	fill_pattern(data, sizeof(data), 1);
	memcpy(m, data, sizeof(data));

	/* Without msync, through another descriptor: the same page cache. */
	fd2 = open(P("f"), O_RDONLY);
	ck_assert_int_ge(fd2, 0);
	pread_all(fd2, back, sizeof(back), 0);
	ck_assert(memcmp(back, data, sizeof(data)) == 0);
	close(fd2);

	ck_assert_int_eq(munmap(m, sizeof(data)), 0);
	ck_assert_int_eq(close(fd), 0);

	/* And after the last close, from the filesystem. */
	size_t len;
	unsigned char *all = hx_read_file(P("f"), &len);

	ck_assert_uint_eq(len, sizeof(data));
	ck_assert(memcmp(all, data, sizeof(data)) == 0);
	free(all);
}
END_TEST

START_TEST(write_is_seen_through_an_existing_mapping)
{
	unsigned char data[2 * PAGE];
	int fd = open_rw(P("f")), fd2;
	const unsigned char *m;

	fill_pattern(data, sizeof(data), 2);
	pwrite_all(fd, data, sizeof(data), 0);
	m = map(fd, sizeof(data), PROT_READ, MAP_SHARED, 0);
	ck_assert(memcmp(m, data, sizeof(data)) == 0); /* faulted in */

	fd2 = open(P("f"), O_WRONLY);
	ck_assert_int_ge(fd2, 0);
	pwrite_all(fd2, "changed", 7, PAGE - 3); /* across the page boundary */
	close(fd2);
	ck_assert(memcmp(m + PAGE - 3, "changed", 7) == 0);
	ck_assert(memcmp(m, data, PAGE - 3) == 0);

	ck_assert_int_eq(munmap((void *)m, sizeof(data)), 0);
	close(fd);
}
END_TEST

START_TEST(private_mapping_changes_stay_private)
{
	unsigned char data[2 * PAGE], back[2 * PAGE];
	int fd = open_rw(P("f"));
	unsigned char *a, *b;

	fill_pattern(data, sizeof(data), 3);
	pwrite_all(fd, data, sizeof(data), 0);
	a = map(fd, sizeof(data), PROT_READ | PROT_WRITE, MAP_PRIVATE, 0);
	b = map(fd, sizeof(data), PROT_READ, MAP_SHARED, 0);
	memset(a, 0xcc, PAGE);
	ck_assert(a[0] == 0xcc);
	ck_assert(memcmp(a + PAGE, data + PAGE, PAGE) == 0);

	/* Neither the file nor a shared mapping sees the copy-on-write page. */
	pread_all(fd, back, sizeof(back), 0);
	ck_assert(memcmp(back, data, sizeof(data)) == 0);
	ck_assert(memcmp(b, data, sizeof(data)) == 0);
	ck_assert_int_eq(msync(a, sizeof(data), MS_SYNC), 0);
	ck_assert_int_eq(munmap(a, sizeof(data)), 0);
	ck_assert_int_eq(munmap(b, sizeof(data)), 0);
	close(fd);

	size_t len;
	unsigned char *all = hx_read_file(P("f"), &len);

	ck_assert_uint_eq(len, sizeof(data));
	ck_assert(memcmp(all, data, sizeof(data)) == 0);
	free(all);
}
END_TEST

START_TEST(msync_puts_mapped_changes_in_the_file)
{
	unsigned char *data, *back;
	const size_t len = 8 * PAGE;
	int fd = open_rw(P("f")), direct;
	unsigned char *m;

	ck_assert_int_eq(posix_memalign((void **)&data, PAGE, len), 0);
	ck_assert_int_eq(posix_memalign((void **)&back, PAGE, len), 0);
	fill_pattern(data, len, 4);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	m = map(fd, len, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	memcpy(m, data, len);
	ck_assert_int_eq(msync(m, len, MS_SYNC), 0);

	/* O_DIRECT reads past the page cache: the bytes are in the filesystem. */
	direct = open(P("f"), O_RDONLY | O_DIRECT);
	ck_assert_msg(direct >= 0, "open O_DIRECT: %s", strerror(errno));
	ck_assert_int_eq(pread(direct, back, len, 0), len);
	ck_assert(memcmp(back, data, len) == 0);

	/* Again after a second change, with MS_ASYNC then fsync. */
	memset(m + 3 * PAGE + 5, 0x77, 100);
	memset(data + 3 * PAGE + 5, 0x77, 100);
	ck_assert_int_eq(msync(m, len, MS_ASYNC), 0);
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_int_eq(pread(direct, back, len, 0), len);
	ck_assert(memcmp(back, data, len) == 0);
	close(direct);

	ck_assert_int_eq(munmap(m, len), 0);
	close(fd);
	free(data);
	free(back);
}
END_TEST

START_TEST(mapping_follows_the_size_set_with_ftruncate)
{
	const size_t len = 4 * PAGE;
	unsigned char back[4 * PAGE];
	int fd = open_rw(P("f"));
	unsigned char *m;

	pwrite_all(fd, "abc", 3, 0);
	m = map(fd, len, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	/* The rest of the last page reads as zeros; beyond it is SIGBUS. */
	ck_assert(memcmp(m, "abc", 3) == 0);
	ck_assert(all_zero(m + 3, PAGE - 3));
	ck_assert_int_eq(touch(m + 2 * PAGE, 0), SIGBUS);

	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	ck_assert_int_eq(touch(m + 2 * PAGE, 0), 0);
	ck_assert(all_zero(m + PAGE, 3 * PAGE));
	memset(m + 3 * PAGE, 0x42, PAGE);
	pread_all(fd, back, sizeof(back), 0);
	ck_assert(back[3 * PAGE] == 0x42 && back[4 * PAGE - 1] == 0x42);
	ck_assert(all_zero(back + 3, 3 * PAGE - 3));

	/* Shrinking takes the pages away from the mapping too. */
	ck_assert_int_eq(ftruncate(fd, PAGE), 0);
	ck_assert_int_eq(touch(m + 3 * PAGE, 1), SIGBUS);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	ck_assert(all_zero(m + PAGE, 3 * PAGE)); /* grown again: zeros, not 0x42 */

	ck_assert_int_eq(munmap(m, len), 0);
	close(fd);
	struct stat st;

	ck_assert_int_eq(stat(P("f"), &st), 0);
	ck_assert_int_eq(st.st_size, len);
}
END_TEST

START_TEST(writes_through_a_mapping_of_a_sparse_file_allocate_like_tmpfs)
{
	const char *dirs[2] = {hx_mnt.dir, hx_tmpfs()};
	struct stat st[2];

	for (int i = 0; i < 2; i++) {
		int fd = open_rw(in(dirs[i], "f"));
		unsigned char *m;

		ck_assert_int_eq(ftruncate(fd, 1 << 20), 0);
		m = map(fd, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
		m[512 << 10] = 1;
		m[(512 << 10) + PAGE + 7] = 2;
		ck_assert_int_eq(msync(m, 1 << 20, MS_SYNC), 0);
		ck_assert_int_eq(munmap(m, 1 << 20), 0);
		ck_assert_int_eq(close(fd), 0);
		ck_assert_int_eq(stat(in(dirs[i], "f"), &st[i]), 0);
	}
	ck_assert_int_eq(st[0].st_size, 1 << 20);
	ck_assert_msg(st[0].st_blocks == st[1].st_blocks, "st_blocks memfs %lld, tmpfs %lld",
		      (long long)st[0].st_blocks, (long long)st[1].st_blocks);
}
END_TEST

START_TEST(mapping_of_an_unlinked_file_keeps_working)
{
	int fd = open_rw(P("f"));
	unsigned char *m;

	ck_assert_int_eq(ftruncate(fd, 2 * PAGE), 0);
	m = map(fd, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	ck_assert_int_eq(unlink(P("f")), 0);
	ck_assert_int_eq(close(fd), 0);
	hx_write_file(P("f"), "other", 5); /* a different file now */

	memset(m, 0x11, 2 * PAGE);
	ck_assert_int_eq(msync(m, 2 * PAGE, MS_SYNC), 0);
	ck_assert(m[0] == 0x11 && m[2 * PAGE - 1] == 0x11);
	ck_assert_int_eq(munmap(m, 2 * PAGE), 0);

	size_t len;
	char *other = hx_read_file(P("f"), &len);

	ck_assert_str_eq(other, "other");
	free(other);
}
END_TEST

/* The child's half of a two-process test: exit code 0 when all went well. */
static int child_shares_mapping(const char *path, int to_parent, int from_parent)
{
	int fd = open(path, O_RDWR);
	char c;
	unsigned char *m;

	if (fd < 0)
		return 1;
	m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return 2;
	memcpy(m + PAGE + 10, "from child", 10);
	if (write(to_parent, "w", 1) != 1 || read(from_parent, &c, 1) != 1)
		return 3;
	if (memcmp(m, "from parent", 11) != 0)
		return 4;
	munmap(m, 2 * PAGE);
	close(fd);
	return 0;
}

START_TEST(two_processes_share_a_mapping)
{
	int up[2], down[2], status;
	int fd = open_rw(P("f"));
	unsigned char *m;
	pid_t pid;
	char c;

	ck_assert_int_eq(ftruncate(fd, 2 * PAGE), 0);
	m = map(fd, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	ck_assert_int_eq(pipe(up), 0);
	ck_assert_int_eq(pipe(down), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child_shares_mapping(P("f"), up[1], down[0]));

	ck_assert_int_eq(read(up[0], &c, 1), 1);
	ck_assert(memcmp(m + PAGE + 10, "from child", 10) == 0);
	memcpy(m, "from parent", 11);
	ck_assert_int_eq(write(down[1], "r", 1), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	ck_assert_int_eq(munmap(m, 2 * PAGE), 0);
	close(fd);
	for (int i = 0; i < 2; i++) {
		close(up[i]);
		close(down[i]);
	}

	size_t len;
	unsigned char *all = hx_read_file(P("f"), &len);

	ck_assert_uint_eq(len, 2 * PAGE);
	ck_assert(memcmp(all, "from parent", 11) == 0);
	ck_assert(memcmp(all + PAGE + 10, "from child", 10) == 0);
	free(all);
}
END_TEST

/*
 * SQLite's WAL index (-shm): every connection opens the file, grows it in
 * 32 KiB regions with ftruncate, maps each region MAP_SHARED, publishes with
 * atomic stores and coordinates with fcntl byte-range locks on it.
 */
#define SHM_REGION (32 << 10)

static int child_wal_reader(const char *path, int to_parent, int from_parent)
{
	int fd = open(path, O_RDWR);
	struct flock fl = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 120, .l_len = 1};
	uint32_t *r0, *r1;
	char c;

	if (fd < 0)
		return 1;
	if (read(from_parent, &c, 1) != 1) /* the writer has grown it to two regions */
		return 2;
	r0 = mmap(NULL, SHM_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	r1 = mmap(NULL, SHM_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, fd, SHM_REGION);
	if (r0 == MAP_FAILED || r1 == MAP_FAILED)
		return 3;
	if (__atomic_load_n(&r0[0], __ATOMIC_ACQUIRE) != 3007000 || r1[100] != 0xabcdef)
		return 4;
	/* The writer holds byte 120 exclusively: a read lock must be refused. */
	if (fcntl(fd, F_SETLK, &fl) == 0 || (errno != EAGAIN && errno != EACCES))
		return 5;
	fl.l_type = F_RDLCK;
	if (fcntl(fd, F_GETLK, &fl) < 0 || fl.l_type != F_WRLCK || fl.l_pid != getppid())
		return 6;
	__atomic_store_n(&r0[1], 42u, __ATOMIC_RELEASE); /* the reader's mark */
	if (write(to_parent, "r", 1) != 1)
		return 7;
	if (read(from_parent, &c, 1) != 1) /* lock released */
		return 8;
	fl = (struct flock){.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 120, .l_len = 1};
	if (fcntl(fd, F_SETLK, &fl) < 0)
		return 9;
	munmap(r0, SHM_REGION);
	munmap(r1, SHM_REGION);
	close(fd);
	return 0;
}

START_TEST(sqlite_style_shared_memory_index_works_across_processes)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 120, .l_len = 1};
	int up[2], down[2], status;
	int fd = open_rw(P("db-shm"));
	uint32_t *r0, *r1;
	pid_t pid;
	char c;

	ck_assert_int_eq(pipe(up), 0);
	ck_assert_int_eq(pipe(down), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(child_wal_reader(P("db-shm"), up[1], down[0]));

	ck_assert_int_eq(fcntl(fd, F_SETLK, &fl), 0);
	ck_assert_int_eq(ftruncate(fd, SHM_REGION), 0);
	r0 = map(fd, SHM_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, 0);
	ck_assert_int_eq(ftruncate(fd, 2 * SHM_REGION), 0);
	r1 = map(fd, SHM_REGION, PROT_READ | PROT_WRITE, MAP_SHARED, SHM_REGION);
	r1[100] = 0xabcdef;
	__atomic_store_n(&r0[0], 3007000u, __ATOMIC_RELEASE);
	ck_assert_int_eq(write(down[1], "g", 1), 1);

	ck_assert_int_eq(read(up[0], &c, 1), 1);
	ck_assert_uint_eq(__atomic_load_n(&r0[1], __ATOMIC_ACQUIRE), 42);
	fl.l_type = F_UNLCK;
	ck_assert_int_eq(fcntl(fd, F_SETLK, &fl), 0);
	ck_assert_int_eq(write(down[1], "u", 1), 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader failed at step %d",
		      WIFEXITED(status) ? WEXITSTATUS(status) : -1);

	ck_assert_int_eq(munmap(r0, SHM_REGION), 0);
	ck_assert_int_eq(munmap(r1, SHM_REGION), 0);
	close(fd);
	for (int i = 0; i < 2; i++) {
		close(up[i]);
		close(down[i]);
	}
	/* SQLite reads the index back with read(2) after a restart. */
	fd = open(P("db-shm"), O_RDONLY);
	uint32_t word;

	pread_all(fd, &word, 4, 4);
	ck_assert_uint_eq(word, 42);
	pread_all(fd, &word, 4, SHM_REGION + 400);
	ck_assert_uint_eq(word, 0xabcdef);
	close(fd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mmap");
	TCase *tc = tcase_create("mmap");

	tcase_add_checked_fixture(tc, hx_setup, hx_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, shared_mapping_writes_are_seen_by_read);
	tcase_add_test(tc, write_is_seen_through_an_existing_mapping);
	tcase_add_test(tc, private_mapping_changes_stay_private);
	tcase_add_test(tc, msync_puts_mapped_changes_in_the_file);
	tcase_add_test(tc, mapping_follows_the_size_set_with_ftruncate);
	tcase_add_test(tc, writes_through_a_mapping_of_a_sparse_file_allocate_like_tmpfs);
	tcase_add_test(tc, mapping_of_an_unlinked_file_keeps_working);
	tcase_add_test(tc, two_processes_share_a_mapping);
	tcase_add_test(tc, sqlite_style_shared_memory_index_works_across_processes);
	suite_add_tcase(s, tc);
	return hx_run(s);
}
