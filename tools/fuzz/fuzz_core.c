/*
 * fuzz_core.c — a libFuzzer target for the memfs core (src/fs.h).
 *
 * The input is a program: a few bytes choose the limits of a fresh
 * filesystem, then each step takes an operation byte and the operands it
 * needs (inode, names, offsets, sizes, flags, modes) from the bytes that
 * follow.  Running out of input reads zeros and ends the program.  The
 * target plays the kernel's part: it holds lookup and open references the
 * way FUSE does (every reply with an entry adds a lookup, forget gives them
 * back, release only what was opened) and only ever names inodes it holds,
 * a root that always exists, or numbers that were never handed out.
 *
 * After every step:
 *  - the result is 0/a count or one of the errors the core documents
 *    (anything else, e.g. -EUCLEAN or -EIO, is a finding);
 *  - what the step promised holds: a written range reads back, a new name
 *    is found by peek, an unlinked one is not, a renamed one moved, a set
 *    xattr reads back, a truncated size sticks, readdir positions increase;
 *  - mfs_check() passes (counts, link counts, accounting, every index).
 * At the end every reference is given back and the inode count must equal
 * the names left in the tree; mfs_fs_destroy then frees everything, and
 * LeakSanitizer fails the input if anything was left behind.
 *
 * With -Dfault_injection=true one more operation arms an allocation
 * failure for the next step (the Nth allocation, or every Nth); that step
 * may then also give -ENOMEM, and if it does, the tree must be exactly as
 * it was before it (names, attributes but times and blocks, contents,
 * xattrs), except for the two calls the core documents as possibly
 * partial (copy_file_range, FALLOC_FL_ZERO_RANGE).
 *
 * Sizes stay within what the kernel can send (reads and writes of at most
 * 2 MiB, copy_file_range of at most 4 GiB); offsets are anything.
 *
 * Build: meson setup build-fuzz -Dfuzzing=true (clang; see README, Tests).
 * Reproduce a finding: build-fuzz/fuzz_core CRASH-FILE (FUZZ_TRACE=1 prints
 * every step).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "alloc.h"
#include "fs.h"

#define CHUNK 4096u
#define MAX_FILE ((uint64_t)INT64_MAX) /* MFS_MAX_FILE_SIZE */
#define MAX_HELD 64
#define MAX_STEPS 4000
#define MAX_IO (2u << 20)	    /* largest read or write, above max_write */
#define MAX_COPY (4ull << 30)	    /* the kernel's cap for copy_file_range */
#define NEVER_INO (1ull << 40)	    /* inode numbers from here on are never handed out */
#define MAX_WALK 4096		    /* inodes a tree walk visits at most */

/* ---- reading the program ---- */

struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t u8(struct input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

static uint16_t u16(struct input *in)
{
	uint16_t lo = u8(in);
	return (uint16_t)(lo | (uint16_t)u8(in) << 8);
}

static uint32_t u32(struct input *in)
{
	uint32_t lo = u16(in);
	return lo | (uint32_t)u16(in) << 16;
}

static uint64_t u64(struct input *in)
{
	uint64_t lo = u32(in);
	return lo | (uint64_t)u32(in) << 32;
}

/* ---- findings ---- */

static int trace;
static int step;

__attribute__((noreturn, format(printf, 1, 2))) static void finding(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "fuzz_core: step %d: ", step);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

#define REQUIRE(cond, ...)                     \
	do {                                   \
		if (!(cond))                   \
			finding(__VA_ARGS__);  \
	} while (0)

/* Whether an injected allocation failure may surface in the current step. */
static int armed;
/* An error the target's own callback returned (read sink, write fill). */
static int injected_err;

/* The step's own call is over: its postconditions run without injection. */
static void call_done(void)
{
#ifdef MFS_FAULT_INJECTION
	if (armed)
		mfs_alloc_fail_at(0, 0);
#endif
}

/* Errors the core documents for one call or another. */
static void allowed(const char *what, long r)
{
	if (r >= 0)
		return;
	switch (-r) {
	case ENOENT:
	case EEXIST:
	case ENOTDIR:
	case EISDIR:
	case ENOTEMPTY:
	case EINVAL:
	case ENOSPC:
	case EPERM:
	case ENODATA:
	case ENXIO:
	case EBUSY:
	case ERANGE:
	case ENAMETOOLONG:
	case E2BIG:
	case EOPNOTSUPP:
	case EFBIG:
	case EMLINK:
		return;
	case ENOMEM:
		if (armed)
			return;
		break;
	default:
		if (injected_err && -r == injected_err)
			return;
		break;
	}
	finding("%s: unexpected %ld (%s)", what, r, strerrorname_np((int)-r));
}

/* ---- the references the "kernel" holds ---- */

struct held {
	uint64_t ino;
	uint64_t lookups;
	uint32_t opens;
	mode_t type;
};

static struct mfs_fs *fs;
static struct held held[MAX_HELD];
static int nheld;
static uint64_t size_limit, inode_limit;

static struct held *find_held(uint64_t ino)
{
	for (int i = 0; i < nheld; i++)
		if (held[i].ino == ino)
			return &held[i];
	return NULL;
}

static void drop_if_unused(struct held *h)
{
	if (h == &held[0] || h->lookups || h->opens)
		return;
	*h = held[--nheld];
}

/* A reply carried an entry: one more lookup (and an open for create). */
static void took(const struct mfs_attr *a, int opened)
{
	struct held *h = find_held(a->st.st_ino);

	REQUIRE(a->st.st_ino != 0 && a->st.st_ino < NEVER_INO, "entry with inode %llu",
		(unsigned long long)a->st.st_ino);
	if (!h && nheld == MAX_HELD) {
		/* no room: give the references straight back, as an evicting kernel */
		if (opened)
			REQUIRE(mfs_release(fs, a->st.st_ino) == 0, "release of a fresh open");
		mfs_forget(fs, a->st.st_ino, 1);
		return;
	}
	if (!h) {
		h = &held[nheld++];
		*h = (struct held){.ino = a->st.st_ino, .type = a->st.st_mode & S_IFMT};
	}
	REQUIRE(h->type == (a->st.st_mode & S_IFMT), "inode %llu changed type",
		(unsigned long long)h->ino);
	if (h != &held[0])
		h->lookups++;
	else
		mfs_forget(fs, MFS_ROOT_INO, 1); /* the root's count is not modelled */
	h->opens += opened;
}

/* An inode operand: held (mostly), or one that cannot exist. */
static uint64_t pick_ino(struct input *in, int *stale)
{
	uint8_t b = u8(in);

	*stale = 0;
	if (b < 248)
		return held[b % nheld].ino;
	*stale = 1;
	return b & 1 ? 0 : NEVER_INO + u16(in);
}

/* ---- operands ---- */

static char long255[256], long256[257], long_t[4][4100];
static char namebuf[2][300];
static uint8_t wbuf[MAX_IO + CHUNK], rbuf[MAX_IO + CHUNK];
static const char *const pool[8] = {"a", "b", "c", "d", "e", "f", "g", "h"};

static const char *gen_name(struct input *in, int which)
{
	uint8_t b = u8(in);

	if (b < 224)
		return pool[b & 7];
	switch (b & 7) {
	case 0:
		return ".";
	case 1:
		return "..";
	case 2:
		return long255;
	case 3:
		return long256;
	case 4:
		return "";
	default: {
		size_t len = u8(in) + (b & 1 ? 5 : 0);
		for (size_t i = 0; i < len; i++)
			namebuf[which][i] = (char)u8(in);
		namebuf[which][len] = '\0';
		return namebuf[which];
	}
	}
}

static const char *gen_target(struct input *in)
{
	uint8_t b = u8(in);

	switch (b & 7) {
	case 0:
		return long_t[0]; /* 128 bytes: kept in the inode */
	case 1:
		return long_t[1]; /* 129: costs a block */
	case 2:
		return long_t[2]; /* 4095: the longest */
	case 3:
		return long_t[3]; /* 4096: too long */
	case 4:
		return "";
	default:
		return gen_name(in, 1);
	}
}

static uint64_t gen_off(struct input *in)
{
	uint8_t b = u8(in);

	if (b < 100)
		return u16(in);
	if (b < 150)
		return u32(in) % (4u << 20);
	if (b < 200)
		return (uint64_t)u16(in) * CHUNK;
	if (b < 225)
		return (1ull << 40) + u32(in);
	if (b < 245)
		return MAX_FILE - u16(in);
	return u64(in);
}

static uint64_t gen_len(struct input *in, uint64_t max)
{
	uint8_t b = u8(in);
	uint64_t v;

	if (b < 100)
		v = u8(in);
	else if (b < 190)
		v = u16(in) % 9000;
	else if (b < 235)
		v = u32(in) % (3 * CHUNK + 77);
	else if (b < 250)
		v = u32(in) % (MAX_IO + 1);
	else
		v = u64(in);
	return v > max ? max : v;
}

static const struct mfs_cred cred0 = {0, 0}, cred1 = {1000, 1000};

static const struct mfs_cred *gen_cred(struct input *in)
{
	return u8(in) & 1 ? &cred1 : &cred0;
}

/* ---- callbacks ---- */

struct fill_ctx {
	const uint8_t *src;
	size_t copied;
	size_t limit; /* copy at most this much in all */
	int mode;     /* 0 all, 1 short, 2 -EFAULT, 3 nothing */
	int calls;
};

static ssize_t fill_cb(void *ctx, const struct iovec *iov, int n)
{
	struct fill_ctx *f = ctx;
	size_t start = f->copied;

	f->calls++;
	if (f->mode == 2)
		return -EFAULT;
	for (int i = 0; i < n; i++) {
		size_t take = iov[i].iov_len;
		if (f->mode == 1 && take > f->limit - f->copied)
			take = f->limit - f->copied;
		if (f->mode == 3)
			take = 0;
		memcpy(iov[i].iov_base, f->src + f->copied, take);
		f->copied += take;
		if (take < iov[i].iov_len)
			break;
	}
	return (ssize_t)(f->copied - start);
}

struct sink_ctx {
	uint8_t *dst;
	size_t got;
	int fail;
};

static int sink_cb(void *ctx, const struct iovec *iov, int n)
{
	struct sink_ctx *s = ctx;

	if (s->fail)
		return -EIO;
	for (int i = 0; i < n; i++) {
		REQUIRE(iov[i].iov_base || iov[i].iov_len == 0, "read iovec without memory");
		memcpy(s->dst + s->got, iov[i].iov_base, iov[i].iov_len);
		s->got += iov[i].iov_len;
	}
	return 0;
}

#define MAX_LISTED 64

struct listing {
	int limit;
	int n;
	uint64_t last_off;
	uint64_t ino[MAX_LISTED];
	mode_t mode[MAX_LISTED];
	int dot[MAX_LISTED];
	char name[MAX_LISTED][256];
	struct stat st[MAX_LISTED];
};

static int list_cb(void *ctx, const char *name, const struct stat *st, uint64_t next_off)
{
	struct listing *l = ctx;

	if (l->n >= l->limit)
		return 1;
	REQUIRE(next_off > l->last_off, "readdir position %llu after %llu",
		(unsigned long long)next_off, (unsigned long long)l->last_off);
	REQUIRE(strlen(name) >= 1 && strlen(name) <= 255, "readdir name of %zu bytes",
		strlen(name));
	l->last_off = next_off;
	l->ino[l->n] = st->st_ino;
	l->mode[l->n] = st->st_mode;
	l->dot[l->n] = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
	l->st[l->n] = *st;
	strcpy(l->name[l->n], name);
	l->n++;
	return 0;
}

/* ---- whole-tree views ---- */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static uint64_t mix_bytes(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		h = mix(h, b[i]);
	return h;
}

/* A block of contents; all-zero blocks count as holes. */
static uint64_t mix_block(uint64_t h, uint64_t off, const uint8_t *p, size_t len)
{
	static const uint8_t zeros[CHUNK];
	uint64_t x = 0;

	if (memcmp(p, zeros, len) == 0)
		return h;
	for (size_t i = 0; i < len; i++)
		x = (x ^ p[i]) * 0x100000001b3ull;
	return mix(mix(h, off), x);
}

/* Everything an ENOMEM must leave alone, for one inode. */
static uint64_t hash_inode(uint64_t h, uint64_t ino)
{
	struct mfs_attr a;
	ssize_t n;

	if (mfs_getattr(fs, ino, &a) != 0)
		return mix(h, 0xdead);
	h = mix(h, ino);
	h = mix(h, a.st.st_mode);
	h = mix(h, a.st.st_uid);
	h = mix(h, a.st.st_gid);
	h = mix(h, a.st.st_nlink);
	h = mix(h, (uint64_t)a.st.st_size);
	h = mix(h, a.st.st_rdev);
	if (S_ISREG(a.st.st_mode)) {
		/* the blocks that hold a nonzero byte, and where: a failed write
		 * may leave zero-filled chunks behind, which read the same */
		uint64_t size = (uint64_t)a.st.st_size, off = 0;
		while (off < size) {
			int64_t d = mfs_lseek(fs, ino, off, SEEK_DATA);
			if (d < 0)
				break;
			int64_t e = mfs_lseek(fs, ino, (uint64_t)d, SEEK_HOLE);
			if (e <= d)
				break;
			for (uint64_t o = (uint64_t)d & ~(uint64_t)(CHUNK - 1); o < (uint64_t)e;) {
				size_t len = (uint64_t)e - o > 65536 ? 65536 : (size_t)((uint64_t)e - o);
				ssize_t got = mfs_pread(fs, ino, rbuf, len, o);
				if (got <= 0)
					break;
				for (ssize_t i = 0; i < got; i += CHUNK)
					h = mix_block(h, o + (uint64_t)i, rbuf + i,
						      got - i < CHUNK ? (size_t)(got - i) : CHUNK);
				o += (uint64_t)got;
			}
			off = (uint64_t)e;
		}
	} else if (S_ISLNK(a.st.st_mode)) {
		n = mfs_readlink(fs, ino, (char *)rbuf, sizeof(rbuf));
		h = n > 0 ? mix_bytes(h, rbuf, (size_t)n) : mix(h, (uint64_t)n);
	}
	static char names[65536];
	n = mfs_listxattr(fs, ino, names, sizeof(names));
	for (ssize_t i = 0; i < n;) {
		const char *name = names + i;
		ssize_t v = mfs_getxattr(fs, ino, name, rbuf, sizeof(rbuf));
		h = mix_bytes(h, name, strlen(name));
		h = v > 0 ? mix_bytes(h, rbuf, (size_t)v) : mix(h, (uint64_t)v);
		i += (ssize_t)strlen(name) + 1;
	}
	return h;
}

static struct listing walk_list;

/* Visit the tree from the root without recursion; fn(ino) for each directory. */
static uint64_t walk(uint64_t h, uint64_t *names)
{
	static uint64_t stack[MAX_WALK];
	int top = 0, visited = 0;

	stack[top++] = MFS_ROOT_INO;
	*names = 0;
	h = hash_inode(h, MFS_ROOT_INO);
	while (top > 0 && visited < MAX_WALK) {
		uint64_t dir = stack[--top], off = 2;
		visited++;
		for (;;) {
			walk_list.limit = MAX_LISTED;
			walk_list.n = 0;
			walk_list.last_off = off;
			int r = mfs_readdir(fs, dir, off, 0, list_cb, &walk_list);
			REQUIRE(r == 0, "readdir of a directory in the tree: %d", r);
			if (walk_list.n == 0)
				break;
			for (int i = 0; i < walk_list.n; i++) {
				(*names)++;
				h = mix_bytes(h, walk_list.name[i], strlen(walk_list.name[i]));
				h = hash_inode(h, walk_list.ino[i]);
				if (S_ISDIR(walk_list.mode[i]) && top < MAX_WALK)
					stack[top++] = walk_list.ino[i];
			}
			off = walk_list.last_off;
		}
	}
	return h;
}

static uint64_t fingerprint(void)
{
	uint64_t names, h = walk(0, &names);
	struct statvfs sv;

	for (int i = 0; i < nheld; i++)
		h = hash_inode(h, held[i].ino);
	mfs_statfs(fs, &sv);
	return mix(h, sv.f_ffree);
}

static void check(void)
{
	const char *why = NULL;

	if (mfs_check(fs, &why) != 0)
		finding("mfs_check: %s", why ? why : "?");
}

/* ---- the operations ---- */

enum op {
	OP_LOOKUP, OP_PEEK, OP_FORGET, OP_FORGET_MANY, OP_MKNOD, OP_MKDIR, OP_SYMLINK, OP_LINK,
	OP_UNLINK, OP_RMDIR, OP_RENAME, OP_READLINK, OP_GETATTR, OP_SETATTR, OP_OPEN, OP_CREATE,
	OP_RELEASE, OP_OPENDIR, OP_READ, OP_WRITE, OP_FALLOCATE, OP_LSEEK, OP_COPY, OP_READDIR,
	OP_SETXATTR, OP_GETXATTR, OP_LISTXATTR, OP_REMOVEXATTR, OP_STATFS, OP_FAULT, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
	"lookup", "peek", "forget", "forget_many", "mknod", "mkdir", "symlink", "link",
	"unlink", "rmdir", "rename", "readlink", "getattr", "setattr", "open", "create",
	"release", "opendir", "read", "write", "fallocate", "lseek", "copy_range", "readdir",
	"setxattr", "getxattr", "listxattr", "removexattr", "statfs", "fault",
};

/* After a call that made parent/name: the name now leads to the new inode. */
static void expect_name(uint64_t parent, const char *name, uint64_t ino)
{
	struct mfs_attr a;
	int r = mfs_peek(fs, parent, name, &a);

	REQUIRE(r == 0 && a.st.st_ino == ino, "'%s' in %llu: peek gives %d / inode %llu, not %llu",
		name, (unsigned long long)parent, r, (unsigned long long)(r ? 0 : a.st.st_ino),
		(unsigned long long)ino);
}

static uint64_t ino_at(uint64_t parent, const char *name)
{
	struct mfs_attr a;

	return mfs_peek(fs, parent, name, &a) == 0 ? a.st.st_ino : 0;
}

static long do_name_op(struct input *in, enum op op)
{
	struct mfs_attr a;
	int stale;
	uint64_t parent = pick_ino(in, &stale);
	const char *name = gen_name(in, 0);
	long r = 0;

	switch (op) {
	case OP_LOOKUP:
	case OP_PEEK:
		r = op == OP_LOOKUP ? mfs_lookup(fs, parent, name, &a) : mfs_peek(fs, parent, name, &a); call_done();
		if (r == 0 && op == OP_LOOKUP)
			took(&a, 0);
		break;
	case OP_MKNOD: {
		mode_t mode = u16(in);
		dev_t rdev = u32(in);
		r = mfs_mknod(fs, gen_cred(in), parent, name, mode, rdev, &a); call_done();
		if (r == 0) {
			REQUIRE(!S_ISDIR(a.st.st_mode) && !S_ISLNK(a.st.st_mode), "mknod made a %o",
				a.st.st_mode);
			took(&a, 0);
			expect_name(parent, name, a.st.st_ino);
		}
		break;
	}
	case OP_MKDIR:
		r = mfs_mkdir(fs, gen_cred(in), parent, name, u16(in), &a); call_done();
		if (r == 0) {
			REQUIRE(S_ISDIR(a.st.st_mode) && a.st.st_nlink == 2, "mkdir gave %o/%lu",
				a.st.st_mode, (unsigned long)a.st.st_nlink);
			took(&a, 0);
			expect_name(parent, name, a.st.st_ino);
		}
		break;
	case OP_SYMLINK: {
		const char *target = gen_target(in);
		r = mfs_symlink(fs, gen_cred(in), parent, name, target, &a); call_done();
		if (r == 0) {
			char buf[4100];
			took(&a, 0);
			expect_name(parent, name, a.st.st_ino);
			ssize_t n = mfs_readlink(fs, a.st.st_ino, buf, sizeof(buf));
			REQUIRE(n == (ssize_t)strlen(target) && memcmp(buf, target, (size_t)n) == 0,
				"symlink target reads back as %zd bytes", n);
		}
		break;
	}
	case OP_LINK: {
		uint64_t ino = pick_ino(in, &stale);
		r = mfs_link(fs, ino, parent, name, &a); call_done();
		if (r == 0) {
			REQUIRE(a.st.st_ino == ino, "link returned another inode");
			took(&a, 0);
			expect_name(parent, name, ino);
		}
		break;
	}
	case OP_UNLINK:
	case OP_RMDIR:
		r = op == OP_UNLINK ? mfs_unlink(fs, parent, name) : mfs_rmdir(fs, parent, name); call_done();
		if (r == 0)
			REQUIRE(ino_at(parent, name) == 0, "'%s' still there after %s", name,
				op_names[op]);
		break;
	case OP_RENAME: {
		uint64_t newparent = pick_ino(in, &stale);
		const char *newname = gen_name(in, 1);
		static const unsigned flags[8] = {0, 0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE,
						  RENAME_NOREPLACE | RENAME_EXCHANGE, RENAME_WHITEOUT,
						  0x80};
		unsigned fl = flags[u8(in) & 7];
		uint64_t src = ino_at(parent, name), dst = ino_at(newparent, newname);
		r = mfs_rename(fs, parent, name, newparent, newname, fl); call_done();
		if (r == 0 && src != dst) {
			REQUIRE(ino_at(newparent, newname) == src, "rename: target does not name the source");
			REQUIRE(ino_at(parent, name) == (fl == RENAME_EXCHANGE ? dst : 0),
				"rename: the old name is wrong afterwards");
		}
		break;
	}
	default:
		break;
	}
	if (stale && r == 0 && op != OP_RENAME && op != OP_LINK)
		finding("%s in a directory that never existed succeeded", op_names[op]);
	return r;
}

static long do_setattr(struct input *in, uint64_t ino)
{
	struct mfs_setattr sa = {.valid = u16(in) & 0x1ff};
	struct mfs_attr a;
	long r;

	sa.mode = u16(in);
	sa.uid = u8(in) & 1 ? 1000 : 0;
	sa.gid = u8(in) & 1 ? 1000 : 0;
	sa.size = gen_off(in) & (u8(in) & 1 ? 0xffff : UINT64_MAX);
	sa.atime.tv_sec = (int32_t)u32(in);
	sa.atime.tv_nsec = u32(in) % 1000000000;
	sa.mtime = sa.atime;
	sa.ctime = sa.atime;
	r = mfs_setattr(fs, ino, &sa, &a); call_done();
	if (r == 0 && (sa.valid & MFS_SET_SIZE)) {
		REQUIRE(S_ISREG(a.st.st_mode) && (uint64_t)a.st.st_size == sa.size,
			"setattr size %llu gave %lld", (unsigned long long)sa.size,
			(long long)a.st.st_size);
		REQUIRE(sa.size <= MAX_FILE, "a size past the largest file was accepted");
	}
	if (r == 0 && (sa.valid & MFS_SET_MODE))
		REQUIRE((a.st.st_mode & 07777) == (sa.mode & 07777), "setattr mode did not stick");
	return r;
}

static long do_read(struct input *in, uint64_t ino)
{
	struct sink_ctx s = {.dst = rbuf, .fail = u8(in) % 16 == 0};
	uint64_t off = gen_off(in);
	size_t size = (size_t)gen_len(in, MAX_IO);
	struct mfs_attr a;
	long r;

	if (s.fail)
		injected_err = EIO;
	int have = mfs_getattr(fs, ino, &a) == 0 && S_ISREG(a.st.st_mode);
	r = mfs_read(fs, ino, off, size, sink_cb, &s); call_done();
	if (r == 0 && have) {
		uint64_t want = off >= (uint64_t)a.st.st_size ? 0 : (uint64_t)a.st.st_size - off;
		if (want > size)
			want = size;
		REQUIRE(s.got == want, "read of %zu at %llu in a %lld-byte file gave %zu", size,
			(unsigned long long)off, (long long)a.st.st_size, s.got);
	}
	return r;
}

static long do_write(struct input *in, uint64_t ino)
{
	struct fill_ctx f = {.src = wbuf + (u8(in) * 61u) % CHUNK};
	uint64_t off = gen_off(in);
	size_t len = (size_t)gen_len(in, MAX_IO);
	unsigned flags = u8(in) & 3;
	uint8_t m = u8(in);
	struct mfs_attr before, after;
	long r;

	f.mode = m < 224 ? 0 : m & 3;
	f.limit = len ? u32(in) % len : 0;
	if (f.mode == 2)
		injected_err = EFAULT;
	int have = mfs_getattr(fs, ino, &before) == 0 && S_ISREG(before.st.st_mode);
	uint64_t at = (flags & MFS_WRITE_APPEND) && have ? (uint64_t)before.st.st_size : off;
	r = mfs_write(fs, ino, off, len, flags, fill_cb, &f); call_done();
	if (r >= 0 && have) {
		REQUIRE((size_t)r <= len, "write of %zu returned %ld", len, r);
		REQUIRE(len == 0 || f.mode != 0 || r > 0 || f.calls == 0,
			"a full fill gave a zero-byte write");
		REQUIRE((size_t)r == f.copied || len == 0, "write returned %ld, fill copied %zu", r,
			f.copied);
		REQUIRE(mfs_getattr(fs, ino, &after) == 0, "getattr after write");
		if (r > 0) {
			REQUIRE((uint64_t)after.st.st_size >= at + (uint64_t)r,
				"size %lld after writing %ld at %llu", (long long)after.st.st_size, r,
				(unsigned long long)at);
			ssize_t got = mfs_pread(fs, ino, rbuf, (size_t)r, at);
			REQUIRE(got == r && memcmp(rbuf, f.src, (size_t)r) == 0,
				"%ld bytes written at %llu do not read back (%zd)", r,
				(unsigned long long)at, got);
		} else {
			REQUIRE(after.st.st_size == before.st.st_size, "an empty write changed the size");
		}
	}
	return r;
}

static long do_fallocate(struct input *in, uint64_t ino, int *partial)
{
	static const int modes[8] = {0,
				     FALLOC_FL_KEEP_SIZE,
				     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				     FALLOC_FL_ZERO_RANGE,
				     FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
				     FALLOC_FL_PUNCH_HOLE,
				     -1};
	uint8_t b = u8(in);
	int mode = modes[b & 7] == -1 ? (int)u32(in) : modes[b & 7];
	uint64_t off = gen_off(in), len = gen_len(in, UINT64_MAX);
	struct mfs_attr before, after;

	*partial = (mode & FALLOC_FL_ZERO_RANGE) != 0;
	int have = mfs_getattr(fs, ino, &before) == 0 && S_ISREG(before.st.st_mode);
	long r = mfs_fallocate(fs, ino, mode, off, len); call_done();
	if (r == 0 && have) {
		REQUIRE(mfs_getattr(fs, ino, &after) == 0, "getattr after fallocate");
		if (mode & FALLOC_FL_PUNCH_HOLE) {
			REQUIRE(after.st.st_size == before.st.st_size, "punching changed the size");
			uint64_t end = off + len;
			/* the punched range reads as zeros */
			uint64_t from = off, to = end < (uint64_t)after.st.st_size ? end : (uint64_t)after.st.st_size;
			if (to > from && to - from <= 65536) {
				ssize_t got = mfs_pread(fs, ino, rbuf, (size_t)(to - from), from);
				REQUIRE(got == (ssize_t)(to - from), "read of the punched range");
				for (ssize_t i = 0; i < got; i++)
					REQUIRE(rbuf[i] == 0, "byte %lld of a punched range is %d",
						(long long)(from + (uint64_t)i), rbuf[i]);
			}
		} else if (!(mode & FALLOC_FL_KEEP_SIZE)) {
			REQUIRE((uint64_t)after.st.st_size >= off + len, "fallocate did not extend");
		}
	}
	return r;
}

static long do_lseek(struct input *in, uint64_t ino)
{
	uint8_t b = u8(in);
	int whence = b & 4 ? (int)(b & 3) : (b & 1 ? SEEK_HOLE : SEEK_DATA);
	uint64_t off = gen_off(in);
	struct mfs_attr a;
	int have = mfs_getattr(fs, ino, &a) == 0 && S_ISREG(a.st.st_mode);
	int64_t r = mfs_lseek(fs, ino, off, whence); call_done();

	if (r >= 0 && have) {
		REQUIRE((uint64_t)r >= off && r <= a.st.st_size, "lseek %d from %llu gave %lld in a %lld-byte file",
			whence, (unsigned long long)off, (long long)r, (long long)a.st.st_size);
		REQUIRE(whence == SEEK_HOLE || r < a.st.st_size, "SEEK_DATA gave the end of file");
	}
	return (long)r;
}

static long do_copy(struct input *in, int *partial)
{
	int stale;
	uint64_t a = pick_ino(in, &stale), b = pick_ino(in, &stale);
	uint64_t off_in = gen_off(in), off_out = gen_off(in), len = gen_len(in, MAX_COPY);
	struct mfs_attr src, before, after;

	*partial = 1;
	int have = mfs_getattr(fs, a, &src) == 0 && S_ISREG(src.st.st_mode) &&
		   mfs_getattr(fs, b, &before) == 0 && S_ISREG(before.st.st_mode);
	ssize_t r = mfs_copy_range(fs, a, off_in, b, off_out, (size_t)len); call_done();
	if (r >= 0 && have) {
		uint64_t avail = off_in >= (uint64_t)src.st.st_size ? 0 : (uint64_t)src.st.st_size - off_in;
		REQUIRE((uint64_t)r <= len && (uint64_t)r <= avail, "copy of %llu gave %zd",
			(unsigned long long)len, r);
		REQUIRE(mfs_getattr(fs, b, &after) == 0, "getattr after copy");
		if (r > 0) {
			REQUIRE((uint64_t)after.st.st_size >= off_out + (uint64_t)r, "copy did not extend");
			if (a != b && r <= 65536) {
				static uint8_t cbuf[65536];
				ssize_t g1 = mfs_pread(fs, a, cbuf, (size_t)r, off_in);
				ssize_t g2 = mfs_pread(fs, b, rbuf, (size_t)r, off_out);
				REQUIRE(g1 == r && g2 == r && memcmp(cbuf, rbuf, (size_t)r) == 0,
					"copied range differs from its source");
			}
		}
	}
	return (long)r;
}

static struct listing list;

static long do_readdir(struct input *in, uint64_t ino)
{
	static uint64_t last_next;
	uint8_t b = u8(in);
	uint64_t off = b & 1 ? last_next : (b & 2 ? u8(in) : 0);
	int plus = (b >> 2) & 1;
	long r;

	list.limit = 1 + u8(in) % MAX_LISTED;
	list.n = 0;
	list.last_off = off;
	r = mfs_readdir(fs, ino, off, plus, list_cb, &list); call_done();
	last_next = list.last_off;
	for (int i = 0; i < list.n; i++) {
		for (int j = 0; j < i; j++)
			REQUIRE(strcmp(list.name[i], list.name[j]) != 0, "readdir listed '%s' twice",
				list.name[i]);
		if (plus && !list.dot[i]) {
			struct mfs_attr a = {.st = list.st[i]};
			took(&a, 0);
		}
	}
	return r;
}

static char xname_long[2][300];

static const char *gen_xname(struct input *in)
{
	static const char *const xnames[] = {"user.a", "user.b", "trusted.t", "security.s",
					     "system.x", "user.", "bogus", ""};
	uint8_t b = u8(in);

	if (b < 240)
		return xnames[b & 3];
	if (b < 250)
		return xnames[b & 7];
	return xname_long[b & 1];
}

static long do_xattr(struct input *in, enum op op, uint64_t ino)
{
	static char names[65536 + 16];
	const char *name = gen_xname(in);
	long r = 0;

	switch (op) {
	case OP_SETXATTR: {
		uint8_t b = u8(in);
		size_t size = b < 200 ? u8(in) : b < 230 ? u16(in) : b < 240 ? 65536 : 65537;
		const uint8_t *value = wbuf + u8(in);
		int flags = (int)(u8(in) % 5); /* 0, CREATE, REPLACE, both, 4 (invalid) */
		r = mfs_setxattr(fs, ino, name, value, size, flags); call_done();
		if (r == 0) {
			ssize_t n = mfs_getxattr(fs, ino, name, rbuf, sizeof(rbuf));
			REQUIRE(n == (ssize_t)size && memcmp(rbuf, value, size) == 0,
				"xattr %s of %zu bytes reads back as %zd", name, size, n);
		}
		break;
	}
	case OP_GETXATTR: {
		size_t size = u8(in) & 1 ? 0 : u8(in) & 1 ? u8(in) : sizeof(rbuf);
		r = mfs_getxattr(fs, ino, name, rbuf, size); call_done();
		if (r >= 0 && size == 0)
			REQUIRE(mfs_getxattr(fs, ino, name, rbuf, sizeof(rbuf)) == r,
				"the size probe and the value disagree");
		break;
	}
	case OP_LISTXATTR: {
		size_t size = u8(in) & 1 ? 0 : u8(in) & 1 ? u8(in) : sizeof(names);
		r = mfs_listxattr(fs, ino, names, size); call_done();
		if (r >= 0 && size == 0) {
			ssize_t n = mfs_listxattr(fs, ino, names, sizeof(names));
			REQUIRE(n == r, "list probe %ld, list %zd", r, n);
			REQUIRE(n == 0 || names[n - 1] == '\0', "xattr list not NUL-terminated");
			for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1)
				REQUIRE(strncmp(names + i, "user.", 5) == 0 ||
					    strncmp(names + i, "trusted.", 8) == 0 ||
					    strncmp(names + i, "security.", 9) == 0,
					"xattr list holds '%s'", names + i);
		}
		break;
	}
	case OP_REMOVEXATTR:
		r = mfs_removexattr(fs, ino, name); call_done();
		if (r == 0)
			REQUIRE(mfs_getxattr(fs, ino, name, NULL, 0) == -ENODATA,
				"xattr %s still there after removal", name);
		break;
	default:
		break;
	}
	return r;
}

static long do_forget(struct input *in, enum op op)
{
	if (op == OP_FORGET) {
		struct held *h = &held[u8(in) % nheld];
		uint64_t n = u8(in) % 4;
		if (h != &held[0] && n > h->lookups && u8(in) != 255)
			n = h->lookups; /* but, rarely, more than held: harmless */
		mfs_forget(fs, h->ino, n);
		if (h != &held[0]) {
			h->lookups -= n > h->lookups ? h->lookups : n;
			drop_if_unused(h);
		}
		return 0;
	}
	struct mfs_forget list[4];
	size_t n = 1 + u8(in) % 4, k = 0;
	for (size_t i = 0; i < n; i++) {
		struct held *h = &held[u8(in) % nheld];
		uint64_t already = 0;
		for (size_t j = 0; j < k; j++)
			if (list[j].ino == h->ino)
				already += list[j].nlookup;
		if (h == &held[0] || h->lookups <= already)
			continue;
		list[k].ino = h->ino;
		list[k].nlookup = 1 + u8(in) % (h->lookups - already);
		k++;
	}
	mfs_forget_many(fs, list, k);
	for (size_t j = 0; j < k; j++) {
		struct held *h = find_held(list[j].ino);
		h->lookups -= list[j].nlookup;
	}
	for (size_t j = 0; j < k; j++) {
		struct held *h = find_held(list[j].ino);
		if (h)
			drop_if_unused(h);
	}
	return 0;
}

static long do_release(struct input *in)
{
	uint8_t b = u8(in);

	for (int i = 0; i < nheld; i++) {
		struct held *h = &held[(b + i) % nheld];
		if (!h->opens)
			continue;
		int r = S_ISDIR(h->type) ? mfs_releasedir(fs, h->ino) : mfs_release(fs, h->ino);
		REQUIRE(r == 0, "release of an open inode gave %d", r);
		h->opens--;
		drop_if_unused(h);
		return 0;
	}
	return 0;
}

static void statfs_sane(void)
{
	struct statvfs sv;

	mfs_statfs(fs, &sv);
	REQUIRE(sv.f_bsize == CHUNK && sv.f_frsize == CHUNK, "statfs block size");
	REQUIRE(sv.f_blocks == size_limit / CHUNK && sv.f_bfree <= sv.f_blocks &&
		    sv.f_bavail == sv.f_bfree,
		"statfs blocks %llu free %llu", (unsigned long long)sv.f_blocks,
		(unsigned long long)sv.f_bfree);
	REQUIRE(sv.f_files == inode_limit && sv.f_ffree < sv.f_files, "statfs files %llu free %llu",
		(unsigned long long)sv.f_files, (unsigned long long)sv.f_ffree);
}

static long run_step(struct input *in, enum op op, int *partial)
{
	int stale = 0;
	uint64_t ino;
	long r = 0;

	switch (op) {
	case OP_LOOKUP:
	case OP_PEEK:
	case OP_MKNOD:
	case OP_MKDIR:
	case OP_SYMLINK:
	case OP_LINK:
	case OP_UNLINK:
	case OP_RMDIR:
	case OP_RENAME:
		return do_name_op(in, op);
	case OP_FORGET:
	case OP_FORGET_MANY:
		return do_forget(in, op);
	case OP_READLINK: {
		static const size_t sizes[4] = {0, 1, 128, 4096};
		static char buf[4096];
		ino = pick_ino(in, &stale);
		r = mfs_readlink(fs, ino, buf, sizes[u8(in) & 3]); call_done();
		break;
	}
	case OP_GETATTR: {
		struct mfs_attr a;
		ino = pick_ino(in, &stale);
		r = mfs_getattr(fs, ino, &a); call_done();
		if (r == 0)
			REQUIRE(a.st.st_ino == ino && a.st.st_size >= 0 && a.st.st_blocks >= 0,
				"getattr of %llu", (unsigned long long)ino);
		break;
	}
	case OP_SETATTR:
		ino = pick_ino(in, &stale);
		r = do_setattr(in, ino);
		break;
	case OP_OPEN: {
		struct held *h;
		ino = pick_ino(in, &stale);
		h = find_held(ino);
		r = mfs_open(fs, ino, (int)u32(in)); call_done();
		if (r == 0) {
			REQUIRE(h, "open of an inode that is not held succeeded");
			h->opens++;
		}
		break;
	}
	case OP_CREATE: {
		struct mfs_attr a;
		uint64_t parent = pick_ino(in, &stale);
		const char *name = gen_name(in, 0);
		mode_t mode = u16(in);
		int flags = (int)u32(in);
		r = mfs_create(fs, gen_cred(in), parent, name, mode, flags, &a); call_done();
		if (r == 0) {
			REQUIRE(!S_ISDIR(a.st.st_mode), "create opened a directory");
			took(&a, 1);
			expect_name(parent, name, a.st.st_ino);
		}
		break;
	}
	case OP_RELEASE:
		return do_release(in);
	case OP_OPENDIR: {
		struct held *h;
		ino = pick_ino(in, &stale);
		h = find_held(ino);
		r = mfs_opendir(fs, ino); call_done();
		if (r == 0) {
			REQUIRE(h && S_ISDIR(h->type), "opendir of a non-directory succeeded");
			h->opens++;
		}
		break;
	}
	case OP_READ:
		ino = pick_ino(in, &stale);
		r = do_read(in, ino);
		break;
	case OP_WRITE:
		ino = pick_ino(in, &stale);
		r = do_write(in, ino);
		break;
	case OP_FALLOCATE:
		ino = pick_ino(in, &stale);
		r = do_fallocate(in, ino, partial);
		break;
	case OP_LSEEK:
		ino = pick_ino(in, &stale);
		r = do_lseek(in, ino);
		break;
	case OP_COPY:
		return do_copy(in, partial);
	case OP_READDIR:
		ino = pick_ino(in, &stale);
		r = do_readdir(in, ino);
		break;
	case OP_SETXATTR:
	case OP_GETXATTR:
	case OP_LISTXATTR:
	case OP_REMOVEXATTR:
		ino = pick_ino(in, &stale);
		r = do_xattr(in, op, ino);
		break;
	case OP_STATFS:
		statfs_sane();
		return 0;
	default:
		return 0;
	}
	if (stale && r >= 0)
		finding("%s of inode that never existed gave %ld", op_names[op], r);
	return r;
}

/* Give every reference back; then the inodes left are exactly the tree. */
static void teardown(void)
{
	uint64_t names;
	struct statvfs sv;

	for (int i = nheld - 1; i >= 0; i--) {
		struct held h = held[i];
		while (h.opens--)
			REQUIRE((S_ISDIR(h.type) ? mfs_releasedir(fs, h.ino) : mfs_release(fs, h.ino)) == 0,
				"final release");
		if (i > 0 && h.lookups)
			mfs_forget(fs, h.ino, h.lookups);
	}
	nheld = 1;
	check();
	walk(0, &names);
	mfs_statfs(fs, &sv);
	REQUIRE(sv.f_files - sv.f_ffree == 1 + names,
		"%llu inodes in use with every reference given back, %llu names in the tree",
		(unsigned long long)(sv.f_files - sv.f_ffree), (unsigned long long)names);
	mfs_fs_destroy(fs);
	fs = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	trace = getenv("FUZZ_TRACE") != NULL;
	memset(long255, 'n', 255);
	memset(long256, 'n', 256);
	static const size_t tl[4] = {128, 129, 4095, 4096};
	for (int i = 0; i < 4; i++)
		memset(long_t[i], 't', tl[i]);
	for (int i = 0; i < 2; i++) {
		memcpy(xname_long[i], "user.", 5);
		memset(xname_long[i] + 5, 'x', 250 + (size_t)i); /* 255 and 256 bytes */
	}
	for (size_t i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)(i * 131 + (i >> 12) + 1) | 1; /* never zero */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = {data, size};
	uint8_t s = u8(&in), n = u8(&in);
	struct mfs_params p = {
	    .size_bytes = (uint64_t)(1 + (s & 63)) * 16 * 1024 * (s & 64 ? 4 : 1),
	    .max_inodes = n & 128 ? 1u << 20 : 2 + n % 100u,
	    .root_mode = (mode_t)(u16(&in) & 07777),
	    .root_uid = 0,
	    .root_gid = 0,
	};

	size_limit = (p.size_bytes + CHUNK - 1) / CHUNK * CHUNK;
	inode_limit = p.max_inodes;
	REQUIRE(mfs_fs_new(&p, &fs) == 0, "mfs_fs_new");
	nheld = 1;
	held[0] = (struct held){.ino = MFS_ROOT_INO, .type = S_IFDIR};
	check();
	for (step = 0; step < MAX_STEPS && in.n > 0; step++) {
		enum op op = (enum op)(u8(&in) % OP_COUNT);
		int partial = 0;
		uint64_t before = 0;

		if (op == OP_FAULT) {
#ifdef MFS_FAULT_INJECTION
			uint8_t b = u8(&in);
			armed = 1;
			before = fingerprint();
			op = (enum op)(u8(&in) % OP_FAULT);
			if (trace)
				fprintf(stderr, "step %d: fail allocation %u (every %u)\n", step, 1 + (b & 7),
					b & 0x80 ? 1 + ((b >> 3) & 7) : 0);
			mfs_alloc_fail_at(1 + (b & 7), b & 0x80 ? 1 + ((b >> 3) & 7) : 0);
#else
			continue;
#endif
		}
		injected_err = 0;
		long r = run_step(&in, op, &partial);
		if (armed) {
			call_done();
			if (r == -ENOMEM && !partial && fingerprint() != before)
				finding("%s failed with ENOMEM but changed the tree", op_names[op]);
		}
		if (trace)
			fprintf(stderr, "step %d: %s -> %ld\n", step, op_names[op], r);
		allowed(op_names[op], r);
		armed = 0;
		check();
	}
	teardown();
	return 0;
}
