/*
 * ops.h — the FUSE low-level adapter: kernel requests to core calls.
 */
#ifndef MEMFS_OPS_H
#define MEMFS_OPS_H

#include <fuse_lowlevel.h>

#include "fs.h"
#include "fuse_compat.h"
#include "options.h"

/* What every request handler finds through fuse_req_userdata(). */
struct memfs {
	struct mfs_fs *fs;
	const struct memfs_config *cfg;
	struct fuse_session *se; /* for notifications to the kernel */
	struct fuse_compat compat; /* INIT flags libfuse 3.14 cannot ask for */
	/* cache=always: the kernel may open files and directories without
	 * asking (FUSE_CAP_NO_OPEN(DIR)_SUPPORT), set at INIT */
	int open_without_request, opendir_without_request;
};

extern const struct fuse_lowlevel_ops memfs_ops;

#endif
