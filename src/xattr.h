/*
 * xattr.h — the extended attributes of one inode.
 *
 * A small list per inode (most have none).  Limits and errors are Linux's:
 * names of 1..255 bytes (XATTR_NAME_MAX; longer -ERANGE, empty -ERANGE),
 * values up to 65536 bytes (XATTR_SIZE_MAX; larger -E2BIG), and the list of
 * names (each with its NUL) at most 65536 bytes (XATTR_LIST_MAX; a set that
 * would pass it gets -ENOSPC).  Only the namespaces tmpfs offers are
 * accepted: "user.", "trusted.", "security." (anything else -EOPNOTSUPP,
 * and a bare prefix with no name after it -EINVAL).  Permission to use a
 * namespace is the kernel's business, not this file's.
 *
 * Not thread-safe: the caller holds the inode's lock.
 */
#ifndef MFS_XATTR_H
#define MFS_XATTR_H

#include <stddef.h>
#include <sys/types.h>

struct mfs_xattr; /* one attribute; private to xattr.c */

/* One pointer per inode: most have no attribute, the rest a handful. */
struct mfs_xattrs {
	struct mfs_xattr *head; /* in the order they were first set */
};

/* Sum of (name length + 1) over the attributes: listxattr's size. */
size_t mfs_xattrs_list_bytes(const struct mfs_xattrs *xs);
/* Sum of the value sizes. */
size_t mfs_xattrs_value_bytes(const struct mfs_xattrs *xs);

void mfs_xattrs_init(struct mfs_xattrs *xs);
void mfs_xattrs_free(struct mfs_xattrs *xs);

/*
 * setxattr: flags 0, XATTR_CREATE (-EEXIST if present) or XATTR_REPLACE
 * (-ENODATA if absent).  Other flag bits -EINVAL.  -ENOMEM leaves the old
 * value in place.
 */
int mfs_xattr_set(struct mfs_xattrs *xs, const char *name, const void *value, size_t size,
		  int flags);

/*
 * getxattr: size 0 asks for the value's length; otherwise the value is
 * copied into buf and its length returned, -ERANGE if size is too small,
 * -ENODATA if absent.  Name checks as for set.
 */
ssize_t mfs_xattr_get(const struct mfs_xattrs *xs, const char *name, void *buf, size_t size);

/* 0 if name is one getxattr could find, else its error (-ERANGE, -EOPNOTSUPP, -EINVAL). */
int mfs_xattr_name_ok(const char *name);

/* listxattr: the NUL-separated names; size 0 probes; -ERANGE if too small. */
ssize_t mfs_xattr_list(const struct mfs_xattrs *xs, char *buf, size_t size);

/* removexattr: -ENODATA if absent. */
int mfs_xattr_remove(struct mfs_xattrs *xs, const char *name);

/* Copy every attribute of src into dst (empty).  0 or -ENOMEM (dst empty). */
int mfs_xattrs_copy(struct mfs_xattrs *dst, const struct mfs_xattrs *src);

#endif
