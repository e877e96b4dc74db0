/*
 * test_xattr.c — unit tests of src/xattr.c: Linux's limits and errors for
 * extended attributes, listing order and size, accounting, copying, and
 * allocation failure.
 *
 * The expected errors are what tmpfs gives on Linux (checked on /dev/shm
 * with setxattr(2) and friends; see the header of xattr.c), so memfs and
 * tmpfs answer alike.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "alloc.h"
#include "xattr.h"

#define NAME_MAX_BYTES 255
#define SIZE_MAX_BYTES 65536
#define LIST_MAX_BYTES 65536

/* ---- helpers ---- */

static void set_str(struct mfs_xattrs *xs, const char *name, const char *value)
{
	ck_assert_int_eq(mfs_xattr_set(xs, name, value, strlen(value), 0), 0);
}

static void assert_value(const struct mfs_xattrs *xs, const char *name, const char *want)
{
	char buf[256];
	ssize_t n = mfs_xattr_get(xs, name, buf, sizeof(buf));

	ck_assert_int_eq(n, (ssize_t)strlen(want));
	ck_assert_int_eq(memcmp(buf, want, (size_t)n), 0);
}

/* A name of exactly len bytes in the given namespace: prefix, then 'a's. */
static char *name_of_length(const char *prefix, size_t len, char fill)
{
	char *name = malloc(len + 1);
	size_t plen = strlen(prefix);

	memcpy(name, prefix, plen);
	memset(name + plen, fill, len - plen);
	name[len] = '\0';
	return name;
}

/* The names listxattr gives, joined with ',' (for readable comparisons). */
static char *listing(const struct mfs_xattrs *xs)
{
	ssize_t n = mfs_xattr_list(xs, NULL, 0);
	char *buf;

	ck_assert_int_ge(n, 0);
	buf = malloc((size_t)n + 1);
	ck_assert_int_eq(mfs_xattr_list(xs, buf, (size_t)n), n);
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = i == n - 1 ? '\0' : ',';
	buf[n] = '\0';
	return buf;
}

static void assert_listing(const struct mfs_xattrs *xs, const char *want)
{
	char *got = listing(xs);

	ck_assert_str_eq(got, want);
	free(got);
}

/* ---- set and get ---- */

START_TEST(set_value_is_returned_by_get)
{
	struct mfs_xattrs xs;

	mfs_xattrs_init(&xs);
	set_str(&xs, "user.colour", "blue");
	assert_value(&xs, "user.colour", "blue");
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(get_with_size_zero_returns_the_length_without_copying)
{
	struct mfs_xattrs xs;

	mfs_xattrs_init(&xs);
	set_str(&xs, "user.k", "twelve bytes");
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.k", NULL, 0), 12);
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(get_into_a_too_small_buffer_is_erange_and_an_exact_one_fits)
{
	struct mfs_xattrs xs;
	char buf[4] = "zzzz";

	mfs_xattrs_init(&xs);
	set_str(&xs, "user.k", "abcd");
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.k", buf, 3), -ERANGE);
	ck_assert_int_eq(memcmp(buf, "zzzz", 4), 0);
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.k", buf, 4), 4);
	ck_assert_int_eq(memcmp(buf, "abcd", 4), 0);
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(absent_name_is_enodata_for_get_probe_and_remove)
{
	struct mfs_xattrs xs;
	char buf[8];

	mfs_xattrs_init(&xs);
	set_str(&xs, "user.a", "1");
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.b", buf, sizeof(buf)), -ENODATA);
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.b", NULL, 0), -ENODATA);
	ck_assert_int_eq(mfs_xattr_remove(&xs, "user.b"), -ENODATA);
	/* Names compare whole: a prefix or an extension of a name is another name. */
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.", buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.aa", buf, sizeof(buf)), -ENODATA);
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(empty_value_is_a_value_not_a_removal)
{
	struct mfs_xattrs xs;

	mfs_xattrs_init(&xs);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.e", "", 0, 0), 0);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.n", NULL, 0, 0), 0);
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.e", NULL, 0), 0);
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.n", NULL, 0), 0);
	assert_listing(&xs, "user.e,user.n");
	set_str(&xs, "user.e", "x");
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.e", NULL, 0, XATTR_REPLACE), 0);
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.e", NULL, 0), 0);
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(values_are_binary_and_kept_exactly)
{
	struct mfs_xattrs xs;
	unsigned char value[300], back[300];

	for (size_t i = 0; i < sizeof(value); i++)
		value[i] = (unsigned char)(i * 37);
	mfs_xattrs_init(&xs);
	ck_assert_int_eq(mfs_xattr_set(&xs, "trusted.bin", value, sizeof(value), 0), 0);
	ck_assert_int_eq(mfs_xattr_get(&xs, "trusted.bin", back, sizeof(back)), sizeof(value));
	ck_assert_int_eq(memcmp(value, back, sizeof(value)), 0);
	mfs_xattrs_free(&xs);
}
END_TEST

/* ---- limits ---- */

START_TEST(name_of_255_bytes_is_accepted_and_256_is_erange)
{
	struct mfs_xattrs xs;
	char *ok = name_of_length("user.", NAME_MAX_BYTES, 'a');
	char *too_long = name_of_length("user.", NAME_MAX_BYTES + 1, 'a');

	mfs_xattrs_init(&xs);
	ck_assert_int_eq(mfs_xattr_set(&xs, ok, "v", 1, 0), 0);
	assert_value(&xs, ok, "v");
	ck_assert_int_eq(mfs_xattr_set(&xs, too_long, "v", 1, 0), -ERANGE);
	ck_assert_int_eq(mfs_xattr_get(&xs, too_long, NULL, 0), -ERANGE);
	ck_assert_int_eq(mfs_xattr_remove(&xs, too_long), -ERANGE);
	/* The length is the whole name, prefix included. */
	ck_assert_int_eq(mfs_xattr_list(&xs, NULL, 0), NAME_MAX_BYTES + 1);
	free(ok);
	free(too_long);
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(empty_name_is_erange)
{
	struct mfs_xattrs xs;

	mfs_xattrs_init(&xs);
	ck_assert_int_eq(mfs_xattr_set(&xs, "", "v", 1, 0), -ERANGE);
	ck_assert_int_eq(mfs_xattr_get(&xs, "", NULL, 0), -ERANGE);
	ck_assert_int_eq(mfs_xattr_remove(&xs, ""), -ERANGE);
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(value_of_65536_bytes_is_accepted_and_65537_is_e2big)
{
	struct mfs_xattrs xs;
	char *value = calloc(1, SIZE_MAX_BYTES + 1);

	mfs_xattrs_init(&xs);
	value[SIZE_MAX_BYTES - 1] = 'z';
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.big", value, SIZE_MAX_BYTES, 0), 0);
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.big", NULL, 0), SIZE_MAX_BYTES);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.big", value, SIZE_MAX_BYTES + 1, 0), -E2BIG);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.other", value, SIZE_MAX_BYTES + 1, 0), -E2BIG);
	/* The failed replacement kept the old value. */
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.big", value, SIZE_MAX_BYTES), SIZE_MAX_BYTES);
	ck_assert_int_eq(value[SIZE_MAX_BYTES - 1], 'z');
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.other", NULL, 0), -ENODATA);
	free(value);
	mfs_xattrs_free(&xs);
}
END_TEST

/* tmpfs: 256 names of 255 bytes fill the list exactly; see xattr.c for why the 257th is -ENOSPC. */
START_TEST(names_list_is_capped_at_65536_bytes_with_enospc)
{
	struct mfs_xattrs xs;
	char *name;
	char *buf = malloc(LIST_MAX_BYTES);

	mfs_xattrs_init(&xs);
	for (int i = 0; i < 256; i++) {
		name = name_of_length("user.", NAME_MAX_BYTES, 'a');
		memcpy(name + 5, &"0123456789abcdef"[i / 16], 1);
		memcpy(name + 6, &"0123456789abcdef"[i % 16], 1);
		ck_assert_int_eq(mfs_xattr_set(&xs, name, "", 0, 0), 0);
		free(name);
	}
	ck_assert_int_eq(mfs_xattr_list(&xs, NULL, 0), LIST_MAX_BYTES);
	ck_assert_int_eq(mfs_xattr_list(&xs, buf, LIST_MAX_BYTES), LIST_MAX_BYTES);
	ck_assert_int_eq(mfs_xattr_list(&xs, buf, LIST_MAX_BYTES - 1), -ERANGE);

	ck_assert_int_eq(mfs_xattr_set(&xs, "user.x", "", 0, 0), -ENOSPC);
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.x", NULL, 0), -ENODATA);
	ck_assert_int_eq(mfs_xattr_list(&xs, NULL, 0), LIST_MAX_BYTES);

	/* Replacing an existing name's value adds no name: still allowed. */
	name = name_of_length("user.", NAME_MAX_BYTES, 'a');
	memcpy(name + 5, "00", 2);
	ck_assert_int_eq(mfs_xattr_set(&xs, name, "new", 3, XATTR_REPLACE), 0);
	assert_value(&xs, name, "new");
	/* Removing a name makes room again. */
	ck_assert_int_eq(mfs_xattr_remove(&xs, name), 0);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.x", "", 0, 0), 0);
	free(name);
	free(buf);
	mfs_xattrs_free(&xs);
}
END_TEST

/* ---- flags ---- */

START_TEST(create_on_an_existing_name_is_eexist_and_keeps_the_value)
{
	struct mfs_xattrs xs;

	mfs_xattrs_init(&xs);
	set_str(&xs, "user.k", "old");
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.k", "new", 3, XATTR_CREATE), -EEXIST);
	assert_value(&xs, "user.k", "old");
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.n", "new", 3, XATTR_CREATE), 0);
	assert_value(&xs, "user.n", "new");
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(replace_on_an_absent_name_is_enodata_and_adds_nothing)
{
	struct mfs_xattrs xs;

	mfs_xattrs_init(&xs);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.k", "v", 1, XATTR_REPLACE), -ENODATA);
	ck_assert_int_eq(mfs_xattr_list(&xs, NULL, 0), 0);
	set_str(&xs, "user.k", "v");
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.k", "w", 1, XATTR_REPLACE), 0);
	assert_value(&xs, "user.k", "w");
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(create_and_replace_together_is_eexist_if_present_and_enodata_if_absent)
{
	struct mfs_xattrs xs;
	const int both = XATTR_CREATE | XATTR_REPLACE;

	mfs_xattrs_init(&xs);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.k", "v", 1, both), -ENODATA);
	set_str(&xs, "user.k", "v");
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.k", "w", 1, both), -EEXIST);
	assert_value(&xs, "user.k", "v");
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(unknown_flag_bits_are_einval_before_any_other_check)
{
	struct mfs_xattrs xs;
	char *huge = calloc(1, SIZE_MAX_BYTES + 1);

	mfs_xattrs_init(&xs);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.k", "v", 1, 4), -EINVAL);
	ck_assert_int_eq(mfs_xattr_set(&xs, "", "v", 1, 4), -EINVAL);
	ck_assert_int_eq(mfs_xattr_set(&xs, "foo.k", "v", 1, 4), -EINVAL);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.k", huge, SIZE_MAX_BYTES + 1, 4), -EINVAL);
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.k", NULL, 0), -ENODATA);
	free(huge);
	mfs_xattrs_free(&xs);
}
END_TEST

/* ---- namespaces and the order of checks ---- */

START_TEST(only_user_trusted_and_security_namespaces_are_offered)
{
	struct mfs_xattrs xs;
	const char *refused[] = {"system.foo", "system.posix_acl_access",
				 "os2.foo",    "foo.bar",
				 "user",       "USER.k",
				 "userx.k",    "trusted"};

	mfs_xattrs_init(&xs);
	set_str(&xs, "user.u", "1");
	set_str(&xs, "trusted.t", "2");
	set_str(&xs, "security.s", "3");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		ck_assert_int_eq(mfs_xattr_set(&xs, refused[i], "v", 1, 0), -EOPNOTSUPP);
		ck_assert_int_eq(mfs_xattr_get(&xs, refused[i], NULL, 0), -EOPNOTSUPP);
		ck_assert_int_eq(mfs_xattr_remove(&xs, refused[i]), -EOPNOTSUPP);
	}
	assert_listing(&xs, "user.u,trusted.t,security.s");
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(bare_namespace_prefix_is_einval)
{
	struct mfs_xattrs xs;
	const char *bare[] = {"user.", "trusted.", "security."};

	mfs_xattrs_init(&xs);
	for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++) {
		ck_assert_int_eq(mfs_xattr_set(&xs, bare[i], "v", 1, 0), -EINVAL);
		ck_assert_int_eq(mfs_xattr_get(&xs, bare[i], NULL, 0), -EINVAL);
		ck_assert_int_eq(mfs_xattr_remove(&xs, bare[i]), -EINVAL);
	}
	mfs_xattrs_free(&xs);
}
END_TEST

/* Linux checks the name's length, then the value's size, then the namespace. */
START_TEST(errors_come_in_linux_order_name_length_then_size_then_namespace)
{
	struct mfs_xattrs xs;
	char *huge = calloc(1, SIZE_MAX_BYTES + 1);
	char *too_long = name_of_length("foo.", NAME_MAX_BYTES + 1, 'a');

	mfs_xattrs_init(&xs);
	ck_assert_int_eq(mfs_xattr_set(&xs, "", huge, SIZE_MAX_BYTES + 1, 0), -ERANGE);
	ck_assert_int_eq(mfs_xattr_set(&xs, too_long, huge, SIZE_MAX_BYTES + 1, 0), -ERANGE);
	ck_assert_int_eq(mfs_xattr_set(&xs, "foo.k", huge, SIZE_MAX_BYTES + 1, 0), -E2BIG);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.", huge, SIZE_MAX_BYTES + 1, 0), -E2BIG);
	ck_assert_int_eq(mfs_xattr_set(&xs, too_long, "v", 1, XATTR_REPLACE), -ERANGE);
	ck_assert_int_eq(mfs_xattr_set(&xs, "foo.k", "v", 1, XATTR_REPLACE), -EOPNOTSUPP);
	free(too_long);
	free(huge);
	mfs_xattrs_free(&xs);
}
END_TEST

/* ---- listing, removal, accounting ---- */

START_TEST(list_gives_names_in_the_order_first_set_even_after_replacement)
{
	struct mfs_xattrs xs;

	mfs_xattrs_init(&xs);
	assert_listing(&xs, "");
	set_str(&xs, "user.c", "1");
	set_str(&xs, "security.a", "2");
	set_str(&xs, "user.b", "3");
	set_str(&xs, "user.c", "longer value");
	assert_listing(&xs, "user.c,security.a,user.b");
	ck_assert_int_eq(mfs_xattr_remove(&xs, "security.a"), 0);
	set_str(&xs, "security.a", "4");
	assert_listing(&xs, "user.c,user.b,security.a");
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(list_probe_returns_the_size_and_a_small_buffer_is_erange)
{
	struct mfs_xattrs xs;
	char buf[32];

	mfs_xattrs_init(&xs);
	ck_assert_int_eq(mfs_xattr_list(&xs, NULL, 0), 0);
	ck_assert_int_eq(mfs_xattr_list(&xs, buf, sizeof(buf)), 0);
	set_str(&xs, "user.ab", "1");
	set_str(&xs, "user.c", "2");
	ck_assert_int_eq(mfs_xattr_list(&xs, NULL, 0), 15);
	ck_assert_int_eq(mfs_xattr_list(&xs, buf, 14), -ERANGE);
	ck_assert_int_eq(mfs_xattr_list(&xs, buf, 15), 15);
	ck_assert_int_eq(memcmp(buf, "user.ab\0user.c\0", 15), 0);
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(removed_name_is_gone_and_the_others_stay)
{
	struct mfs_xattrs xs;

	mfs_xattrs_init(&xs);
	set_str(&xs, "user.a", "1");
	set_str(&xs, "user.b", "2");
	set_str(&xs, "user.c", "3");
	ck_assert_int_eq(mfs_xattr_remove(&xs, "user.b"), 0);
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.b", NULL, 0), -ENODATA);
	ck_assert_int_eq(mfs_xattr_remove(&xs, "user.b"), -ENODATA);
	assert_value(&xs, "user.a", "1");
	assert_value(&xs, "user.c", "3");
	ck_assert_int_eq(mfs_xattr_remove(&xs, "user.a"), 0);
	ck_assert_int_eq(mfs_xattr_remove(&xs, "user.c"), 0);
	ck_assert_ptr_null(xs.head);
	mfs_xattrs_free(&xs);
}
END_TEST

START_TEST(byte_counts_follow_set_replace_and_remove)
{
	struct mfs_xattrs xs;

	mfs_xattrs_init(&xs);
	set_str(&xs, "user.a", "12345");
	set_str(&xs, "trusted.bb", "1");
	ck_assert_uint_eq(mfs_xattrs_list_bytes(&xs), 7 + 11);
	ck_assert_uint_eq(mfs_xattrs_value_bytes(&xs), 6);
	set_str(&xs, "user.a", "12");
	ck_assert_uint_eq(mfs_xattrs_list_bytes(&xs), 18);
	ck_assert_uint_eq(mfs_xattrs_value_bytes(&xs), 3);
	ck_assert_int_eq(mfs_xattr_remove(&xs, "trusted.bb"), 0);
	ck_assert_uint_eq(mfs_xattrs_list_bytes(&xs), 7);
	ck_assert_uint_eq(mfs_xattrs_value_bytes(&xs), 2);
	mfs_xattrs_free(&xs);
	ck_assert_uint_eq(mfs_xattrs_list_bytes(&xs), 0);
	ck_assert_uint_eq(mfs_xattrs_value_bytes(&xs), 0);
	ck_assert_ptr_null(xs.head);
}
END_TEST

START_TEST(copy_duplicates_every_attribute_independently)
{
	struct mfs_xattrs src, dst;

	mfs_xattrs_init(&src);
	set_str(&src, "user.a", "1");
	set_str(&src, "security.b", "");
	set_str(&src, "trusted.c", "three");
	ck_assert_int_eq(mfs_xattrs_copy(&dst, &src), 0);
	assert_listing(&dst, "user.a,security.b,trusted.c");
	assert_value(&dst, "trusted.c", "three");
	assert_value(&dst, "security.b", "");
	ck_assert_uint_eq(mfs_xattrs_list_bytes(&dst), mfs_xattrs_list_bytes(&src));
	ck_assert_uint_eq(mfs_xattrs_value_bytes(&dst), mfs_xattrs_value_bytes(&src));
	/* Changing one leaves the other alone. */
	set_str(&src, "trusted.c", "changed");
	ck_assert_int_eq(mfs_xattr_remove(&src, "user.a"), 0);
	assert_value(&dst, "trusted.c", "three");
	assert_value(&dst, "user.a", "1");
	mfs_xattrs_free(&src);
	mfs_xattrs_free(&dst);
}
END_TEST

START_TEST(copy_of_nothing_is_empty)
{
	struct mfs_xattrs src, dst;

	mfs_xattrs_init(&src);
	ck_assert_int_eq(mfs_xattrs_copy(&dst, &src), 0);
	ck_assert_ptr_null(dst.head);
	ck_assert_int_eq(mfs_xattr_list(&dst, NULL, 0), 0);
	mfs_xattrs_free(&dst);
}
END_TEST

/* ---- a reference model ---- */

enum { MODEL_NAMES = 24 };

struct model_attr {
	int present;
	size_t len;
	unsigned char value[64];
	unsigned order; /* when first set, for the listing order */
};

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void model_name(char *buf, size_t i)
{
	static const char *const ns[] = {"user.", "trusted.", "security."};

	snprintf(buf, 32, "%sattr%zu", ns[i % 3], i);
}

/* The listing the model expects: present names by the order they were first set. */
static void model_listing(const struct model_attr *m, char *out)
{
	unsigned last = 0;

	out[0] = '\0';
	for (;;) {
		long best = -1;
		for (size_t i = 0; i < MODEL_NAMES; i++)
			if (m[i].present && m[i].order > last &&
			    (best < 0 || m[i].order < m[best].order))
				best = (long)i;
		if (best < 0)
			return;
		if (out[0])
			strcat(out, ",");
		model_name(out + strlen(out), (size_t)best);
		last = m[best].order;
	}
}

START_TEST(random_operations_agree_with_a_reference_model)
{
	struct model_attr m[MODEL_NAMES];
	struct mfs_xattrs xs;
	uint64_t rng = 0x853c49e6748fea9bu;
	unsigned order = 0;
	char name[32], want[MODEL_NAMES * 32];

	memset(m, 0, sizeof(m));
	mfs_xattrs_init(&xs);
	for (int step = 0; step < 20000; step++) {
		size_t i = rng_next(&rng) % MODEL_NAMES;
		int flags = (int)(rng_next(&rng) % 3); /* 0, XATTR_CREATE, XATTR_REPLACE */
		unsigned char value[64], got[64];
		size_t len = rng_next(&rng) % sizeof(value);
		int err;

		model_name(name, i);
		for (size_t k = 0; k < len; k++)
			value[k] = (unsigned char)rng_next(&rng);
		if (rng_next(&rng) % 3 == 0) {
			err = mfs_xattr_remove(&xs, name);
			ck_assert_int_eq(err, m[i].present ? 0 : -ENODATA);
			m[i].present = 0;
		} else {
			err = mfs_xattr_set(&xs, name, value, len, flags);
			if (flags == XATTR_CREATE && m[i].present) {
				ck_assert_int_eq(err, -EEXIST);
			} else if (flags == XATTR_REPLACE && !m[i].present) {
				ck_assert_int_eq(err, -ENODATA);
			} else {
				ck_assert_int_eq(err, 0);
				if (!m[i].present)
					m[i].order = ++order;
				m[i].present = 1;
				m[i].len = len;
				memcpy(m[i].value, value, len);
			}
		}
		if (m[i].present) {
			ck_assert_int_eq(mfs_xattr_get(&xs, name, got, sizeof(got)), m[i].len);
			ck_assert_int_eq(memcmp(got, m[i].value, m[i].len), 0);
		} else {
			ck_assert_int_eq(mfs_xattr_get(&xs, name, got, sizeof(got)), -ENODATA);
		}
		model_listing(m, want);
		assert_listing(&xs, want);
	}
	mfs_xattrs_free(&xs);
}
END_TEST

/* ---- allocation failure ---- */

#ifdef MFS_FAULT_INJECTION

START_TEST(failed_allocation_in_set_keeps_the_old_value_and_adds_nothing)
{
	struct mfs_xattrs xs;

	mfs_xattrs_init(&xs);
	set_str(&xs, "user.k", "old");
	mfs_alloc_fail_at(1, 0);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.k", "new", 3, 0), -ENOMEM);
	mfs_alloc_fail_at(1, 0);
	ck_assert_int_eq(mfs_xattr_set(&xs, "user.n", "new", 3, 0), -ENOMEM);
	mfs_alloc_fail_at(0, 0);
	assert_value(&xs, "user.k", "old");
	ck_assert_int_eq(mfs_xattr_get(&xs, "user.n", NULL, 0), -ENODATA);
	assert_listing(&xs, "user.k");
	ck_assert_uint_eq(mfs_xattrs_list_bytes(&xs), 7);
	ck_assert_uint_eq(mfs_xattrs_value_bytes(&xs), 3);
	mfs_xattrs_free(&xs);
}
END_TEST

/* Every allocation of a copy failing in turn: -ENOMEM, dst empty, src untouched. */
START_TEST(each_failed_allocation_in_copy_leaves_the_destination_empty)
{
	struct mfs_xattrs src, dst;
	unsigned long total;
	char name[32];

	mfs_xattrs_init(&src);
	for (size_t i = 0; i < 10; i++) {
		model_name(name, i);
		set_str(&src, name, "value");
	}
	mfs_alloc_fail_at(0, 0);
	ck_assert_int_eq(mfs_xattrs_copy(&dst, &src), 0);
	total = mfs_alloc_count();
	ck_assert_uint_eq(total, 10);
	mfs_xattrs_free(&dst);

	for (unsigned long nth = 1; nth <= total; nth++) {
		mfs_alloc_fail_at(nth, 0);
		ck_assert_int_eq(mfs_xattrs_copy(&dst, &src), -ENOMEM);
		mfs_alloc_fail_at(0, 0);
		ck_assert_ptr_null(dst.head);
		ck_assert_uint_eq(mfs_xattrs_list_bytes(&dst), 0);
		ck_assert_uint_eq(mfs_xattrs_value_bytes(&dst), 0);
	}
	ck_assert_uint_eq(mfs_xattrs_list_bytes(&src), mfs_xattr_list(&src, NULL, 0));
	model_name(name, 9);
	assert_value(&src, name, "value");
	mfs_xattrs_free(&src);
}
END_TEST

#endif /* MFS_FAULT_INJECTION */

static Suite *xattr_suite(void)
{
	Suite *s = suite_create("xattr");
	TCase *values = tcase_create("values");
	TCase *limits = tcase_create("limits");
	TCase *lists = tcase_create("lists");

	tcase_add_test(values, set_value_is_returned_by_get);
	tcase_add_test(values, get_with_size_zero_returns_the_length_without_copying);
	tcase_add_test(values, get_into_a_too_small_buffer_is_erange_and_an_exact_one_fits);
	tcase_add_test(values, absent_name_is_enodata_for_get_probe_and_remove);
	tcase_add_test(values, empty_value_is_a_value_not_a_removal);
	tcase_add_test(values, values_are_binary_and_kept_exactly);
	tcase_add_test(values, create_on_an_existing_name_is_eexist_and_keeps_the_value);
	tcase_add_test(values, replace_on_an_absent_name_is_enodata_and_adds_nothing);
	tcase_add_test(values,
		       create_and_replace_together_is_eexist_if_present_and_enodata_if_absent);
	suite_add_tcase(s, values);

	tcase_add_test(limits, name_of_255_bytes_is_accepted_and_256_is_erange);
	tcase_add_test(limits, empty_name_is_erange);
	tcase_add_test(limits, value_of_65536_bytes_is_accepted_and_65537_is_e2big);
	tcase_add_test(limits, names_list_is_capped_at_65536_bytes_with_enospc);
	tcase_add_test(limits, unknown_flag_bits_are_einval_before_any_other_check);
	tcase_add_test(limits, only_user_trusted_and_security_namespaces_are_offered);
	tcase_add_test(limits, bare_namespace_prefix_is_einval);
	tcase_add_test(limits, errors_come_in_linux_order_name_length_then_size_then_namespace);
	suite_add_tcase(s, limits);

	tcase_set_timeout(lists, 300);
	tcase_add_test(lists, list_gives_names_in_the_order_first_set_even_after_replacement);
	tcase_add_test(lists, list_probe_returns_the_size_and_a_small_buffer_is_erange);
	tcase_add_test(lists, removed_name_is_gone_and_the_others_stay);
	tcase_add_test(lists, byte_counts_follow_set_replace_and_remove);
	tcase_add_test(lists, copy_duplicates_every_attribute_independently);
	tcase_add_test(lists, copy_of_nothing_is_empty);
	tcase_add_test(lists, random_operations_agree_with_a_reference_model);
#ifdef MFS_FAULT_INJECTION
	tcase_add_test(lists, failed_allocation_in_set_keeps_the_old_value_and_adds_nothing);
	tcase_add_test(lists, each_failed_allocation_in_copy_leaves_the_destination_empty);
#endif
	suite_add_tcase(s, lists);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(xattr_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
