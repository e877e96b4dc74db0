/*
 * itable.c — every live inode by number, as a radix tree (contract in
 * itable.h).
 *
 * Invariants: every node has count > 0 used slots (an emptied node is freed
 * at once), and the height is minimal (the root never has slot 0 as its
 * only used slot when height > 1).  Walks are iterative, bounded by the
 * height (at most 11 levels for 64-bit numbers).
 */
#include "itable.h"

#include <errno.h>
#include <stdbool.h>

#include "alloc.h"
#include "inode.h"

#define SHIFT 6
#define FANOUT (1u << SHIFT)
#define MASK ((uint64_t)FANOUT - 1)
#define MAX_HEIGHT 11 /* 11 * 6 >= 64 */

struct node {
	unsigned count;
	void *slot[FANOUT]; /* leaves: struct mfs_inode *; above: struct node * */
};

static unsigned slot_of(uint64_t ino, unsigned level)
{
	return (unsigned)((ino >> ((level - 1) * SHIFT)) & MASK);
}

/* Does a tree of height h hold number ino? */
static bool fits(unsigned h, uint64_t ino)
{
	return h >= MAX_HEIGHT || (ino >> (h * SHIFT)) == 0;
}

void mfs_itable_init(struct mfs_itable *t)
{
	t->root = NULL;
	t->height = 0;
	t->count = 0;
}

/* Free every node; the stack holds one pending node per level per slot scanned. */
void mfs_itable_free(struct mfs_itable *t)
{
	struct {
		struct node *n;
		unsigned level, next;
	} stack[MAX_HEIGHT + 1];
	int top = 0;

	if (t->root) {
		stack[0].n = t->root;
		stack[0].level = t->height;
		stack[0].next = 0;
		top = 1;
	}
	while (top > 0) {
		struct node *n = stack[top - 1].n;
		unsigned level = stack[top - 1].level;

		if (level > 1 && stack[top - 1].next < FANOUT) {
			struct node *child = n->slot[stack[top - 1].next++];
			if (child) {
				stack[top].n = child;
				stack[top].level = level - 1;
				stack[top].next = 0;
				top++;
			}
			continue;
		}
		mfs_free(n);
		top--;
	}
	mfs_itable_init(t);
}

struct mfs_inode *mfs_itable_find(const struct mfs_itable *t, uint64_t ino)
{
	struct node *n = t->root;

	if (!n || !fits(t->height, ino))
		return NULL;
	for (unsigned level = t->height; level > 1 && n; level--)
		n = n->slot[slot_of(ino, level)];
	return n ? n->slot[ino & MASK] : NULL;
}

/*
 * Free the emptied nodes on the path to ino, bottom up, then lower the root
 * while it holds only slot 0: after a removal or a failed add.
 */
static void prune(struct mfs_itable *t, uint64_t ino)
{
	struct node *path[MAX_HEIGHT + 1], *n = t->root;
	unsigned level, low = t->height + 1;

	if (!n) {
		t->height = 0;
		return;
	}
	for (level = t->height; n; level--) {
		path[level] = n;
		low = level;
		n = level > 1 ? n->slot[slot_of(ino, level)] : NULL;
	}
	for (level = low; path[level]->count == 0; level++) {
		mfs_free(path[level]);
		if (level == t->height) {
			mfs_itable_init(t);
			return;
		}
		path[level + 1]->slot[slot_of(ino, level + 1)] = NULL;
		path[level + 1]->count--;
	}
	while (t->height > 1) {
		struct node *root = t->root;

		if (root->count != 1 || !root->slot[0])
			break;
		t->root = root->slot[0];
		t->height--;
		mfs_free(root);
	}
}

int mfs_itable_add(struct mfs_itable *t, struct mfs_inode *inode)
{
	uint64_t ino = inode->ino;
	struct node *parent = NULL;
	void **link = &t->root;
	unsigned need = 1, level;

	while (!fits(need, ino))
		need++;
	if (!t->root && t->height < need)
		t->height = need; /* the root is made along with the path */
	while (t->height < need) {
		struct node *root = mfs_calloc(1, sizeof(*root));

		if (!root) {
			prune(t, ino);
			return -ENOMEM;
		}
		root->slot[0] = t->root;
		root->count = 1;
		t->root = root;
		t->height++;
	}
	for (level = t->height;; level--) {
		if (!*link) {
			*link = mfs_calloc(1, sizeof(struct node));
			if (!*link) {
				prune(t, ino);
				return -ENOMEM;
			}
			if (parent)
				parent->count++;
		}
		if (level == 1)
			break;
		parent = *link;
		link = &parent->slot[slot_of(ino, level)];
	}
	((struct node *)*link)->slot[ino & MASK] = inode;
	((struct node *)*link)->count++;
	t->count++;
	return 0;
}

void mfs_itable_remove(struct mfs_itable *t, struct mfs_inode *inode)
{
	uint64_t ino = inode->ino;
	struct node *n = t->root;

	for (unsigned level = t->height; level > 1; level--)
		n = n->slot[slot_of(ino, level)];
	n->slot[ino & MASK] = NULL;
	n->count--;
	t->count--;
	prune(t, ino);
}

/* ino moved to slot s at this level: the levels below start from 0 if it moved. */
static uint64_t with_slot(uint64_t ino, unsigned level, unsigned s)
{
	unsigned shift = (level - 1) * SHIFT;

	if (slot_of(ino, level) == s)
		return ino;
	return (ino & ~((MASK << shift) | (((uint64_t)1 << shift) - 1))) | ((uint64_t)s << shift);
}

struct mfs_inode *mfs_itable_next(const struct mfs_itable *t, uint64_t *ino)
{
	struct node *path[MAX_HEIGHT + 1];
	unsigned level = t->height, s;
	struct node *n = t->root;
	uint64_t at = *ino;

	if (!n || !fits(t->height, at))
		return NULL;
	s = slot_of(at, level);
	for (;;) {
		while (s < FANOUT && !n->slot[s])
			s++;
		if (s == FANOUT) {
			/* nothing more below n: go on after it in its parent */
			if (level == t->height)
				return NULL;
			level++;
			n = path[level];
			s = slot_of(at, level) + 1;
			continue;
		}
		at = with_slot(at, level, s);
		if (level == 1) {
			*ino = at + 1;
			return n->slot[s];
		}
		path[level] = n;
		n = n->slot[s];
		level--;
		s = slot_of(at, level);
	}
}
