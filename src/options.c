/*
 * options.c — command-line and mount options.  Every value is checked
 * strictly (no trailing garbage, no negative sizes, no zero limits) and a
 * bad one ends the program with one line naming it, before anything is
 * mounted.  Options memfs does not know are checked against the list of
 * those libfuse and mount(8) accept, so a typo is reported as such instead
 * of by libfuse's generic message.
 */
#include <ctype.h>
#include <errno.h>
#include <fuse_opt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "options.h"
#include "overlay.h"

#define DEFAULT_TIMEOUT_S 86400.0
#define MAX_WRITE_LIMIT (1u << 20) /* libfuse 3.14's largest request buffer */

/* Raw strings of the options that take values; parsed after fuse_opt. */
struct raw {
	char *size, *nr_inodes, *mode, *uid, *gid, *max_write, *cache;
	char *lower, *lower_uid, *lower_gid;
	char *entry_timeout, *attr_timeout, *negative_timeout;
	char *nonopt[3];
	int n_nonopt;
	int help, version, nocache;
	int has_fsname, has_subtype; /* the user named the mount (-1: the last name is empty) */
	int no_keep_cache, writeback, no_readdirplus, no_splice, no_cache_symlinks,
		no_cache_readdir, no_default_permissions, no_uring;
	const char *bad; /* first unknown option */
};

enum { KEY_HELP, KEY_VERSION, KEY_FUSE_FLAG };

#define RAW(t, f) {t, offsetof(struct raw, f), 1}
#define RAWS(t, f) {t, offsetof(struct raw, f), 0}

static const struct fuse_opt memfs_opts[] = {
	RAWS("size=%s", size),
	RAWS("nr_inodes=%s", nr_inodes),
	RAWS("mode=%s", mode),
	RAWS("uid=%s", uid),
	RAWS("gid=%s", gid),
	RAWS("max_write=%s", max_write),
	RAWS("cache=%s", cache),
	RAWS("lower=%s", lower),
	RAWS("lower_uid=%s", lower_uid),
	RAWS("lower_gid=%s", lower_gid),
	RAWS("entry_timeout=%s", entry_timeout),
	RAWS("attr_timeout=%s", attr_timeout),
	RAWS("negative_timeout=%s", negative_timeout),
	RAW("nocache", nocache),
	RAW("no_keep_cache", no_keep_cache),
	RAW("writeback", writeback),
	RAW("no_readdirplus", no_readdirplus),
	RAW("no_splice", no_splice),
	RAW("no_cache_symlinks", no_cache_symlinks),
	RAW("no_cache_readdir", no_cache_readdir),
	RAW("no_default_permissions", no_default_permissions),
	RAW("no_uring", no_uring),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_END,
};

/* Options libfuse (session, loop, mount) or mount(8) understand. */
static const char *const fuse_known[] = {
	"allow_other", "allow_root", "auto_unmount", "default_permissions", "blkdev", "debug",
	"clone_fd", "ro", "rw", "suid", "nosuid", "dev", "nodev", "exec", "noexec", "async",
	"sync", "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
	"strictatime", "nostrictatime", "lazytime", "nolazytime", "dirsync", NULL,
};
static const char *const fuse_known_prefix[] = {
	"fsname=", "subtype=", "max_read=", "blksize=", "max_idle_threads=", "max_threads=",
	"context=", "fscontext=", "defcontext=", "rootcontext=", "user=", NULL,
};
/* fstab words mount(8) may pass on that mean nothing to a FUSE daemon. */
static const char *const fstab_ignored[] = {
	"defaults", "auto", "noauto", "nofail", "_netdev", "user", "users", "owner", "group", NULL,
};

static int in_list(const char *opt, const char *const *list, int prefix)
{
	for (; *list; list++) {
		size_t n = strlen(*list);
		if (prefix ? strncmp(opt, *list, n) == 0 : strcmp(opt, *list) == 0)
			return 1;
	}
	return 0;
}

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct raw *raw = data;

	(void)outargs;
	switch (key) {
	case KEY_HELP:
		raw->help = 1;
		return 0;
	case KEY_VERSION:
		raw->version = 1;
		return 0;
	case FUSE_OPT_KEY_NONOPT:
		if (raw->n_nonopt < 3)
			raw->nonopt[raw->n_nonopt] = strdup(arg);
		raw->n_nonopt++;
		return 0;
	case FUSE_OPT_KEY_OPT:
		if (arg[0] == '-')
			return 1; /* -f, -d, -s: libfuse's */
		/* x-*: options for other programs (systemd, mount helpers) */
		if (in_list(arg, fstab_ignored, 0) || strncmp(arg, "comment=", 8) == 0 ||
		    strncmp(arg, "x-", 2) == 0)
			return 0;
		/* the last one counts, and the kernel refuses an empty one */
		if (strncmp(arg, "fsname=", 7) == 0)
			raw->has_fsname = arg[7] ? 1 : -1;
		if (strncmp(arg, "subtype=", 8) == 0)
			raw->has_subtype = arg[8] ? 1 : -1;
		if (in_list(arg, fuse_known, 0) || in_list(arg, fuse_known_prefix, 1))
			return 1;
		if (!raw->bad)
			raw->bad = strdup(arg);
		return 0;
	default:
		return 1;
	}
}

static int fail(const char *fmt, const char *what)
{
	fputs("memfs: ", stderr);
	fprintf(stderr, fmt, what);
	fputc('\n', stderr);
	return -1;
}

/* A decimal number with an optional k/m/g/t suffix (powers of 1024). */
static int parse_count(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	if (!s || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (tolower((unsigned char)*end)) {
	case 'k': shift = 10; end++; break;
	case 'm': shift = 20; end++; break;
	case 'g': shift = 30; end++; break;
	case 't': shift = 40; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static uint64_t ram_bytes(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);

	return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 1ull << 30;
}

/* size=: bytes with a suffix, or N% of RAM; rounded up to whole pages. */
static int parse_size(const char *s, uint64_t *out)
{
	size_t n = s ? strlen(s) : 0;
	uint64_t v;

	if (n > 1 && s[n - 1] == '%') {
		char num[32];
		if (n - 1 >= sizeof(num))
			return -1;
		memcpy(num, s, n - 1);
		num[n - 1] = '\0';
		if (parse_count(num, &v) || !isdigit((unsigned char)num[n - 2]) || v == 0 ||
		    v > 1000)
			return -1;
		v = ram_bytes() / 100 * v;
	} else if (parse_count(s, &v) || v == 0) {
		return -1;
	}
	if (v > UINT64_MAX - 4095)
		return -1;
	*out = (v + 4095) & ~(uint64_t)4095;
	return 0;
}

static int parse_id(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v >= UINT_MAX)
		return -1;
	*out = (unsigned)v;
	return 0;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || v < 0 || v > 1e9)
		return -1;
	*out = v;
	return 0;
}

/*
 * lower=DIR[:DIR...]: every directory must be named (no empty part) and at
 * most MFS_MAX_LAYERS of them.  Whether each exists and can be read is
 * checked when main opens them.
 */
static int split_lower(const char *list, struct memfs_config *cfg)
{
	unsigned n = 1;
	const char *p;

	for (p = list; *p; p++)
		n += *p == ':';
	if (n > MFS_MAX_LAYERS)
		return fail("too many lower directories in '%s' (at most 64)", list);
	cfg->lower_dirs = calloc(n, sizeof(*cfg->lower_dirs));
	if (!cfg->lower_dirs)
		return fail("%s", "out of memory");
	for (p = list; cfg->nlower < n; p++) {
		size_t len = strcspn(p, ":");
		if (len == 0)
			return fail("empty directory name in lower='%s'", list);
		cfg->lower_dirs[cfg->nlower] = strndup(p, len);
		if (!cfg->lower_dirs[cfg->nlower])
			return fail("%s", "out of memory");
		cfg->nlower++;
		p += len;
	}
	return 0;
}

static int apply(struct raw *raw, struct memfs_config *cfg)
{
	struct mfs_params *p = &cfg->params;
	uint64_t v;
	unsigned id;
	char *end;

	if (raw->size && parse_size(raw->size, &p->size_bytes))
		return fail("invalid size '%s' (expected bytes with k/m/g/t, or N%%, above 0)",
			    raw->size);
	if (raw->nr_inodes) {
		if (parse_count(raw->nr_inodes, &v) || v == 0)
			return fail("invalid nr_inodes '%s' (expected a count above 0)",
				    raw->nr_inodes);
		p->max_inodes = v;
	}
	if (raw->mode) {
		unsigned long m = strtoul(raw->mode, &end, 8);
		if (!isdigit((unsigned char)raw->mode[0]) || *end || m > 07777)
			return fail("invalid mode '%s' (expected octal, at most 7777)", raw->mode);
		p->root_mode = (mode_t)m;
		cfg->root_mode_given = 1;
	}
	if (raw->uid) {
		if (parse_id(raw->uid, &id))
			return fail("invalid uid '%s' (expected a number)", raw->uid);
		p->root_uid = id;
		cfg->root_uid_given = 1;
	}
	if (raw->gid) {
		if (parse_id(raw->gid, &id))
			return fail("invalid gid '%s' (expected a number)", raw->gid);
		p->root_gid = id;
		cfg->root_gid_given = 1;
	}
	if (raw->lower_uid) {
		if (parse_id(raw->lower_uid, &id))
			return fail("invalid lower_uid '%s' (expected a number)", raw->lower_uid);
		p->lower_uid = id;
		p->lower_uid_set = 1;
	}
	if (raw->lower_gid) {
		if (parse_id(raw->lower_gid, &id))
			return fail("invalid lower_gid '%s' (expected a number)", raw->lower_gid);
		p->lower_gid = id;
		p->lower_gid_set = 1;
	}
	if (raw->lower && split_lower(raw->lower, cfg))
		return -1;
	if (raw->max_write) {
		if (parse_count(raw->max_write, &v) || v < 4096 || v > MAX_WRITE_LIMIT)
			return fail("invalid max_write '%s' (expected 4k to 1m)", raw->max_write);
		cfg->max_write_bytes = (unsigned)v;
	}
	if (raw->entry_timeout && parse_seconds(raw->entry_timeout, &cfg->entry_timeout_s))
		return fail("invalid entry_timeout '%s' (expected seconds)", raw->entry_timeout);
	if (raw->attr_timeout && parse_seconds(raw->attr_timeout, &cfg->attr_timeout_s))
		return fail("invalid attr_timeout '%s' (expected seconds)", raw->attr_timeout);
	if (raw->negative_timeout &&
	    parse_seconds(raw->negative_timeout, &cfg->negative_timeout_s))
		return fail("invalid negative_timeout '%s' (expected seconds)",
			    raw->negative_timeout);
	/* cache= wins over what nocache implies, not over no_keep_cache */
	if (raw->cache) {
		if (strcmp(raw->cache, "always") == 0)
			cfg->cache = MEMFS_CACHE_ALWAYS;
		else if (strcmp(raw->cache, "auto") == 0)
			cfg->cache = MEMFS_CACHE_AUTO;
		else if (strcmp(raw->cache, "none") == 0)
			cfg->cache = MEMFS_CACHE_NONE;
		else
			return fail("invalid cache '%s' (expected none, auto or always)", raw->cache);
		if (raw->no_keep_cache && cfg->cache == MEMFS_CACHE_ALWAYS)
			return fail("%s", "cache=always and no_keep_cache contradict each other");
	} else if (raw->no_keep_cache || raw->nocache) {
		cfg->cache = MEMFS_CACHE_AUTO;
	}
	if (raw->nocache) {
		cfg->entry_timeout_s = cfg->attr_timeout_s = cfg->negative_timeout_s = 0;
		raw->no_keep_cache = raw->no_readdirplus = 1;
		raw->writeback = 0;
		raw->no_splice = raw->no_cache_symlinks = raw->no_cache_readdir = 1;
	}
	cfg->keep_cache = cfg->cache == MEMFS_CACHE_ALWAYS;
	cfg->writeback = raw->writeback;
	cfg->readdirplus = !raw->no_readdirplus;
	cfg->splice = !raw->no_splice;
	cfg->cache_symlinks = !raw->no_cache_symlinks;
	cfg->cache_readdir = !raw->no_cache_readdir;
	cfg->default_permissions = !raw->no_default_permissions;
	cfg->uring = !raw->no_uring;
	return 0;
}

static void defaults(struct memfs_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->params.size_bytes = (ram_bytes() / 2 + 4095) & ~(uint64_t)4095;
	cfg->params.max_inodes = ram_bytes() / 4096 / 2;
	cfg->params.root_mode = 01777;
	cfg->params.root_uid = getuid();
	cfg->params.root_gid = getgid();
	cfg->entry_timeout_s = cfg->attr_timeout_s = cfg->negative_timeout_s = DEFAULT_TIMEOUT_S;
	cfg->max_write_bytes = MAX_WRITE_LIMIT;
}

static void usage(const char *prog)
{
	printf("usage: %s [options] MOUNTPOINT\n"
	       "       %s SOURCE MOUNTPOINT -o OPTIONS   (as mount.fuse3 runs it)\n\n"
	       "A POSIX filesystem held in memory, like tmpfs, in a FUSE daemon.\n\n"
	       "memfs options:\n"
	       "    -o size=SIZE           memory for file contents: bytes with k/m/g/t\n"
	       "                           suffix or N%% of RAM (default 50%%)\n"
	       "    -o nr_inodes=N         most inodes, k/m/g suffix (default: RAM pages / 2)\n"
	       "    -o mode=OCTAL          root directory mode (default 1777)\n"
	       "    -o uid=N, -o gid=N     root directory owner (default: the caller)\n"
	       "    -o lower=DIR[:DIR...]  show these read-only directories merged (leftmost on\n"
	       "                           top) and writable; changes stay in memory, the\n"
	       "                           directories are never modified.  Without mode=, uid=,\n"
	       "                           gid= the root looks like the leftmost directory\n"
	       "    -o lower_uid=N, -o lower_gid=N\n"
	       "                           show every file from lower as owned by N\n"
	       "    -o entry_timeout=S     kernel caches names for S seconds (default 86400)\n"
	       "    -o attr_timeout=S      kernel caches attributes for S seconds (default 86400)\n"
	       "    -o negative_timeout=S  kernel caches missing names for S seconds (default 86400)\n"
	       "    -o cache=MODE          file contents in the kernel's page cache too: always\n"
	       "                           (kept across opens; default), auto (dropped at each\n"
	       "                           open) or none (never: one copy in RAM, every read and\n"
	       "                           write goes to memfs)\n"
	       "    -o no_keep_cache       the same as cache=auto\n"
	       "    -o writeback           let the kernel gather writes in its page cache (faster\n"
	       "                           small writes; a full filesystem then shows at fsync or\n"
	       "                           close, not at write; off by default)\n"
	       "    -o no_readdirplus      no attributes with directory listings\n"
	       "    -o no_splice           no splice(2) between kernel and daemon\n"
	       "    -o no_cache_symlinks   ask the daemon for every readlink\n"
	       "    -o no_cache_readdir    ask the daemon for every directory listing\n"
	       "    -o nocache             every kernel cache off and every timeout 0\n"
	       "    -o max_write=N         largest write request, 4k..1m (default 1m)\n"
	       "    -o no_uring            take every request from /dev/fuse, even where the\n"
	       "                           kernel offers FUSE over io_uring (its module parameter\n"
	       "                           enable_uring); ignored with -s, which never uses it\n"
	       "    -o no_default_permissions\n"
	       "                           the kernel stops checking permissions (memfs does not\n"
	       "                           check them either: single-user mounts only)\n\n"
	       "FUSE options:\n"
	       "    -f                     stay in the foreground\n"
	       "    -d, -o debug           print every request (implies -f)\n"
	       "    -s                     single-threaded\n"
	       "    -o allow_other         let other users use the mount\n"
	       "    -o allow_root          let root use the mount\n"
	       "    -o auto_unmount        unmount when the daemon dies\n"
	       "    -o fsname=NAME, -o subtype=NAME, -o clone_fd, -o max_idle_threads=N,\n"
	       "    -o max_threads=N, and the generic mount options (ro, nosuid, nodev, ...)\n\n"
	       "    -h, --help             print this help\n"
	       "    -V, --version          print the version\n",
	       prog, prog);
}

static void raw_free(struct raw *raw)
{
	char **s[] = {&raw->size, &raw->nr_inodes, &raw->mode, &raw->uid, &raw->gid,
		      &raw->max_write, &raw->cache, &raw->entry_timeout, &raw->attr_timeout,
		      &raw->negative_timeout, &raw->lower, &raw->lower_uid, &raw->lower_gid};
	for (size_t i = 0; i < sizeof(s) / sizeof(s[0]); i++)
		free(*s[i]);
	for (int i = 0; i < 3 && i < raw->n_nonopt; i++)
		free(raw->nonopt[i]);
	free((char *)raw->bad);
}

static int check_mountpoint(const char *path, struct memfs_config *cfg)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return fprintf(stderr, "memfs: mount point '%s': %s\n", path, strerror(errno)), -1;
	if (!S_ISDIR(st.st_mode))
		return fail("mount point '%s' is not a directory", path);
	cfg->mountpoint = realpath(path, NULL);
	if (!cfg->mountpoint)
		return fprintf(stderr, "memfs: mount point '%s': %s\n", path, strerror(errno)), -1;
	return 0;
}

/*
 * Options memfs adds for libfuse: the mount's name (SOURCE, as mount(8)
 * shows it, unless the user chose fsname= or subtype=) and
 * default_permissions.  A source fuse_opt would split, or an empty one, is
 * replaced.
 */
static int add_fuse_opts(struct memfs_config *cfg, const struct raw *raw, struct fuse_args *args)
{
	char opt[PATH_MAX + 32];
	/* the kernel refuses an empty source (mount(2) gives EINVAL) */
	const char *name = !cfg->source[0] || strpbrk(cfg->source, ",\\") ? "memfs" : cfg->source;

	if (!raw->has_subtype && fuse_opt_add_arg(args, "-osubtype=memfs"))
		return fail("%s", "out of memory");
	snprintf(opt, sizeof(opt), "-ofsname=%s", name);
	if (!raw->has_fsname && fuse_opt_add_arg(args, opt))
		return fail("%s", "out of memory");
	if (cfg->default_permissions && fuse_opt_add_arg(args, "-odefault_permissions"))
		return fail("%s", "out of memory");
	return 0;
}

int memfs_parse_options(int argc, char *argv[], struct memfs_config *cfg, struct fuse_args *args)
{
	struct raw raw = {0};
	int ret = -1;

	defaults(cfg);
	*args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
	if (fuse_opt_parse(args, &raw, memfs_opts, opt_proc) == -1)
		goto out; /* libfuse printed why (e.g. -o without a value) */
	if (raw.help) {
		usage(argv[0]);
		ret = 1;
		goto out;
	}
	if (raw.version) {
		printf("memfs %s (libfuse %s)\n", MEMFS_VERSION, fuse_pkgversion());
		ret = 1;
		goto out;
	}
	if (raw.bad) {
		fail("unknown option '%s' (see memfs --help)", raw.bad);
		goto out;
	}
	if (raw.has_fsname < 0 || raw.has_subtype < 0) {
		fail("empty %s (expected a name)", raw.has_fsname < 0 ? "fsname=" : "subtype=");
		goto out;
	}
	if (raw.n_nonopt == 0) {
		fail("%s", "no mount point given (usage: memfs [options] MOUNTPOINT)");
		goto out;
	}
	if (raw.n_nonopt > 2) {
		fail("unexpected argument '%s'", raw.nonopt[2]);
		goto out;
	}
	if (apply(&raw, cfg))
		goto out;
	cfg->source = strdup(raw.n_nonopt == 2 ? raw.nonopt[0] : "memfs");
	if (!cfg->source || check_mountpoint(raw.nonopt[raw.n_nonopt - 1], cfg) ||
	    add_fuse_opts(cfg, &raw, args))
		goto out;
	ret = 0;
out:
	raw_free(&raw);
	return ret;
}

void memfs_config_free(struct memfs_config *cfg)
{
	for (unsigned i = 0; i < cfg->nlower; i++)
		free(cfg->lower_dirs[i]);
	free(cfg->lower_dirs);
	free(cfg->source);
	free(cfg->mountpoint);
}
