/*
 * test_realworld.c — real programs doing real work on a memfs mount.
 *
 * Each test runs a program that leans hard on POSIX semantics (git, tar,
 * diff, sqlite3 in WAL mode, cp -a, rsync, find, rm -rf) and checks the
 * result with a second, independent program or with statfs: a clone must
 * pass `git fsck`, an extracted tree must `diff -r` clean against its
 * source, a WAL database must pass `PRAGMA integrity_check`, a copied tree
 * must look identical to rsync, and removing everything must give every
 * inode and block back.
 */
#include "harness.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

/* Generous: every test here moves thousands of files through FUSE. */
#define RW_TIMEOUT_S 300

/*
 * Run a bash script with stdout and stderr captured into a malloc'd,
 * NUL-terminated string (*out); returns its exit status.  The script goes
 * through a file, so it needs no quoting for the shell that hx_sh() uses.
 */
static int sh_capture(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int sh_capture(char **out, const char *fmt, ...)
{
	char script[PATH_MAX], file[PATH_MAX];
	snprintf(script, sizeof(script), "%s/script.XXXXXX", hx_tmpfs());
	int fd = mkstemp(script);
	ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
	FILE *sf = fdopen(fd, "w");
	ck_assert_ptr_nonnull(sf);
	va_list ap;
	va_start(ap, fmt);
	vfprintf(sf, fmt, ap);
	va_end(ap);
	fputc('\n', sf);
	ck_assert_int_eq(fclose(sf), 0);

	snprintf(file, sizeof(file), "%s/capture.XXXXXX", hx_tmpfs());
	fd = mkstemp(file);
	ck_assert_msg(fd >= 0, "mkstemp: %s", strerror(errno));
	close(fd);

	int status = hx_sh("bash '%s' >'%s' 2>&1 </dev/null", script, file);

	FILE *f = fopen(file, "r");
	ck_assert_ptr_nonnull(f);
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ck_assert_ptr_nonnull(buf);
	size_t got;
	while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += got;
		if (cap - len - 1 == 0) {
			cap *= 2;
			buf = realloc(buf, cap);
			ck_assert_ptr_nonnull(buf);
		}
	}
	buf[len] = '\0';
	fclose(f);
	unlink(file);
	unlink(script);
	*out = buf;
	return status;
}

/* Run a command that must succeed and print nothing. */
static void sh_silent_ok(const char *what, const char *cmd)
{
	char *out;
	int st = sh_capture(&out, "%s", cmd);
	ck_assert_msg(st == 0 && out[0] == '\0', "%s: exit %d, output:\n%.3000s", what, st, out);
	free(out);
}

/* Run a script that must succeed (its output is shown only if it fails). */
#define sh_ok(...)                                                                                 \
	do {                                                                                       \
		char *out_;                                                                        \
		int st_ = sh_capture(&out_, __VA_ARGS__);                                          \
		ck_assert_msg(st_ == 0, "exit %d from script:\n%.3000s", st_, out_);               \
		free(out_);                                                                        \
	} while (0)

static void fs_usage(const char *dir, unsigned long long *inodes_used, unsigned long long *bfree)
{
	struct statvfs sv;
	ck_assert_msg(statvfs(dir, &sv) == 0, "statvfs %s: %s", dir, strerror(errno));
	*inodes_used = sv.f_files - sv.f_ffree;
	*bfree = sv.f_bfree;
}

/*
 * Wait (up to ~5 s) until the mount is back to exactly one used inode (the
 * root) and f_bfree is back to its value on the empty mount.  The kernel
 * sends FORGETs asynchronously after an unlink, so a correct filesystem may
 * need a moment to drop the last inodes; it must get there.
 */
static void assert_fs_back_to_empty(unsigned long long bfree_empty)
{
	unsigned long long used = 0, bfree = 0;
	for (int i = 0; i < 100; i++) {
		fs_usage(hx_mnt.dir, &used, &bfree);
		if (used == 1 && bfree == bfree_empty)
			return;
		usleep(50 * 1000);
	}
	ck_abort_msg("after rm -rf: %llu inodes used (want 1), f_bfree %llu (want %llu)", used,
		     bfree, bfree_empty);
}

static void assert_dir_empty(const char *dir)
{
	char *out;
	int st = sh_capture(&out, "ls -A '%s'", dir);
	ck_assert_msg(st == 0 && out[0] == '\0', "ls -A %s: exit %d, output:\n%.2000s", dir, st,
		      out);
	free(out);
}

/* ---- git ---------------------------------------------------------------- */

/* git with a fixed identity and no user or system configuration. */
#define GIT                                                                                        \
	"env HOME=/nonexistent GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null "                 \
	"git -c user.name=memfs -c user.email=memfs@test -c init.defaultBranch=main "              \
	"-c safe.directory='*' -c gc.auto=0"

/* A source repository of a few hundred files over several commits (renames, deletions, a symlink,
 * an executable). */
static void make_source_repo(const char *src)
{
	sh_ok("set -e; mkdir -p '%1$s'; cd '%1$s'; " GIT " init -q .; "
	      "for c in 1 2 3 4 5 6; do "
	      "  for d in 0 1 2 3 4 5 6 7; do mkdir -p dir$d/sub; "
	      "    for f in 0 1 2 3 4 5 6 7 8 9; do "
	      "      printf 'commit %%s dir %%s file %%s\\n' $c $d $f > dir$d/file$f.txt; "
	      "      seq 1 $((c * 50 + f)) >> dir$d/file$f.txt; "
	      "      [ $c -gt 2 ] && printf 'extra %%s\\n' $c > dir$d/sub/n$c-$f.txt; :; "
	      "    done; "
	      "  done; "
	      "  [ $c -eq 4 ] && { " GIT " mv dir0/file0.txt dir0/renamed.txt; " GIT
	      " rm -q -r dir1/sub; }; "
	      "  [ $c -eq 2 ] && { ln -s dir2/file1.txt link; printf '#!/bin/sh\\necho hi\\n' > "
	      "run.sh; chmod +x run.sh; "
	      "     head -c 300000 /dev/urandom > blob.bin; }; "
	      "  " GIT " add -A; " GIT " commit -q -m \"commit $c\"; "
	      "done; " GIT " tag v1.0; "
	      "test $(" GIT " ls-files | wc -l) -ge 300",
	      src);
}

START_TEST(git_clone_onto_memfs_passes_fsck_status_and_gc)
{
	char src[PATH_MAX];
	snprintf(src, sizeof(src), "%s/gitsrc", hx_tmpfs());
	make_source_repo(src);

	const char *clone = P("clone");
	char cmd[16384];
	char *out;

	int st = sh_capture(&out, GIT " clone -q --no-hardlinks 'file://%s' '%s'", src, clone);
	ck_assert_msg(st == 0, "git clone: exit %d:\n%.3000s", st, out);
	free(out);

	snprintf(cmd, sizeof(cmd), "cd '%s' && " GIT " fsck --full --strict --no-progress", clone);
	sh_silent_ok("git fsck --full", cmd);
	snprintf(cmd, sizeof(cmd), "cd '%s' && " GIT " status --porcelain", clone);
	sh_silent_ok("git status --porcelain", cmd);

	/* The clone has the same history and the same checked-out tree. */
	snprintf(cmd, sizeof(cmd),
		 "test \"$(cd '%s' && " GIT " rev-parse HEAD v1.0)\" = \"$(cd '%s' && " GIT
		 " rev-parse HEAD v1.0)\"",
		 clone, src);
	sh_silent_ok("same HEAD", cmd);
	snprintf(cmd, sizeof(cmd), "diff -r --no-dereference -x .git '%s' '%s'", src, clone);
	sh_silent_ok("diff -r of the work trees", cmd);
	ck_assert_msg(access(hx_path(&hx_mnt, "clone/run.sh"), X_OK) == 0, "run.sh lost its x bit");

	/* A commit made on memfs, then gc repacks and prunes: still consistent. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && echo change >> dir3/file3.txt && " GIT " commit -q -am change && " GIT
		 " gc -q --prune=now --aggressive",
		 clone);
	sh_silent_ok("commit + git gc", cmd);
	snprintf(cmd, sizeof(cmd), "cd '%s' && " GIT " fsck --full --strict --no-progress", clone);
	sh_silent_ok("git fsck after gc", cmd);
	snprintf(cmd, sizeof(cmd), "cd '%s' && " GIT " status --porcelain", clone);
	sh_silent_ok("git status after gc", cmd);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && test $(" GIT " rev-list --count HEAD) -eq 7 && "
		 "test -z \"$(find .git/objects -type f -path '*/objects/[0-9a-f][0-9a-f]/*')\"",
		 clone);
	sh_silent_ok("history of 7 commits, all objects packed", cmd);
}
END_TEST

/* ---- tar / diff / rm ---------------------------------------------------- */

/* /usr/include as a tar archive on the scratch tmpfs (made once per process). */
static const char *include_tarball(void)
{
	static char tarball[PATH_MAX];
	if (tarball[0] == '\0' || access(tarball, R_OK) != 0) {
		snprintf(tarball, sizeof(tarball), "%s/include.tar", hx_tmpfs());
		sh_ok("tar -C / --format=posix -cf '%s' usr/include", tarball);
	}
	return tarball;
}

START_TEST(tar_extract_of_usr_include_diffs_clean_and_rm_rf_frees_everything)
{
	unsigned long long used0, bfree0, used, bfree;
	const char *tarball = include_tarball();
	fs_usage(hx_mnt.dir, &used0, &bfree0);
	ck_assert_int_eq(used0, 1);

	char cmd[16384];
	snprintf(cmd, sizeof(cmd), "tar -C '%s' -xf '%s'", hx_mnt.dir, tarball);
	sh_silent_ok("tar -x", cmd);

	/* Same contents, symlinks compared as symlinks. */
	snprintf(cmd, sizeof(cmd), "diff -r --no-dereference /usr/include '%s'", P("usr/include"));
	sh_silent_ok("diff -r", cmd);

	/* Same metadata: type, mode, size (not of directories: that is the fs's own), link target,
	 * mtime. */
	snprintf(cmd, sizeof(cmd),
		 "list() { cd \"$1\" && { find . ! -type d -printf '%%y %%m %%s %%l %%T@ %%p\\n'; "
		 "find . -type d -printf '%%y %%m %%T@ %%p\\n'; } | sort; }; "
		 "diff <(list /usr/include) <(list '%s')",
		 P("usr/include"));
	sh_silent_ok("metadata of every entry", cmd);

	fs_usage(hx_mnt.dir, &used, &bfree);
	ck_assert_msg(used > 8000, "only %llu inodes in use after extracting /usr/include", used);
	ck_assert_msg(bfree0 - bfree >= (100ULL << 20) / 4096,
		      "only %llu blocks used by 100+ MiB of headers", bfree0 - bfree);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", P("usr"));
	sh_silent_ok("rm -rf", cmd);
	assert_dir_empty(hx_mnt.dir);
	assert_fs_back_to_empty(bfree0);
}
END_TEST

/* ---- sqlite ------------------------------------------------------------- */

START_TEST(sqlite_wal_database_with_concurrent_reader_passes_integrity_check)
{
	char db[PATH_MAX], done[PATH_MAX], reads[PATH_MAX], sql[PATH_MAX];
	snprintf(db, sizeof(db), "%s", P("test.db"));
	snprintf(done, sizeof(done), "%s/sqlite.done", hx_tmpfs());
	snprintf(reads, sizeof(reads), "%s/sqlite.reads", hx_tmpfs());
	snprintf(sql, sizeof(sql), "%s/sqlite.sql", hx_tmpfs());
	unlink(done);

	char *out;
	int st = sh_capture(&out,
			    "sqlite3 '%s' 'PRAGMA journal_mode=WAL;' "
			    "'CREATE TABLE t(id INTEGER PRIMARY KEY, batch INTEGER, v BLOB);'",
			    db);
	ck_assert_msg(st == 0 && strcmp(out, "wal\n") == 0, "PRAGMA journal_mode=WAL: exit %d: %s",
		      st, out);
	free(out);

	/* 100 transactions of 100 rows each. */
	FILE *f = fopen(sql, "w");
	ck_assert_ptr_nonnull(f);
	fputs(".timeout 10000\n", f);
	for (int b = 0; b < 100; b++)
		fprintf(f,
			"BEGIN; WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
			"WHERE x < 100) "
			"INSERT INTO t(batch, v) SELECT %d, randomblob(200 + x) FROM c; COMMIT;\n",
			b);
	ck_assert_int_eq(fclose(f), 0);

	/*
	 * A reader in another process counts rows over and over while the
	 * writer commits (one transaction every ~10 ms); with WAL it never
	 * blocks and only ever sees whole transactions.
	 */
	st = sh_capture(&out,
			"( while [ ! -e '%2$s' ]; do sqlite3 -cmd '.timeout 10000' '%1$s' 'SELECT "
			"count(*) FROM t;' "
			"|| { echo READ-FAILED; exit 1; }; done; "
			"  sqlite3 -cmd '.timeout 10000' '%1$s' 'SELECT count(*) FROM t;' ) > "
			"'%3$s' 2>&1 & r=$!; "
			"while IFS= read -r tx; do printf '%%s\\n' \"$tx\"; sleep 0.01; done < "
			"'%4$s' | sqlite3 '%1$s'; "
			"w=$?; touch '%2$s'; wait $r; rd=$?; "
			"echo writer=$w reader=$rd",
			db, done, reads, sql);
	ck_assert_msg(st == 0 && strcmp(out, "writer=0 reader=0\n") == 0, "sqlite run: exit %d: %s",
		      st, out);
	free(out);

	/* Every count the reader saw is a whole number of transactions, never going back. */
	size_t len;
	char *r = hx_read_file(reads, &len);
	r = realloc(r, len + 1);
	r[len] = '\0';
	long prev = 0, nreads = 0;
	for (char *line = strtok(r, "\n"); line; line = strtok(NULL, "\n")) {
		char *end;
		long n = strtol(line, &end, 10);
		ck_assert_msg(*end == '\0' && end != line, "reader printed '%s'", line);
		ck_assert_msg(n % 100 == 0, "reader saw %ld rows: a partial transaction", n);
		ck_assert_msg(n >= prev, "reader saw %ld rows after %ld", n, prev);
		prev = n;
		nreads++;
	}
	free(r);
	ck_assert_int_eq(prev, 10000);
	ck_assert_msg(nreads >= 2, "the reader ran only %ld times", nreads);

	st = sh_capture(
	    &out,
	    "sqlite3 '%s' 'PRAGMA integrity_check;' 'PRAGMA journal_mode;' 'SELECT count(*), "
	    "count(DISTINCT batch), sum(length(v)) FROM t;'",
	    db);
	/* sum(length(v)) = 100 * sum(201..300) = 100 * 25050 */
	ck_assert_msg(st == 0 && strcmp(out, "ok\nwal\n10000|100|2505000\n") == 0,
		      "after: exit %d:\n%s", st, out);
	free(out);

	/* The WAL file and shared-memory index live on memfs. */
	struct stat sb;
	ck_assert_msg(stat(P("test.db-wal"), &sb) == 0 || errno == ENOENT, "stat -wal: %s",
		      strerror(errno));

	/* A checkpoint into the main file keeps it intact, read by a fresh process. */
	st = sh_capture(&out,
			"sqlite3 '%1$s' 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null && "
			"sqlite3 '%1$s' 'PRAGMA integrity_check;' 'SELECT count(*) FROM t;'",
			db);
	ck_assert_msg(st == 0 && strcmp(out, "ok\n10000\n") == 0, "after checkpoint: exit %d:\n%s",
		      st, out);
	free(out);
}
END_TEST

/* ---- cp -a / rsync ------------------------------------------------------ */

/* A tree with everything cp -a must preserve: symlinks, hard links, xattrs, modes, owners, times.
 */
static void make_rich_tree(const char *dir)
{
	sh_ok(
	    "set -e; mkdir -p '%1$s'; cd '%1$s'; "
	    "mkdir -p a/b/c empty 'sp ace' deep/1/2/3/4/5; "
	    "for i in $(seq 1 40); do head -c $((i * 997)) /dev/urandom > a/f$i; done; "
	    "printf 'hello\\n' > a/b/hello; printf '' > a/b/c/zero; "
	    "head -c 1 /dev/urandom > 'sp ace/one byte'; "
	    "truncate -s 5M a/sparse; printf x | dd of=a/sparse bs=1 seek=3000000 conv=notrunc "
	    "status=none; "
	    /* hard links, inside and across directories */
	    "ln a/f1 a/f1.link; ln a/f1 a/b/c/f1.link2; ln a/f2 'sp ace/f2.link'; "
	    /* symlinks: relative, absolute, dangling, to a dir, a chain */
	    "ln -s f3 a/f3.sym; ln -s /etc/hostname a/abs.sym; ln -s ../nowhere a/dangling.sym; "
	    "ln -s a/b dir.sym; ln -s a/f3.sym chain.sym; "
	    /* modes, owners, odd bits */
	    "chmod 0600 a/f4; chmod 0755 a/f5; chmod 4755 a/f6; chmod 2750 a/b; chmod 1777 empty; "
	    "chmod 0444 a/f7; chown 1234:5678 a/f8; chown -h 4321:8765 a/f3.sym; chown 99:99 "
	    "deep/1; "
	    "mkfifo a/fifo; "
	    /* xattrs in the user and trusted namespaces, on files, dirs and a hard link */
	    "setfattr -n user.comment -v 'a comment' a/f9; "
	    "setfattr -n user.empty a/f9; "
	    "setfattr -n user.bin -v 0x00ff00ff a/f10; "
	    "setfattr -n trusted.secret -v hidden a/f11; "
	    "setfattr -n user.dir -v yes a/b; "
	    "setfattr -n user.linked -v both a/f1; "
	    "setfattr -n user.big -v \"$(head -c 3000 /dev/zero | tr '\\0' x)\" deep/1/2; "
	    /* times: one in the past, one with nanoseconds */
	    "touch -h -d '2001-02-03 04:05:06.123456789' a/f12 a/f3.sym deep/1/2/3; "
	    "touch -d '1999-12-31 23:59:59' a/b/c",
	    dir);
}

static void assert_rsync_same(const char *from, const char *to)
{
	char *out;
	int st = sh_capture(&out, "rsync -aHAXc --delete --dry-run --itemize-changes '%s/' '%s/'",
			    from, to);
	ck_assert_msg(st == 0 && out[0] == '\0', "rsync %s/ -> %s/: exit %d, differences:\n%.3000s",
		      from, to, st, out);
	free(out);
}

START_TEST(cp_a_of_tree_with_links_and_xattrs_shows_no_rsync_differences)
{
	char src[PATH_MAX], back[PATH_MAX];
	snprintf(src, sizeof(src), "%s/rich", hx_tmpfs());
	snprintf(back, sizeof(back), "%s/rich.back", hx_tmpfs());
	make_rich_tree(src);

	const char *copy = P("copy");
	char *out;
	int st = sh_capture(&out, "cp -a '%s' '%s'", src, copy);
	ck_assert_msg(st == 0 && out[0] == '\0', "cp -a onto memfs: exit %d:\n%.3000s", st, out);
	free(out);

	/* The rsync check must be able to see a difference: make sure the xattrs and links really
	 * arrived. */
	char val[64];
	ssize_t n = lgetxattr(hx_path(&hx_mnt, "copy/a/f9"), "user.comment", val, sizeof(val));
	ck_assert_msg(n == 9 && memcmp(val, "a comment", 9) == 0, "user.comment on the copy: %zd",
		      n);
	struct stat s1, s2;
	ck_assert_int_eq(lstat(hx_path(&hx_mnt, "copy/a/f1"), &s1), 0);
	ck_assert_int_eq(lstat(hx_path(&hx_mnt, "copy/a/b/c/f1.link2"), &s2), 0);
	ck_assert_msg(s1.st_ino == s2.st_ino && s1.st_nlink == 3,
		      "hard links: ino %lu/%lu nlink %lu", (unsigned long)s1.st_ino,
		      (unsigned long)s2.st_ino, (unsigned long)s1.st_nlink);

	assert_rsync_same(src, copy);

	/* And back out again: memfs as the source of cp -a. */
	st = sh_capture(&out, "cp -a '%s' '%s'", copy, back);
	ck_assert_msg(st == 0 && out[0] == '\0', "cp -a from memfs: exit %d:\n%.3000s", st, out);
	free(out);
	assert_rsync_same(src, back);
	assert_rsync_same(copy, back);

	/* A changed xattr is seen: the comparison is not blind. */
	ck_assert_int_eq(
	    lsetxattr(hx_path(&hx_mnt, "copy/a/f9"), "user.comment", "changed", 7, XATTR_REPLACE),
	    0);
	st = sh_capture(&out, "rsync -aHAXc --dry-run --itemize-changes '%s/' '%s/'", src, copy);
	ck_assert_msg(st == 0 && strstr(out, "a/f9") != NULL, "rsync missed the changed xattr: %s",
		      out);
	free(out);
}
END_TEST

/* ---- deep trees --------------------------------------------------------- */

START_TEST(find_and_rm_rf_over_1000_nested_directories)
{
	unsigned long long used0, bfree0;
	fs_usage(hx_mnt.dir, &used0, &bfree0);

	/*
	 * 10 steps of `mkdir -p` of 100 levels each (one path of 1000 would
	 * pass PATH_MAX), each step run from the bottom of the last one.  The
	 * walking down is chdir(2) from a child process: a shell's cd would
	 * re-resolve the whole absolute path at every step, which is O(depth²)
	 * lookups once the kernel caches nothing (-o nocache).
	 */
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		char step[201] = "";
		for (int i = 0; i < 100; i++)
			strcat(step, i ? "/d" : "d");
		char cmd[256];
		snprintf(cmd, sizeof(cmd), "mkdir -p %s", step);
		if (chdir(hx_mnt.dir) != 0)
			_exit(1);
		for (int s = 0; s < 10; s++)
			if (system(cmd) != 0 || chdir(step) != 0)
				_exit(2 + s);
		FILE *leaf = fopen("leaf", "w");
		_exit(leaf && fputs("bottom\n", leaf) >= 0 && fclose(leaf) == 0 ? 0 : 20);
	}
	int status;
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "building the deep tree failed: 0x%x", status);

	char *out;
	int st = sh_capture(
	    &out,
	    "cd '%s' && find . | wc -l && find . -type d -printf '%%d\\n' | sort -n | tail -1 && "
	    "find . -name leaf -printf '%%d %%s\\n' && find . -depth -type d | wc -l",
	    hx_mnt.dir);
	/* . + 1000 dirs + leaf; deepest dir at depth 1000; leaf at depth 1001, 7 bytes; -depth sees
	 * 1001 dirs */
	ck_assert_msg(st == 0 && strcmp(out, "1002\n1000\n1001 7\n1001\n") == 0,
		      "find: exit %d:\n%s", st, out);
	free(out);

	struct statvfs sv;
	ck_assert_int_eq(statvfs(hx_mnt.dir, &sv), 0);
	ck_assert_int_eq(sv.f_files - sv.f_ffree, used0 + 1001);

	struct stat sb;
	ck_assert_int_eq(stat(P("d"), &sb), 0);
	ck_assert_int_eq(sb.st_nlink, 3);

	st = sh_capture(&out, "rm -rf '%s'", P("d"));
	ck_assert_msg(st == 0 && out[0] == '\0', "rm -rf: exit %d:\n%.2000s", st, out);
	free(out);
	ck_assert_int_eq(lstat(P("d"), &sb), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(stat(hx_mnt.dir, &sb), 0);
	ck_assert_int_eq(sb.st_nlink, 2);
	assert_dir_empty(hx_mnt.dir);
	assert_fs_back_to_empty(bfree0);
}
END_TEST

static Suite *realworld_suite(void)
{
	Suite *s = suite_create("realworld");
	TCase *tc = tcase_create("programs");
	tcase_add_checked_fixture(tc, hx_setup, hx_teardown);
	tcase_set_timeout(tc, RW_TIMEOUT_S);
	tcase_add_test(tc, git_clone_onto_memfs_passes_fsck_status_and_gc);
	tcase_add_test(tc, tar_extract_of_usr_include_diffs_clean_and_rm_rf_frees_everything);
	tcase_add_test(tc, sqlite_wal_database_with_concurrent_reader_passes_integrity_check);
	tcase_add_test(tc, cp_a_of_tree_with_links_and_xattrs_shows_no_rsync_differences);
	tcase_add_test(tc, find_and_rm_rf_over_1000_nested_directories);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return hx_run(realworld_suite());
}
