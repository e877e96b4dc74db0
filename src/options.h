/*
 * options.h — the daemon's configuration, parsed from the command line
 * (or from mount.fuse3, as `memfs SOURCE MOUNTPOINT -o opts`).
 */
#ifndef MEMFS_OPTIONS_H
#define MEMFS_OPTIONS_H

#include <fuse_lowlevel.h>

#include "fs.h"

/* cache=: where file contents may live besides memfs (README "Kernel caching"). */
enum memfs_cache {
	MEMFS_CACHE_ALWAYS, /* page cache, kept across opens (keep_cache) */
	MEMFS_CACHE_AUTO,   /* page cache, dropped at every open */
	MEMFS_CACHE_NONE,   /* no page cache: direct I/O, one copy in RAM */
};

struct memfs_config {
	struct mfs_params params; /* size=, nr_inodes=, mode=, uid=, gid= */
	double entry_timeout_s;   /* kernel caching (see README "Options") */
	double attr_timeout_s;
	double negative_timeout_s;
	enum memfs_cache cache;
	int keep_cache; /* cache == MEMFS_CACHE_ALWAYS */
	int writeback;
	int readdirplus;
	int splice;
	int cache_symlinks;
	int cache_readdir;
	unsigned max_write_bytes;
	int default_permissions;
	int uring; /* serve FUSE over io_uring when the kernel offers it (uring.h) */
	/* lower=: the lower directories as given, topmost first */
	char **lower_dirs;
	unsigned nlower;
	/* mode=, uid=, gid= given: otherwise, with lower=, the root takes
	 * them from the topmost lower directory */
	int root_mode_given, root_uid_given, root_gid_given;
	char *source;     /* fsname shown by mount; "memfs" unless given */
	char *mountpoint; /* absolute path, checked to be a directory */
};

/*
 * Fill cfg from argv and leave in args what libfuse should see (its own
 * options, plus subtype/fsname/default_permissions).  Returns 0 to go on,
 * 1 when --help or --version was printed (exit 0), -1 after printing one
 * "memfs: ..." line on stderr (exit 1).
 */
int memfs_parse_options(int argc, char *argv[], struct memfs_config *cfg, struct fuse_args *args);
void memfs_config_free(struct memfs_config *cfg);

#endif
