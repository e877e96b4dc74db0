/*
 * ovl.c — helpers of the overlay integration tests (contract in ovl.h).
 */
#include "ovl.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

const char *J(const char *base, const char *rel)
{
	static char bufs[32][PATH_MAX];
	static unsigned next;
	char *b = bufs[next++ % 32];
	int len = snprintf(b, PATH_MAX, "%s/%s", base, rel);

	ck_assert_msg(len < PATH_MAX, "path too long: %s/%s", base, rel);
	return b;
}

int err_of(long rc)
{
	return rc < 0 ? errno : 0;
}

const char *ename(int e)
{
	return e ? strerrorname_np(e) : "success";
}

void ov_put(const char *path, const char *s)
{
	hx_write_file(path, s, strlen(s));
}

void ov_mkdirs(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			ck_abort_msg("mkdir %s: %s", buf, strerrorname_np(errno));
		*p = c;
		if (!c)
			break;
	}
}

void ov_symlink(const char *target, const char *path)
{
	if (symlink(target, path) < 0)
		ck_abort_msg("symlink %s -> %s: %s", path, target, strerrorname_np(errno));
}

void ov_check(const char *path, const char *want)
{
	size_t len;
	char *got = hx_read_file(path, &len);

	ck_assert_msg(len == strlen(want) && memcmp(got, want, len) == 0,
		      "%s: want \"%s\", got %zu bytes \"%.*s\"", path, want, len,
		      (int)(len > 200 ? 200 : len), got);
	free(got);
}

int ov_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

void ov_pattern(void *buf, size_t len, uint64_t seed)
{
	unsigned char *b = buf;
	uint64_t x = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)(x | 1);
	}
}

void ov_put_pattern(const char *path, size_t len, uint64_t seed)
{
	char *buf = malloc(len ? len : 1);

	ck_assert(buf);
	ov_pattern(buf, len, seed);
	hx_write_file(path, buf, len);
	free(buf);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *ov_ls(const char *dir)
{
	DIR *d = opendir(dir);
	char **names = NULL, *out = NULL;
	size_t n = 0, cap = 0, size = 0;
	struct dirent *de;
	FILE *f;

	ck_assert_msg(d, "opendir %s: %s", dir, strerrorname_np(errno));
	errno = 0;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			ck_assert(names);
		}
		names[n++] = strdup(de->d_name);
	}
	ck_assert_msg(errno == 0, "readdir %s: %s", dir, strerrorname_np(errno));
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_name);
	f = open_memstream(&out, &size);
	ck_assert(f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s%s", i ? " " : "", names[i]);
		free(names[i]);
	}
	fclose(f);
	free(names);
	return out;
}

void ov_check_ls(const char *dir, const char *want)
{
	char *got = ov_ls(dir);

	ck_assert_msg(strcmp(got, want) == 0, "ls %s: want \"%s\", got \"%s\"", dir, want, got);
	free(got);
}

uint64_t ov_used(const char *dir)
{
	struct statvfs sv;

	ck_assert_msg(statvfs(dir, &sv) == 0, "statvfs %s: %s", dir, strerrorname_np(errno));
	return (uint64_t)(sv.f_blocks - sv.f_bfree) * sv.f_frsize;
}

uint64_t ov_used_settled(const char *dir, uint64_t want)
{
	uint64_t used = ov_used(dir);

	for (int i = 0; i < 100 && used != want; i++) {
		usleep(10000);
		used = ov_used(dir);
	}
	return used;
}

void ov_check_same_file(const char *got, const char *want)
{
	size_t glen, wlen;
	char *g = hx_read_file(got, &glen), *w = hx_read_file(want, &wlen);
	size_t i = 0;

	while (i < glen && i < wlen && g[i] == w[i])
		i++;
	ck_assert_msg(glen == wlen && i == glen,
		      "%s (%zu bytes) and %s (%zu bytes) differ first at byte %zu", got, glen, want,
		      wlen, i);
	free(g);
	free(w);
}

static int uncache_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	(void)ftw;
	if (S_ISREG(st->st_mode)) {
		int fd = open(path, O_RDONLY | O_NOFOLLOW);

		ck_assert_msg(fd >= 0, "open %s: %s", path, strerrorname_np(errno));
		ck_assert_int_eq(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
		close(fd);
	}
	return 0;
}

void ov_forget(const char *dir)
{
	ck_assert_msg(nftw(dir, uncache_one, 16, FTW_PHYS) == 0, "nftw %s: %s", dir,
		      strerrorname_np(errno));
	hx_drop_caches(2);
}
