/*
 * fsdiff.c — the differential tester: one seeded random sequence of
 * filesystem operations, run step by step on two directories (a memfs mount
 * and a tmpfs), and the first place where they behave differently.
 *
 * Why: memfs promises to behave exactly like tmpfs (issue 4, section 1).
 * Hand-written tests check the cases someone thought of; this checks the
 * combinations nobody did — a truncate after a punched hole after an mmap
 * write, a rename over an open file with xattrs — with Linux as the
 * specification.
 *
 *   fsdiff [--seed N] [--steps N] [--soak MINUTES] [--memfs BIN]
 *          [--memfs-opts OPTS] [--lower] [--keep-going] [--only I,J,...]
 *          [DIR_A DIR_B]
 *
 * With --memfs, fsdiff mounts BIN (-f -o auto_unmount,OPTS) on a temp dir as
 * side A and a tmpfs as side B, both in a private mount namespace, and
 * unmounts both at the end; otherwise it compares DIR_A against DIR_B.
 * With --lower as well, every run starts from a lower tree generated from
 * the seed (files of a few chunks, directories, symlinks, hard links,
 * xattrs, over the same names the operations use) on a third tmpfs: side
 * A is a memfs mounted for that run with -o lower= over it, side B a
 * `cp -a` copy of it on the tmpfs, and the lower tree must be unchanged
 * after the run.
 * --only replays just the listed steps of the seed's sequence (what a
 * reduced reproduction prints).  --soak runs seeds N, N+1, ... until the
 * time is up; --keep-going goes on to the next seed after a divergence.
 * Exit status: 0 no divergence, 1 a divergence (or memfs crashed or exited
 * non-zero), 2 usage or setup error.
 *
 * Environment: FSDIFF_TRACE=1 prints every step and its result;
 * FSDIFF_SKIP=op,op,... never generates those operations (to look past a
 * known divergence; the sequences change); FSDIFF_REDUCE_SECONDS bounds
 * the reduction (default 120).
 *
 * How it works:
 *  - The sequence is generated from the seed alone before anything runs, over
 *    a small fixed namespace (names[]: three directories' worth of a few
 *    dozen names) and NSLOT descriptor slots, so that operations collide.
 *    A step never depends on what an earlier one returned: any subsequence
 *    is a valid sequence, which is what delta debugging needs.
 *  - Each step runs on A, then on B, each in its own fresh run directory; its
 *    result (return value, errno, bytes read, values returned) is rendered
 *    as a string, and the two strings must be equal.
 *  - After every step the two trees are compared: lstat of every name (type,
 *    mode, size, nlink, uid, gid, st_blocks, and whether mtime and ctime
 *    changed since the previous step — not atime), fstat of every open slot,
 *    sorted directory listings, symlink targets, xattrs and file contents
 *    (the SEEK_DATA/SEEK_HOLE map, then the bytes), and st_rdev of device
 *    nodes.
 *  - At the first divergence the steps up to it are reduced by delta
 *    debugging (ddmin: drop halves, quarters, ... single steps, keeping each
 *    removal after which the first divergence is still of the same kind) and
 *    printed as shell-ish lines.
 *
 * Not compared, each where it is filtered and with the reason:
 *  - documented differences (README, "Differences from tmpfs"): atime
 *    (never compared); FALLOC_FL_ZERO_RANGE (modelled on tmpfs,
 *    run_fallocate); the times of a truncate(2) to the same size (modelled,
 *    run_truncate); readdir order and d_type (listings are sorted names);
 *    the effects of -o writeback (struct side).  mmap_write only stores,
 *    so tmpfs's st_blocks after reading a hole through mmap never arises;
 *  - imposed by FUSE: lseek on a directory (run_op); device nodes cannot
 *    be opened (the tmpfs is mounted nodev and nosuid, as FUSE mounts are);
 *  - mknod makes sockets, devices and regular files but no FIFOs: opening
 *    one would block the tester;
 *  - Linux (tmpfs) bugs: the last page of the offset space
 *    (seek_hole_data); and multigrain timestamps, waited out before each
 *    step (settle_clock).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/falloc.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define TMPFS_MAGIC 0x01021994

enum {
	NSLOT = 4,	    /* descriptor slots #0..#3 */
	RES_MAX = 8192,	    /* a step's result as a string */
	REPORT_MAX = 16384, /* the description of one divergence */
	MAX_EXTENTS = 256,  /* SEEK_DATA/SEEK_HOLE extents compared per file */
	IOBUF_BYTES = 1 << 20,
	READ_CAP_BYTES = 32 << 20, /* bytes of one file compared per check */
	DEFAULT_STEPS = 1000,
	FULL_CHECK_EVERY = 4,	/* steps between comparisons of everything */
	DEFAULT_REDUCE_S = 120, /* FSDIFF_REDUCE_SECONDS overrides */
	MOUNT_TIMEOUT_MS = 30000,
	EXIT_TIMEOUT_MS = 60000,
};

/* ---------------------------------------------------------------------------
 * The namespace: every path an operation can name.
 */

static char long255[256], long256[257];		/* names at and over NAME_MAX */
static char target4095[4096], target4096[4097]; /* symlink targets at and over the limit */
static char xname255[256], xname256[257];	/* xattr names at and over XATTR_NAME_MAX */

/*
 * The first NSTATE names are compared after every step; the rest only appear
 * as operands: aliases of names above (trailing slash, "..") and a name one
 * byte too long.  No name or symlink target leaves the run directory (no
 * absolute target, no ".." in a target, none above depth 1 in a name), so
 * nothing outside it is ever touched.
 */
/* clang-format off */
static const char *const names[] = {
	".", "a", "b", "c", "f0", "f1", "f2", "s0", long255,
	"a/x", "a/y", "a/f0", "a/f1", "a/s0",
	"b/x", "b/f0", "b/f1", "b/x/f0",
	"a/x/f0", "a/x/f1", "a/x/y",
	"c/f0", "c/f1",
	/* operands only */
	"a/", "f0/", "a/x/../f1", long256,
};
/* clang-format on */
#define NNAMES ((int)(sizeof(names) / sizeof(names[0])))
#define NSTATE 23

/* clang-format off */
static const char *const targets[] = {
	"f0", "a", "a/x", "f1", "s0", "a/s0", "x/f0", "nowhere", "f0/", "b/x", "", target4095,
	target4096,
};
/* clang-format on */
#define NTARGETS ((int)(sizeof(targets) / sizeof(targets[0])))

static const char *const xnames[] = {
    "user.a", "user.b", "user.c", "user.", "trusted.t", "security.s", "bogus.x", xname255, xname256,
};
#define NXNAMES ((int)(sizeof(xnames) / sizeof(xnames[0])))

static void init_names(void)
{
	memset(long255, 'n', 255);
	memset(long256, 'n', 256);
	memset(target4095, 't', 4095);
	memset(target4096, 't', 4096);
	strcpy(xname255, "user.");
	memset(xname255 + 5, 'x', 250);
	strcpy(xname256, "user.");
	memset(xname256 + 5, 'x', 251);
}

/* A name for printing: long ones shortened. */
static const char *show(const char *s, char *buf, size_t size)
{
	size_t len = strlen(s);

	if (len <= 40)
		snprintf(buf, size, "%s", len ? s : "''");
	else
		snprintf(buf, size, "%.6s...(%zu bytes)", s, len);
	return buf;
}

/* ---------------------------------------------------------------------------
 * Deterministic randomness (splitmix64): the sequence depends on the seed only.
 */

struct rng {
	uint64_t s;
};

static uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rng_below(struct rng *r, uint64_t n)
{
	return n ? rng_next(r) % n : 0;
}

static bool chance(struct rng *r, unsigned percent)
{
	return rng_below(r, 100) < percent;
}

/* The bytes an operation writes, from its data seed; one in ten is all zeros
 * (written zeros are data, not a hole). */
static void fill(uint64_t seed, unsigned char *buf, size_t len)
{
	struct rng r = {seed};

	if (seed % 10 == 0) {
		memset(buf, 0, len);
		return;
	}
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rng_next(&r);

		memcpy(buf + i, &v, len - i < 8 ? len - i : 8);
	}
}

static uint64_t fnv(const void *p, size_t len)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

/* ---------------------------------------------------------------------------
 * Operations: what a step does, generated before anything runs.
 */

/* clang-format off */
enum op_kind {
	OP_OPEN, OP_CLOSE, OP_WRITE, OP_PWRITE, OP_READ, OP_PREAD, OP_FTRUNCATE, OP_TRUNCATE,
	OP_FALLOCATE, OP_LSEEK, OP_COPY_RANGE, OP_MMAP_WRITE, OP_FSYNC, OP_RENAME, OP_LINK,
	OP_UNLINK, OP_MKDIR, OP_RMDIR, OP_SYMLINK, OP_READLINK, OP_CHMOD, OP_FCHMOD, OP_CHOWN,
	OP_UTIMENS, OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_READDIR, OP_STAT,
	OP_MKNOD, OP_KINDS
};
/* clang-format on */

/* clang-format off */
static struct {
	const char *name;
	unsigned weight; /* how often it is generated, relative to the others */
} kinds[OP_KINDS] = {
	[OP_OPEN] = {"open", 12},          [OP_CLOSE] = {"close", 4},
	[OP_WRITE] = {"write", 7},         [OP_PWRITE] = {"pwrite", 10},
	[OP_READ] = {"read", 4},           [OP_PREAD] = {"pread", 4},
	[OP_FTRUNCATE] = {"ftruncate", 5}, [OP_TRUNCATE] = {"truncate", 2},
	[OP_FALLOCATE] = {"fallocate", 7}, [OP_LSEEK] = {"lseek", 6},
	[OP_COPY_RANGE] = {"copy_file_range", 5}, [OP_MMAP_WRITE] = {"mmap_write", 4},
	[OP_FSYNC] = {"fsync", 1},         [OP_RENAME] = {"rename", 6},
	[OP_LINK] = {"link", 3},           [OP_UNLINK] = {"unlink", 5},
	[OP_MKDIR] = {"mkdir", 3},         [OP_RMDIR] = {"rmdir", 3},
	[OP_SYMLINK] = {"symlink", 3},     [OP_READLINK] = {"readlink", 2},
	[OP_CHMOD] = {"chmod", 3},         [OP_FCHMOD] = {"fchmod", 1},
	[OP_CHOWN] = {"chown", 2},         [OP_UTIMENS] = {"utimensat", 3},
	[OP_SETXATTR] = {"setxattr", 4},   [OP_GETXATTR] = {"getxattr", 3},
	[OP_LISTXATTR] = {"listxattr", 2}, [OP_REMOVEXATTR] = {"removexattr", 2},
	[OP_READDIR] = {"readdir", 2},     [OP_STAT] = {"stat", 2},
	[OP_MKNOD] = {"mknod", 2},
};
/* clang-format on */

struct op {
	long step; /* its index in the seed's sequence */
	enum op_kind kind;
	int slot, slot2; /* descriptor slots */
	int path, path2; /* indexes into names[] */
	int target;	 /* into targets[] (symlink) or xnames[] (xattrs) */
	int flags;	 /* open, rename, fallocate, lseek whence, xattr or link flags */
	bool nofollow;	 /* the l- variant / AT_SYMLINK_NOFOLLOW */
	bool null_times; /* utimensat(..., NULL, ...) */
	unsigned mode;
	int64_t off, off2;
	uint64_t len;
	uint32_t uid, gid;
	struct timespec times[2];
	uint64_t data; /* seed of the bytes written */
};

/* FSDIFF_SKIP=kind,kind...: never generate those (to look past a known
 * divergence; the sequences of a seed change). */
static bool skip_kinds(const char *list)
{
	char *copy = strdup(list), *save = NULL;
	bool ok = copy != NULL;

	for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
	     t = strtok_r(NULL, ",", &save)) {
		int k = 0;

		while (k < OP_KINDS && strcmp(kinds[k].name, t) != 0)
			k++;
		if (k == OP_KINDS) {
			fprintf(stderr, "fsdiff: FSDIFF_SKIP: no operation '%s'\n", t);
			ok = false;
		} else {
			kinds[k].weight = 0;
		}
	}
	free(copy);
	return ok;
}

static int gen_path(struct rng *r)
{
	unsigned p = (unsigned)rng_below(r, 100);

	if (p < 4)
		return 0; /* "." */
	if (p < 10)
		return NSTATE + (int)rng_below(r, NNAMES - NSTATE);
	return 1 + (int)rng_below(r, NSTATE - 1);
}

static int gen_xname(struct rng *r)
{
	return chance(r, 70) ? (int)rng_below(r, 3) : (int)rng_below(r, NXNAMES);
}

/* Offsets and sizes: mostly small and colliding, sometimes far beyond EOF,
 * at the largest file size, or invalid. */
static int64_t gen_offset(struct rng *r)
{
	unsigned p = (unsigned)rng_below(r, 100);

	if (p < 40)
		return (int64_t)rng_below(r, 16384);
	if (p < 65)
		return (int64_t)rng_below(r, 262144);
	if (p < 80)
		return (int64_t)rng_below(r, 4 << 20);
	if (p < 88)
		return (int64_t)(rng_below(r, 1024) * 4096);
	if (p < 96)
		return (int64_t)((1ULL << 30) + rng_below(r, 1ULL << 40));
	if (p < 99)
		return INT64_MAX - (int64_t)rng_below(r, 65536);
	return -1 - (int64_t)rng_below(r, 4096);
}

static uint64_t gen_len(struct rng *r, uint64_t max)
{
	unsigned p = (unsigned)rng_below(r, 100);

	if (p < 4)
		return 0;
	if (p < 40)
		return 1 + rng_below(r, 100);
	if (p < 70)
		return 1 + rng_below(r, 8192);
	if (p < 90)
		return 1 + rng_below(r, 65536);
	return 1 + rng_below(r, max);
}

static unsigned gen_mode(struct rng *r, unsigned usual)
{
	static const unsigned common[] = {0644, 0600, 0755, 0777, 0444, 0000};

	if (chance(r, 25))
		return (unsigned)rng_below(r, 010000);
	if (chance(r, 50))
		return usual;
	return common[rng_below(r, sizeof(common) / sizeof(common[0]))];
}

static uint32_t gen_id(struct rng *r)
{
	static const uint32_t ids[] = {0, 1, 2, 1000, (uint32_t)-1};

	return ids[rng_below(r, sizeof(ids) / sizeof(ids[0]))];
}

static struct timespec gen_time(struct rng *r)
{
	unsigned p = (unsigned)rng_below(r, 100);
	struct timespec ts = {0, 0};

	if (p < 30) {
		ts.tv_nsec = UTIME_NOW;
	} else if (p < 50) {
		ts.tv_nsec = UTIME_OMIT;
	} else {
		ts.tv_sec = (time_t)rng_below(r, 2000000000);
		if (p < 55)
			ts.tv_sec = -(time_t)rng_below(r, 1000000000); /* before 1970 */
		else if (p < 58)
			ts.tv_sec =
			    (time_t)(1ULL << 34) + (time_t)rng_below(r, 1000); /* after 2038 */
		ts.tv_nsec = (long)rng_below(r, 1000000000);
	}
	return ts;
}

static int gen_open_flags(struct rng *r)
{
	static const int acc[] = {O_RDONLY, O_WRONLY, O_RDWR, O_RDWR, O_RDWR};
	int f = acc[rng_below(r, 5)];

	if (chance(r, 60))
		f |= O_CREAT;
	if (chance(r, 10))
		f |= O_EXCL;
	if (chance(r, 20))
		f |= O_TRUNC;
	if (chance(r, 15))
		f |= O_APPEND;
	if (chance(r, 3))
		f |= O_DIRECTORY;
	if (chance(r, 5))
		f |= O_NOFOLLOW;
	return f;
}

static int gen_falloc_mode(struct rng *r)
{
	static const int odd[] = {FALLOC_FL_PUNCH_HOLE, FALLOC_FL_COLLAPSE_RANGE,
				  FALLOC_FL_INSERT_RANGE,
				  FALLOC_FL_ZERO_RANGE | FALLOC_FL_PUNCH_HOLE};
	unsigned p = (unsigned)rng_below(r, 100);

	if (p < 28)
		return 0;
	if (p < 52)
		return FALLOC_FL_KEEP_SIZE;
	if (p < 82)
		return FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
	if (p < 89)
		return FALLOC_FL_ZERO_RANGE;
	if (p < 96)
		return FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	return odd[rng_below(r, sizeof(odd) / sizeof(odd[0]))];
}

static enum op_kind gen_kind(struct rng *r)
{
	unsigned total = 0, pick;

	for (int k = 0; k < OP_KINDS; k++)
		total += kinds[k].weight;
	pick = (unsigned)rng_below(r, total);
	for (int k = 0; k < OP_KINDS; k++) {
		if (pick < kinds[k].weight)
			return (enum op_kind)k;
		pick -= kinds[k].weight;
	}
	return OP_STAT;
}

/*
 * What the generator believes about the tree and the slots, to aim
 * operations mostly at names and descriptors where they do something (a
 * sequence of ENOENTs and EBADFs tests little).  Only a belief: the
 * sequence must not depend on results, so it is a rough model of POSIX
 * (no symlinks followed, no permissions) updated by model_apply().
 */
struct gen_state {
	bool slot_open[NSLOT];
	char kind[NSTATE]; /* 0: nothing, 'f' file, 'd' directory, 'l' symlink */
};

static int name_index(const char *name)
{
	for (int i = 0; i < NSTATE; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

/* The index of a name's parent (0 for the top), -1 if not in names[]. */
static int parent_index(int i)
{
	const char *slash = strrchr(names[i], '/');
	char buf[64];

	if (!slash)
		return 0;
	snprintf(buf, sizeof(buf), "%.*s", (int)(slash - names[i]), names[i]);
	return name_index(buf);
}

static bool parent_is_dir(const struct gen_state *g, int i)
{
	int p = parent_index(i);

	return p >= 0 && g->kind[p] == 'd';
}

static bool has_children(const struct gen_state *g, int i)
{
	size_t len = strlen(names[i]);

	for (int q = 1; q < NSTATE; q++)
		if (g->kind[q] && strncmp(names[q], names[i], len) == 0 && names[q][len] == '/')
			return true;
	return false;
}

/* Usually directories: mkdir prefers them. */
static bool dir_like(int i)
{
	const char *base = strrchr(names[i], '/');

	base = base ? base + 1 : names[i];
	return strlen(base) == 1;
}

/*
 * A name of one of the kinds in want ("fdl": anything that exists), or with
 * want "" one that does not exist in an existing directory (dirs: prefer
 * directory-like names); now and then any name at all.
 */
static int pick_name(struct rng *r, const struct gen_state *g, const char *want, bool dirs)
{
	int cand[NSTATE], n = 0, pref[NSTATE], np = 0;

	if (chance(r, 8))
		return gen_path(r);
	for (int i = 1; i < NSTATE; i++) {
		bool ok = want[0] ? g->kind[i] && strchr(want, g->kind[i])
				  : !g->kind[i] && parent_is_dir(g, i);

		if (!ok)
			continue;
		cand[n++] = i;
		if (dir_like(i) == dirs)
			pref[np++] = i;
	}
	if (!want[0] && np && chance(r, 80))
		return pref[rng_below(r, (uint64_t)np)];
	if (!n)
		return gen_path(r);
	return cand[rng_below(r, (uint64_t)n)];
}

/* Move what is under name from (a directory) to name to. */
static void model_move_children(struct gen_state *g, int from, int to)
{
	char kinds[NSTATE];
	size_t len = strlen(names[from]);

	memcpy(kinds, g->kind, sizeof(kinds));
	for (int q = 1; q < NSTATE; q++) {
		char buf[600];
		int t;

		if (!kinds[q] || strncmp(names[q], names[from], len) != 0 || names[q][len] != '/')
			continue;
		g->kind[q] = 0;
		snprintf(buf, sizeof(buf), "%s%s", names[to], names[q] + len);
		t = name_index(buf);
		if (t > 0)
			g->kind[t] = kinds[q];
	}
}

static void model_rename(struct gen_state *g, const struct op *op)
{
	int o = op->path, n = op->path2;
	char ko, kn;

	if (o <= 0 || o >= NSTATE || n <= 0 || n >= NSTATE || o == n || !g->kind[o] ||
	    !parent_is_dir(g, n))
		return;
	ko = g->kind[o];
	kn = g->kind[n];
	if (op->flags == RENAME_EXCHANGE) {
		if (!kn)
			return;
		g->kind[o] = kn;
		g->kind[n] = ko;
		return; /* (children not swapped: a belief, not a model) */
	}
	if (kn && (op->flags == RENAME_NOREPLACE || (kn == 'd') != (ko == 'd') ||
		   (kn == 'd' && has_children(g, n))))
		return;
	g->kind[n] = ko;
	g->kind[o] = 0;
	if (ko == 'd')
		model_move_children(g, o, n);
}

static void model_apply(struct gen_state *g, const struct op *op)
{
	int p = op->path, q = op->path2;
	bool in = (p > 0 && p < NSTATE);
	bool in2 = (q > 0 && q < NSTATE);

	switch (op->kind) {
	case OP_OPEN: {
		bool existed = in && g->kind[p];

		if (in && (op->flags & O_CREAT) && !existed && parent_is_dir(g, p))
			g->kind[p] = 'f';
		g->slot_open[op->slot] =
		    in && g->kind[p] == 'f' && !(op->flags & O_DIRECTORY) &&
		    !(existed && (op->flags & O_EXCL) && (op->flags & O_CREAT));
		break;
	}
	case OP_CLOSE:
		g->slot_open[op->slot] = false;
		break;
	case OP_MKDIR:
		if (in && !g->kind[p] && parent_is_dir(g, p))
			g->kind[p] = 'd';
		break;
	case OP_MKNOD: /* a socket or device node is a non-directory, as files are */
		if (in && !g->kind[p] && parent_is_dir(g, p))
			g->kind[p] = 'f';
		break;
	case OP_SYMLINK:
		if (in && !g->kind[p] && parent_is_dir(g, p) && targets[op->target][0] &&
		    strlen(targets[op->target]) < 4096)
			g->kind[p] = 'l';
		break;
	case OP_LINK:
		if (in && in2 && (g->kind[p] == 'f' || g->kind[p] == 'l') && !g->kind[q] &&
		    parent_is_dir(g, q))
			g->kind[q] = g->kind[p];
		break;
	case OP_UNLINK:
		if (in && (g->kind[p] == 'f' || g->kind[p] == 'l'))
			g->kind[p] = 0;
		break;
	case OP_RMDIR:
		if (in && g->kind[p] == 'd' && !has_children(g, p))
			g->kind[p] = 0;
		break;
	case OP_RENAME:
		model_rename(g, op);
		break;
	default:
		break;
	}
}

static int gen_slot(struct rng *r, const struct gen_state *g)
{
	int open[NSLOT], n = 0;

	for (int i = 0; i < NSLOT; i++)
		if (g->slot_open[i])
			open[n++] = i;
	if (n == 0 || chance(r, 5))
		return (int)rng_below(r, NSLOT);
	return open[rng_below(r, (uint64_t)n)];
}

/* One step: operands aimed by the generator's beliefs, then the model updated. */
static void gen_op(struct rng *r, struct gen_state *g, long step, struct op *op)
{
	unsigned p;

	memset(op, 0, sizeof(*op));
	op->step = step;
	op->kind = gen_kind(r);
	op->slot = gen_slot(r, g);
	op->slot2 = gen_slot(r, g);
	op->path = pick_name(r, g, "fdl", false);
	op->path2 = pick_name(r, g, "fdl", false);
	op->nofollow = chance(r, 30);
	op->data = rng_next(r);
	switch (op->kind) {
	case OP_OPEN:
		op->slot = (int)rng_below(r, NSLOT);
		op->flags = gen_open_flags(r);
		op->path =
		    pick_name(r, g, (op->flags & O_CREAT) && chance(r, 50) ? "" : "f", false);
		op->mode = gen_mode(r, 0644);
		break;
	case OP_WRITE:
	case OP_READ:
		op->len = gen_len(r, 512 << 10);
		break;
	case OP_PWRITE:
	case OP_PREAD:
		op->off = gen_offset(r);
		op->len = gen_len(r, 512 << 10);
		break;
	case OP_TRUNCATE:
		op->path = pick_name(r, g, "f", false);
		op->off = gen_offset(r);
		break;
	case OP_FTRUNCATE:
		op->off = gen_offset(r);
		break;
	case OP_FALLOCATE:
		op->flags = gen_falloc_mode(r);
		op->off = gen_offset(r);
		op->len = gen_len(r, 256 << 10);
		/* a huge punch must cost nothing (only punching: the other modes
		 * allocate what they cover) */
		if (op->flags == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) && chance(r, 10))
			op->len = 1ULL << (30 + rng_below(r, 20));
		break;
	case OP_LSEEK: {
		static const int whence[] = {SEEK_SET,	SEEK_CUR,  SEEK_END,  SEEK_DATA, SEEK_DATA,
					     SEEK_DATA, SEEK_HOLE, SEEK_HOLE, SEEK_HOLE};

		op->flags = whence[rng_below(r, sizeof(whence) / sizeof(whence[0]))];
		op->off = chance(r, 20) ? 0 : gen_offset(r);
		break;
	}
	case OP_COPY_RANGE:
		op->flags = chance(r, 80); /* explicit offsets, else the file positions */
		op->off = gen_offset(r);
		op->off2 = gen_offset(r);
		op->len = gen_len(r, 512 << 10);
		break;
	case OP_MMAP_WRITE:
		op->off = chance(r, 70) ? (int64_t)rng_below(r, 65536) : gen_offset(r);
		op->len = 1 + rng_below(r, chance(r, 70) ? 8192 : 65536);
		break;
	case OP_FSYNC:
		op->flags = chance(r, 50); /* fdatasync */
		break;
	case OP_RENAME:
		op->path2 = pick_name(r, g, chance(r, 50) ? "" : "fdl", false);
		p = (unsigned)rng_below(r, 100);
		op->flags = p < 60 ? 0 : p < 80 ? RENAME_NOREPLACE : RENAME_EXCHANGE;
		break;
	case OP_LINK:
		op->path = pick_name(r, g, "f", false);
		op->path2 = pick_name(r, g, "", false);
		op->flags = chance(r, 20) ? AT_SYMLINK_FOLLOW : 0;
		break;
	case OP_UNLINK:
		op->path = pick_name(r, g, chance(r, 80) ? "fl" : "fdl", false);
		break;
	case OP_RMDIR:
		op->path = pick_name(r, g, chance(r, 80) ? "d" : "fdl", false);
		break;
	case OP_MKDIR:
		op->path = pick_name(r, g, "", true);
		op->mode = gen_mode(r, 0755);
		break;
	case OP_MKNOD: {
		/* no FIFOs: opening one would block */
		static const unsigned types[] = {S_IFREG, S_IFSOCK, S_IFCHR, S_IFBLK};
		op->path = pick_name(r, g, "", false);
		op->mode = types[rng_below(r, 4)] | gen_mode(r, 0644);
		op->off = (int64_t)makedev(1 + rng_below(r, 8), rng_below(r, 300));
		break;
	}
	case OP_SYMLINK:
		op->path = pick_name(r, g, "", false);
		op->target = (int)rng_below(r, NTARGETS);
		break;
	case OP_READLINK:
		op->path = pick_name(r, g, "l", false);
		op->len = chance(r, 80) ? 4096 : 1 + rng_below(r, 8);
		break;
	case OP_READDIR:
		op->path = pick_name(r, g, "d", false);
		break;
	case OP_CHMOD:
	case OP_FCHMOD:
		op->mode = (unsigned)rng_below(r, 010000);
		break;
	case OP_CHOWN:
		op->uid = gen_id(r);
		op->gid = gen_id(r);
		break;
	case OP_UTIMENS:
		op->null_times = chance(r, 10);
		op->times[0] = gen_time(r);
		op->times[1] = gen_time(r);
		break;
	case OP_SETXATTR:
		p = (unsigned)rng_below(r, 100);
		op->target = gen_xname(r);
		op->len = p < 10   ? 0
			  : p < 60 ? 1 + rng_below(r, 64)
			  : p < 92 ? 1 + rng_below(r, 4096)
			  : p < 96 ? 65536
			  : p < 98 ? 65537
				   : 1 + rng_below(r, 65536);
		p = (unsigned)rng_below(r, 100);
		op->flags = p < 60 ? 0 : p < 80 ? XATTR_CREATE : XATTR_REPLACE;
		break;
	case OP_GETXATTR:
	case OP_LISTXATTR:
		p = (unsigned)rng_below(r, 100);
		op->target = gen_xname(r);
		op->len = p < 25 ? 0 : p < 85 ? 65536 : 1 + rng_below(r, 8);
		break;
	case OP_REMOVEXATTR:
		op->target = gen_xname(r);
		break;
	case OP_CLOSE:
	case OP_STAT:
	case OP_KINDS:
		break;
	}
	model_apply(g, op);
}

/* ---------------------------------------------------------------------------
 * Printing an operation as a shell-ish line.
 */

static void addf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void addf(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static const char *open_flags_str(int f, char *buf, size_t size)
{
	static const struct {
		int flag;
		const char *name;
	} bits[] = {{O_CREAT, "O_CREAT"},	  {O_EXCL, "O_EXCL"},
		    {O_TRUNC, "O_TRUNC"},	  {O_APPEND, "O_APPEND"},
		    {O_DIRECTORY, "O_DIRECTORY"}, {O_NOFOLLOW, "O_NOFOLLOW"}};
	int acc = f & O_ACCMODE;

	snprintf(buf, size, "%s",
		 acc == O_RDONLY   ? "O_RDONLY"
		 : acc == O_WRONLY ? "O_WRONLY"
				   : "O_RDWR");
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (f & bits[i].flag)
			addf(buf, size, "|%s", bits[i].name);
	return buf;
}

static const char *falloc_mode_str(int m, char *buf, size_t size)
{
	static const struct {
		int flag;
		const char *name;
	} bits[] = {{FALLOC_FL_PUNCH_HOLE, "PUNCH_HOLE"},
		    {FALLOC_FL_ZERO_RANGE, "ZERO_RANGE"},
		    {FALLOC_FL_COLLAPSE_RANGE, "COLLAPSE_RANGE"},
		    {FALLOC_FL_INSERT_RANGE, "INSERT_RANGE"},
		    {FALLOC_FL_KEEP_SIZE, "KEEP_SIZE"}};

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++)
		if (m & bits[i].flag)
			addf(buf, size, "%s%s", buf[0] ? "|" : "", bits[i].name);
	if (!buf[0])
		snprintf(buf, size, "0");
	return buf;
}

static const char *time_str(struct timespec ts, char *buf, size_t size)
{
	if (ts.tv_nsec == UTIME_NOW)
		snprintf(buf, size, "now");
	else if (ts.tv_nsec == UTIME_OMIT)
		snprintf(buf, size, "omit");
	else
		snprintf(buf, size, "%lld.%09ld", (long long)ts.tv_sec, ts.tv_nsec);
	return buf;
}

static const char *id_str(uint32_t id, char *buf, size_t size)
{
	snprintf(buf, size, "%d", id == (uint32_t)-1 ? -1 : (int)id);
	return buf;
}

static void format_op(const struct op *op, char *out, size_t size)
{
	char p1[64], p2[64], t[64], u[64];
	const char *k = kinds[op->kind].name, *nf = op->nofollow ? " nofollow" : "";

	show(names[op->path], p1, sizeof(p1));
	show(names[op->path2], p2, sizeof(p2));
	out[0] = '\0';
	switch (op->kind) {
	case OP_OPEN:
		addf(out, size, "open #%d %s %s 0%o", op->slot, p1,
		     open_flags_str(op->flags, t, sizeof(t)), op->mode);
		break;
	case OP_CLOSE:
		addf(out, size, "close #%d", op->slot);
		break;
	case OP_WRITE:
	case OP_READ:
		addf(out, size, "%s #%d %" PRIu64, k, op->slot, op->len);
		break;
	case OP_PWRITE:
	case OP_PREAD:
		addf(out, size, "%s #%d %" PRId64 " %" PRIu64, k, op->slot, op->off, op->len);
		break;
	case OP_MMAP_WRITE:
		addf(out, size, "mmap_write #%d %" PRId64 " %" PRIu64 " (MAP_SHARED, msync)",
		     op->slot, op->off, op->len);
		break;
	case OP_FTRUNCATE:
		addf(out, size, "ftruncate #%d %" PRId64, op->slot, op->off);
		break;
	case OP_TRUNCATE:
		addf(out, size, "truncate %s %" PRId64, p1, op->off);
		break;
	case OP_FALLOCATE:
		addf(out, size, "fallocate #%d %s %" PRId64 " %" PRIu64, op->slot,
		     falloc_mode_str(op->flags, t, sizeof(t)), op->off, op->len);
		break;
	case OP_LSEEK: {
		static const char *const wn[] = {"SEEK_SET", "SEEK_CUR", "SEEK_END", "SEEK_DATA",
						 "SEEK_HOLE"};

		addf(out, size, "lseek #%d %" PRId64 " %s", op->slot, op->off, wn[op->flags]);
		break;
	}
	case OP_COPY_RANGE:
		if (op->flags)
			addf(out, size, "copy_file_range #%d %" PRId64 " #%d %" PRId64 " %" PRIu64,
			     op->slot, op->off, op->slot2, op->off2, op->len);
		else
			addf(out, size, "copy_file_range #%d pos #%d pos %" PRIu64, op->slot,
			     op->slot2, op->len);
		break;
	case OP_FSYNC:
		addf(out, size, "%s #%d", op->flags ? "fdatasync" : "fsync", op->slot);
		break;
	case OP_RENAME:
		addf(out, size, "rename %s %s%s", p1, p2,
		     op->flags == RENAME_NOREPLACE  ? " NOREPLACE"
		     : op->flags == RENAME_EXCHANGE ? " EXCHANGE"
						    : "");
		break;
	case OP_LINK:
		addf(out, size, "link %s %s%s", p1, p2, op->flags ? " FOLLOW" : "");
		break;
	case OP_UNLINK:
	case OP_RMDIR:
	case OP_READDIR:
		addf(out, size, "%s %s", k, p1);
		break;
	case OP_STAT:
		addf(out, size, "stat %s%s", p1, nf);
		break;
	case OP_MKDIR:
		addf(out, size, "mkdir %s 0%o", p1, op->mode);
		break;
	case OP_MKNOD:
		addf(out, size, "mknod %s 0%o %u:%u", p1, op->mode, major((dev_t)op->off),
		     minor((dev_t)op->off));
		break;
	case OP_SYMLINK:
		addf(out, size, "symlink %s %s", show(targets[op->target], t, sizeof(t)), p1);
		break;
	case OP_READLINK:
		addf(out, size, "readlink %s %" PRIu64, p1, op->len);
		break;
	case OP_CHMOD:
		addf(out, size, "chmod %s 0%o", p1, op->mode);
		break;
	case OP_FCHMOD:
		addf(out, size, "fchmod #%d 0%o", op->slot, op->mode);
		break;
	case OP_CHOWN:
		addf(out, size, "chown %s %s ", p1, id_str(op->uid, t, sizeof(t)));
		addf(out, size, "%s%s", id_str(op->gid, u, sizeof(u)), nf);
		break;
	case OP_UTIMENS:
		if (op->null_times) {
			addf(out, size, "utimensat %s NULL%s", p1, nf);
			break;
		}
		addf(out, size, "utimensat %s %s ", p1, time_str(op->times[0], t, sizeof(t)));
		addf(out, size, "%s%s", time_str(op->times[1], u, sizeof(u)), nf);
		break;
	case OP_SETXATTR:
		addf(out, size, "setxattr %s %s %" PRIu64 " %s%s", p1,
		     show(xnames[op->target], t, sizeof(t)), op->len,
		     op->flags == XATTR_CREATE	  ? "CREATE"
		     : op->flags == XATTR_REPLACE ? "REPLACE"
						  : "0",
		     nf);
		break;
	case OP_GETXATTR:
		addf(out, size, "getxattr %s %s %" PRIu64 "%s", p1,
		     show(xnames[op->target], t, sizeof(t)), op->len, nf);
		break;
	case OP_LISTXATTR:
		addf(out, size, "listxattr %s %" PRIu64 "%s", p1, op->len, nf);
		break;
	case OP_REMOVEXATTR:
		addf(out, size, "removexattr %s %s%s", p1, show(xnames[op->target], t, sizeof(t)),
		     nf);
		break;
	case OP_KINDS:
		break;
	}
}

/* ---------------------------------------------------------------------------
 * The two sides and running one step on one of them.
 */

struct snap_entry {
	int err; /* lstat's (or fstat's) errno; 0 when it exists */
	struct stat st;
};

struct snap {
	struct snap_entry name[NSTATE];
	struct snap_entry slot[NSLOT];
};

struct side {
	char top[PATH_MAX];  /* the directory under test */
	char root[PATH_MAX]; /* top/fsdiff-PID-N: this run's directory */
	int rootfd;
	int fd[NSLOT]; /* the descriptor slots, -1 when closed */
	/*
	 * A tmpfs.  Documented difference: tmpfs has no FALLOC_FL_ZERO_RANGE
	 * (README, "Differences from tmpfs"), so on a tmpfs it is replaced by
	 * its model (run_fallocate).  Two tmpfs quirks are allowed for as
	 * well: seek_hole_data() and time_unchanged_is_ambiguous().
	 */
	bool is_tmpfs;
	/*
	 * Documented differences of memfs -o writeback (README, "Write-through
	 * (the default) and -o writeback"), set on both sides when A has it:
	 * the kernel keeps written data in its page cache (memfs counts no
	 * blocks for it yet) and the mtime/ctime of written files itself, and
	 * SEEK_DATA/SEEK_HOLE report no holes.  Those are not compared for
	 * regular files.
	 */
	bool writeback;
	struct snap prev, cur;
};

static unsigned char *iobuf, *iobuf2;

static const char *errname(int e)
{
	const char *n = strerrorname_np(e);

	return n ? n : "E?";
}

static void add_ret(char *res, long ret, int err)
{
	if (ret < 0)
		addf(res, RES_MAX, "-1 %s", errname(err));
	else
		addf(res, RES_MAX, "%ld", ret);
}

/* RET(expr): append the return value (or -1 and errno's name) of a call. */
#define RET(expr)                                                                                  \
	do {                                                                                       \
		long ret_ = (long)(expr);                                                          \
		add_ret(res, ret_, errno);                                                         \
	} while (0)

static void full_path(const struct side *s, const char *rel, char *buf)
{
	if (snprintf(buf, PATH_MAX, "%s/%s", s->root, rel) >= PATH_MAX)
		buf[0] = '\0'; /* cannot happen: names are short, roots shorter */
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The NUL-separated xattr names in list[0..len), sorted, appended to out. */
static void add_sorted_xattr_names(char *out, size_t size, const char *list, ssize_t len)
{
	const char *v[512];
	int n = 0;
	char b[64];

	for (ssize_t i = 0; i < len && n < 512; i += (ssize_t)strlen(list + i) + 1)
		v[n++] = list + i;
	qsort(v, (size_t)n, sizeof(v[0]), cmp_str);
	for (int i = 0; i < n; i++)
		addf(out, size, " %s", show(v[i], b, sizeof(b)));
}

/* The sorted names of a directory ("." and ".." included), appended to out;
 * the errno when it cannot be listed. */
static int add_listing(char *out, size_t size, int dirfd, const char *path)
{
	char *v[1024], b[64];
	int n = 0, fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
	DIR *d;
	struct dirent *de;

	if (fd < 0)
		return errno;
	d = fdopendir(fd);
	if (!d) {
		int e = errno;

		close(fd);
		return e;
	}
	errno = 0;
	while ((de = readdir(d)) && n < 1024)
		v[n++] = strdup(de->d_name);
	int e = errno;

	closedir(d);
	qsort(v, (size_t)n, sizeof(v[0]), cmp_str);
	addf(out, size, "%d:", n);
	for (int i = 0; i < n; i++) {
		addf(out, size, " %s", v[i] ? show(v[i], b, sizeof(b)) : "(strdup failed)");
		free(v[i]);
	}
	return e;
}

static void add_stat(char *res, const struct stat *st)
{
	addf(res, RES_MAX, " type=0%o mode=0%o size=%lld nlink=%lu uid=%u gid=%u blocks=%lld",
	     st->st_mode & S_IFMT, st->st_mode & 07777, (long long)st->st_size,
	     (unsigned long)st->st_nlink, st->st_uid, st->st_gid, (long long)st->st_blocks);
	if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
		addf(res, RES_MAX, " rdev=%u:%u", major(st->st_rdev), minor(st->st_rdev));
}

/*
 * lseek(SEEK_DATA or SEEK_HOLE).  Linux bugs, not memfs differences: tmpfs
 * gets the last page of the offset space, [LAST_PAGE, 2^63), wrong — the end
 * of that page overflows off_t.  SEEK_DATA does not find data there
 * (ENXIO), and SEEK_HOLE in it returns 2^63 when the size is LLONG_MAX
 * instead of the size.  That impossible result is read as the size here;
 * and the data/hole map of a file reaching into that page is compared only
 * below it (extents()), and SEEK_DATA/SEEK_HOLE in such a file not at all
 * (run_op).  memfs answers there as lseek(2) says.
 */
#define LAST_PAGE (INT64_MAX & ~(off_t)4095)

static off_t seek_hole_data(const struct side *s, int fd, off_t off, int whence)
{
	struct stat st;
	off_t r = lseek(fd, off, whence);

	if (s->is_tmpfs && whence == SEEK_HOLE && r == INT64_MIN && fstat(fd, &st) == 0)
		return st.st_size;
	return r;
}

/*
 * copy_file_range.  Documented difference (README, "Differences from
 * tmpfs"): memfs keeps the source's holes as holes in the destination,
 * tmpfs writes zeros there (blocks, and data for SEEK_DATA); the bytes are
 * the same.  On a tmpfs side the copy is the kernel's (its checks, result,
 * errno and offsets stand) and is then given memfs's semantics, which are
 * mfs_data_copy()'s: every destination range copied from a source hole
 * (SEEK_DATA's: fallocated pages are holes too) is punched.  A partial page
 * at either end of the copied range that received nothing but hole keeps,
 * on memfs, the state it had (absent, fallocated or data); tmpfs's copy
 * made it data, so it is put back.  The last page of the offset space is
 * taken as data in the source (tmpfs cannot say, see LAST_PAGE); in the
 * destination tmpfs cannot free it (no punch covers its last byte), so a
 * copy reaching into it makes it data on both sides (run_copy).
 */
enum page_state { PAGE_UNKNOWN, PAGE_ABSENT, PAGE_FALLOCATED, PAGE_DATA };

struct copy_model {
	off_t in0, out0, n;	     /* the range the copy is expected to cover */
	off_t holes[MAX_EXTENTS][2]; /* source holes in it (absolute offsets) */
	int nholes;
	off_t edge[2]; /* first and last destination page, -1: none */
	enum page_state edge_state[2];
};

static int reopen_ro(int fd)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	return open(path, O_RDONLY);
}

/* The bytes of the page at off that a file can have (the last one: one less). */
static off_t page_len(off_t off)
{
	return off > INT64_MAX - 4096 ? INT64_MAX - off : 4096;
}

static void punch(int fd, off_t off, off_t len)
{
	if (len > 0)
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
}

/*
 * Is the destination page at off absent, fallocated or data?  SEEK_DATA
 * tells data; absent and fallocated differ only in st_blocks, so the page is
 * fallocated (KEEP_SIZE) and blocks compared, and the page is put back: an
 * absent one punched, a fallocated one (which a second fallocate turns into
 * data on tmpfs) punched and fallocated anew.
 */
static enum page_state probe_page(int fd, int ro, off_t off)
{
	struct stat a, b;
	off_t d = lseek(ro, off, SEEK_DATA);

	if (d >= 0 && d < off + 4096)
		return PAGE_DATA;
	if (fstat(fd, &a) < 0 || fallocate(fd, FALLOC_FL_KEEP_SIZE, off, page_len(off)) < 0 ||
	    fstat(fd, &b) < 0)
		return PAGE_UNKNOWN;
	punch(fd, off, page_len(off));
	if (b.st_blocks == a.st_blocks) {
		fallocate(fd, FALLOC_FL_KEEP_SIZE, off, page_len(off));
		return PAGE_FALLOCATED;
	}
	return PAGE_ABSENT;
}

/* Will this copy write something?  Only then may its pages be probed. */
static bool copy_will_write(int fd, int fd2, off_t in0, off_t out0, uint64_t len, off_t *n)
{
	struct stat si, so;
	int fi = fcntl(fd, F_GETFL), fo = fcntl(fd2, F_GETFL);

	if (fi < 0 || fo < 0 || (fi & O_ACCMODE) == O_WRONLY || (fo & O_ACCMODE) == O_RDONLY ||
	    (fo & O_APPEND) || fstat(fd, &si) < 0 || fstat(fd2, &so) < 0 || !S_ISREG(si.st_mode) ||
	    !S_ISREG(so.st_mode) || in0 < 0 || out0 < 0 || len == 0 || in0 >= si.st_size)
		return false;
	*n = (off_t)len < si.st_size - in0 ? (off_t)len : si.st_size - in0;
	if (out0 >= INT64_MAX)
		return false; /* EFBIG */
	if (*n > INT64_MAX - out0)
		*n = INT64_MAX - out0; /* a short copy, up to the largest size */
	if (si.st_ino == so.st_ino && in0 < out0 + *n && out0 < in0 + *n)
		return false; /* overlapping: EINVAL */
	return true;
}

static void model_copy_before(int fd, int fd2, struct copy_model *m)
{
	int ri = reopen_ro(fd), ro = reopen_ro(fd2);
	off_t pos = m->in0, end = m->in0 + m->n;

	m->nholes = 0;
	while (ri >= 0 && pos < end && pos < LAST_PAGE && m->nholes < MAX_EXTENTS) {
		off_t d = lseek(ri, pos, SEEK_DATA), h;

		if (d < 0 || d > end)
			d = end; /* ENXIO: a hole to the end */
		if (d > LAST_PAGE)
			d = LAST_PAGE;
		if (d > pos) {
			m->holes[m->nholes][0] = pos;
			m->holes[m->nholes][1] = d;
			m->nholes++;
		}
		if (d >= end || d >= LAST_PAGE)
			break;
		h = lseek(ri, d, SEEK_HOLE);
		if (h <= d)
			break;
		pos = h;
	}
	m->edge[0] = m->out0 & ~(off_t)4095;
	m->edge[1] = (m->out0 + m->n - 1) & ~(off_t)4095;
	if (m->edge[0] == m->out0 && m->out0 + m->n >= m->edge[0] + 4096)
		m->edge[0] = -1; /* covered whole */
	if ((m->out0 + m->n) % 4096 == 0 || m->edge[1] == m->edge[0])
		m->edge[1] = -1;
	for (int e = 0; e < 2; e++)
		m->edge_state[e] = m->edge[e] >= 0 && m->edge[e] < LAST_PAGE && ro >= 0
				       ? probe_page(fd2, ro, m->edge[e])
				       : PAGE_UNKNOWN;
	if (ri >= 0)
		close(ri);
	if (ro >= 0)
		close(ro);
}

/* Is all of the source range [from, to) in a hole? */
static bool all_hole(const struct copy_model *m, off_t from, off_t to)
{
	for (int i = 0; i < m->nholes; i++)
		if (m->holes[i][0] <= from && to <= m->holes[i][1])
			return true;
	return false;
}

static void model_copy_after(int fd2, const struct copy_model *m, off_t copied)
{
	off_t shift = m->out0 - m->in0, end = m->in0 + copied;

	for (int i = 0; i < m->nholes && m->holes[i][0] < end; i++) {
		off_t to = m->holes[i][1] < end ? m->holes[i][1] : end;

		punch(fd2, m->holes[i][0] + shift, to - m->holes[i][0]);
	}
	for (int e = 0; e < 2; e++) {
		off_t page = m->edge[e], from, to;

		if (page < 0 || m->edge_state[e] == PAGE_UNKNOWN || m->edge_state[e] == PAGE_DATA)
			continue;
		from = page > m->out0 ? page : m->out0;
		to = page + page_len(page) < m->out0 + copied ? page + page_len(page)
							      : m->out0 + copied;
		if (from >= to || !all_hole(m, from - shift, to - shift))
			continue;
		punch(fd2, page, page_len(page));
		if (m->edge_state[e] == PAGE_FALLOCATED)
			fallocate(fd2, FALLOC_FL_KEEP_SIZE, page, page_len(page));
	}
}

static ssize_t run_copy(const struct side *s, int fd, int fd2, const struct op *op, off_t *in,
			off_t *out)
{
	static struct copy_model m;
	bool model;
	ssize_t n;
	int e;

	m.in0 = op->flags ? op->off : lseek(fd, 0, SEEK_CUR);
	m.out0 = op->flags ? op->off2 : lseek(fd2, 0, SEEK_CUR);
	model = s->is_tmpfs && copy_will_write(fd, fd2, m.in0, m.out0, op->len, &m.n);
	if (model)
		model_copy_before(fd, fd2, &m);
	n = copy_file_range(fd, op->flags ? in : NULL, fd2, op->flags ? out : NULL, op->len, 0);
	e = errno;
	if (model && n > 0)
		model_copy_after(fd2, &m, n < m.n ? n : m.n);
	if (n > 0 && m.out0 >= 0 && m.out0 + n > LAST_PAGE) {
		/* the last page made data on both sides, its bytes unchanged */
		int ro = reopen_ro(fd2);
		char byte = 0;

		if (ro >= 0 && pread(ro, &byte, 1, LAST_PAGE) >= 0)
			pwrite(fd2, &byte, 1, LAST_PAGE);
		if (ro >= 0)
			close(ro);
	}
	errno = e;
	return n;
}

/*
 * fallocate, with FALLOC_FL_ZERO_RANGE replaced on a tmpfs side by what it
 * means (fallocate(2): the range reads as zeros and is allocated): punch the
 * hole, then allocate it again, changing the size unless KEEP_SIZE.  The VFS
 * checks (descriptor, type, range) happen in the first call, as they would
 * for ZERO_RANGE itself.
 */
static long run_fallocate(const struct side *s, int fd, const struct op *op)
{
	int keep = op->flags & FALLOC_FL_KEEP_SIZE;

	if (!s->is_tmpfs || op->flags != (FALLOC_FL_ZERO_RANGE | keep))
		return fallocate(fd, op->flags, op->off, (off_t)op->len);
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, op->off, (off_t)op->len) < 0)
		return -1;
	return fallocate(fd, keep, op->off, (off_t)op->len);
}

/* An mmap write outside the file gets SIGBUS: turned into a result. */
static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_armed;

static void on_sigbus(int sig)
{
	(void)sig;
	if (bus_armed)
		siglongjmp(bus_jmp, 1);
	signal(SIGBUS, SIG_DFL);
	raise(SIGBUS);
}

static void run_mmap_write(int fd, const struct op *op, char *res)
{
	struct stat st;
	off_t pgoff;
	size_t maplen;
	unsigned char *m;

	if (fstat(fd, &st) < 0) {
		RET(-1);
		return;
	}
	if (!S_ISREG(st.st_mode)) {
		addf(res, RES_MAX, "not a regular file");
		return;
	}
	/* only inside the file: a store past EOF would be SIGBUS on both */
	if (op->off < 0 || op->off > st.st_size || (int64_t)op->len > st.st_size - op->off) {
		addf(res, RES_MAX, "outside the file (size %lld)", (long long)st.st_size);
		return;
	}
	pgoff = op->off & ~(off_t)4095;
	maplen = (size_t)(op->off - pgoff) + op->len;
	m = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd, pgoff);
	if (m == MAP_FAILED) {
		addf(res, RES_MAX, "mmap ");
		RET(-1);
		return;
	}
	fill(op->data, iobuf, op->len);
	if (sigsetjmp(bus_jmp, 1) == 0) {
		bus_armed = 1;
		memcpy(m + (op->off - pgoff), iobuf, op->len);
		bus_armed = 0;
		addf(res, RES_MAX, "stored; msync ");
		RET(msync(m, maplen, MS_SYNC));
	} else {
		bus_armed = 0;
		addf(res, RES_MAX, "SIGBUS");
	}
	munmap(m, maplen);
}

/*
 * truncate(2).  Documented difference (README, "Differences from tmpfs"):
 * FUSE sends truncate(2), ftruncate(2) and O_TRUNC alike (the size alone),
 * and memfs moves mtime and ctime for all three, as tmpfs does for the
 * last two; tmpfs leaves them alone for a truncate(2) to the current
 * size.  On a tmpfs side that case is given memfs's semantics.
 */
static int run_truncate(const struct side *s, const char *path, off_t size)
{
	struct timespec now[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_NOW}};
	struct stat st;
	int same = s->is_tmpfs && stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == size;
	int r = truncate(path, size);

	if (r == 0 && same) {
		int e = errno;
		(void)utimensat(AT_FDCWD, path, now, 0);
		errno = e;
	}
	return r;
}

static void run_op(struct side *s, const struct op *op, char *res)
{
	int fd = s->fd[op->slot], fd2 = s->fd[op->slot2],
	    at = op->nofollow ? AT_SYMLINK_NOFOLLOW : 0;
	const char *p = names[op->path], *p2 = names[op->path2];
	char full[PATH_MAX];
	struct stat st;
	ssize_t n;

	res[0] = '\0';
	full_path(s, p, full);
	switch (op->kind) {
	case OP_OPEN:
		if (fd >= 0)
			close(fd);
		s->fd[op->slot] = openat(s->rootfd, p, op->flags, op->mode);
		add_ret(res, s->fd[op->slot] < 0 ? -1 : 0, errno);
		break;
	case OP_CLOSE:
		RET(close(fd));
		s->fd[op->slot] = -1;
		break;
	case OP_WRITE:
		fill(op->data, iobuf, op->len);
		RET(write(fd, iobuf, op->len));
		break;
	case OP_PWRITE:
		fill(op->data, iobuf, op->len);
		RET(pwrite(fd, iobuf, op->len, op->off));
		break;
	case OP_READ:
	case OP_PREAD:
		n = op->kind == OP_READ ? read(fd, iobuf, op->len)
					: pread(fd, iobuf, op->len, op->off);
		add_ret(res, n, errno);
		if (n > 0)
			addf(res, RES_MAX, " bytes=%016" PRIx64, fnv(iobuf, (size_t)n));
		break;
	case OP_FTRUNCATE:
		RET(ftruncate(fd, op->off));
		break;
	case OP_TRUNCATE:
		RET(run_truncate(s, full, op->off));
		break;
	case OP_FALLOCATE:
		RET(run_fallocate(s, fd, op));
		break;
	case OP_LSEEK:
		/*
		 * Imposed by FUSE, not memfs: the kernel seeks in a FUSE
		 * directory with generic_file_llseek() (SEEK_DATA, SEEK_HOLE
		 * and SEEK_END against the directory's size), tmpfs with
		 * dcache_dir_lseek() (EINVAL but for SEEK_SET and SEEK_CUR);
		 * memfs never sees the request.  Not compared.
		 */
		if (fstat(fd, &st) < 0)
			st.st_mode = 0;
		if (S_ISDIR(st.st_mode)) {
			addf(res, RES_MAX, "a directory (not compared)");
			break;
		}
		if (S_ISREG(st.st_mode) && (op->flags == SEEK_DATA || op->flags == SEEK_HOLE) &&
		    s->writeback) {
			addf(res, RES_MAX, "writeback: no holes (not compared)");
			break;
		}
		if (S_ISREG(st.st_mode) && (op->flags == SEEK_DATA || op->flags == SEEK_HOLE) &&
		    st.st_size > LAST_PAGE) {
			addf(res, RES_MAX,
			     "the file reaches the last page (not compared, see LAST_PAGE)");
			break;
		}
		RET(seek_hole_data(s, fd, op->off, op->flags));
		break;
	case OP_COPY_RANGE: {
		off_t in = op->off, out = op->off2;

		n = run_copy(s, fd, fd2, op, &in, &out);
		add_ret(res, n, errno);
		if (op->flags)
			addf(res, RES_MAX, " off_in=%lld off_out=%lld", (long long)in,
			     (long long)out);
		break;
	}
	case OP_MMAP_WRITE:
		run_mmap_write(fd, op, res);
		break;
	case OP_FSYNC:
		RET(op->flags ? fdatasync(fd) : fsync(fd));
		break;
	case OP_RENAME:
		RET(renameat2(s->rootfd, p, s->rootfd, p2, (unsigned)op->flags));
		break;
	case OP_LINK:
		RET(linkat(s->rootfd, p, s->rootfd, p2, op->flags));
		break;
	case OP_UNLINK:
		RET(unlinkat(s->rootfd, p, 0));
		break;
	case OP_MKDIR:
		RET(mkdirat(s->rootfd, p, op->mode));
		break;
	case OP_MKNOD:
		RET(mknodat(s->rootfd, p, op->mode, (dev_t)op->off));
		break;
	case OP_RMDIR:
		RET(unlinkat(s->rootfd, p, AT_REMOVEDIR));
		break;
	case OP_SYMLINK:
		RET(symlinkat(targets[op->target], s->rootfd, p));
		break;
	case OP_READLINK: {
		char b[64];

		n = readlinkat(s->rootfd, p, (char *)iobuf, op->len);
		add_ret(res, n, errno);
		if (n > 0) {
			iobuf[n] = '\0';
			addf(res, RES_MAX, " %s", show((char *)iobuf, b, sizeof(b)));
		}
		break;
	}
	case OP_CHMOD:
		RET(fchmodat(s->rootfd, p, op->mode, 0));
		break;
	case OP_FCHMOD:
		RET(fchmod(fd, op->mode));
		break;
	case OP_CHOWN:
		RET(fchownat(s->rootfd, p, op->uid, op->gid, at));
		break;
	case OP_UTIMENS:
		RET(utimensat(s->rootfd, p, op->null_times ? NULL : op->times, at));
		/* an explicit mtime must be kept to the nanosecond */
		if (!op->null_times && op->times[1].tv_nsec != UTIME_NOW &&
		    op->times[1].tv_nsec != UTIME_OMIT && fstatat(s->rootfd, p, &st, at) == 0)
			addf(res, RES_MAX, " mtime=%lld.%09ld", (long long)st.st_mtim.tv_sec,
			     st.st_mtim.tv_nsec);
		break;
	case OP_SETXATTR:
		fill(op->data, iobuf, op->len);
		RET((op->nofollow ? lsetxattr : setxattr)(full, xnames[op->target], iobuf, op->len,
							  op->flags));
		break;
	case OP_GETXATTR:
		n = (op->nofollow ? lgetxattr : getxattr)(full, xnames[op->target], iobuf, op->len);
		add_ret(res, n, errno);
		if (n > 0 && op->len)
			addf(res, RES_MAX, " value=%016" PRIx64, fnv(iobuf, (size_t)n));
		break;
	case OP_LISTXATTR:
		n = (op->nofollow ? llistxattr : listxattr)(full, (char *)iobuf, op->len);
		add_ret(res, n, errno);
		if (n > 0 && op->len)
			add_sorted_xattr_names(res, RES_MAX, (char *)iobuf, n);
		break;
	case OP_REMOVEXATTR:
		RET((op->nofollow ? lremovexattr : removexattr)(full, xnames[op->target]));
		break;
	case OP_READDIR: {
		int e = add_listing(res, RES_MAX, s->rootfd, p);

		if (e)
			addf(res, RES_MAX, "%s-1 %s", res[0] ? " " : "", errname(e));
		break;
	}
	case OP_STAT:
		if (fstatat(s->rootfd, p, &st, at) < 0) {
			RET(-1);
			break;
		}
		addf(res, RES_MAX, "0");
		add_stat(res, &st);
		break;
	case OP_KINDS:
		break;
	}
}

/* ---------------------------------------------------------------------------
 * Comparing the two trees after a step.
 */

struct report {
	char sig[64];	       /* the kind of the first mismatch, e.g. "state:nlink" */
	char text[REPORT_MAX]; /* what differs, one line each */
	int n;		       /* mismatches found */
};

static void mismatch(struct report *rp, const char *sig, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void mismatch(struct report *rp, const char *sig, const char *fmt, ...)
{
	va_list ap;
	size_t len = strlen(rp->text);

	if (rp->n++ == 0)
		snprintf(rp->sig, sizeof(rp->sig), "%s", sig);
	if (rp->n > 12 || len + 2 >= sizeof(rp->text))
		return;
	addf(rp->text, sizeof(rp->text), "    ");
	len = strlen(rp->text);
	va_start(ap, fmt);
	vsnprintf(rp->text + len, sizeof(rp->text) - len, fmt, ap);
	va_end(ap);
	addf(rp->text, sizeof(rp->text), "\n");
}

static void take_snapshot(struct side *s, struct snap *sn)
{
	for (int i = 0; i < NSTATE; i++)
		sn->name[i].err =
		    fstatat(s->rootfd, names[i], &sn->name[i].st, AT_SYMLINK_NOFOLLOW) < 0 ? errno
											   : 0;
	for (int i = 0; i < NSLOT; i++)
		sn->slot[i].err = fstat(s->fd[i], &sn->slot[i].st) < 0 ? errno : 0;
}

static void compare_stat(struct report *rp, const char *what, const struct stat *a,
			 const struct stat *b, bool writeback)
{
#define FIELD(f, name, fmt, cast)                                                                  \
	if (a->f != b->f)                                                                          \
	mismatch(rp, "state:" name, "%s: " name " " fmt " vs " fmt, what, (cast)a->f, (cast)b->f)
	if ((a->st_mode & S_IFMT) != (b->st_mode & S_IFMT)) {
		mismatch(rp, "state:type", "%s: type 0%o vs 0%o", what, a->st_mode & S_IFMT,
			 b->st_mode & S_IFMT);
		return;
	}
	if ((a->st_mode & 07777) != (b->st_mode & 07777))
		mismatch(rp, "state:mode", "%s: mode 0%o vs 0%o", what, a->st_mode & 07777,
			 b->st_mode & 07777);
	FIELD(st_nlink, "nlink", "%lu", unsigned long);
	FIELD(st_uid, "uid", "%u", unsigned);
	FIELD(st_gid, "gid", "%u", unsigned);
	FIELD(st_size, "size", "%lld", long long);
	if (!writeback || !S_ISREG(a->st_mode))
		FIELD(st_blocks, "blocks", "%lld", long long);
#undef FIELD
}

static bool ts_equal(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/*
 * mtime and ctime are compared by whether they changed in this step (the
 * clocks differ, the order of events must not).  Only for a name that is
 * the same inode as before on both sides.  atime is not compared (README:
 * reads served from the kernel's page cache do not update it).
 */
/*
 * Not a difference: tmpfs has multigrain timestamps (Linux 6.13 and later).
 * A timestamp nobody has looked at since it was set is updated from the
 * coarse clock (or the latest fine-grained time handed out, if later), so
 * an update within the same clock tick can leave it exactly as it was — an
 * rmdir right after the mkdir leaves the parent's mtime unchanged.  An
 * "unchanged" on tmpfs proves nothing when the old value is not older than
 * the coarse clock read before the step.
 */
static unsigned long ambiguous_times; /* comparisons skipped so, reported at the end */

static bool time_unchanged_is_ambiguous(const struct side *s, struct timespec old,
					struct timespec coarse_before)
{
	return s->is_tmpfs &&
	       (old.tv_sec > coarse_before.tv_sec ||
		(old.tv_sec == coarse_before.tv_sec && old.tv_nsec >= coarse_before.tv_nsec));
}

static void compare_time(struct report *rp, const char *what, const char *name,
			 const struct side *a, struct timespec pa, struct timespec ca,
			 const struct side *b, struct timespec pb, struct timespec cb,
			 struct timespec coarse_before)
{
	bool changed_a = !ts_equal(pa, ca), changed_b = !ts_equal(pb, cb);
	char sig[32];

	if (changed_a == changed_b)
		return;
	if (time_unchanged_is_ambiguous(changed_a ? b : a, changed_a ? pb : pa, coarse_before)) {
		ambiguous_times++;
		return;
	}
	snprintf(sig, sizeof(sig), "state:%s", name);
	mismatch(rp, sig, "%s: %s %s on A, %s on B", what, name,
		 changed_a ? "changed" : "unchanged", changed_b ? "changed" : "unchanged");
}

static void compare_times(struct report *rp, const char *what, const struct side *a,
			  const struct snap_entry *pa, const struct snap_entry *ca,
			  const struct side *b, const struct snap_entry *pb,
			  const struct snap_entry *cb, struct timespec coarse_before)
{
	if (pa->err || pb->err || ca->err || cb->err || pa->st.st_ino != ca->st.st_ino ||
	    pb->st.st_ino != cb->st.st_ino || (a->writeback && S_ISREG(ca->st.st_mode)))
		return;
	compare_time(rp, what, "mtime", a, pa->st.st_mtim, ca->st.st_mtim, b, pb->st.st_mtim,
		     cb->st.st_mtim, coarse_before);
	compare_time(rp, what, "ctime", a, pa->st.st_ctim, ca->st.st_ctim, b, pb->st.st_ctim,
		     cb->st.st_ctim, coarse_before);
}

/* The data extents of fd by SEEK_DATA/SEEK_HOLE; returns their number, or
 * -errno of the first lseek that failed other than with ENXIO. */
static int extents(const struct side *s, int fd, off_t size, off_t ext[][2])
{
	off_t pos = 0, limit = size < LAST_PAGE ? size : LAST_PAGE;
	int n = 0;

	while (n < MAX_EXTENTS && pos < limit) {
		off_t d = seek_hole_data(s, fd, pos, SEEK_DATA), h;

		if (d < 0)
			return errno == ENXIO ? n : -errno;
		if (d >= limit)
			return n;
		h = seek_hole_data(s, fd, d, SEEK_HOLE);
		if (h < 0)
			return -errno;
		if (h <= d)
			return -EINVAL; /* would not advance */
		if (h > limit)
			h = limit;
		ext[n][0] = d;
		ext[n][1] = h;
		n++;
		pos = h;
	}
	return n;
}

/* Compare len bytes at off; false (and a mismatch) at the first difference. */
static bool compare_range(struct report *rp, const char *what, int fa, int fb, off_t off, off_t len,
			  off_t *budget)
{
	while (len > 0 && *budget > 0) {
		size_t want = (size_t)(len < IOBUF_BYTES ? len : IOBUF_BYTES);
		ssize_t ra = pread(fa, iobuf, want, off), rb;
		int ea = errno;

		rb = pread(fb, iobuf2, want, off);
		if (ra != rb || ra < 0) {
			mismatch(rp, "state:content", "%s: read %zu at %lld: %zd%s%s vs %zd%s%s",
				 what, want, (long long)off, ra, ra < 0 ? " " : "",
				 ra < 0 ? errname(ea) : "", rb, rb < 0 ? " " : "",
				 rb < 0 ? errname(errno) : "");
			return false;
		}
		if (memcmp(iobuf, iobuf2, (size_t)ra) != 0) {
			size_t i = 0;

			while (iobuf[i] == iobuf2[i])
				i++;
			mismatch(rp, "state:content", "%s: byte %lld: 0x%02x vs 0x%02x", what,
				 (long long)(off + (off_t)i), iobuf[i], iobuf2[i]);
			return false;
		}
		if (ra == 0)
			return true;
		off += ra;
		len -= ra;
		*budget -= ra;
	}
	return true;
}

static void format_extents(char *out, size_t size, int n, off_t ext[][2])
{
	out[0] = '\0';
	if (n < 0) {
		addf(out, size, "lseek: %s", errname(-n));
		return;
	}
	addf(out, size, "%d extents:", n);
	for (int i = 0; i < n && i < 6; i++)
		addf(out, size, " [%lld,%lld)", (long long)ext[i][0], (long long)ext[i][1]);
	if (n > 6)
		addf(out, size, " ...");
}

/*
 * Contents of two regular files of equal size: the data/hole map must be
 * the same; then the bytes of B's data extents and the start of each hole
 * are compared (tmpfs is the reference; reading whole holes of a file of
 * a terabyte is not an option).
 */
static void compare_contents(struct report *rp, const struct side *a, const struct side *b,
			     const char *what, int fa, int fb, off_t size, bool check_holes)
{
	static off_t ea[MAX_EXTENTS][2], eb[MAX_EXTENTS][2];
	int na = extents(a, fa, size, ea), nb = extents(b, fb, size, eb);
	off_t budget = READ_CAP_BYTES, pos = 0;

	if (check_holes &&
	    (na != nb || (na > 0 && memcmp(ea, eb, sizeof(ea[0]) * (size_t)na) != 0))) {
		char sa[512], sb[512];

		format_extents(sa, sizeof(sa), na, ea);
		format_extents(sb, sizeof(sb), nb, eb);
		mismatch(rp, "state:holes", "%s: SEEK_DATA/SEEK_HOLE map: %s vs %s", what, sa, sb);
		return;
	}
	if (nb < 0)
		nb = 0;
	for (int i = 0; i <= nb; i++) {
		off_t hole_end = i < nb ? eb[i][0] : size;

		/* the start of the hole before extent i */
		if (pos < hole_end &&
		    !compare_range(rp, what, fa, fb, pos,
				   hole_end - pos < 8192 ? hole_end - pos : 8192, &budget))
			return;
		if (i == nb)
			break;
		if (!compare_range(rp, what, fa, fb, eb[i][0], eb[i][1] - eb[i][0], &budget))
			return;
		pos = eb[i][1];
	}
	if (nb == MAX_EXTENTS && budget > 0 && pos < size)
		compare_range(rp, what, fa, fb, pos, size - pos, &budget);
}

static void compare_xattrs(struct report *rp, const char *what, const char *pa, const char *pb)
{
	static char la[65536], lb[65536];
	ssize_t na = llistxattr(pa, la, sizeof(la)), nb;
	int e = errno;
	char sa[RES_MAX] = "", sb[RES_MAX] = "";

	nb = llistxattr(pb, lb, sizeof(lb));
	if (na < 0 || nb < 0) {
		if (na != nb || e != errno)
			mismatch(rp, "state:xattr", "%s: llistxattr %zd %s vs %zd %s", what, na,
				 na < 0 ? errname(e) : "", nb, nb < 0 ? errname(errno) : "");
		return;
	}
	add_sorted_xattr_names(sa, sizeof(sa), la, na);
	add_sorted_xattr_names(sb, sizeof(sb), lb, nb);
	if (strcmp(sa, sb) != 0) {
		mismatch(rp, "state:xattr", "%s: xattr names:%s vs%s", what, sa, sb);
		return;
	}
	for (ssize_t i = 0; i < na; i += (ssize_t)strlen(la + i) + 1) {
		ssize_t va = lgetxattr(pa, la + i, iobuf, IOBUF_BYTES), vb;

		vb = lgetxattr(pb, la + i, iobuf2, IOBUF_BYTES);
		if (va != vb || (va > 0 && memcmp(iobuf, iobuf2, (size_t)va) != 0)) {
			char b[64];

			mismatch(rp, "state:xattr",
				 "%s: xattr %s: %zd bytes vs %zd (or different bytes)", what,
				 show(la + i, b, sizeof(b)), va, vb);
		}
	}
}

struct ctx;
static void compare_sides(struct ctx *c, struct side *a, struct side *b, const struct op *op,
			  bool full, struct report *rp);

/* ---------------------------------------------------------------------------
 * Runs: a sequence of steps on fresh run directories.
 */

struct ctx {
	struct side side[2];
	mode_t umask;
	bool writeback;	       /* side A is memfs -o writeback (documented differences) */
	unsigned long run_no;  /* names the run directories */
	unsigned long ops_run; /* steps run, in total */
	/* --memfs: */
	const char *memfs_bin, *memfs_opts;
	/* --lower: the lower tmpfs, the seed its trees come from, and how many
	 * runs ended with memfs exiting badly or the lower tree changed */
	bool lower;
	char lower_top[256];
	uint64_t seed;
	unsigned long lower_failures;
	char base[PATH_MAX];
	pid_t memfs_pid;
	int memfs_status; /* when it exited by itself */
	bool memfs_died;
	bool trace;		       /* FSDIFF_TRACE=1: print every step and its result */
	struct timespec coarse_before; /* CLOCK_REALTIME_COARSE before the step */
};

/* Did anything lstat shows change in this step? */
static bool entry_changed(const struct snap_entry *p, const struct snap_entry *c)
{
	return p->err != c->err ||
	       (!c->err &&
		(p->st.st_ino != c->st.st_ino || p->st.st_mode != c->st.st_mode ||
		 p->st.st_nlink != c->st.st_nlink || p->st.st_uid != c->st.st_uid ||
		 p->st.st_gid != c->st.st_gid || p->st.st_size != c->st.st_size ||
		 p->st.st_blocks != c->st.st_blocks || !ts_equal(p->st.st_mtim, c->st.st_mtim) ||
		 !ts_equal(p->st.st_ctim, c->st.st_ctim)));
}

/* Does the step use slot i (write to it, read it, ...)? */
static bool op_uses_slot(const struct op *op, int i)
{
	switch (op->kind) {
	case OP_COPY_RANGE:
		return op->slot == i || op->slot2 == i;
	case OP_WRITE:
	case OP_PWRITE:
	case OP_READ:
	case OP_PREAD:
	case OP_FTRUNCATE:
	case OP_FALLOCATE:
	case OP_LSEEK:
	case OP_MMAP_WRITE:
	case OP_FSYNC:
	case OP_FCHMOD:
		return op->slot == i;
	default:
		return false;
	}
}

/* Does the step name names[i] (or an alias of it)? */
static bool op_names(const struct op *op, int i)
{
	for (int k = 0; k < 2; k++) {
		char buf[PATH_MAX];
		const char *p = names[k ? op->path2 : op->path];
		size_t len = strlen(p);

		if (strcmp(p, names[i]) == 0)
			return true;
		/* "a/" is "a", "a/x/../f1" is "a/f1" */
		snprintf(buf, sizeof(buf), "%s", p);
		if (len > 1 && buf[len - 1] == '/')
			buf[len - 1] = '\0';
		for (char *dd; (dd = strstr(buf, "/../"));) {
			char *prev = dd;

			while (prev > buf && prev[-1] != '/')
				prev--;
			memmove(prev, dd + 4, strlen(dd + 4) + 1);
		}
		if (strcmp(buf, names[i]) == 0)
			return true;
	}
	return false;
}

/*
 * Compare the trees after a step.  lstat and fstat results always; the
 * contents, listings, symlink targets and xattrs of what the step named or
 * what lstat shows changed on either side, and with full of everything
 * (run_ops asks for that every FULL_CHECK_EVERY steps and at the last one,
 * so a change nothing shows is still caught).
 */
static void compare_sides(struct ctx *c, struct side *a, struct side *b, const struct op *op,
			  bool full, struct report *rp)
{
	char what[PATH_MAX + 64], b1[64], pa[PATH_MAX], pb[PATH_MAX];

	for (int i = 0; i < NSTATE; i++) {
		struct snap_entry *ca = &a->cur.name[i], *cb = &b->cur.name[i];
		const char *name = names[i];
		bool deep = full || op_names(op, i) || entry_changed(&a->prev.name[i], ca) ||
			    entry_changed(&b->prev.name[i], cb);

		snprintf(what, sizeof(what), "%s", show(name, b1, sizeof(b1)));
		if (ca->err != cb->err) {
			mismatch(rp, "state:exists", "%s: lstat %s vs %s", what,
				 ca->err ? errname(ca->err) : "exists",
				 cb->err ? errname(cb->err) : "exists");
			continue;
		}
		if (ca->err)
			continue;
		compare_stat(rp, what, &ca->st, &cb->st, c->writeback);
		compare_times(rp, what, a, &a->prev.name[i], ca, b, &b->prev.name[i], cb,
			      c->coarse_before);
		if ((ca->st.st_mode & S_IFMT) != (cb->st.st_mode & S_IFMT) || !deep)
			continue;
		full_path(a, name, pa);
		full_path(b, name, pb);
		if (S_ISREG(ca->st.st_mode)) {
			int fa = openat(a->rootfd, name, O_RDONLY | O_NOFOLLOW), ea = errno,
			    fb = openat(b->rootfd, name, O_RDONLY | O_NOFOLLOW), eb = errno;

			if (fa < 0 || fb < 0)
				mismatch(rp, "state:open", "%s: open for reading: %s vs %s", what,
					 fa < 0 ? errname(ea) : "ok", fb < 0 ? errname(eb) : "ok");
			else if (ca->st.st_size == cb->st.st_size)
				compare_contents(rp, a, b, what, fa, fb, cb->st.st_size,
						 !c->writeback);
			if (fa >= 0)
				close(fa);
			if (fb >= 0)
				close(fb);
		} else if (S_ISDIR(ca->st.st_mode)) {
			char la[RES_MAX] = "", lb[RES_MAX] = "";
			int ea = add_listing(la, sizeof(la), a->rootfd, name),
			    eb = add_listing(lb, sizeof(lb), b->rootfd, name);

			if (ea != eb || strcmp(la, lb) != 0)
				mismatch(rp, "state:listing", "%s: listing %s%s vs %s%s", what, la,
					 ea ? errname(ea) : "", lb, eb ? errname(eb) : "");
		} else if (S_ISLNK(ca->st.st_mode)) {
			char ta[PATH_MAX + 1], tb[PATH_MAX + 1], s1[64], s2[64];
			ssize_t na = readlinkat(a->rootfd, name, ta, PATH_MAX),
				nb = readlinkat(b->rootfd, name, tb, PATH_MAX);

			ta[na < 0 ? 0 : na] = '\0';
			tb[nb < 0 ? 0 : nb] = '\0';
			if (na != nb || strcmp(ta, tb) != 0)
				mismatch(rp, "state:symlink", "%s: readlink %s vs %s", what,
					 show(ta, s1, sizeof(s1)), show(tb, s2, sizeof(s2)));
			continue; /* user.* xattrs are not allowed on symlinks */
		}
		compare_xattrs(rp, what, pa, pb);
	}
	for (int i = 0; i < NSLOT; i++) {
		struct snap_entry *ca = &a->cur.slot[i], *cb = &b->cur.slot[i];

		snprintf(what, sizeof(what), "slot #%d", i);
		if (!!ca->err != !!cb->err) {
			mismatch(rp, "state:slot", "%s: %s vs %s", what,
				 ca->err ? "closed" : "open", cb->err ? "closed" : "open");
			continue;
		}
		if (ca->err)
			continue;
		compare_stat(rp, what, &ca->st, &cb->st, c->writeback);
		compare_times(rp, what, a, &a->prev.slot[i], ca, b, &b->prev.slot[i], cb,
			      c->coarse_before);
		/*
		 * The contents of an open file the step used (or, with full, of
		 * an unlinked one), through a new descriptor: named files are
		 * compared above.
		 */
		bool used = op_uses_slot(op, i);

		if (S_ISREG(ca->st.st_mode) && S_ISREG(cb->st.st_mode) &&
		    ca->st.st_size == cb->st.st_size && (used || (full && ca->st.st_nlink == 0))) {
			char fa_path[64], fb_path[64];
			int fa, fb;

			snprintf(fa_path, sizeof(fa_path), "/proc/self/fd/%d", a->fd[i]);
			snprintf(fb_path, sizeof(fb_path), "/proc/self/fd/%d", b->fd[i]);
			fa = open(fa_path, O_RDONLY);
			fb = open(fb_path, O_RDONLY);
			if (fa >= 0 && fb >= 0)
				compare_contents(rp, a, b, what, fa, fb, cb->st.st_size,
						 !c->writeback);
			if (fa >= 0)
				close(fa);
			if (fb >= 0)
				close(fb);
		}
	}
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT)
		fprintf(stderr, "fsdiff: removing %s: %s\n", path, strerror(errno));
	return 0;
}

static bool memfs_start(struct ctx *c);
static bool memfs_stop(struct ctx *c);
static int run_cmd(char *const argv[]);

/* ---------------------------------------------------------------------------
 * Lower trees (--lower): what a run starts from.
 */

static void lower_file(struct rng *r, const char *path)
{
	size_t len = (size_t)(chance(r, 20) ? rng_below(r, 100) : rng_below(r, 3 * 4096 + 200));
	int fd = open(path, O_CREAT | O_WRONLY | O_EXCL, chance(r, 30) ? 0600 : 0644);

	if (fd < 0)
		return;
	/* every byte written: lower files are not sparse, so the copy on
	 * tmpfs holds the same blocks */
	fill(rng_next(r), iobuf, len);
	if (write(fd, iobuf, len) != (ssize_t)len)
		fprintf(stderr, "fsdiff: writing %s: %s\n", path, strerror(errno));
	close(fd);
	if (chance(r, 30))
		setxattr(path, "user.a", "lower a", 7, 0);
	if (chance(r, 15))
		setxattr(path, "trusted.t", "lower t", 7, 0);
}

/*
 * A tree over the names the operations use, chosen by the seed alone: each
 * directory, file, symlink and hard link is there or not, so different
 * seeds start from different trees.
 */
/* root/rel into out (PATH_MAX); lower roots are short, so it always fits */
static void lower_path(char *out, const char *root, const char *rel)
{
	if (snprintf(out, PATH_MAX, "%s/%s", root, rel) >= PATH_MAX)
		out[0] = '\0';
}

static bool populate_lower(const char *root, uint64_t seed)
{
	static const char *const dirs[] = {"a", "b", "c", "a/x", "b/x"};
	static const char *const files[] = {"f0", "f1", "a/f0", "a/f1", "b/f0",
					    "b/f1", "b/x/f0", "a/x/f0", "c/f0"};
	struct rng r = {seed ^ 0x6c6f776572ull};
	char path[PATH_MAX], other[PATH_MAX];

	if (mkdir(root, 0755) < 0) {
		fprintf(stderr, "fsdiff: mkdir %s: %s\n", root, strerror(errno));
		return false;
	}
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		lower_path(path, root, dirs[i]);
		if (chance(&r, 80))
			mkdir(path, chance(&r, 20) ? 0700 : 0755);
	}
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		lower_path(path, root, files[i]);
		if (chance(&r, 75))
			lower_file(&r, path);
	}
	lower_path(path, root, "s0");
	if (chance(&r, 60))
		symlink(chance(&r, 50) ? "f0" : "a/x", path);
	lower_path(path, root, "a/s0");
	if (chance(&r, 40))
		symlink("x/f0", path);
	/* hard links, within a directory and across two */
	lower_path(path, root, "f0");
	lower_path(other, root, "f2");
	if (chance(&r, 50))
		link(path, other);
	lower_path(path, root, "a/f1");
	lower_path(other, root, "c/f1");
	if (chance(&r, 50))
		link(path, other);
	return true;
}

/* A digest of everything in a tree (for "the lower tree is unchanged"). */
static uint64_t tree_hash;

static void hash_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		tree_hash = (tree_hash ^ b[i]) * 1099511628211ull;
}

static int hash_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	char buf[4096];
	ssize_t n;

	(void)flag;
	(void)ftw;
	hash_bytes(path, strlen(path));
	hash_bytes(&st->st_mode, sizeof(st->st_mode));
	hash_bytes(&st->st_size, sizeof(st->st_size));
	hash_bytes(&st->st_nlink, sizeof(st->st_nlink));
	hash_bytes(&st->st_mtim, sizeof(st->st_mtim));
	hash_bytes(&st->st_ctim, sizeof(st->st_ctim));
	if (S_ISREG(st->st_mode)) {
		int fd = open(path, O_RDONLY);
		while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
			hash_bytes(buf, (size_t)n);
		if (fd >= 0)
			close(fd);
	} else if (S_ISLNK(st->st_mode) && (n = readlink(path, buf, sizeof(buf))) > 0) {
		hash_bytes(buf, (size_t)n);
	}
	n = llistxattr(path, buf, sizeof(buf));
	if (n > 0)
		hash_bytes(buf, (size_t)n);
	return 0;
}

static uint64_t tree_digest(const char *root)
{
	tree_hash = 14695981039346656037ull;
	nftw(root, hash_entry, 16, FTW_PHYS);
	return tree_hash;
}

static void lower_root(struct ctx *c, char *buf)
{
	if (snprintf(buf, PATH_MAX, "%s/fsdiff-%d-%lu", c->lower_top, (int)getpid(), c->run_no) >=
	    PATH_MAX)
		buf[0] = '\0';
}

static uint64_t lower_digest; /* of this run's lower tree when it began */

/* A lower tree for this run, its copy as side B's run directory, memfs over it as side A. */
static bool lower_run_begin(struct ctx *c)
{
	char lroot[PATH_MAX];
	char *cp_argv[] = {"cp", "-a", lroot, c->side[1].root, NULL};

	lower_root(c, lroot);
	if (!populate_lower(lroot, c->seed))
		return false;
	lower_digest = tree_digest(lroot);
	if (run_cmd(cp_argv) != 0) {
		fprintf(stderr, "fsdiff: cp -a %s %s failed\n", lroot, c->side[1].root);
		return false;
	}
	return memfs_start(c);
}

static void lower_run_end(struct ctx *c)
{
	char lroot[PATH_MAX];

	lower_root(c, lroot);
	if (c->memfs_pid && !memfs_stop(c))
		c->lower_failures++;
	if (tree_digest(lroot) != lower_digest) {
		fprintf(stderr, "fsdiff: run %lu changed the lower tree %s\n", c->run_no, lroot);
		c->lower_failures++;
	}
	nftw(lroot, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void run_end(struct ctx *c)
{
	for (int s = 0; s < 2; s++) {
		struct side *sd = &c->side[s];

		for (int i = 0; i < NSLOT; i++) {
			if (sd->fd[i] >= 0)
				close(sd->fd[i]);
			sd->fd[i] = -1;
		}
		if (sd->rootfd >= 0)
			close(sd->rootfd);
		sd->rootfd = -1;
		/* over a lower tree, side A's changes go with its unmount */
		if (sd->root[0] && !(c->lower && s == 0))
			nftw(sd->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		sd->root[0] = '\0';
	}
	if (c->lower)
		lower_run_end(c);
}

/* Fresh, empty run directories on both sides; false on a setup error. */
static bool run_begin(struct ctx *c)
{
	umask(c->umask);
	c->run_no++;
	for (int s = 0; s < 2; s++) {
		struct side *sd = &c->side[s];

		for (int i = 0; i < NSLOT; i++)
			sd->fd[i] = -1;
		sd->rootfd = -1;
		if (snprintf(sd->root, sizeof(sd->root), "%s/fsdiff-%d-%lu", sd->top, (int)getpid(),
			     c->run_no) >= PATH_MAX) {
			sd->root[0] = '\0';
			return false;
		}
	}
	if (c->lower && !lower_run_begin(c))
		return false;
	for (int s = 0; s < 2; s++) {
		struct side *sd = &c->side[s];

		if (!c->lower && mkdir(sd->root, 0755) < 0) {
			fprintf(stderr, "fsdiff: mkdir %s: %s\n", sd->root, strerror(errno));
			sd->root[0] = '\0';
			sd->rootfd = -1;
			return false;
		}
		sd->rootfd = open(sd->root, O_RDONLY | O_DIRECTORY);
		if (sd->rootfd < 0) {
			fprintf(stderr, "fsdiff: open %s: %s\n", sd->root, strerror(errno));
			return false;
		}
		take_snapshot(sd, &sd->prev);
	}
	return true;
}

struct divergence {
	long index;	       /* in the list run */
	char sig[64];	       /* its kind: "result:<op>" or "state:<field>" */
	char text[REPORT_MAX]; /* the operation, both results or what differs */
};

enum run_status { RUN_SAME, RUN_DIVERGED, RUN_TIMEOUT, RUN_SETUP_ERROR };

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static bool ts_before(struct timespec a, struct timespec b)
{
	return a.tv_sec < b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec < b.tv_nsec);
}

/*
 * Before a step, wait until the coarse clock has passed every timestamp of
 * a tmpfs side, so that an "unchanged" on tmpfs is not ambiguous
 * (time_unchanged_is_ambiguous, which stays as a safety net): at most one
 * clock tick per step that changed something.  Timestamps in the future
 * were set by utimensat and are left out.
 */
static void settle_clock(struct ctx *c)
{
	struct timespec latest = {0, 0}, now, horizon;

	clock_gettime(CLOCK_REALTIME, &horizon);
	horizon.tv_sec += 1;
	for (int s = 0; s < 2; s++) {
		const struct snap *sn = &c->side[s].prev;

		if (!c->side[s].is_tmpfs)
			continue;
		for (int i = 0; i < NSTATE + NSLOT; i++) {
			const struct snap_entry *e =
			    i < NSTATE ? &sn->name[i] : &sn->slot[i - NSTATE];

			if (e->err)
				continue;
			if (ts_before(latest, e->st.st_mtim) && ts_before(e->st.st_mtim, horizon))
				latest = e->st.st_mtim;
			if (ts_before(latest, e->st.st_ctim) && ts_before(e->st.st_ctim, horizon))
				latest = e->st.st_ctim;
		}
	}
	for (;;) {
		clock_gettime(CLOCK_REALTIME_COARSE, &now);
		if (ts_before(latest, now))
			return;
		sleep_ms(1);
	}
}

/*
 * Run ops[0..n) on fresh run directories, comparing after every step;
 * stop at the first divergence (described in *d) or at the deadline
 * (0: none).  *done gets the number of steps run.
 */
static enum run_status run_ops(struct ctx *c, const struct op *ops, long n, double deadline,
			       struct divergence *d, long *done)
{
	static char ra[RES_MAX], rb[RES_MAX];
	static struct report rp;
	enum run_status status = RUN_SAME;
	struct side *a = &c->side[0], *b = &c->side[1];

	*done = 0;
	if (!run_begin(c)) {
		run_end(c);
		return RUN_SETUP_ERROR;
	}
	if (c->lower) {
		/* the lower tree as memfs shows it, before any step */
		static const struct op none = {.kind = OP_STAT}; /* names "." only */

		memset(&rp, 0, sizeof(rp));
		take_snapshot(a, &a->cur);
		take_snapshot(b, &b->cur);
		compare_sides(c, a, b, &none, true, &rp);
		if (rp.n) {
			fprintf(stderr, "fsdiff: the lower tree of seed %" PRIu64
					" differs before any step (A: memfs over it, B: cp -a):\n%s",
				c->seed, rp.text);
			run_end(c);
			return RUN_SETUP_ERROR;
		}
	}
	for (long i = 0; i < n; i++) {
		char line[512];

		if (deadline > 0 && (i & 15) == 0 && now_s() > deadline) {
			status = RUN_TIMEOUT;
			break;
		}
		settle_clock(c);
		clock_gettime(CLOCK_REALTIME_COARSE, &c->coarse_before);
		run_op(a, &ops[i], ra);
		run_op(b, &ops[i], rb);
		c->ops_run++;
		(*done)++;
		memset(&rp, 0, sizeof(rp));
		format_op(&ops[i], line, sizeof(line));
		if (c->trace)
			printf("  [%5ld] %-60s -> %s\n", ops[i].step, line, ra);
		if (strcmp(ra, rb) != 0) {
			d->index = i;
			snprintf(d->sig, sizeof(d->sig), "result:%s", kinds[ops[i].kind].name);
			d->text[0] = '\0';
			addf(d->text, sizeof(d->text), "  step %ld: %s\n    A: %s\n    B: %s\n",
			     ops[i].step, line, ra, rb);
			status = RUN_DIVERGED;
			break;
		}
		take_snapshot(a, &a->cur);
		take_snapshot(b, &b->cur);
		compare_sides(c, a, b, &ops[i],
			      i % FULL_CHECK_EVERY == FULL_CHECK_EVERY - 1 || i == n - 1, &rp);
		a->prev = a->cur;
		b->prev = b->cur;
		if (rp.n) {
			d->index = i;
			snprintf(d->sig, sizeof(d->sig), "%s", rp.sig);
			d->text[0] = '\0';
			addf(d->text, sizeof(d->text),
			     "  step %ld: %s\n    both: %s\n  then the trees differ (A vs B):\n%s",
			     ops[i].step, line, ra, rp.text);
			status = RUN_DIVERGED;
			break;
		}
	}
	run_end(c);
	return status;
}

/* ---------------------------------------------------------------------------
 * Mounting memfs and a tmpfs (--memfs).
 */

static bool is_mounted(const char *dir)
{
	struct stat a, b;
	char parent[PATH_MAX + 4];

	snprintf(parent, sizeof(parent), "%s/..", dir);
	return stat(dir, &a) == 0 && stat(parent, &b) == 0 && a.st_dev != b.st_dev;
}

/* Start memfs on side A's directory and wait until it is mounted. */
static bool memfs_start(struct ctx *c)
{
	char opts[8192];
	pid_t parent = getpid();
	int status;

	snprintf(opts, sizeof(opts), "auto_unmount%s%s%s%s", c->memfs_opts[0] ? "," : "",
		 c->memfs_opts, c->lower ? ",lower=" : "", c->lower ? c->lower_top : "");
	c->memfs_died = false;
	c->memfs_pid = fork();
	if (c->memfs_pid < 0) {
		fprintf(stderr, "fsdiff: fork: %s\n", strerror(errno));
		return false;
	}
	if (c->memfs_pid == 0) {
		int fd = open("/dev/null", O_RDONLY);

		/* our process group's signals stay ours: memfs unmounts when told */
		setsid();
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
			_exit(126);
		if (fd >= 0)
			dup2(fd, STDIN_FILENO);
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execl(c->memfs_bin, c->memfs_bin, "-f", "-o", opts, c->side[0].top, (char *)NULL);
		fprintf(stderr, "fsdiff: exec %s: %s\n", c->memfs_bin, strerror(errno));
		_exit(127);
	}
	for (int waited_ms = 0;; waited_ms += 10) {
		if (is_mounted(c->side[0].top))
			return true;
		if (waitpid(c->memfs_pid, &status, WNOHANG) == c->memfs_pid) {
			fprintf(stderr, "fsdiff: %s -f -o %s %s ended before mounting\n",
				c->memfs_bin, opts, c->side[0].top);
			c->memfs_pid = 0;
			return false;
		}
		if (waited_ms >= MOUNT_TIMEOUT_MS) {
			fprintf(stderr, "fsdiff: memfs not mounted after %d ms\n",
				MOUNT_TIMEOUT_MS);
			kill(c->memfs_pid, SIGKILL);
			waitpid(c->memfs_pid, &status, 0);
			c->memfs_pid = 0;
			return false;
		}
		sleep_ms(10);
	}
}

static int run_cmd(char *const argv[])
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Has memfs exited by itself (crashed)?  Records how. */
static bool memfs_gone(struct ctx *c)
{
	if (!c->memfs_pid)
		return false;
	if (waitpid(c->memfs_pid, &c->memfs_status, WNOHANG) != c->memfs_pid)
		return false;
	c->memfs_pid = 0;
	c->memfs_died = true;
	return true;
}

static void describe_status(int status, char *buf, size_t size)
{
	if (WIFEXITED(status))
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(status));
	else
		snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
}

/* Unmount memfs and wait for it; false when it did not exit with status 0. */
static bool memfs_stop(struct ctx *c)
{
	char *umount_argv[] = {"fusermount3", "-u", c->side[0].top, NULL};
	char *lazy_argv[] = {"fusermount3", "-u", "-z", c->side[0].top, NULL};
	char how[128];
	int status = 0;
	bool exited = false;

	if (!c->memfs_pid) {
		/* it died: auto_unmount unmounts; make sure */
		if (is_mounted(c->side[0].top))
			run_cmd(lazy_argv);
		return false;
	}
	if (run_cmd(umount_argv) != 0) {
		run_cmd(lazy_argv);
		kill(c->memfs_pid, SIGTERM);
	}
	for (int waited_ms = 0; waited_ms < EXIT_TIMEOUT_MS; waited_ms += 10) {
		if (waitpid(c->memfs_pid, &status, WNOHANG) == c->memfs_pid) {
			exited = true;
			break;
		}
		sleep_ms(10);
	}
	if (!exited) {
		fprintf(stderr, "fsdiff: memfs still running %d ms after unmount: killed\n",
			EXIT_TIMEOUT_MS);
		kill(c->memfs_pid, SIGKILL);
		waitpid(c->memfs_pid, &status, 0);
	}
	c->memfs_pid = 0;
	if (exited && WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return true;
	describe_status(status, how, sizeof(how));
	fprintf(stderr, "fsdiff: memfs %s at unmount (its messages are above)\n", how);
	return false;
}

/*
 * A private mount namespace with a small tmpfs over FSDIFF_BASE (as the
 * integration harness does), memfs on FSDIFF_BASE/memfs and a tmpfs on
 * FSDIFF_BASE/tmpfs.  However fsdiff ends, its mounts and mount points
 * disappear with the namespace; the host keeps only the empty FSDIFF_BASE.
 */
#define FSDIFF_BASE "/tmp/fsdiff"

static bool mounts_setup(struct ctx *c)
{
	if (unshare(CLONE_NEWNS) < 0) {
		fprintf(stderr, "fsdiff: unshare(CLONE_NEWNS): %s (needs root)\n", strerror(errno));
		return false;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		fprintf(stderr, "fsdiff: mount --make-rprivate /: %s\n", strerror(errno));
		return false;
	}
	if ((mkdir(FSDIFF_BASE, 0755) < 0 && errno != EEXIST) ||
	    mount("fsdiff", FSDIFF_BASE, "tmpfs", 0, "mode=0755,size=1m") < 0) {
		fprintf(stderr, "fsdiff: mount -t tmpfs " FSDIFF_BASE ": %s\n", strerror(errno));
		return false;
	}
	snprintf(c->base, sizeof(c->base), FSDIFF_BASE);
	if (snprintf(c->side[0].top, PATH_MAX, "%s/memfs", c->base) >= PATH_MAX ||
	    snprintf(c->side[1].top, PATH_MAX, "%s/tmpfs", c->base) >= PATH_MAX ||
	    mkdir(c->side[0].top, 0755) < 0 || mkdir(c->side[1].top, 0755) < 0) {
		fprintf(stderr, "fsdiff: mkdir in %s: %s\n", c->base, strerror(errno));
		return false;
	}
	/* nodev and nosuid, as every FUSE mount: device nodes cannot be opened */
	if (mount("fsdiff-tmpfs", c->side[1].top, "tmpfs", MS_NODEV | MS_NOSUID, "mode=1777") < 0) {
		fprintf(stderr, "fsdiff: mount -t tmpfs %s: %s\n", c->side[1].top, strerror(errno));
		return false;
	}
	if (c->lower) {
		/* memfs is mounted for each run, over that run's lower tree */
		snprintf(c->lower_top, sizeof(c->lower_top), FSDIFF_BASE "/lower");
		if (mkdir(c->lower_top, 0755) < 0 ||
		    mount("fsdiff-lower", c->lower_top, "tmpfs", 0, "mode=0755") < 0) {
			fprintf(stderr, "fsdiff: mount -t tmpfs %s: %s\n", c->lower_top,
				strerror(errno));
			return false;
		}
		return true;
	}
	return memfs_start(c);
}

/* Unmount both; false when memfs did not exit cleanly. */
static bool mounts_teardown(struct ctx *c)
{
	bool ok = true;

	if (!c->base[0])
		return true;
	if (c->memfs_pid || c->memfs_died)
		ok = memfs_stop(c);
	if (is_mounted(c->side[1].top))
		umount2(c->side[1].top, MNT_DETACH);
	if (c->lower_top[0] && is_mounted(c->lower_top))
		umount2(c->lower_top, MNT_DETACH);
	umount2(c->base, MNT_DETACH);
	return ok;
}

/* ---------------------------------------------------------------------------
 * Delta debugging.
 */

/* Does ops[0..n) diverge first with signature sig?  *d gets how. */
static bool still_diverges(struct ctx *c, const struct op *ops, long n, const char *sig,
			   struct divergence *d)
{
	long done;

	/* a crash in the last try: a fresh daemon for the next one */
	if (c->memfs_bin && !c->lower && memfs_gone(c)) {
		memfs_stop(c);
		if (!memfs_start(c))
			return false;
	}
	return run_ops(c, ops, n, 0, d, &done) == RUN_DIVERGED && strcmp(d->sig, sig) == 0;
}

/*
 * ddmin over ops[0..*n): remove chunks (halves, then quarters, ... then
 * single steps) as long as what is left still diverges the same way;
 * what follows the divergence is dropped as well.  Stops at the deadline
 * with the best list so far.
 */
static void reduce(struct ctx *c, struct op *ops, long *n, const char *sig, double deadline)
{
	struct op *cand = malloc(sizeof(*cand) * (size_t)*n);
	static struct divergence d;
	long gran = 2;

	if (!cand)
		return;
	while (*n >= 2 && now_s() < deadline) {
		long chunk = (*n + gran - 1) / gran;
		bool reduced = false;

		for (long start = 0; start < *n && now_s() < deadline; start += chunk) {
			long m = 0;

			for (long i = 0; i < *n; i++)
				if (i < start || i >= start + chunk)
					cand[m++] = ops[i];
			if (m == 0 || !still_diverges(c, cand, m, sig, &d))
				continue;
			memcpy(ops, cand, sizeof(*ops) * (size_t)(d.index + 1));
			*n = d.index + 1;
			gran = gran > 2 ? gran - 1 : 2;
			reduced = true;
			break;
		}
		if (!reduced) {
			if (gran >= *n)
				break;
			gran = gran * 2 < *n ? gran * 2 : *n;
		}
	}
	free(cand);
}

/* ---------------------------------------------------------------------------
 * Seeds, reporting, the command line.
 */

struct options {
	uint64_t seed;
	bool seed_given;
	long steps;
	double soak_min;
	bool keep_going;
	const char *only; /* --only I,J,...: those steps of the sequence */
};

static struct op *generate(uint64_t seed, long steps)
{
	struct op *ops = malloc(sizeof(*ops) * (size_t)(steps ? steps : 1));
	struct rng r = {seed};
	struct gen_state g = {.kind = {'d'}}; /* the top directory, "." */

	if (!ops)
		return NULL;
	for (long i = 0; i < steps; i++)
		gen_op(&r, &g, i, &ops[i]);
	return ops;
}

static void print_ops(const struct op *ops, long n)
{
	char line[512];

	for (long i = 0; i < n; i++) {
		format_op(&ops[i], line, sizeof(line));
		printf("  [%5ld] %s\n", ops[i].step, line);
	}
}

static const char *side_desc(const struct ctx *c, int s, char *buf, size_t size)
{
	if (c->memfs_bin)
		snprintf(buf, size, "%s (%s)", c->side[s].top, s == 0 ? "memfs" : "tmpfs");
	else
		snprintf(buf, size, "%s", c->side[s].top);
	return buf;
}

/*
 * A divergence at ops[d->index]: print it, reduce the steps up to it, print
 * the reduced list as a reproduction.
 */
static void report_divergence(struct ctx *c, uint64_t seed, const struct op *ops,
			      const struct divergence *d)
{
	static struct divergence rd;
	char da[PATH_MAX + 16], db[PATH_MAX + 16], how[128];
	long n = d->index + 1;
	struct op *red = malloc(sizeof(*red) * (size_t)n);
	const char *env = getenv("FSDIFF_REDUCE_SECONDS");
	double budget = env ? atof(env) : DEFAULT_REDUCE_S, t0 = now_s();

	printf("fsdiff: DIVERGENCE: seed %" PRIu64 ", step %ld, umask %03o\n  A = %s\n  B = %s\n%s",
	       seed, ops[d->index].step, (unsigned)c->umask, side_desc(c, 0, da, sizeof(da)),
	       side_desc(c, 1, db, sizeof(db)), d->text);
	if (c->memfs_bin && memfs_gone(c)) {
		describe_status(c->memfs_status, how, sizeof(how));
		printf("fsdiff: memfs %s during this step (its messages are above)\n", how);
	}
	fflush(stdout);
	if (!red)
		return;
	memcpy(red, ops, sizeof(*red) * (size_t)n);
	c->trace = false;
	printf("fsdiff: reducing %ld steps (delta debugging, at most %.0f s)...\n", n, budget);
	fflush(stdout);
	reduce(c, red, &n, d->sig, t0 + budget);
	printf(
	    "fsdiff: minimal reproduction: %ld step%s (of %ld), on an empty directory, umask %03o, "
	    "reduced in %.0f s:\n",
	    n, n == 1 ? "" : "s", d->index + 1, (unsigned)c->umask, now_s() - t0);
	print_ops(red, n);
	if (still_diverges(c, red, n, d->sig, &rd))
		printf("fsdiff: which diverges as:\n%s", rd.text);
	else
		printf("fsdiff: (which did not diverge the same way again: timing-dependent?)\n");
	printf("fsdiff: replay with: %s%s%sfsdiff --seed %" PRIu64 " --steps %ld --only ",
	       getenv("FSDIFF_SKIP") ? "FSDIFF_SKIP=" : "",
	       getenv("FSDIFF_SKIP") ? getenv("FSDIFF_SKIP") : "", getenv("FSDIFF_SKIP") ? " " : "",
	       seed, ops[d->index].step + 1);
	for (long i = 0; i < n; i++)
		printf("%s%ld", i ? "," : "", red[i].step);
	if (c->memfs_bin)
		printf(" --memfs %s%s%s%s\n", c->memfs_bin, c->memfs_opts[0] ? " --memfs-opts " : "",
		       c->memfs_opts, c->lower ? " --lower" : "");
	else
		printf(" DIR_A DIR_B\n");
	fflush(stdout);
	free(red);
}

/* --only I,J,...: keep those steps (in the order of the sequence). */
static long select_steps(struct op *ops, long n, const char *list)
{
	long m = 0;
	char *copy = strdup(list), *save = NULL;
	bool *keep = calloc((size_t)n, sizeof(bool));

	if (!copy || !keep) {
		free(copy);
		free(keep);
		return -1;
	}
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *end;
		long i = strtol(t, &end, 10);

		if (*end || i < 0 || i >= n) {
			fprintf(stderr, "fsdiff: --only: bad step '%s' (the sequence has %ld)\n", t,
				n);
			free(copy);
			free(keep);
			return -1;
		}
		keep[i] = true;
	}
	for (long i = 0; i < n; i++)
		if (keep[i])
			ops[m++] = ops[i];
	free(copy);
	free(keep);
	return m;
}

/* One seed: 0 no divergence, 1 divergence, 2 setup error; *timed_out when
 * the deadline stopped it. */
static int run_seed(struct ctx *c, const struct options *o, uint64_t seed, double deadline,
		    bool *timed_out)
{
	long n = o->steps, done;
	struct op *ops = generate(seed, n);
	struct divergence d;
	enum run_status st;

	*timed_out = false;
	if (!ops) {
		fprintf(stderr, "fsdiff: out of memory\n");
		return 2;
	}
	if (o->only && (n = select_steps(ops, n, o->only)) < 0) {
		free(ops);
		return 2;
	}
	c->umask = (mode_t[]){022, 0, 077, 027}[seed % 4];
	c->seed = seed;
	st = run_ops(c, ops, n, deadline, &d, &done);
	if (st == RUN_DIVERGED)
		report_divergence(c, seed, ops, &d);
	free(ops);
	*timed_out = st == RUN_TIMEOUT;
	return st == RUN_DIVERGED ? 1 : st == RUN_SETUP_ERROR ? 2 : 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: fsdiff [--seed N] [--steps N] [--soak MINUTES] [--memfs BIN] [--memfs-opts "
		"OPTS]\n"
		"              [--lower] [--keep-going] [--only I,J,...] [DIR_A DIR_B]\n"
		"Runs a seeded random sequence of filesystem operations on DIR_A and DIR_B (or,\n"
		"with --memfs, on a memfs it mounts and a tmpfs; with --lower too, on a memfs over\n"
		"a generated lower tree and a cp -a copy of it) and reports the first divergence\n"
		"with a reduced reproduction.  Exit 0: none, 1: divergence, 2: usage/setup error.\n"
		"Environment: FSDIFF_TRACE=1, FSDIFF_SKIP=op,..., FSDIFF_REDUCE_SECONDS=N.\n");
}

static bool parse_num(const char *s, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(s, &end);
	return s[0] && !*end && errno == 0 && *out >= 0;
}

static int parse_args(int argc, char **argv, struct options *o, struct ctx *c, char **dirs)
{
	int ndirs = 0;
	double v;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		bool has_val = i + 1 < argc;

		if (strcmp(a, "--keep-going") == 0) {
			o->keep_going = true;
		} else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage();
			exit(0);
		} else if (strcmp(a, "--seed") == 0 && has_val) {
			char *end;

			errno = 0;
			o->seed = strtoull(argv[++i], &end, 0);
			if (*end || errno || argv[i][0] == '-')
				return -1;
			o->seed_given = true;
		} else if (strcmp(a, "--steps") == 0 && has_val) {
			if (!parse_num(argv[++i], &v) || v < 1 || v > 10000000)
				return -1;
			o->steps = (long)v;
		} else if (strcmp(a, "--soak") == 0 && has_val) {
			if (!parse_num(argv[++i], &v) || v <= 0)
				return -1;
			o->soak_min = v;
		} else if (strcmp(a, "--memfs") == 0 && has_val) {
			c->memfs_bin = argv[++i];
		} else if (strcmp(a, "--memfs-opts") == 0 && has_val) {
			c->memfs_opts = argv[++i];
		} else if (strcmp(a, "--only") == 0 && has_val) {
			o->only = argv[++i];
		} else if (strcmp(a, "--lower") == 0) {
			c->lower = true;
		} else if (a[0] == '-') {
			return -1;
		} else if (ndirs < 2) {
			dirs[ndirs++] = argv[i];
		} else {
			return -1;
		}
	}
	if (c->memfs_bin ? ndirs != 0 : ndirs != 2)
		return -1;
	if (c->lower && !c->memfs_bin)
		return -1;
	if (o->only && o->soak_min > 0)
		return -1;
	return 0;
}

/* Side A is a FUSE mount with -o writeback (and not nocache, which turns it off). */
static bool opts_have(const char *opts, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = opts; (p = strstr(p, word)); p += len)
		if ((p == opts || p[-1] == ',') && (p[len] == '\0' || p[len] == ','))
			return true;
	return false;
}

static bool setup_sides(struct ctx *c, char **dirs)
{
	for (int s = 0; s < 2; s++) {
		struct side *sd = &c->side[s];
		struct statfs sf;

		sd->rootfd = -1;
		if (!c->memfs_bin) {
			if (!realpath(dirs[s], sd->top)) {
				fprintf(stderr, "fsdiff: %s: %s\n", dirs[s], strerror(errno));
				return false;
			}
		}
		if (statfs(sd->top, &sf) < 0) {
			fprintf(stderr, "fsdiff: statfs %s: %s\n", sd->top, strerror(errno));
			return false;
		}
		sd->is_tmpfs = sf.f_type == TMPFS_MAGIC;
	}
	c->writeback = c->memfs_bin && opts_have(c->memfs_opts, "writeback") &&
		       !opts_have(c->memfs_opts, "nocache");
	c->side[0].writeback = c->side[1].writeback = c->writeback;
	return true;
}

int main(int argc, char **argv)
{
	struct options o = {.steps = DEFAULT_STEPS};
	struct ctx c = {.memfs_opts = ""};
	char *dirs[2] = {NULL, NULL};
	int rc = 0, seeds = 0, diverged = 0;
	double t0, deadline = 0;
	struct sigaction sa = {.sa_handler = on_sigbus};

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_args(argc, argv, &o, &c, dirs) < 0) {
		usage();
		return 2;
	}
	c.trace = getenv("FSDIFF_TRACE") && strcmp(getenv("FSDIFF_TRACE"), "1") == 0;
	if (getenv("FSDIFF_SKIP") && !skip_kinds(getenv("FSDIFF_SKIP")))
		return 2;
	if (!o.seed_given)
		o.seed = (uint64_t)time(NULL);
	init_names();
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	iobuf = malloc(IOBUF_BYTES + 1);
	iobuf2 = malloc(IOBUF_BYTES + 1);
	if (!iobuf || !iobuf2) {
		fprintf(stderr, "fsdiff: out of memory\n");
		return 2;
	}
	if ((c.memfs_bin && !mounts_setup(&c)) || !setup_sides(&c, dirs)) {
		mounts_teardown(&c);
		free(iobuf);
		free(iobuf2);
		return 2;
	}
	t0 = now_s();
	if (o.soak_min > 0)
		deadline = t0 + o.soak_min * 60;
	for (uint64_t seed = o.seed;; seed++) {
		bool timed_out;
		int r = run_seed(&c, &o, seed, deadline, &timed_out);

		if (!timed_out)
			seeds++;
		if (r == 2) {
			rc = 2;
			break;
		}
		if (r == 1) {
			diverged++;
			rc = 1;
			if (!o.keep_going)
				break;
		}
		if (o.soak_min <= 0 || timed_out || now_s() > deadline)
			break;
		if (seeds % 20 == 0)
			printf("fsdiff: soak: %d seeds, %lu operations, %.0f s\n", seeds, c.ops_run,
			       now_s() - t0);
	}
	if (rc != 2)
		printf("fsdiff: %lu operations over %d seed%s (from %" PRIu64 ") in %.1f s, %s\n",
		       c.ops_run, seeds, seeds == 1 ? "" : "s", o.seed, now_s() - t0,
		       diverged ? "DIVERGED" : "no divergence");
	if (diverged > 1)
		printf("fsdiff: %d seeds diverged\n", diverged);
	if (ambiguous_times)
		printf(
		    "fsdiff: %lu mtime/ctime differences not counted: an update within one tick of "
		    "the coarse clock on tmpfs (see time_unchanged_is_ambiguous)\n",
		    ambiguous_times);
	if (c.lower_failures) {
		printf("fsdiff: %lu run%s over a lower tree ended badly (see above)\n",
		       c.lower_failures, c.lower_failures == 1 ? "" : "s");
		rc = rc ? rc : 1;
	}
	if (!mounts_teardown(&c) && rc == 0)
		rc = 1;
	free(iobuf);
	free(iobuf2);
	return rc;
}
