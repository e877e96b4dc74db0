/*
 * lower.c — one read-only lower directory: safe path walking, listing,
 * xattrs, mmap, and the SIGBUS guard for reading mappings (contract in
 * lower.h).
 *
 * One way to reach a file: resolve() is the only place a relpath becomes a
 * descriptor; everything else opens through it, and a symlink is never
 * followed.  Names that need no descriptor of their own (a directory's
 * entries while listing) are used only as single components relative to an
 * already-resolved directory descriptor, with AT_SYMLINK_NOFOLLOW.
 *
 * Why the component walk is as safe as openat2: every intermediate
 * component is opened O_PATH | O_DIRECTORY | O_NOFOLLOW, so a symlink there
 * fails with ENOTDIR instead of being followed, and ".." never reaches the
 * kernel (rejected by check_relpath).  What the walk cannot stop, and
 * openat2's RESOLVE_BENEATH would not stop either: a directory that someone
 * renames out of the lower tree while we stand in it; that needs write
 * access to the lower tree and to its surroundings, i.e. an attacker who
 * could have put the same bytes inside it.
 *
 * mfs_lower_map opens with O_NONBLOCK so that a file replaced by a FIFO
 * between listing and mapping is never waited on, and with O_NOCTTY; a
 * device node put there in that window would still be opened (its driver's
 * open runs) before fstat refuses it.  The race-free alternative (open
 * O_PATH, check, reopen through /proc/self/fd) makes every map depend on
 * /proc; not worth it for a window that needs CAP_MKNOD to exploit.
 *
 * The SIGBUS guard is the one piece of process-wide state in the core: a
 * signal's action is per process (POSIX has no per-thread handler), so
 * turning "this page is gone" into -EIO needs one handler for the whole
 * process, installed once (pthread_once).  It only acts on a fault whose
 * address lies in the source range of an mfs_lower_copy running on the
 * faulting thread: each such call publishes its range and jump buffer in a
 * thread-local pointer, so threads never see each other's guards.  Every
 * other SIGBUS goes to the action that was installed before ours (the
 * default: a real bug still kills the process, with a core dump at the
 * faulting instruction).  SA_NODEFER keeps SIGBUS unblocked in the handler,
 * so siglongjmp out of it needs no saved signal mask, and sigsetjmp(.., 0)
 * costs no system call per copy.
 */
#include "lower.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "alloc.h"

/* Tries of an openat2 that says EAGAIN (a concurrent rename or mount). */
#define OPENAT2_TRIES 8

struct mfs_lower {
	int root_fd;	  /* O_PATH | O_DIRECTORY: the only descriptor held */
	bool use_openat2; /* resolve with openat2; false: the component walk */
};

/* ---- paths ---- */

/*
 * 0 if rel is a relpath as lower.h defines it (*is_root: it names the
 * root), else -EINVAL or -ENAMETOOLONG.
 */
static int check_relpath(const char *rel, bool *is_root)
{
	const char *p = rel;

	*is_root = rel[0] == '\0' || strcmp(rel, ".") == 0;
	if (*is_root)
		return 0;
	if (strnlen(rel, PATH_MAX) >= PATH_MAX)
		return -ENAMETOOLONG;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (len == 0) /* leading, doubled or trailing '/' */
			return -EINVAL;
		if (p[0] == '.' && (len == 1 || (len == 2 && p[1] == '.')))
			return -EINVAL;
		if (len > NAME_MAX)
			return -ENAMETOOLONG;
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

#ifdef SYS_openat2
static long sys_openat2(int dirfd, const char *path, int flags)
{
	struct open_how how = {
	    .flags = (unsigned)flags,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};

	return syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}
#else
static long sys_openat2(int dirfd, const char *path, int flags)
{
	(void)dirfd, (void)path, (void)flags;
	errno = ENOSYS;
	return -1;
}
#endif

/* Whether openat2 with our resolve flags works here (kernel, seccomp, valgrind). */
static bool openat2_works(int root_fd)
{
	long fd = sys_openat2(root_fd, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return false;
	close((int)fd);
	return true;
}

static bool walk_forced(void)
{
	const char *v = getenv("MEMFS_LOWER_NO_OPENAT2");

	return v && v[0] != '\0' && strcmp(v, "0") != 0;
}

/* path below root_fd through openat2; -ENOSYS if the kernel has none. */
static int resolve_openat2(int root_fd, const char *path, int flags)
{
	for (int i = 0; i < OPENAT2_TRIES; i++) {
		long fd = sys_openat2(root_fd, path, flags);

		if (fd >= 0)
			return (int)fd;
		if (errno != EAGAIN)
			return -errno;
	}
	return -EAGAIN;
}

/*
 * path below root_fd one component at a time, never following a symlink:
 * the directories on the way are opened O_PATH | O_DIRECTORY | O_NOFOLLOW,
 * the last component with flags (which hold O_NOFOLLOW).
 */
static int resolve_walk(int root_fd, const char *path, int flags)
{
	char name[NAME_MAX + 1];
	const char *p = path;
	int dir = root_fd, fd, err;

	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len;
		int next;

		if (!slash)
			break;
		len = (size_t)(slash - p);
		memcpy(name, p, len);
		name[len] = '\0';
		next = openat(dir, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		err = errno;
		if (dir != root_fd)
			close(dir);
		if (next < 0)
			return -err;
		dir = next;
		p = slash + 1;
	}
	fd = openat(dir, p, flags);
	err = errno;
	if (dir != root_fd)
		close(dir);
	return fd < 0 ? -err : fd;
}

/* The one function that turns a relpath into a descriptor. */
static int resolve(struct mfs_lower *l, const char *relpath, int flags)
{
	bool is_root;
	int err = check_relpath(relpath, &is_root);
	const char *path = is_root ? "." : relpath;

	if (err)
		return err;
	if ((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC | O_APPEND)) ||
	    (flags & O_TMPFILE) == O_TMPFILE)
		return -EROFS;
	if (flags & O_PATH)
		flags &= O_PATH | O_DIRECTORY;
	flags |= O_NOFOLLOW | O_CLOEXEC;
	if (l->use_openat2) {
		int fd = resolve_openat2(l->root_fd, path, flags);

		if (fd != -ENOSYS)
			return fd;
	}
	return resolve_walk(l->root_fd, path, flags);
}

/* ---- the root ---- */

int mfs_lower_open(const char *path, struct mfs_lower **out)
{
	struct mfs_lower *l;
	int fd, list_fd, err;

	*out = NULL;
	fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/*
	 * It must be listable and searchable, not merely there: opening "."
	 * O_RDONLY needs read permission, and looking "." up in it needs search
	 * permission, so this one call fails with EACCES if either is missing.
	 */
	list_fd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (list_fd < 0) {
		err = -errno;
		goto out;
	}
	close(list_fd);
	l = mfs_calloc(1, sizeof(*l));
	if (!l) {
		err = -ENOMEM;
		goto out;
	}
	l->root_fd = fd;
	l->use_openat2 = !walk_forced() && openat2_works(fd);
	*out = l;
	return 0;
out:
	close(fd);
	return err;
}

void mfs_lower_close(struct mfs_lower *l)
{
	if (!l)
		return;
	close(l->root_fd);
	mfs_free(l);
}

int mfs_lower_uses_openat2(const struct mfs_lower *l)
{
	return l->use_openat2;
}

int mfs_lower_openat(struct mfs_lower *l, const char *relpath, int flags)
{
	return resolve(l, relpath, flags);
}

/* ---- metadata ---- */

int mfs_lower_lstat(struct mfs_lower *l, const char *relpath, struct stat *out)
{
	int fd = resolve(l, relpath, O_PATH);
	int err = 0;

	if (fd < 0)
		return fd;
	if (fstat(fd, out) < 0)
		err = -errno;
	close(fd);
	return err;
}

ssize_t mfs_lower_readlink(struct mfs_lower *l, const char *relpath, char *buf, size_t size)
{
	int fd = resolve(l, relpath, O_PATH);
	ssize_t n;

	if (fd < 0)
		return fd;
	if (size == 0) {
		n = -ERANGE;
		goto out;
	}
	/* An empty path reads the link the O_PATH descriptor stands for. */
	n = readlinkat(fd, "", buf, size);
	if (n < 0)
		n = errno == ENOENT ? -EINVAL : -errno; /* ENOENT: not a symlink */
	else if ((size_t)n >= size)
		n = -ERANGE;
out:
	close(fd);
	return n;
}

int mfs_lower_list(struct mfs_lower *l, const char *reldir, mfs_lower_entry_fn fn, void *ctx)
{
	int fd = resolve(l, reldir, O_RDONLY | O_DIRECTORY);
	DIR *d;
	int ret = 0;

	if (fd < 0)
		return fd;
	d = fdopendir(fd);
	if (!d) {
		ret = -errno;
		close(fd);
		return ret;
	}
	for (;;) {
		struct dirent *de;
		struct stat st;

		errno = 0;
		de = readdir(d);
		if (!de) {
			ret = -errno;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT) /* removed since readdir saw it */
				continue;
			ret = -errno;
			break;
		}
		ret = fn(ctx, de->d_name, &st);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

/* ---- xattrs ---- */

/*
 * The kernel refuses f*xattr on O_PATH descriptors (EBADF) and l*xattr on
 * /proc/self/fd/N acts on the proc link itself (EOPNOTSUPP); following
 * /proc/self/fd/N lands exactly on the object the descriptor holds, even a
 * symlink, and goes no further.  Opening with O_PATH never blocks on a FIFO
 * nor runs a device's open.
 */
static void proc_fd_path(int fd, char *buf, size_t size)
{
	snprintf(buf, size, "/proc/self/fd/%d", fd);
}

static ssize_t xattr_error(int err)
{
	return err == ENOENT ? -EOPNOTSUPP : -err; /* ENOENT: no /proc */
}

ssize_t mfs_lower_listxattr(struct mfs_lower *l, const char *relpath, char *list, size_t size)
{
	char path[32];
	int fd = resolve(l, relpath, O_PATH);
	ssize_t n;

	if (fd < 0)
		return fd;
	proc_fd_path(fd, path, sizeof(path));
	n = listxattr(path, list, size);
	if (n < 0)
		n = xattr_error(errno);
	close(fd);
	return n;
}

ssize_t mfs_lower_getxattr(struct mfs_lower *l, const char *relpath, const char *name, void *value,
			   size_t size)
{
	char path[32];
	int fd = resolve(l, relpath, O_PATH);
	ssize_t n;

	if (fd < 0)
		return fd;
	proc_fd_path(fd, path, sizeof(path));
	n = getxattr(path, name, value, size);
	if (n < 0)
		n = xattr_error(errno);
	close(fd);
	return n;
}

/* ---- mappings ---- */

int mfs_lower_map(struct mfs_lower *l, const char *relpath, struct mfs_lower_map *out)
{
	const int flags = O_RDONLY | O_NONBLOCK | O_NOCTTY;
	struct stat st;
	void *addr = NULL;
	int fd, err = 0;

	memset(out, 0, sizeof(*out));
	fd = resolve(l, relpath, flags | O_NOATIME);
	if (fd == -EPERM) /* O_NOATIME on a file we do not own */
		fd = resolve(l, relpath, flags);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0) {
		err = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		err = -EISDIR;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > SIZE_MAX) {
		err = -EFBIG;
		goto out;
	}
	if (st.st_size > 0) {
		addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
		if (addr == MAP_FAILED) {
			err = -errno;
			goto out;
		}
	}
	out->addr = addr;
	out->size_bytes = (uint64_t)st.st_size;
	out->dev = st.st_dev;
	out->ino = st.st_ino;
	out->mtime = st.st_mtim;
out:
	close(fd); /* the mapping keeps the file */
	return err;
}

void mfs_lower_unmap(struct mfs_lower_map *m)
{
	if (m->addr)
		munmap((void *)m->addr, (size_t)m->size_bytes);
	memset(m, 0, sizeof(*m));
}

/* ---- the SIGBUS guard (why it is process-wide: top of this file) ---- */

/* A running mfs_lower_copy: where to jump back to, and what it reads. */
struct copy_guard {
	sigjmp_buf env;
	const char *lo, *hi; /* [lo, hi): the source range */
};

static pthread_once_t bus_once = PTHREAD_ONCE_INIT;
static int bus_install_err;	      /* 0, or -errno from sigaction */
static struct sigaction bus_previous; /* what SIGBUS did before us */
/*
 * This thread's running copy, or NULL.  Read by the handler: safe, since
 * mfs_lower_copy touches it first (no lazy TLS allocation in the handler).
 */
static __thread struct copy_guard *bus_guard;

/* A SIGBUS that is not ours: do what would have happened without us. */
static void pass_on(int sig, siginfo_t *si, void *uctx)
{
	struct sigaction dfl;
	bool sent = si->si_code <= 0; /* by kill() / raise(), not by a fault */

	if (bus_previous.sa_flags & SA_SIGINFO) {
		bus_previous.sa_sigaction(sig, si, uctx);
		return;
	}
	if (bus_previous.sa_handler != SIG_DFL && bus_previous.sa_handler != SIG_IGN) {
		bus_previous.sa_handler(sig);
		return;
	}
	if (bus_previous.sa_handler == SIG_IGN && sent)
		return;
	/* Default action: a fault re-executes and dies there, a sent signal is sent again. */
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(SIGBUS, &dfl, NULL);
	if (sent)
		raise(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	struct copy_guard *g = bus_guard;
	const char *addr = si->si_addr;

	if (g && si->si_code > 0 && addr >= g->lo && addr < g->hi) {
		bus_guard = NULL;
		siglongjmp(g->env, 1);
	}
	pass_on(sig, si, uctx);
}

static void install_bus_handler(void)
{
	struct sigaction sa;

	/* Read the old action first: a foreign SIGBUS racing with the install then finds it. */
	if (sigaction(SIGBUS, NULL, &bus_previous) < 0) {
		bus_install_err = -errno;
		return;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		bus_install_err = -errno;
}

int mfs_lower_copy(void *dst, const void *src, size_t len)
{
	struct copy_guard g;

	pthread_once(&bus_once, install_bus_handler);
	if (bus_install_err)
		return bus_install_err;
	if (len == 0)
		return 0;
	g.lo = src;
	g.hi = (const char *)src + len;
	if (sigsetjmp(g.env, 0)) /* back from on_sigbus: a page of src is gone */
		return -EIO;
	bus_guard = &g;
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(dst, src, len);
	atomic_signal_fence(memory_order_seq_cst);
	bus_guard = NULL;
	return 0;
}
