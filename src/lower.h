/*
 * lower.h — one read-only lower directory, reached safely.
 *
 * A lower directory is opened once (mfs_lower_open); everything below it is
 * named by a path relative to it ("relpath": "" or "." for the root, else
 * components joined by single '/', no "." or "..", no leading or trailing
 * '/', each at most NAME_MAX bytes; anything else is -EINVAL, or
 * -ENAMETOOLONG, before any system call).  Every function returns 0 (or a
 * count) or a negative errno and prints nothing.  Nothing here writes to the
 * lower tree: write flags are -EROFS.
 *
 * Safety: memfs never follows a symlink inside a lower tree.  Every path goes
 * through mfs_lower_openat(), which resolves it with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), or, where openat2 is missing
 * (kernels before 5.6, seccomp filters, valgrind), walks it one component at
 * a time with openat(O_NOFOLLOW) from the root's descriptor.  A symlink
 * anywhere in the path fails (ELOOP, or ENOTDIR from the walk) unless it is
 * the last component and the caller asked for O_PATH | O_NOFOLLOW (to lstat,
 * readlink or read xattrs of the link itself).  So a lower tree full of
 * links to "/", ".." or absolute paths cannot make memfs open, list or read
 * anything outside it.  The path given to mfs_lower_open() itself is the
 * user's choice and is resolved normally (it may be or contain a symlink).
 *
 * Setting MEMFS_LOWER_NO_OPENAT2 (to anything but "" or "0") in the
 * environment before mfs_lower_open() makes that lower use the walk: a test
 * hook, so that both ways are tested on kernels that have openat2.
 *
 * Reading file contents: mfs_lower_map() maps a lower file read-only and
 * shared; the bytes are read from the mapping, never copied into memfs's
 * memory first.  If another process truncates the file while it is mapped,
 * touching a page past the new end raises SIGBUS.  Two safe ways to read:
 *  - copy with mfs_lower_copy(), which turns that SIGBUS into -EIO;
 *  - hand the mapping to the kernel (writev(2) of the reply to /dev/fuse,
 *    i.e. fuse_reply_iov): the kernel's copy from the vanished page fails
 *    with EFAULT for the daemon's writev (libfuse prints "fuse: writing
 *    device: Bad address") and the kernel answers the reader's request with
 *    EIO; no signal is raised.  Not libfuse paths that memcpy the buffers
 *    first (fuse_reply_data with several memory buffers): those are
 *    unguarded.
 * Any other access to a mapping (memcpy, memcmp, a pointer walk) may kill
 * the daemon.
 *
 * Thread safety: a struct mfs_lower is immutable after mfs_lower_open and
 * may be used from any number of threads; a struct mfs_lower_map belongs to
 * its caller.
 */
#ifndef MFS_LOWER_H
#define MFS_LOWER_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

struct mfs_lower;

/*
 * Open the directory at path as a lower layer.  The root must be a directory
 * that this process can list and search: -ENOENT, -ENOTDIR, -EACCES (or
 * -ELOOP, -ENAMETOOLONG, -ENOMEM) otherwise.  Holds one descriptor.
 */
int mfs_lower_open(const char *path, struct mfs_lower **out);
void mfs_lower_close(struct mfs_lower *l);

/* Nonzero if paths are resolved with openat2, zero if by the component walk. */
int mfs_lower_uses_openat2(const struct mfs_lower *l);

/*
 * Open relpath below the root: open(2) flags, read-only (O_RDONLY or O_PATH;
 * O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_APPEND, O_TMPFILE are -EROFS).
 * O_NOFOLLOW and O_CLOEXEC are always added; with O_PATH only O_DIRECTORY
 * is kept besides.  Returns a descriptor the caller closes, or -errno:
 * -ELOOP / -ENOTDIR / -EXDEV for a path through a symlink, -ELOOP for a
 * final symlink without O_PATH, -ENOENT, -EACCES, ...  Opening a FIFO
 * O_RDONLY without O_NONBLOCK blocks, as open(2) does.
 */
int mfs_lower_openat(struct mfs_lower *l, const char *relpath, int flags);

/* lstat(2) of relpath: a final symlink is described, not followed. */
int mfs_lower_lstat(struct mfs_lower *l, const char *relpath, struct stat *out);

/*
 * Copy the target of the symlink at relpath into buf, as stored (not
 * NUL-terminated, not interpreted); returns its length.  -EINVAL if relpath
 * is not a symlink; -ERANGE if the target needs size bytes or more (pass
 * PATH_MAX).
 */
ssize_t mfs_lower_readlink(struct mfs_lower *l, const char *relpath, char *buf, size_t size);

/*
 * Called for each entry of a directory but "." and "..", in the order the
 * lower filesystem gives, with the entry's lstat.  Returns 0 to go on,
 * nonzero to stop.
 */
typedef int (*mfs_lower_entry_fn)(void *ctx, const char *name, const struct stat *lst);

/*
 * List the directory at reldir.  An entry removed while listing is skipped.
 * Returns 0, the callback's nonzero value if it stopped the listing, or
 * -errno (-ENOTDIR for a file, -ENOTDIR or -ELOOP for a symlink, -ENOENT,
 * -EACCES, -ENOMEM).
 */
int mfs_lower_list(struct mfs_lower *l, const char *reldir, mfs_lower_entry_fn fn, void *ctx);

/*
 * Extended attributes of relpath itself (a symlink's own, never its
 * target's), with listxattr(2) / getxattr(2) semantics: size 0 asks for the
 * length; -ERANGE if size is too small; -ENODATA for an absent name;
 * -EOPNOTSUPP where the filesystem has none.  Needs /proc mounted (the
 * kernel reads xattrs of an O_PATH descriptor only through
 * /proc/self/fd/N); -EOPNOTSUPP without it.  Opening nothing but O_PATH,
 * these never block on a FIFO nor open a device.
 */
ssize_t mfs_lower_listxattr(struct mfs_lower *l, const char *relpath, char *list, size_t size);
ssize_t mfs_lower_getxattr(struct mfs_lower *l, const char *relpath, const char *name, void *value,
			   size_t size);

/* ---- file contents ---- */

/*
 * A lower regular file mapped read-only: what was there when it was mapped.
 * dev and ino identify the file (hard links share them); size_bytes and
 * mtime are its size and modification time when mapped, so a caller can
 * tell a file replaced or changed since it was listed.
 */
struct mfs_lower_map {
	const void *addr;      /* PROT_READ, MAP_SHARED; NULL when size_bytes == 0 */
	uint64_t size_bytes;   /* bytes mapped: st_size at map time */
	dev_t dev;	       /* st_dev of the lower file */
	ino_t ino;	       /* st_ino of the lower file */
	struct timespec mtime; /* st_mtim at map time */
};

/*
 * Map the regular file at relpath (opened O_RDONLY | O_NOFOLLOW |
 * O_NONBLOCK, with O_NOATIME when permitted; the descriptor is closed once
 * mapped).  -EISDIR for a directory, -EINVAL for any other non-regular file
 * (a FIFO is never waited on), -ELOOP for a symlink, -EFBIG if it cannot be
 * mapped whole, or the errno of open / mmap (-ENODEV: the filesystem cannot
 * mmap).
 */
int mfs_lower_map(struct mfs_lower *l, const char *relpath, struct mfs_lower_map *out);
/* Unmap and clear *m; unmapping a cleared or size-0 map does nothing. */
void mfs_lower_unmap(struct mfs_lower_map *m);

/*
 * memcpy(dst, src, len) where src points into a lower mapping.  If a page of
 * src has gone (the file was truncated underneath), returns -EIO instead of
 * letting SIGBUS kill the process; dst then holds an unspecified prefix.
 * Returns 0 on success.  dst must not be a file mapping itself (a fault
 * there is not recovered), and this is not to be called from a signal
 * handler.
 *
 * The first call installs, once for the process, a SIGBUS handler that
 * recovers only a fault inside a running mfs_lower_copy's source range, on
 * the faulting thread; any other SIGBUS goes to the action installed before
 * it (normally the default: the process dies, as a real bug must).  Nothing
 * may install another SIGBUS handler after that.
 */
int mfs_lower_copy(void *dst, const void *src, size_t len);

#endif
