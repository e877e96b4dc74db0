/*
 * test_faults.c — allocation failures across a whole workload (issue 4,
 * faults).  Built only with -Dfault_injection=true (tools/test's build-fuzz).
 *
 * The workload is a seeded sequence of several thousand core calls that
 * uses every entry point of src/fs.h — names of every type, links, renames
 * with each flag, reads and writes up to 2 MiB (so the iovec arrays are
 * allocated too), sparse writes far out, every fallocate mode, lseek,
 * copy_file_range, readdir with and without plus, xattrs up to 64 KiB,
 * forget and forget_many, open and release — plus bursts that grow a
 * directory to hundreds of entries and empty it again (hash tables and
 * position arrays growing and shrinking).
 *
 * Two walks over it:
 *  - one at a time: each step is run with its 1st allocation failing, then
 *    its 2nd, ... until it runs with no failure reached.  Every run must
 *    give -ENOMEM or a correct result (a failure the core absorbs, such as a
 *    shrinking realloc, is fine), mfs_check() must pass after it, and a
 *    -ENOMEM must leave the tree exactly as it was: names, attributes but
 *    times and blocks, the contents of the inodes it names (all-zero blocks
 *    aside: a failed write may leave zero-filled chunks), symlink targets, xattrs,
 *    the inode count — except for the two calls the core documents as
 *    possibly partial (copy_file_range, FALLOC_FL_ZERO_RANGE).  So every
 *    allocation the workload makes fails once, in its own context, and the
 *    run goes on from a state that is exactly what it would be without it;
 *  - every Nth: the whole workload with every Nth allocation failing (N
 *    from 2 to 64), going on after each -ENOMEM; every result must be one a
 *    call may give, and mfs_check() must pass after every step.
 * Both end by giving every reference back (the inode count must then be
 * the names in the tree) and freeing the filesystem, which the sanitizers
 * check for leaks.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include "alloc.h"
#include "fs.h"

#define CHUNK 4096u
#define DEFAULT_STEPS 4000 /* MEMFS_FAULT_STEPS overrides */
#define MAX_HELD 96
#define MAX_IO (2u << 20)
#define NNAMES 8

#define require(cond, ...)                                                                  \
	do {                                                                                \
		if (!(cond))                                                                \
			ck_abort_msg(__VA_ARGS__);                                          \
	} while (0)

static const struct mfs_cred cred = {.uid = 0, .gid = 0};
static long STEPS = DEFAULT_STEPS;
static const char *const names[NNAMES] = {"a", "b", "c", "d", "e", "f", "g", "h"};
static uint8_t wbuf[MAX_IO + CHUNK], rbuf[MAX_IO + CHUNK];
static char long_target[300], burst_name[48];

/* ---- the references a kernel would hold ---- */

struct held {
	uint64_t ino;
	uint64_t lookups;
	uint32_t opens;
	mode_t type;
};

struct world {
	struct mfs_fs *fs;
	struct held held[MAX_HELD];
	int nheld;
	uint64_t rng;
};

static uint64_t rnd(struct world *w)
{
	w->rng ^= w->rng >> 12;
	w->rng ^= w->rng << 25;
	w->rng ^= w->rng >> 27;
	return w->rng * 2685821657736338717ull;
}

static unsigned pick(struct world *w, unsigned n)
{
	return (unsigned)(rnd(w) % n);
}

static struct held *find(struct world *w, uint64_t ino)
{
	for (int i = 0; i < w->nheld; i++)
		if (w->held[i].ino == ino)
			return &w->held[i];
	return NULL;
}

static void drop_unused(struct world *w, struct held *h)
{
	if (h == &w->held[0] || h->lookups || h->opens)
		return;
	*h = w->held[--w->nheld];
}

static void took(struct world *w, const struct mfs_attr *a, int opened)
{
	struct held *h = find(w, a->st.st_ino);

	if (a->st.st_ino == MFS_ROOT_INO) {
		mfs_forget(w->fs, MFS_ROOT_INO, 1);
		return;
	}
	if (!h && w->nheld == MAX_HELD) {
		if (opened)
			mfs_release(w->fs, a->st.st_ino);
		mfs_forget(w->fs, a->st.st_ino, 1);
		return;
	}
	if (!h) {
		h = &w->held[w->nheld++];
		*h = (struct held){.ino = a->st.st_ino, .type = a->st.st_mode & S_IFMT};
	}
	h->lookups++;
	h->opens += opened;
}

/* ---- a step: generated first, so that a failed one can be run again ---- */

enum kind {
	K_CREATE, K_MKNOD, K_MKDIR, K_SYMLINK, K_LINK, K_UNLINK, K_RMDIR, K_RENAME, K_LOOKUP,
	K_FORGET, K_FORGET_MANY, K_OPEN, K_RELEASE, K_OPENDIR, K_READ, K_WRITE, K_SETATTR,
	K_FALLOCATE, K_LSEEK, K_COPY, K_READDIR, K_SETXATTR, K_GETXATTR, K_LISTXATTR,
	K_REMOVEXATTR, K_READLINK, K_GETATTR, K_STATFS, K_BURST_ADD, K_BURST_REMOVE, K_KINDS
};

static const char *const kind_names[K_KINDS] = {
	"create", "mknod", "mkdir", "symlink", "link", "unlink", "rmdir", "rename", "lookup",
	"forget", "forget_many", "open", "release", "opendir", "read", "write", "setattr",
	"fallocate", "lseek", "copy_range", "readdir", "setxattr", "getxattr", "listxattr",
	"removexattr", "readlink", "getattr", "statfs", "burst_add", "burst_remove",
};

struct step {
	enum kind kind;
	uint64_t a, b;	   /* inodes */
	const char *n1, *n2; /* names */
	uint64_t off, off2, len;
	unsigned flags;
	mode_t mode;
	int i; /* a held index, a count, ... */
};

static uint64_t gen_off(struct world *w)
{
	switch (pick(w, 8)) {
	case 0:
		return pick(w, 100);
	case 1:
	case 2:
		return pick(w, 40000);
	case 3:
		return (uint64_t)pick(w, 64) * CHUNK;
	case 4:
		return (uint64_t)pick(w, 64) * CHUNK - 1 + pick(w, 3);
	case 5:
		return (1ull << 30) + pick(w, 1u << 20);
	case 6:
		return (1ull << 40) * (1 + pick(w, 1000));
	default:
		return (uint64_t)INT64_MAX - pick(w, 3 * CHUNK);
	}
}

static uint64_t gen_len(struct world *w)
{
	if (pick(w, 40) == 0)
		return (1u << 20) + pick(w, 3 * CHUNK); /* more iovecs than fit on the stack */
	switch (pick(w, 7)) {
	case 0:
		return 0;
	case 1:
	case 2:
		return 1 + pick(w, 200);
	case 3:
	case 4:
		return 1 + pick(w, 3 * CHUNK);
	case 5:
		return CHUNK * (1 + pick(w, 16));
	default:
		return pick(w, 40000);
	}
}

static uint64_t any_held(struct world *w)
{
	return w->held[pick(w, (unsigned)w->nheld)].ino;
}

static uint64_t held_of(struct world *w, mode_t type)
{
	unsigned start = pick(w, (unsigned)w->nheld);

	for (int i = 0; i < w->nheld; i++) {
		struct held *h = &w->held[(start + (unsigned)i) % (unsigned)w->nheld];
		if (h->type == type)
			return h->ino;
	}
	return type == S_IFDIR ? MFS_ROOT_INO : any_held(w);
}

static void gen_step(struct world *w, long n, struct step *s)
{
	static const unsigned weights[K_KINDS] = {
		[K_CREATE] = 8,	  [K_MKNOD] = 4,      [K_MKDIR] = 5,	 [K_SYMLINK] = 3,
		[K_LINK] = 3,	  [K_UNLINK] = 5,     [K_RMDIR] = 3,	 [K_RENAME] = 6,
		[K_LOOKUP] = 5,	  [K_FORGET] = 6,     [K_FORGET_MANY] = 2, [K_OPEN] = 3,
		[K_RELEASE] = 4,  [K_OPENDIR] = 1,    [K_READ] = 4,	 [K_WRITE] = 10,
		[K_SETATTR] = 4,  [K_FALLOCATE] = 5,  [K_LSEEK] = 2,	 [K_COPY] = 4,
		[K_READDIR] = 4,  [K_SETXATTR] = 5,   [K_GETXATTR] = 2,	 [K_LISTXATTR] = 2,
		[K_REMOVEXATTR] = 2, [K_READLINK] = 1, [K_GETATTR] = 1,	 [K_STATFS] = 1,
	};
	unsigned total = 0, p;

	memset(s, 0, sizeof(*s));
	/* every 500 steps: 150 names into one directory, then out again */
	if (n % 500 >= 300 && n % 500 < 450) {
		s->kind = K_BURST_ADD;
		s->a = w->held[0].ino;
		s->i = (int)(n % 500 - 300);
		return;
	}
	if (n % 500 >= 450) {
		s->kind = K_BURST_REMOVE;
		s->a = w->held[0].ino;
		s->i = (int)((n % 500 - 450) * 3);
		return;
	}
	for (int k = 0; k < K_KINDS; k++)
		total += weights[k];
	p = pick(w, total);
	for (int k = 0; k < K_KINDS; k++) {
		if (p < weights[k]) {
			s->kind = (enum kind)k;
			break;
		}
		p -= weights[k];
	}
	s->a = pick(w, 3) ? held_of(w, S_IFDIR) : any_held(w);
	s->b = pick(w, 2) ? held_of(w, S_IFDIR) : any_held(w);
	s->n1 = names[pick(w, NNAMES)];
	s->n2 = names[pick(w, NNAMES)];
	s->off = gen_off(w);
	s->off2 = gen_off(w);
	s->len = gen_len(w);
	s->flags = (unsigned)rnd(w);
	s->mode = (mode_t)pick(w, 010000);
	s->i = (int)pick(w, 1u << 20);
	switch (s->kind) {
	case K_LINK:
	case K_OPEN:
	case K_READ:
	case K_WRITE:
	case K_SETATTR:
	case K_FALLOCATE:
	case K_LSEEK:
	case K_COPY:
	case K_SETXATTR:
	case K_GETXATTR:
	case K_LISTXATTR:
	case K_REMOVEXATTR:
	case K_READLINK:
	case K_GETATTR:
		s->a = pick(w, 4) ? held_of(w, S_IFREG) : any_held(w);
		s->b = pick(w, 4) ? held_of(w, S_IFREG) : any_held(w);
		if (s->kind == K_LINK)
			s->b = held_of(w, S_IFDIR);
		break;
	default:
		break;
	}
}

/* ---- running a step ---- */

struct fill {
	const uint8_t *src;
	size_t done;
};

static ssize_t fill_cb(void *ctx, const struct iovec *iov, int n)
{
	struct fill *f = ctx;
	size_t start = f->done;

	for (int i = 0; i < n; i++) {
		memcpy(iov[i].iov_base, f->src + f->done, iov[i].iov_len);
		f->done += iov[i].iov_len;
	}
	return (ssize_t)(f->done - start);
}

#define MAX_LISTED 32

struct listing {
	int n, limit;
	struct stat st[MAX_LISTED];
	int dot[MAX_LISTED];
	char name[MAX_LISTED][256];
	uint64_t next;
};

static int list_cb(void *ctx, const char *name, const struct stat *st, uint64_t next_off)
{
	struct listing *l = ctx;

	if (l->n >= l->limit)
		return 1;
	l->st[l->n] = *st;
	l->dot[l->n] = strcmp(name, ".") == 0 || strcmp(name, "..") == 0;
	snprintf(l->name[l->n], sizeof(l->name[0]), "%s", name);
	l->next = next_off;
	l->n++;
	return 0;
}

/* Run one step; references are taken only for what succeeded.  *partial: may half-happen. */
static long run_step(struct world *w, const struct step *s, int *partial)
{
	struct mfs_fs *fs = w->fs;
	struct mfs_attr a;
	long r = 0;

	*partial = 0;
	switch (s->kind) {
	case K_CREATE:
		r = mfs_create(fs, &cred, s->a, s->n1, 0644, O_CREAT | O_RDWR | (s->flags & O_TRUNC),
			       &a);
		if (r == 0)
			took(w, &a, 1);
		break;
	case K_MKNOD: {
		static const mode_t types[4] = {S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR};
		r = mfs_mknod(fs, &cred, s->a, s->n1, types[s->flags % 4] | 0644, 0x0103, &a);
		if (r == 0)
			took(w, &a, 0);
		break;
	}
	case K_MKDIR:
		r = mfs_mkdir(fs, &cred, s->a, s->n1, 0755, &a);
		if (r == 0)
			took(w, &a, 0);
		break;
	case K_SYMLINK:
		r = mfs_symlink(fs, &cred, s->a, s->n1, s->flags & 1 ? long_target : "t", &a);
		if (r == 0)
			took(w, &a, 0);
		break;
	case K_LINK:
		r = mfs_link(fs, s->a, s->b, s->n1, &a);
		if (r == 0)
			took(w, &a, 0);
		break;
	case K_UNLINK:
		r = mfs_unlink(fs, s->a, s->n1);
		break;
	case K_RMDIR:
		r = mfs_rmdir(fs, s->a, s->n1);
		break;
	case K_RENAME: {
		static const unsigned fl[4] = {0, 0, RENAME_NOREPLACE, RENAME_EXCHANGE};
		r = mfs_rename(fs, s->a, s->n1, s->b, s->n2, fl[s->flags % 4]);
		break;
	}
	case K_LOOKUP:
		r = mfs_lookup(fs, s->a, s->flags % 8 ? s->n1 : "..", &a);
		if (r == 0)
			took(w, &a, 0);
		break;
	case K_FORGET: {
		struct held *h = &w->held[(unsigned)s->i % (unsigned)w->nheld];
		if (h == &w->held[0] || !h->lookups)
			break;
		uint64_t k = 1 + s->flags % h->lookups;
		mfs_forget(fs, h->ino, k);
		h->lookups -= k;
		drop_unused(w, h);
		break;
	}
	case K_FORGET_MANY: {
		struct mfs_forget list[3];
		size_t k = 0;
		for (int j = 0; j < 3; j++) {
			struct held *h = &w->held[(unsigned)(s->i + j * 7) % (unsigned)w->nheld];
			if (h != &w->held[0] && h->lookups && (k == 0 || list[k - 1].ino != h->ino)) {
				int dup = 0;
				for (size_t m = 0; m < k; m++)
					dup |= list[m].ino == h->ino;
				if (!dup)
					list[k++] = (struct mfs_forget){h->ino, h->lookups};
			}
		}
		mfs_forget_many(fs, list, k);
		for (size_t m = 0; m < k; m++) {
			struct held *h = find(w, list[m].ino);
			h->lookups = 0;
			drop_unused(w, h);
		}
		break;
	}
	case K_OPEN: {
		struct held *h = find(w, s->a);
		r = mfs_open(fs, s->a, s->flags & 1 ? O_RDWR | O_TRUNC : O_RDONLY);
		if (r == 0)
			h->opens++;
		break;
	}
	case K_RELEASE:
		for (int j = 0; j < w->nheld; j++) {
			struct held *h = &w->held[(unsigned)(s->i + j) % (unsigned)w->nheld];
			if (!h->opens)
				continue;
			r = S_ISDIR(h->type) ? mfs_releasedir(fs, h->ino) : mfs_release(fs, h->ino);
			h->opens--;
			drop_unused(w, h);
			break;
		}
		break;
	case K_OPENDIR: {
		struct held *h = find(w, s->a);
		r = mfs_opendir(fs, s->a);
		if (r == 0)
			h->opens++;
		break;
	}
	case K_READ:
		r = mfs_pread(fs, s->a, rbuf, s->len > MAX_IO ? MAX_IO : s->len, s->off % (1u << 22));
		break;
	case K_WRITE: {
		struct fill f = {.src = wbuf + s->flags % CHUNK};
		r = mfs_write(fs, s->a, s->off, s->len > MAX_IO ? MAX_IO : s->len,
			      s->flags & 0x100 ? MFS_WRITE_APPEND : 0, fill_cb, &f);
		break;
	}
	case K_SETATTR: {
		struct mfs_setattr sa = {.valid = MFS_SET_SIZE, .size = s->off % (1u << 22)};
		if (s->flags & 1)
			sa = (struct mfs_setattr){.valid = MFS_SET_MODE | MFS_SET_MTIME_NOW,
						  .mode = s->mode};
		r = mfs_setattr(fs, s->a, &sa, &a);
		break;
	}
	case K_FALLOCATE: {
		static const int modes[5] = {0, FALLOC_FL_KEEP_SIZE,
					     FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					     FALLOC_FL_ZERO_RANGE,
					     FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE};
		int mode = modes[s->flags % 5];
		*partial = (mode & FALLOC_FL_ZERO_RANGE) != 0;
		r = mfs_fallocate(fs, s->a, mode, s->off % (1u << 24), s->len);
		break;
	}
	case K_LSEEK:
		r = (long)mfs_lseek(fs, s->a, s->off, s->flags & 1 ? SEEK_DATA : SEEK_HOLE);
		break;
	case K_COPY:
		*partial = 1;
		r = mfs_copy_range(fs, s->a, s->off % (1u << 22), s->b, s->off2 % (1u << 22), s->len);
		break;
	case K_READDIR: {
		static struct listing l;
		int plus = s->flags & 1;
		l.n = 0;
		l.limit = 1 + (int)(s->flags % MAX_LISTED);
		r = mfs_readdir(fs, s->a, s->flags & 2 ? 3 + s->flags % 5 : 0, plus, list_cb, &l);
		for (int j = 0; r == 0 && plus && j < l.n; j++) {
			if (!l.dot[j]) {
				struct mfs_attr e = {.st = l.st[j]};
				took(w, &e, 0);
			}
		}
		break;
	}
	case K_SETXATTR: {
		static const char *const xn[4] = {"user.a", "trusted.b", "security.c", "user.d"};
		static const size_t sizes[4] = {3, 200, 5000, 65536};
		r = mfs_setxattr(fs, s->a, xn[s->flags % 4], wbuf, sizes[(s->flags >> 2) % 4],
				 (int)((s->flags >> 4) % 3));
		break;
	}
	case K_GETXATTR:
		r = mfs_getxattr(fs, s->a, s->flags & 1 ? "user.a" : "trusted.b", rbuf,
				 s->flags & 2 ? 0 : sizeof(rbuf));
		break;
	case K_LISTXATTR:
		r = mfs_listxattr(fs, s->a, (char *)rbuf, s->flags & 1 ? 0 : sizeof(rbuf));
		break;
	case K_REMOVEXATTR:
		r = mfs_removexattr(fs, s->a, s->flags & 1 ? "user.a" : "security.c");
		break;
	case K_READLINK:
		r = mfs_readlink(fs, s->a, (char *)rbuf, sizeof(rbuf));
		break;
	case K_GETATTR:
		r = mfs_getattr(fs, s->a, &a);
		break;
	case K_STATFS: {
		struct statvfs sv;
		mfs_statfs(fs, &sv);
		break;
	}
	case K_BURST_ADD:
		snprintf(burst_name, sizeof(burst_name), "burst-%03d-with-a-longer-name", s->i);
		r = mfs_mknod(fs, &cred, s->a, burst_name, S_IFREG | 0600, 0, &a);
		if (r == 0)
			took(w, &a, 0);
		break;
	case K_BURST_REMOVE:
		for (int j = s->i; j < s->i + 3; j++) {
			snprintf(burst_name, sizeof(burst_name), "burst-%03d-with-a-longer-name", j);
			long rr = mfs_unlink(fs, s->a, burst_name);
			if (rr != -ENOENT)
				r = rr;
		}
		break;
	default:
		break;
	}
	return r;
}

/* Results a step may rightly give, ENOMEM aside. */
static int expected(long r)
{
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
	case EFBIG:
	case E2BIG:
		return 1;
	default:
		return r >= 0;
	}
}

/* ---- the state an ENOMEM must not change ---- */

static uint64_t mix(uint64_t h, uint64_t v)
{
	h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
	return h * 0xff51afd7ed558ccdull;
}

static uint64_t mix_bytes(uint64_t h, uint64_t off, const uint8_t *p, size_t len)
{
	uint64_t x = 0;

	for (size_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v;
		memcpy(&v, p + i, 8);
		x = (x ^ v) * 0x100000001b3ull;
	}
	for (size_t i = len & ~(size_t)7; i < len; i++)
		x = (x ^ p[i]) * 0x100000001b3ull;
	return mix(mix(h, off), x);
}

/* A block of contents, blind to all-zero blocks (a failed write may leave zero-filled chunks). */
static uint64_t mix_block(uint64_t h, uint64_t off, const uint8_t *p, size_t len)
{
	static const uint8_t zeros[CHUNK];

	if (len <= CHUNK && memcmp(p, zeros, len) == 0)
		return h;
	return mix_bytes(h, off, p, len);
}

static uint64_t hash_inode(struct mfs_fs *fs, uint64_t h, uint64_t ino, int contents)
{
	static char list[65536];
	struct mfs_attr a;
	ssize_t n;

	if (mfs_getattr(fs, ino, &a) != 0)
		return mix(h, 1);
	h = mix(mix(mix(h, ino), a.st.st_mode), a.st.st_nlink);
	h = mix(mix(mix(h, a.st.st_uid), a.st.st_gid), (uint64_t)a.st.st_size);
	if (S_ISREG(a.st.st_mode) && contents) {
		for (int64_t d = mfs_lseek(fs, ino, 0, SEEK_DATA); d >= 0;) {
			int64_t e = mfs_lseek(fs, ino, (uint64_t)d, SEEK_HOLE);
			d &= ~(int64_t)(CHUNK - 1); /* whole blocks, at block offsets */
			for (int64_t o = d; o < e;) {
				size_t len = e - o > (int64_t)MAX_IO ? MAX_IO : (size_t)(e - o);
				ssize_t got = mfs_pread(fs, ino, rbuf, len, (uint64_t)o);
				require(got > 0, "pread for the fingerprint: %zd", got);
				for (ssize_t i = 0; i < got; i += CHUNK)
					h = mix_block(h, (uint64_t)(o + i), rbuf + i,
						      got - i < CHUNK ? (size_t)(got - i) : CHUNK);
				o += got;
			}
			if (e >= a.st.st_size)
				break;
			d = mfs_lseek(fs, ino, (uint64_t)e, SEEK_DATA);
		}
	} else if (S_ISLNK(a.st.st_mode)) {
		n = mfs_readlink(fs, ino, (char *)rbuf, sizeof(rbuf));
		for (ssize_t i = 0; i < n; i++)
			h = mix(h, rbuf[i]);
	}
	n = mfs_listxattr(fs, ino, list, sizeof(list));
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(list + i) + 1) {
		/* every value's size; the bytes of the step's own inodes */
		ssize_t v = mfs_getxattr(fs, ino, list + i, contents ? rbuf : NULL,
					 contents ? sizeof(rbuf) : 0);
		for (const char *c = list + i; *c; c++)
			h = mix(h, (uint8_t)*c);
		h = mix(h, (uint64_t)v);
		if (contents && v > 0)
			h = mix_bytes(h, 0, rbuf, (size_t)v);
	}
	return h;
}

struct walk_ctx {
	struct mfs_fs *fs;
	uint64_t h, names;
	uint64_t *stack;
	size_t top, cap;
};

static int walk_cb(void *ctx, const char *name, const struct stat *st, uint64_t next_off)
{
	struct walk_ctx *c = ctx;

	(void)next_off;
	c->names++;
	for (const char *p = name; *p; p++)
		c->h = mix(c->h, (uint8_t)*p);
	c->h = mix(c->h, st->st_ino);
	if (S_ISDIR(st->st_mode) && c->top < c->cap)
		c->stack[c->top++] = st->st_ino;
	return 0;
}

/*
 * Names, attributes and xattrs of everything reachable and held, and the
 * contents of the step's own inodes (s may be NULL).
 */
static uint64_t fingerprint(struct world *w, const struct step *s, uint64_t *names)
{
	static uint64_t stack[4096];
	struct walk_ctx c = {.fs = w->fs, .stack = stack, .cap = 4096};
	struct statvfs sv;

	c.stack[c.top++] = MFS_ROOT_INO;
	while (c.top) {
		uint64_t dir = c.stack[--c.top];
		require(mfs_readdir(w->fs, dir, 2, 0, walk_cb, &c) == 0, "readdir while walking");
	}
	for (int i = 0; i < w->nheld; i++) {
		uint64_t ino = w->held[i].ino;
		c.h = hash_inode(w->fs, c.h, ino, s && (ino == s->a || ino == s->b));
	}
	mfs_statfs(w->fs, &sv);
	if (names)
		*names = c.names;
	return mix(c.h, sv.f_ffree);
}

static void check_ok(struct world *w, const char *when, long n)
{
	const char *why = NULL;

	require(mfs_check(w->fs, &why) == 0, "mfs_check after %s (step %ld): %s", when, n,
		why ? why : "?");
}

static void world_new(struct world *w, uint64_t seed)
{
	struct mfs_params p = {.size_bytes = 16u << 20, .max_inodes = 600, .root_mode = 01777};

	memset(w, 0, sizeof(*w));
	w->rng = seed;
	mfs_alloc_fail_at(0, 0);
	ck_assert_int_eq(mfs_fs_new(&p, &w->fs), 0);
	w->nheld = 1;
	w->held[0] = (struct held){.ino = MFS_ROOT_INO, .type = S_IFDIR};
	for (size_t i = 0; i < sizeof(wbuf); i++)
		wbuf[i] = (uint8_t)((i * 7 + (i >> 12)) | 1);
	memset(long_target, 'l', sizeof(long_target) - 1);
}

static void world_end(struct world *w)
{
	uint64_t names;
	struct statvfs sv;

	mfs_alloc_fail_at(0, 0);
	for (int i = w->nheld - 1; i >= 0; i--) {
		struct held *h = &w->held[i];
		while (h->opens--)
			ck_assert_int_eq(S_ISDIR(h->type) ? mfs_releasedir(w->fs, h->ino)
							  : mfs_release(w->fs, h->ino),
					 0);
		if (i > 0 && h->lookups)
			mfs_forget(w->fs, h->ino, h->lookups);
	}
	w->nheld = 1;
	check_ok(w, "giving every reference back", -1);
	fingerprint(w, NULL, &names);
	mfs_statfs(w->fs, &sv);
	ck_assert_uint_eq(sv.f_files - sv.f_ffree, 1 + names);
	mfs_fs_destroy(w->fs);
	w->fs = NULL;
}

#ifdef MFS_FAULT_INJECTION

START_TEST(each_allocation_of_a_long_workload_fails_in_turn_without_harm)
{
	static struct world w;
	unsigned long runs = 0, failed = 0, enomem = 0, absorbed = 0, allocations = 0;
	unsigned long by_kind[K_KINDS] = {0};

	world_new(&w, 0x51ed27f1c0ffee11ull);
	for (long n = 0; n < STEPS; n++) {
		struct step s;
		gen_step(&w, n, &s);
		for (unsigned long k = 1;; k++) {
			int partial;
			uint64_t before = fingerprint(&w, &s, NULL);
			mfs_alloc_fail_at(k, 0);
			long r = run_step(&w, &s, &partial);
			unsigned long used = mfs_alloc_count();
			mfs_alloc_fail_at(0, 0);
			runs++;
			check_ok(&w, kind_names[s.kind], n);
			if (used < k) { /* no failure reached: the step is done */
				require(expected(r), "step %ld (%s) without a failure gave %ld", n,
					kind_names[s.kind], r);
				allocations += k - 1;
				break;
			}
			failed++;
			if (r == -ENOMEM) {
				enomem++;
				by_kind[s.kind]++;
				require(partial || fingerprint(&w, &s, NULL) == before,
					"step %ld (%s): allocation %lu failed, -ENOMEM, and the tree "
					"changed",
					n, kind_names[s.kind], k);
				continue;
			}
			/* absorbed: the call went on without that memory */
			require(expected(r), "step %ld (%s): allocation %lu failed and it gave %ld", n,
				kind_names[s.kind], k, r);
			absorbed++;
			allocations += k;
			break;
		}
	}
	world_end(&w);
	printf("fault walk: %ld steps, %lu runs, %lu allocations failed one at a time "
	       "(%lu gave -ENOMEM, %lu absorbed)\n",
	       STEPS, runs, failed, enomem, absorbed);
	for (int k = 0; k < K_KINDS; k++)
		if (by_kind[k])
			printf("  %s: %lu\n", kind_names[k], by_kind[k]);
	fflush(stdout);
	ck_assert_uint_gt(failed, 2000); /* the workload really allocates */
	ck_assert_uint_gt(enomem, failed / 2);
	(void)allocations;
}
END_TEST

START_TEST(failing_every_nth_allocation_through_a_long_workload_keeps_the_tree_consistent)
{
	static const unsigned long every[] = {2, 3, 5, 7, 11, 17, 31, 64};
	static struct world w;
	unsigned long enomem = 0, steps = 0;

	for (size_t e = 0; e < sizeof(every) / sizeof(every[0]); e++) {
		world_new(&w, 0x9e3779b97f4a7c15ull + e);
		for (long n = 0; n < STEPS / 2; n++) {
			struct step s;
			int partial;
			gen_step(&w, n, &s);
			mfs_alloc_fail_at(1 + (unsigned long)n % every[e], every[e]);
			long r = run_step(&w, &s, &partial);
			mfs_alloc_fail_at(0, 0);
			steps++;
			enomem += r == -ENOMEM;
			require(r == -ENOMEM || expected(r), "every %lu, step %ld (%s): %ld", every[e], n,
				kind_names[s.kind], r);
			check_ok(&w, kind_names[s.kind], n);
		}
		world_end(&w);
	}
	printf("every-Nth walk: %lu steps with every 2nd..64th allocation failing, %lu -ENOMEM\n",
	       steps, enomem);
	fflush(stdout);
	ck_assert_uint_gt(enomem, steps / 20);
}
END_TEST

#endif /* MFS_FAULT_INJECTION */

/* Without injection the same workload must run clean: no -ENOMEM at all. */
START_TEST(the_workload_runs_without_enomem_when_nothing_fails)
{
	static struct world w;
	unsigned long ok = 0;

	world_new(&w, 0x51ed27f1c0ffee11ull);
	for (long n = 0; n < STEPS; n++) {
		struct step s;
		int partial;
		gen_step(&w, n, &s);
		long r = run_step(&w, &s, &partial);
		require(expected(r), "step %ld (%s) gave %ld", n, kind_names[s.kind], r);
		ok += r >= 0;
		if (n % 50 == 0)
			check_ok(&w, kind_names[s.kind], n);
	}
	world_end(&w);
	ck_assert_uint_gt(ok, STEPS / 3); /* it does things, not only errors */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("allocation_failures");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, the_workload_runs_without_enomem_when_nothing_fails);
#ifdef MFS_FAULT_INJECTION
	tcase_add_test(tc, each_allocation_of_a_long_workload_fails_in_turn_without_harm);
	tcase_add_test(tc, failing_every_nth_allocation_through_a_long_workload_keeps_the_tree_consistent);
#endif
	suite_add_tcase(s, tc);
	if (getenv("MEMFS_FAULT_STEPS"))
		STEPS = atol(getenv("MEMFS_FAULT_STEPS"));
	if (STEPS < 500)
		STEPS = 500;
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
