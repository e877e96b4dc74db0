/*
 * fuzz_options.c — a libFuzzer target for the command line (src/options.c).
 *
 * The input is an argument vector: NUL-separated words after argv[0]
 * ("memfs"), at most 24 of them.  memfs_parse_options() must return 0, 1
 * (help/version) or -1 (one message), never crash, read out of bounds or
 * leak (LeakSanitizer checks every input), and when it accepts a command
 * line the configuration it gives must be one the daemon can use:
 *  - size= a whole number of pages above 0, nr_inodes above 0, a mode of at
 *    most 07777, max_write from 4 KiB to 1 MiB, timeouts from 0 to 10^9 s,
 *    all timeouts 0 and every cache off with nocache;
 *  - an absolute mount point that is a directory, and a source;
 *  - nothing memfs parses itself is passed on to libfuse (which would
 *    refuse it and fail the mount), and what memfs adds (subtype, fsname,
 *    default_permissions) is there.
 * Paths in the input are really looked up (stat, realpath): the target
 * only reads.
 *
 * Run with -close_fd_mask=3: the parser prints to stdout and stderr.
 */
#include <fuse_lowlevel.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "options.h"

#define MAX_ARGS 24

__attribute__((noreturn, format(printf, 1, 2))) static void finding(const char *fmt, ...);

#include <stdarg.h>

static void finding(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz_options: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Options memfs handles itself: libfuse must never see them. */
static const char *const own[] = {
	"size=", "nr_inodes=", "mode=", "uid=", "gid=", "max_write=", "entry_timeout=",
	"attr_timeout=", "negative_timeout=", "nocache", "no_keep_cache", "writeback",
	"no_readdirplus", "no_splice", "no_cache_symlinks", "no_cache_readdir",
	"no_default_permissions", "no_uring", NULL,
};

static int is_own(const char *opt, size_t len)
{
	for (const char *const *o = own; *o; o++) {
		size_t n = strlen(*o);
		if ((*o)[n - 1] == '=' ? len >= n && strncmp(opt, *o, n) == 0
				       : len == n && strncmp(opt, *o, n) == 0)
			return 1;
	}
	return 0;
}

/* The -o lists libfuse gets: no memfs option; which of ours are there. */
static void check_fuse_args(const struct fuse_args *args, int *subtype, int *fsname, int *dp)
{
	*subtype = *fsname = *dp = 0;
	for (int i = 1; i < args->argc; i++) {
		const char *a = args->argv[i];
		if (!a)
			finding("argv[%d] of %d is NULL", i, args->argc);
		if (strncmp(a, "-o", 2) != 0)
			continue;
		const char *list = a[2] ? a + 2 : (i + 1 < args->argc ? args->argv[++i] : "");
		/* fuse_opt joins options with ',' and escapes a literal one with '\' */
		for (const char *p = list; *p;) {
			const char *end = p;
			while (*end && *end != ',') {
				if (*end == '\\' && end[1])
					end++;
				end++;
			}
			size_t len = (size_t)(end - p);
			if (is_own(p, len))
				finding("memfs option '%.*s' passed on to libfuse", (int)len, p);
			/* the last one counts, and must not be empty */
			if (len >= 8 && strncmp(p, "subtype=", 8) == 0)
				*subtype = len > 8;
			if (len >= 7 && strncmp(p, "fsname=", 7) == 0)
				*fsname = len > 7;
			*dp |= len == 19 && strncmp(p, "default_permissions", 19) == 0;
			p = *end ? end + 1 : end;
		}
	}
}

static void check_config(const struct memfs_config *cfg, const struct fuse_args *args,
			 int nocache)
{
	const struct mfs_params *p = &cfg->params;
	struct stat st;
	int subtype, fsname, dp;

	if (p->size_bytes == 0 || p->size_bytes % 4096)
		finding("size %llu", (unsigned long long)p->size_bytes);
	if (p->max_inodes == 0)
		finding("nr_inodes 0");
	if (p->root_mode & ~07777u)
		finding("mode %o", (unsigned)p->root_mode);
	if (cfg->max_write_bytes < 4096 || cfg->max_write_bytes > (1u << 20))
		finding("max_write %u", cfg->max_write_bytes);
	const double t[3] = {cfg->entry_timeout_s, cfg->attr_timeout_s, cfg->negative_timeout_s};
	for (int i = 0; i < 3; i++)
		if (!(t[i] >= 0 && t[i] <= 1e9))
			finding("timeout %g", t[i]);
	/* nocache gives cache=auto unless a cache= was given (README): an
	 * explicit cache=always keeps the page cache across opens */
	if (nocache && (t[0] || t[1] || t[2] ||
			(cfg->keep_cache && cfg->cache != MEMFS_CACHE_ALWAYS) || cfg->writeback ||
			cfg->readdirplus || cfg->splice || cfg->cache_symlinks || cfg->cache_readdir))
		finding("nocache left a cache on");
	if (!cfg->source || !cfg->mountpoint)
		finding("no source or mount point");
	if (cfg->mountpoint[0] != '/')
		finding("mount point '%s' is not absolute", cfg->mountpoint);
	if (stat(cfg->mountpoint, &st) != 0 || !S_ISDIR(st.st_mode))
		finding("mount point '%s' is not a directory", cfg->mountpoint);
	check_fuse_args(args, &subtype, &fsname, &dp);
	if (!subtype || !fsname)
		finding("no subtype= or fsname= for libfuse, or an empty one");
	if (dp != cfg->default_permissions)
		finding("default_permissions %d for libfuse, %d in the configuration", dp,
			cfg->default_permissions);
}

/* Parse argv (argc words); the result, with cfg and args to free. */
static int parse(int argc, char **argv, struct memfs_config *cfg, struct fuse_args *args)
{
	int r = memfs_parse_options(argc, argv, cfg, args);

	if (r != 0 && r != 1 && r != -1)
		finding("memfs_parse_options returned %d", r);
	return r;
}

static void release(struct memfs_config *cfg, struct fuse_args *args)
{
	fuse_opt_free_args(args);
	memfs_config_free(cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1), *argv[MAX_ARGS + 4];
	int argc = 0;

	if (!copy)
		return 0;
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[argc++] = "memfs";
	for (size_t i = 0; i <= size && argc <= MAX_ARGS;) {
		argv[argc++] = copy + i;
		i += strlen(copy + i) + 1;
	}
	argv[argc] = NULL;

	struct memfs_config cfg, cfg2;
	struct fuse_args args, args2;
	int r = parse(argc, argv, &cfg, &args);

	if (r == 0) {
		check_config(&cfg, &args, 0);
		/*
		 * The same command line with "-o nocache" at the end: if it is
		 * still accepted, every cache is off and nothing else changed.
		 */
		argv[argc] = "-o";
		argv[argc + 1] = "nocache";
		argv[argc + 2] = NULL;
		if (parse(argc + 2, argv, &cfg2, &args2) == 0) {
			check_config(&cfg2, &args2, 1);
			if (memcmp(&cfg.params, &cfg2.params, sizeof(cfg.params)) != 0 ||
			    cfg.max_write_bytes != cfg2.max_write_bytes ||
			    cfg.default_permissions != cfg2.default_permissions ||
			    cfg.uring != cfg2.uring ||
			    strcmp(cfg.mountpoint, cfg2.mountpoint) != 0 ||
			    strcmp(cfg.source, cfg2.source) != 0)
				finding("-o nocache changed more than the caches");
		}
		release(&cfg2, &args2);
	}
	release(&cfg, &args);
	free(copy);
	return 0;
}
