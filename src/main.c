/*
 * main.c — the daemon: parse options, create the core filesystem, mount,
 * run the FUSE session until unmount or a signal, then free everything.
 */
#include <errno.h>
#include <limits.h>
#include <mntent.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lower.h"
#include "ops.h"
#include "options.h"
#include "prefault.h"
#include "trim.h"
#include "uring.h"

static int run_session(struct fuse_session *se, const struct fuse_cmdline_opts *o)
{
	struct fuse_loop_config *loop;
	int ret;

	if (o->singlethread)
		return fuse_session_loop(se);
	loop = fuse_loop_cfg_create();
	if (!loop)
		return -1;
	fuse_loop_cfg_set_clone_fd(loop, o->clone_fd);
	/* libfuse 3.14 leaves both UINT_MAX when not given, and then warns */
	if (o->max_idle_threads != UINT_MAX)
		fuse_loop_cfg_set_idle_threads(loop, o->max_idle_threads);
	if (o->max_threads != UINT_MAX)
		fuse_loop_cfg_set_max_threads(loop, o->max_threads);
	ret = fuse_session_loop_mt(se, loop);
	fuse_loop_cfg_destroy(loop);
	return ret;
}

/*
 * Is a FUSE filesystem still mounted on path?  An unmount that arrives
 * while a worker is in the middle of reading a request from /dev/fuse
 * (many RELEASEs still queued, say) makes that read fail with ECONNABORTED
 * instead of ENODEV, which libfuse 3.14 reports as an error ("fuse: reading
 * device: Software caused connection abort").  If the mount is gone, it was
 * the unmount the user asked for, and memfs exits 0; if it is still there
 * (the connection was aborted through /sys/fs/fuse/connections), it was not.
 */
static int fuse_mounted_on(const char *path)
{
	FILE *f = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	int found = 0;

	if (!f)
		return 1; /* cannot tell: assume the worst */
	while (!found && (m = getmntent(f)))
		found = strcmp(m->mnt_dir, path) == 0 && strncmp(m->mnt_type, "fuse", 4) == 0;
	endmntent(f);
	return found;
}

/* Is path below dir (both absolute, canonical)? */
static int is_below(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1) /* "/" */
		return path[1] != '\0';
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

/*
 * Open the lower= directories into cfg->params (the core takes them over),
 * and give the root the attributes of the topmost one where mode=, uid=,
 * gid= were not given.  One "memfs: ..." line and -1 on any problem.  The
 * mount point may be a lower directory itself (it is opened before the
 * mount covers it) but not inside one: memfs would list its own mount.
 */
static int open_lowers(struct memfs_config *cfg)
{
	struct mfs_params *p = &cfg->params;
	struct stat st;
	int err;

	if (cfg->nlower == 0)
		return 0;
	p->lowers = calloc(cfg->nlower, sizeof(*p->lowers));
	if (!p->lowers)
		return fprintf(stderr, "memfs: out of memory\n"), -1;
	for (unsigned i = 0; i < cfg->nlower; i++) {
		const char *dir = cfg->lower_dirs[i];
		char *real = realpath(dir, NULL);

		if (real && is_below(cfg->mountpoint, real)) {
			fprintf(stderr, "memfs: mount point '%s' is inside lower directory '%s'\n",
				cfg->mountpoint, dir);
			free(real);
			goto fail;
		}
		free(real);
		err = mfs_lower_open(dir, &p->lowers[i]);
		if (err) {
			fprintf(stderr, "memfs: lower directory '%s': %s\n", dir, strerror(-err));
			goto fail;
		}
		p->nlowers++;
	}
	err = mfs_lower_lstat(p->lowers[0], "", &st);
	if (err) {
		fprintf(stderr, "memfs: lower directory '%s': %s\n", cfg->lower_dirs[0],
			strerror(-err));
		goto fail;
	}
	if (!cfg->root_mode_given)
		p->root_mode = st.st_mode & 07777;
	if (!cfg->root_uid_given)
		p->root_uid = p->lower_uid_set ? p->lower_uid : st.st_uid;
	if (!cfg->root_gid_given)
		p->root_gid = p->lower_gid_set ? p->lower_gid : st.st_gid;
	return 0;
fail:
	for (unsigned i = 0; i < p->nlowers; i++)
		mfs_lower_close(p->lowers[i]);
	p->nlowers = 0;
	return -1;
}

int main(int argc, char *argv[])
{
	struct memfs_config cfg;
	struct fuse_args args;
	struct fuse_cmdline_opts o = {0};
	struct fuse_session *se = NULL;
	struct memfs m = {.cfg = &cfg};
	struct memfs_trim *trim = NULL;
	struct memfs_prefault *prefault = NULL;
	int ret = 1, err;

	/*
	 * One malloc arena.  glibc gives each worker thread its own arena, an
	 * mmap'd heap grown by mprotect() page by page: one system call per
	 * 4 KiB chunk a write allocates.  The main arena grows with brk() in
	 * 128 KiB steps; small allocations stay in per-thread caches anyway.
	 * Writing 1 GiB: daemon CPU 1.70 -> 1.18 s.
	 */
	mallopt(M_ARENA_MAX, 1);
	err = memfs_parse_options(argc, argv, &cfg, &args);
	if (err) {
		ret = err > 0 ? 0 : 1;
		goto out_args;
	}
	if (fuse_parse_cmdline(&args, &o) != 0)
		goto out_args;
	if (open_lowers(&cfg))
		goto out_args;
	err = mfs_fs_new(&cfg.params, &m.fs); /* closes the lowers if it fails */
	if (err) {
		fprintf(stderr, "memfs: cannot create the filesystem: %s\n", strerror(-err));
		goto out_args;
	}
	se = fuse_session_new(&args, &memfs_ops, sizeof(memfs_ops), &m);
	if (!se)
		goto out_fs; /* libfuse printed why */
	m.se = se;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	if (fuse_session_mount(se, cfg.mountpoint) != 0) {
		fprintf(stderr, "memfs: cannot mount on '%s'\n", cfg.mountpoint);
		goto out_signals;
	}
	err = fuse_compat_attach(se, &m.compat,
				 FUSE_COMPAT_KILLPRIV_V2 | FUSE_COMPAT_PARALLEL_DIROPS |
					 (cfg.cache == MEMFS_CACHE_NONE ? FUSE_COMPAT_DIRECT_IO_ALLOW_MMAP : 0) |
					 (cfg.uring && !o.singlethread ? FUSE_COMPAT_OVER_IO_URING : 0),
				 o.debug);
	if (err) {
		fprintf(stderr, "memfs: cannot set up the FUSE channel: %s\n", strerror(-err));
		goto out_unmount;
	}
	if (fuse_daemonize(o.foreground) != 0)
		goto out_unmount;
	/* after fuse_daemonize: a thread would not survive its fork */
	memfs_trim_start(m.fs, &trim); /* without it memory is given back later */
	memfs_prefault_start(&prefault); /* without it pages fault in as written */
	/* libfuse 3.14 reports an exit by SIGINT/SIGTERM/SIGHUP as that
	 * signal's number: a requested, clean unmount, so success */
	err = run_session(se, &o);
	memfs_uring_stop(m.compat.uring); /* started at INIT, if the kernel offered it */
	memfs_trim_stop(trim);
	memfs_prefault_stop(prefault);
	ret = err == 0 || err == SIGINT || err == SIGTERM || err == SIGHUP ? 0 : 1;
	if (err == -ECONNABORTED && !fuse_mounted_on(cfg.mountpoint))
		ret = 0; /* unmounted while a request was being read: see fuse_mounted_on */
out_unmount:
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_fs:
	mfs_fs_destroy(m.fs);
out_args:
	free(o.mountpoint);
	fuse_opt_free_args(&args);
	free(cfg.params.lowers);
	memfs_config_free(&cfg);
	return ret;
}
