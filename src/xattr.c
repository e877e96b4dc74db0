/*
 * xattr.c — the extended attributes of one inode (contract in xattr.h).
 *
 * A singly linked list in the order names were first set: most inodes have
 * no attribute and the rest a handful, so a list costs one pointer per inode
 * and nothing more.  Each attribute is one allocation holding the name, its
 * NUL and the value; replacing a value builds the new node before unlinking
 * the old one, so -ENOMEM leaves the old value in place.
 *
 * Errors and the order they are checked in match Linux on tmpfs (checked
 * with setxattr(2)/getxattr(2)/listxattr(2)/removexattr(2) on /dev/shm,
 * kernel 6.18): unknown flag bits -EINVAL before anything else; then an
 * empty or >255-byte name -ERANGE; then a value over 65536 bytes -E2BIG; then
 * the namespace (-EOPNOTSUPP, or -EINVAL for a bare "user."); then
 * XATTR_CREATE/XATTR_REPLACE (-EEXIST/-ENODATA; with both flags, present
 * gives -EEXIST and absent -ENODATA).  An empty value is a value, not a
 * removal.
 *
 * The one deliberate difference: tmpfs lets the names grow past
 * XATTR_LIST_MAX (65536 bytes), after which listxattr(2) with any buffer
 * fails with E2BIG (a size-0 probe still reports the true length), so no
 * tool can list, copy or back up that file's attributes.  Here a set that
 * would add a name past that limit fails with -ENOSPC instead, so every
 * name stays listable.  Replacing the value of an existing name never hits
 * the limit.
 */
#include "xattr.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/xattr.h>

#include "alloc.h"

/* Linux's limits (linux/limits.h), spelled out to avoid that header's clashes. */
#define XATTR_NAME_MAX_BYTES 255
#define XATTR_SIZE_MAX_BYTES 65536
#define XATTR_LIST_MAX_BYTES 65536

struct mfs_xattr {
	struct mfs_xattr *next; /* next attribute, in first-set order */
	uint32_t value_size;	/* 0..XATTR_SIZE_MAX_BYTES */
	uint8_t name_len;	/* 1..XATTR_NAME_MAX_BYTES, without the NUL */
	char data[];		/* name, NUL, then value_size bytes of value */
};

static const void *xattr_value(const struct mfs_xattr *x)
{
	return x->data + x->name_len + 1;
}

/* ---- names ---- */

/* The namespaces tmpfs offers; their handlers need a name after the prefix. */
static const char *const namespaces[] = {"user.", "trusted.", "security."};

/* The name's length, or -ERANGE if empty or longer than Linux allows (as its syscalls check). */
static ssize_t name_length(const char *name)
{
	size_t len = strnlen(name, XATTR_NAME_MAX_BYTES + 1);

	if (len == 0 || len > XATTR_NAME_MAX_BYTES)
		return -ERANGE;
	return (ssize_t)len;
}

/* 0 if the name is in an offered namespace; -EINVAL for a bare prefix; -EOPNOTSUPP otherwise. */
static int check_namespace(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++) {
		size_t plen = strlen(namespaces[i]);
		if (len >= plen && memcmp(name, namespaces[i], plen) == 0)
			return len == plen ? -EINVAL : 0;
	}
	return -EOPNOTSUPP;
}

/* Length checks then namespace checks, in Linux's order.  Length, or a negative errno. */
static ssize_t check_name(const char *name)
{
	ssize_t len = name_length(name);
	int err;

	if (len < 0)
		return len;
	err = check_namespace(name, (size_t)len);
	return err ? err : len;
}

int mfs_xattr_name_ok(const char *name)
{
	ssize_t len = check_name(name);

	return len < 0 ? (int)len : 0;
}

static int is_named(const struct mfs_xattr *x, const char *name, size_t len)
{
	return x->name_len == len && memcmp(x->data, name, len) == 0;
}

/*
 * The link that points at the attribute called name (len bytes), or at the
 * list's final NULL if there is none: both replacing and appending need it.
 */
static struct mfs_xattr **find_link(struct mfs_xattr **head, const char *name, size_t len)
{
	struct mfs_xattr **link = head;

	while (*link && !is_named(*link, name, len))
		link = &(*link)->next;
	return link;
}

static const struct mfs_xattr *find(const struct mfs_xattrs *xs, const char *name, size_t len)
{
	const struct mfs_xattr *x = xs->head;

	while (x && !is_named(x, name, len))
		x = x->next;
	return x;
}

/* ---- nodes ---- */

static struct mfs_xattr *new_xattr(const char *name, size_t len, const void *value, size_t size)
{
	struct mfs_xattr *x = mfs_malloc(sizeof(*x) + len + 1 + size);

	if (!x)
		return NULL;
	x->next = NULL;
	x->name_len = (uint8_t)len;
	x->value_size = (uint32_t)size;
	memcpy(x->data, name, len);
	x->data[len] = '\0';
	if (size)
		memcpy(x->data + len + 1, value, size);
	return x;
}

static size_t list_bytes_of(const struct mfs_xattr *x)
{
	return (size_t)x->name_len + 1;
}

/* ---- the list ---- */

void mfs_xattrs_init(struct mfs_xattrs *xs)
{
	memset(xs, 0, sizeof(*xs));
}

void mfs_xattrs_free(struct mfs_xattrs *xs)
{
	struct mfs_xattr *x = xs->head;

	while (x) {
		struct mfs_xattr *next = x->next;
		mfs_free(x);
		x = next;
	}
	mfs_xattrs_init(xs);
}

/* Checks that do not depend on the current attributes, in Linux's order.  Name length or errno. */
static ssize_t check_set_args(const char *name, const void *value, size_t size, int flags)
{
	ssize_t len;
	int err;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	len = name_length(name);
	if (len < 0)
		return len;
	if (size > XATTR_SIZE_MAX_BYTES)
		return -E2BIG;
	if (size > 0 && !value)
		return -EINVAL; /* a caller bug; the syscall would say EFAULT */
	err = check_namespace(name, (size_t)len);
	return err ? err : len;
}

size_t mfs_xattrs_list_bytes(const struct mfs_xattrs *xs)
{
	size_t n = 0;

	for (const struct mfs_xattr *x = xs->head; x; x = x->next)
		n += list_bytes_of(x);
	return n;
}

size_t mfs_xattrs_value_bytes(const struct mfs_xattrs *xs)
{
	size_t n = 0;

	for (const struct mfs_xattr *x = xs->head; x; x = x->next)
		n += x->value_size;
	return n;
}

int mfs_xattr_set(struct mfs_xattrs *xs, const char *name, const void *value, size_t size,
		  int flags)
{
	ssize_t len = check_set_args(name, value, size, flags);
	struct mfs_xattr **link, *old, *x;

	if (len < 0)
		return (int)len;
	link = find_link(&xs->head, name, (size_t)len);
	old = *link;
	if (old && (flags & XATTR_CREATE))
		return -EEXIST;
	if (!old && (flags & XATTR_REPLACE))
		return -ENODATA;
	if (!old && mfs_xattrs_list_bytes(xs) + (size_t)len + 1 > XATTR_LIST_MAX_BYTES)
		return -ENOSPC;

	x = new_xattr(name, (size_t)len, value, size);
	if (!x)
		return -ENOMEM;
	/* A replacement takes the old node's place, so the listing order does not change. */
	if (old) {
		x->next = old->next;
		mfs_free(old);
	}
	*link = x;
	return 0;
}

ssize_t mfs_xattr_get(const struct mfs_xattrs *xs, const char *name, void *buf, size_t size)
{
	ssize_t len = check_name(name);
	const struct mfs_xattr *x;

	if (len < 0)
		return len;
	x = find(xs, name, (size_t)len);
	if (!x)
		return -ENODATA;
	if (size == 0)
		return x->value_size;
	if (size < x->value_size)
		return -ERANGE;
	memcpy(buf, xattr_value(x), x->value_size);
	return x->value_size;
}

ssize_t mfs_xattr_list(const struct mfs_xattrs *xs, char *buf, size_t size)
{
	size_t off = 0, need = mfs_xattrs_list_bytes(xs);

	if (size == 0)
		return (ssize_t)need;
	if (size < need)
		return -ERANGE;
	for (const struct mfs_xattr *x = xs->head; x; x = x->next) {
		memcpy(buf + off, x->data, list_bytes_of(x)); /* the name and its NUL */
		off += list_bytes_of(x);
	}
	return (ssize_t)off;
}

int mfs_xattr_remove(struct mfs_xattrs *xs, const char *name)
{
	ssize_t len = check_name(name);
	struct mfs_xattr **link, *x;

	if (len < 0)
		return (int)len;
	link = find_link(&xs->head, name, (size_t)len);
	x = *link;
	if (!x)
		return -ENODATA;
	*link = x->next;
	mfs_free(x);
	return 0;
}

int mfs_xattrs_copy(struct mfs_xattrs *dst, const struct mfs_xattrs *src)
{
	struct mfs_xattr **tail = &dst->head;

	mfs_xattrs_init(dst);
	for (const struct mfs_xattr *x = src->head; x; x = x->next) {
		struct mfs_xattr *copy =
		    new_xattr(x->data, x->name_len, xattr_value(x), x->value_size);
		if (!copy) {
			mfs_xattrs_free(dst);
			return -ENOMEM;
		}
		*tail = copy;
		tail = &copy->next;
	}
	return 0;
}
