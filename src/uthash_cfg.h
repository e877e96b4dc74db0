/*
 * uthash_cfg.h — include this instead of <uthash.h>.
 *
 * Routes uthash's allocations through alloc.h and makes an allocation
 * failure non-fatal: HASH_ADD then leaves the table unchanged and sets the
 * flag the caller checks (see dir.c).  uthash's default is to exit().
 */
#ifndef MFS_UTHASH_CFG_H
#define MFS_UTHASH_CFG_H

#include "alloc.h"

#define HASH_NONFATAL_OOM 1
#define uthash_malloc(sz) mfs_malloc(sz)
#define uthash_free(ptr, sz) mfs_free(ptr)
/* Each user defines uthash_nonfatal_oom(obj) before including this file. */
#include <uthash.h>

/*
 * uthash doubles a table's bucket array as it grows and never shrinks it,
 * so a table that once held a million items keeps 16 MiB of buckets after
 * they are gone.  Call after a delete (tbl: head->hh.tbl, NULL when the
 * table is empty): once a table holds fewer than one item per 8 buckets,
 * its items are rehashed into an array of about one bucket per item, as
 * HASH_EXPAND_BUCKETS does when growing.  Amortised O(1) per delete; if
 * the smaller array cannot be allocated the table simply stays as it is.
 */
static inline void mfs_hash_shrink(UT_hash_table *tbl)
{
	unsigned nb = HASH_INITIAL_NUM_BUCKETS, log2 = HASH_INITIAL_NUM_BUCKETS_LOG2;
	UT_hash_bucket *buckets;

	if (!tbl || tbl->num_buckets <= HASH_INITIAL_NUM_BUCKETS ||
	    tbl->num_items > tbl->num_buckets / 8)
		return;
	while (nb < tbl->num_items) {
		nb *= 2;
		log2++;
	}
	buckets = (UT_hash_bucket *)uthash_malloc(nb * sizeof(*buckets));
	if (!buckets)
		return;
	memset(buckets, 0, nb * sizeof(*buckets));
	tbl->ideal_chain_maxlen = (tbl->num_items >> log2) + ((tbl->num_items & (nb - 1)) != 0);
	tbl->nonideal_items = 0;
	for (unsigned i = 0; i < tbl->num_buckets; i++) {
		UT_hash_handle *hh = tbl->buckets[i].hh_head, *next;
		for (; hh; hh = next) {
			unsigned b;
			UT_hash_bucket *to;
			next = hh->hh_next;
			HASH_TO_BKT(hh->hashv, nb, b);
			to = &buckets[b];
			if (++to->count > tbl->ideal_chain_maxlen) {
				tbl->nonideal_items++;
				if (to->count > to->expand_mult * tbl->ideal_chain_maxlen)
					to->expand_mult++;
			}
			hh->hh_prev = NULL;
			hh->hh_next = to->hh_head;
			if (to->hh_head)
				to->hh_head->hh_prev = hh;
			to->hh_head = hh;
		}
	}
	uthash_free(tbl->buckets, tbl->num_buckets * sizeof(*tbl->buckets));
	tbl->buckets = buckets;
	tbl->num_buckets = nb;
	tbl->log2_num_buckets = log2;
	tbl->ineff_expands = 0;
	tbl->noexpand = 0;
}

#endif
