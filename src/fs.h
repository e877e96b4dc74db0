/*
 * fs.h — the memfs core: a POSIX filesystem held in memory, behind a small
 * API that knows nothing of FUSE.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure; nothing is printed.  Inodes are named by 64-bit numbers that are
 * never reused during the life of an mfs_fs; MFS_ROOT_INO is the root.  The
 * same number is the FUSE node id and st_ino.
 *
 * Reference counts (an inode is freed when all three are zero):
 *  - nlink:   names in the tree (directories: 2 + subdirectories while linked)
 *  - nlookup: references the caller holds.  Every call that returns an entry
 *             (lookup, create, mknod, mkdir, symlink, link, readdir with plus
 *             for each entry but "." and "..") adds one; mfs_forget drops them.
 *             The count stops at 2^32 - 1: an inode that reaches it stays.
 *  - nopen:   open handles (mfs_open / mfs_create / mfs_opendir add one,
 *             mfs_release / mfs_releasedir drop one).
 * The root is never freed before mfs_fs_destroy().
 *
 * Permission checks are the kernel's (default_permissions); the core checks
 * only what a filesystem must: types, emptiness, names, limits.
 *
 * Locking, from outermost to innermost (take in this order, never the
 * reverse):
 *  1. fs->ns_lock (rwlock): the namespace and the inode table.  Write mode for
 *     anything that adds, removes or moves a name or frees an inode (create,
 *     mknod, mkdir, symlink, link, unlink, rmdir, rename, forget, release of
 *     the last reference); read mode for everything else.  Directory contents
 *     and directory attributes change only under the write lock.
 *  2. the inode lock (rwlock): contents, size, attributes and xattrs of a
 *     regular file, symlink or special file.  Locks are striped: an inode's
 *     lock is one of MFS_ILOCKS held by the filesystem, chosen by its
 *     number, and shared with the other inodes that hash to it, so an inode
 *     carries no lock of its own.  Taken with ns_lock held (read mode);
 *     read mode to read, write mode to change.  Never hold one while taking
 *     another, except copy_file_range's two: lower address first, and only
 *     once if both inodes share a lock.  Under the ns_lock write lock no
 *     inode lock is needed (nobody else runs).
 *  3. fs->maps.lock (mutex, copyup.h): the lower mappings; taken inside an
 *     inode lock, nothing is taken inside it.
 *  4. atomics: the space and inode counters (space.h), and nlookup/nopen
 *     updates made under the read lock.
 * No lock is held while calling back into the caller except the ones a
 * callback's contract names (read sink, write fill, readdir fill).
 */
#ifndef MFS_FS_H
#define MFS_FS_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>

#define MFS_ROOT_INO 1

struct mfs_fs;

struct mfs_lower;

struct mfs_params {
	uint64_t size_bytes; /* limit for file contents (size=), > 0 */
	uint64_t max_inodes; /* limit on inodes, root included (nr_inodes=), > 0 */
	mode_t root_mode;    /* permission bits of the root (mode=) */
	uid_t root_uid;
	gid_t root_gid;
	/*
	 * Read-only lower layers (lower=, overlay.h), topmost first, at most
	 * 64.  mfs_fs_new takes them over: they are closed by
	 * mfs_fs_destroy, or by mfs_fs_new itself if it fails.
	 */
	struct mfs_lower **lowers;
	unsigned nlowers;
	/* Show every entry from lower as owned by lower_uid / lower_gid. */
	int lower_uid_set, lower_gid_set;
	uid_t lower_uid;
	gid_t lower_gid;
	unsigned max_lower_maps; /* lower files mapped at once; 0: 4096 */
};

/* The caller of an operation that creates something: owner of the result. */
struct mfs_cred {
	uid_t uid;
	gid_t gid;
};

/* Attributes as stat(2) shows them, plus the birth time. */
struct mfs_attr {
	struct stat st;
	struct timespec btime;
};

int mfs_fs_new(const struct mfs_params *p, struct mfs_fs **out);
/*
 * The caller will not report opens and closes (FUSE without OPEN/RELEASE
 * requests): a file with no name may then still be open, so its contents
 * and charge stay until mfs_forget drops the last reference.  Call before
 * any other operation.
 */
void mfs_fs_opens_untracked(struct mfs_fs *fs);
/* Free everything: every inode, name, chunk and xattr.  Iterative. */
void mfs_fs_destroy(struct mfs_fs *fs);

/* ---- names ---- */

int mfs_lookup(struct mfs_fs *fs, uint64_t parent, const char *name, struct mfs_attr *out);
/* mfs_lookup without taking a reference: for the caller's own bookkeeping. */
int mfs_peek(struct mfs_fs *fs, uint64_t parent, const char *name, struct mfs_attr *out);
void mfs_forget(struct mfs_fs *fs, uint64_t ino, uint64_t nlookup);
/* forget for n inodes under one lock (FUSE's forget_multi). */
struct mfs_forget {
	uint64_t ino;
	uint64_t nlookup;
};
void mfs_forget_many(struct mfs_fs *fs, const struct mfs_forget *list, size_t n);

/*
 * Create a node of any type (mode's S_IFMT: regular when 0, FIFO, socket,
 * character or block device with rdev).  Owner from cred, group from cred or
 * from a setgid parent; a setgid parent also passes S_ISGID to directories.
 */
int mfs_mknod(struct mfs_fs *fs, const struct mfs_cred *cred, uint64_t parent, const char *name,
	      mode_t mode, dev_t rdev, struct mfs_attr *out);
int mfs_mkdir(struct mfs_fs *fs, const struct mfs_cred *cred, uint64_t parent, const char *name,
	      mode_t mode, struct mfs_attr *out);
int mfs_symlink(struct mfs_fs *fs, const struct mfs_cred *cred, uint64_t parent,
		const char *name, const char *target, struct mfs_attr *out);
int mfs_link(struct mfs_fs *fs, uint64_t ino, uint64_t newparent, const char *newname,
	     struct mfs_attr *out);
int mfs_unlink(struct mfs_fs *fs, uint64_t parent, const char *name);
int mfs_rmdir(struct mfs_fs *fs, uint64_t parent, const char *name);
/* flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE (anything else -EINVAL). */
int mfs_rename(struct mfs_fs *fs, uint64_t parent, const char *name, uint64_t newparent,
	       const char *newname, unsigned flags);
/* Copy the target into buf (not NUL-terminated); returns its length, -ERANGE if size too small. */
ssize_t mfs_readlink(struct mfs_fs *fs, uint64_t ino, char *buf, size_t size);

/* ---- attributes ---- */

int mfs_getattr(struct mfs_fs *fs, uint64_t ino, struct mfs_attr *out);

enum {
	MFS_SET_MODE = 1 << 0,
	MFS_SET_UID = 1 << 1,
	MFS_SET_GID = 1 << 2,
	MFS_SET_SIZE = 1 << 3,
	MFS_SET_ATIME = 1 << 4, /* to sa->atime */
	MFS_SET_MTIME = 1 << 5, /* to sa->mtime */
	MFS_SET_ATIME_NOW = 1 << 6,
	MFS_SET_MTIME_NOW = 1 << 7,
	MFS_SET_CTIME = 1 << 8, /* to sa->ctime */
};

struct mfs_setattr {
	unsigned valid; /* MFS_SET_* */
	mode_t mode;    /* permission bits and S_ISUID/S_ISGID/S_ISVTX */
	uid_t uid;
	gid_t gid;
	uint64_t size;
	struct timespec atime, mtime, ctime;
};

/*
 * Every call sets ctime to now (unless MFS_SET_CTIME), even with nothing to
 * set: that is chown(f, -1, -1), which Linux filesystems answer by touching
 * ctime.  A size change also sets mtime.
 */
int mfs_setattr(struct mfs_fs *fs, uint64_t ino, const struct mfs_setattr *sa,
		struct mfs_attr *out);

/* ---- open files ---- */

/* flags: open(2) flags; O_TRUNC truncates a regular file. */
int mfs_open(struct mfs_fs *fs, uint64_t ino, int flags);
/*
 * open(O_CREAT): create a regular file, or open the existing one (-EEXIST
 * with O_EXCL; -EISDIR if it is a directory).  Adds a lookup and an open.
 */
int mfs_create(struct mfs_fs *fs, const struct mfs_cred *cred, uint64_t parent, const char *name,
	       mode_t mode, int flags, struct mfs_attr *out);
int mfs_release(struct mfs_fs *fs, uint64_t ino);
int mfs_opendir(struct mfs_fs *fs, uint64_t ino);
int mfs_releasedir(struct mfs_fs *fs, uint64_t ino);

/*
 * Read up to size bytes at off.  The core calls sink once with the bytes as
 * an iovec (pointers into file memory, valid only during the call, with the
 * inode's lock held: the sink must not call the core) and returns what sink
 * returns (0 or -errno).  At or past EOF sink gets n == 0.
 */
typedef int (*mfs_read_sink)(void *ctx, const struct iovec *iov, int n);
int mfs_read(struct mfs_fs *fs, uint64_t ino, uint64_t off, size_t size, mfs_read_sink sink,
	     void *ctx);
/* mfs_read into a buffer; returns bytes read. */
ssize_t mfs_pread(struct mfs_fs *fs, uint64_t ino, void *buf, size_t size, uint64_t off);

enum {
	MFS_WRITE_APPEND = 1 << 0,    /* write at the end of file, whatever off */
	MFS_WRITE_KILL_PRIV = 1 << 1, /* clear S_ISUID, and S_ISGID if group-exec */
};

/*
 * Write len bytes at off.  The core makes room and calls fill once with the
 * destination as an iovec (file memory, inode locked: fill must not call the
 * core); fill copies the bytes in and returns how many it copied (it may copy
 * fewer, e.g. a short pipe) or -errno.  Returns the bytes written.  ENOSPC /
 * EFBIG as write(2).
 */
typedef ssize_t (*mfs_write_fill)(void *ctx, const struct iovec *iov, int n);
ssize_t mfs_write(struct mfs_fs *fs, uint64_t ino, uint64_t off, size_t len, unsigned flags,
		  mfs_write_fill fill, void *ctx);
/* mfs_write from a buffer. */
ssize_t mfs_pwrite(struct mfs_fs *fs, uint64_t ino, const void *buf, size_t len, uint64_t off,
		   unsigned flags);

/* mode: 0, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE|KEEP_SIZE, FALLOC_FL_ZERO_RANGE[|KEEP_SIZE]. */
int mfs_fallocate(struct mfs_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len);
/* SEEK_DATA / SEEK_HOLE (SEEK_SET/CUR/END are the caller's). */
int64_t mfs_lseek(struct mfs_fs *fs, uint64_t ino, uint64_t off, int whence);
/* copy_file_range between regular files; returns bytes copied. */
ssize_t mfs_copy_range(struct mfs_fs *fs, uint64_t ino_in, uint64_t off_in, uint64_t ino_out,
		       uint64_t off_out, size_t len);

/* ---- directories ---- */

/*
 * Called for each entry from position off on (0: from the start, "." and
 * ".." first); next_off is the position to continue after this entry.
 * Returns 0 if the entry was taken, nonzero to stop (the entry is not
 * consumed).  With plus, st is complete and the core adds a lookup for each
 * entry taken except "." and ".."; without, only st_ino and the type bits of
 * st_mode are set.  A name listed from a lower layer that has not been
 * looked up yet (a stub, overlay.h) comes as without plus even with plus,
 * with st_nlink 0, and takes no reference: st_ino is the number a lookup
 * will give it.  Called with the namespace locked: must not call the core.
 */
typedef int (*mfs_dir_fill)(void *ctx, const char *name, const struct stat *st, uint64_t next_off);
int mfs_readdir(struct mfs_fs *fs, uint64_t ino, uint64_t off, int plus, mfs_dir_fill fill,
		void *ctx);

/* ---- extended attributes (xattr.h has the rules) ---- */

int mfs_setxattr(struct mfs_fs *fs, uint64_t ino, const char *name, const void *value,
		 size_t size, int flags);
ssize_t mfs_getxattr(struct mfs_fs *fs, uint64_t ino, const char *name, void *buf, size_t size);
ssize_t mfs_listxattr(struct mfs_fs *fs, uint64_t ino, char *buf, size_t size);
int mfs_removexattr(struct mfs_fs *fs, uint64_t ino, const char *name);

/* ---- the filesystem ---- */

/* f_bsize = f_frsize = 4096; blocks and files from the limits and usage. */
void mfs_statfs(struct mfs_fs *fs, struct statvfs *out);

/*
 * What the core has freed since the filesystem was made: inodes plus
 * MFS_CHUNK_SIZE blocks of contents.  It only grows, so a caller that
 * looks now and then sees every free, however soon the space was taken
 * again (the daemon's trimmer, trim.c).  Lock-free.
 */
uint64_t mfs_freed_units(struct mfs_fs *fs);

/*
 * Walk everything and check the invariants: link counts against the names
 * in the tree (and lower names not listed yet), directory link counts
 * (lower subdirectories not looked up yet included), the inode and space
 * counters against what is held, parent pointers, each directory's index
 * and each file's chunk map and lower ranges.  0, or -EUCLEAN with a description in why.  Takes the
 * namespace write lock.
 */
int mfs_check(struct mfs_fs *fs, const char **why);

#endif
