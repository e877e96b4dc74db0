/*
 * test_perms.c — permission checks as real unprivileged users, on a mount
 * made with -o allow_other, compared with tmpfs.
 *
 * The test makes two system users and a group (useradd/groupadd, once per
 * machine; they are left in place for the next run): memfs-perm-a,
 * memfs-perm-b, and memfs-perm-g with only memfs-perm-b as a member.
 * Every case is a small shell script run as one of them with setpriv
 * (--init-groups, so supplementary groups are real, and every capability
 * dropped), first in a directory of the memfs mount, then in one of a tmpfs;
 * what the scripts print (stdout, stderr, exit codes, with the directory's
 * name taken out) must be the same on both, and each case also states the
 * answer Linux gives, so two wrong answers that agree still fail:
 *  - another user's 0600 file cannot be read or appended to;
 *  - nothing can be created in a directory without write permission, not
 *    even by its owner;
 *  - in a sticky directory, others' files cannot be removed or renamed;
 *  - trusted.* and security.* xattrs cannot be set, trusted.* cannot be
 *    read and is not listed; user.* works on one's own file only;
 *  - a write or truncate by a non-owner clears setuid and setgid (setgid
 *    without group execute too, unless the writer is in the file's group),
 *    and so does one by the owner;
 *  - a supplementary group gives group access, and a setgid directory
 *    gives new files its group.
 * Needs root (to add the users and to mount); skipped otherwise.
 */
#include "harness.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define USER_A "memfs-perm-a"
#define USER_B "memfs-perm-b"
#define GROUP_G "memfs-perm-g"
#define OUT_MAX 8192

/* Make the users and the group unless they exist; 0 if they are there. */
static int ensure_accounts(void)
{
	/* the default and nocache runs may race to add them: retry on a lock */
	for (int attempt = 0; attempt < 20; attempt++) {
		if (getpwnam(USER_A) && getpwnam(USER_B) && getgrnam(GROUP_G)) {
			struct group *g = getgrnam(GROUP_G);
			for (char **m = g->gr_mem; *m; m++)
				if (strcmp(*m, USER_B) == 0)
					return 0;
		}
		hx_sh("getent passwd " USER_A " >/dev/null || useradd --system --no-create-home "
		      "--shell /usr/sbin/nologin --user-group " USER_A " 2>/dev/null;"
		      "getent passwd " USER_B " >/dev/null || useradd --system --no-create-home "
		      "--shell /usr/sbin/nologin --user-group " USER_B " 2>/dev/null;"
		      "getent group " GROUP_G " >/dev/null || groupadd --system " GROUP_G
		      " 2>/dev/null;"
		      "id -nG " USER_B " | grep -qw " GROUP_G " || usermod -a -G " GROUP_G
		      " " USER_B " 2>/dev/null");
		usleep(100000);
	}
	return -1;
}

/* Run script in dir as user (with his groups, no capabilities); its output. */
static void run_as(const char *user, const char *dir, const char *script, char *out, size_t size)
{
	char path[PATH_MAX + 32];
	FILE *f;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/.script", dir);
	f = fopen(path, "w");
	ck_assert_msg(f, "write %s: %s", path, strerror(errno));
	/* every command's status is printed: what fails must fail on both */
	fprintf(f, "cd \"$1\" || exit 99\n%s\n", script);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(chmod(path, 0644), 0);

	char *cmd;
	ck_assert_int_ge(asprintf(&cmd,
				  "setpriv --reuid=%s --regid=%s --init-groups --inh-caps=-all "
				  "--reset-env sh '%s' '%s' 2>&1",
				  user, user, path, dir),
			 0);
	f = popen(cmd, "r");
	free(cmd);
	ck_assert_msg(f, "popen: %s", strerror(errno));
	while (len + 1 < size) {
		size_t n = fread(out + len, 1, size - 1 - len, f);
		if (n == 0)
			break;
		len += n;
	}
	out[len] = '\0';
	int status = pclose(f);
	ck_assert_msg(status != -1, "pclose: %s", strerror(errno));
	unlink(path);

	/* the directory's name differs between the two runs: take it out */
	size_t dlen = strlen(dir);
	for (char *p = strstr(out, dir); p; p = strstr(p, dir)) {
		memmove(p + 1, p + dlen, strlen(p + dlen) + 1);
		*p = '@';
	}
}

/* Scripts run by one user or root, in order; what the last prints is compared. */
struct step {
	const char *user; /* USER_A, USER_B, or NULL for root */
	const char *script;
};

/* Run the steps in a fresh directory of the mount and of a tmpfs; both outputs. */
static void run_case(const char *name, const struct step *steps, int n, char *mem, char *tmp)
{
	const char *bases[2] = {hx_mnt.dir, hx_tmpfs()};
	char *outs[2] = {mem, tmp};

	for (int side = 0; side < 2; side++) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s/%s", bases[side], name);
		ck_assert_msg(mkdir(dir, 0777) == 0 && chmod(dir, 0777) == 0, "mkdir %s: %s", dir,
			      strerror(errno));
		outs[side][0] = '\0';
		for (int i = 0; i < n; i++) {
			char out[OUT_MAX];
			if (steps[i].user) {
				run_as(steps[i].user, dir, steps[i].script, out, sizeof(out));
			} else {
				char *cmd;
				ck_assert_int_ge(asprintf(&cmd, "cd '%s' && { %s\n} >/dev/null 2>&1",
							  dir, steps[i].script),
						 0);
				ck_assert_msg(system(cmd) == 0, "%s: root's step failed: %s", name,
					      steps[i].script);
				free(cmd);
				continue;
			}
			size_t used = strlen(outs[side]), add = strlen(out);
			ck_assert_msg(used + add < OUT_MAX, "%s: output too long", name);
			memcpy(outs[side] + used, out, add + 1);
		}
	}
	ck_assert_msg(strcmp(mem, tmp) == 0, "%s: memfs and tmpfs differ\n--- memfs:\n%s--- tmpfs:\n%s",
		      name, mem, tmp);
}

/* The compared output must hold this line (Linux's answer, stated). */
#define HAS(out, line)                                                                    \
	ck_assert_msg(strstr(out, line "\n") != NULL, "want the line '%s' in:\n%s", line, out)

static void setup(void)
{
	if (getuid() != 0)
		return;
	ck_assert_msg(ensure_accounts() == 0, "could not create " USER_A ", " USER_B ", " GROUP_G);
	hx_mount(&hx_mnt, "allow_other");
}

static void teardown(void)
{
	if (getuid() == 0)
		hx_teardown();
}

#define NEED_ROOT()                                                                       \
	do {                                                                              \
		if (getuid() != 0) {                                                      \
			fprintf(stderr, "test_perms: not root, skipped\n");              \
			return;                                                           \
		}                                                                         \
	} while (0)

static char mem[OUT_MAX], tmp[OUT_MAX];

START_TEST(another_users_0600_file_cannot_be_read_or_appended_to)
{
	NEED_ROOT();
	const struct step steps[] = {
	    {USER_A, "umask 077; echo secret >mine; echo made=$?; stat -c '%a %U' mine"},
	    {USER_B, "cat mine; echo read=$?; echo more >>mine; echo append=$?; "
		     "cp mine stolen; echo cp=$?; ls"},
	    {USER_A, "cat mine; echo owner=$?"},
	};
	run_case("secret", steps, 3, mem, tmp);
	HAS(mem, "600 " USER_A);
	HAS(mem, "cat: mine: Permission denied");
	HAS(mem, "read=1");
	HAS(mem, "append=2");
	HAS(mem, "secret");
}
END_TEST

START_TEST(nothing_can_be_created_in_a_directory_without_write_permission)
{
	NEED_ROOT();
	const struct step steps[] = {
	    {USER_A, "mkdir closed && touch closed/old && chmod 555 closed; echo setup=$?"},
	    {USER_B, "touch closed/new; echo touch=$?; mkdir closed/d; echo mkdir=$?; "
		     "ln -s x closed/l; echo symlink=$?; mkfifo closed/p; echo fifo=$?; "
		     "rm -f closed/old; echo rm=$?; mv closed/old closed/moved; echo mv=$?; "
		     "ls closed"},
	    {USER_A, "touch closed/new; echo owner=$?; chmod 755 closed; touch closed/new; "
		     "echo owner_after_chmod=$?"},
	    {USER_B, "touch closed/other; echo b_in_755=$?; ls closed"},
	};
	run_case("closed", steps, 4, mem, tmp);
	HAS(mem, "touch: cannot touch 'closed/new': Permission denied");
	HAS(mem, "touch=1");
	HAS(mem, "mkdir=1");
	HAS(mem, "rm=1");
	HAS(mem, "owner=1");
	HAS(mem, "owner_after_chmod=0");
	HAS(mem, "b_in_755=1");
}
END_TEST

START_TEST(others_files_in_a_sticky_directory_cannot_be_removed_or_renamed)
{
	NEED_ROOT();
	const struct step steps[] = {
	    {NULL, "mkdir shared && chmod 1777 shared"},
	    {USER_A, "echo a >shared/a && chmod 666 shared/a && mkdir shared/ad; echo setup=$?"},
	    {USER_B, "rm -f shared/a; echo rm=$?; mv shared/a shared/b; echo mv=$?; "
		     "rmdir shared/ad; echo rmdir=$?; echo b >>shared/a; echo write=$?; "
		     "touch shared/b; mv shared/b shared/a; echo over=$?; ls shared"},
	    {USER_A, "mv shared/a shared/a2; echo owner_mv=$?; rm shared/a2; echo owner_rm=$?; "
		     "ls shared"},
	};
	run_case("sticky", steps, 4, mem, tmp);
	HAS(mem, "rm: cannot remove 'shared/a': Operation not permitted");
	HAS(mem, "rm=1");
	HAS(mem, "mv=1");
	HAS(mem, "rmdir=1");
	HAS(mem, "write=0");
	HAS(mem, "over=1");
	HAS(mem, "owner_rm=0");
}
END_TEST

START_TEST(trusted_and_security_xattrs_are_out_of_reach_of_unprivileged_users)
{
	NEED_ROOT();
	const struct step steps[] = {
	    {USER_A, "touch f && chmod 644 f; echo made=$?"},
	    {NULL, "setfattr -n trusted.root -v secret f && setfattr -n user.pub -v 1 f"},
	    {USER_A, "setfattr -n trusted.x -v 1 f; echo trusted=$?; "
		     "setfattr -n security.x -v 1 f; echo security=$?; "
		     "setfattr -n user.x -v 1 f; echo user=$?; "
		     "getfattr --absolute-names -n trusted.root f; echo get_trusted=$?; "
		     "getfattr --absolute-names -d -m - f; echo list=$?"},
	    {USER_B, "setfattr -n user.y -v 1 f; echo others_user=$?; "
		     "getfattr --absolute-names -n user.x --only-values f; echo; "
		     "echo others_get=$?"},
	};
	run_case("xattrs", steps, 4, mem, tmp);
	HAS(mem, "setfattr: f: Operation not permitted");
	HAS(mem, "trusted=1");
	HAS(mem, "security=1");
	HAS(mem, "user=0");
	HAS(mem, "f: trusted.root: No such attribute");
	HAS(mem, "others_user=1");
	HAS(mem, "others_get=0");
	ck_assert_msg(strstr(mem, "trusted.root=") == NULL, "trusted.* listed to a user:\n%s",
		      mem);
}
END_TEST

START_TEST(writing_or_truncating_as_another_user_clears_setuid_and_setgid)
{
	NEED_ROOT();
	const struct step steps[] = {
	    {USER_A, "for m in 6777 4777 6757 2767; do echo x >f$m && chmod $m f$m; done; "
		     "echo x >own && chmod 6775 own; echo x >tr && chmod 6777 tr; "
		     "echo x >g && chmod 2765 g; stat -c '%n %a' f* own tr g"},
	    {USER_B, "for m in 6777 4777 6757 2767; do echo more >>f$m; echo w$m=$?; done; "
		     ": >tr; echo trunc=$?"},
	    {USER_A, "echo more >>own; echo own=$?; echo more >>g; stat -c '%n %a' f* own tr g"},
	};
	run_case("setid", steps, 3, mem, tmp);
	HAS(mem, "f6777 6777");
	HAS(mem, "f6777 777"); /* setuid and setgid (group-executable) gone */
	HAS(mem, "f4777 777");
	HAS(mem, "f6757 757");
	HAS(mem, "tr 777");
	HAS(mem, "own 775"); /* the owner is not privileged either */
	/* setgid without group execute: cleared for a non-member (Linux 6.2's
	 * rule), kept for the owner, who is in the file's group */
	HAS(mem, "f2767 767");
	HAS(mem, "g 2765");
	HAS(mem, "w6757=0");
}
END_TEST

START_TEST(supplementary_groups_give_group_access_and_setgid_dirs_their_group)
{
	NEED_ROOT();
	const struct step steps[] = {
	    {NULL, "echo group >g && chown " USER_A ":" GROUP_G " g && chmod 640 g && "
		   "mkdir sg && chown " USER_A ":" GROUP_G " sg && chmod 2777 sg"},
	    {USER_B, "cat g; echo member=$?; touch sg/fromb; mkdir sg/dirb; "
		     "stat -c '%n %G %a' sg/fromb sg/dirb; "
		     "touch mine; chmod 2755 mine; chgrp " GROUP_G " mine; echo chgrp=$?; "
		     "chmod 2755 mine; stat -c '%n %G %a' mine"},
	    {USER_A, "cat g; echo owner=$?; chgrp " GROUP_G " g; echo nonmember_chgrp=$?; "
		     "touch mine_a; chmod 2755 mine_a; stat -c '%n %a' mine_a"},
	};
	run_case("groups", steps, 3, mem, tmp);
	HAS(mem, "member=0");
	HAS(mem, "sg/fromb " GROUP_G " 644");
	HAS(mem, "sg/dirb " GROUP_G " 2755");
	HAS(mem, "chgrp=0");
	HAS(mem, "mine " GROUP_G " 2755");
	HAS(mem, "owner=0");
	HAS(mem, "mine_a 2755");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("perms");
	TCase *tc = tcase_create("unprivileged_users");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, another_users_0600_file_cannot_be_read_or_appended_to);
	tcase_add_test(tc, nothing_can_be_created_in_a_directory_without_write_permission);
	tcase_add_test(tc, others_files_in_a_sticky_directory_cannot_be_removed_or_renamed);
	tcase_add_test(tc, trusted_and_security_xattrs_are_out_of_reach_of_unprivileged_users);
	tcase_add_test(tc, writing_or_truncating_as_another_user_clears_setuid_and_setgid);
	tcase_add_test(tc, supplementary_groups_give_group_access_and_setgid_dirs_their_group);
	suite_add_tcase(s, tc);
	return hx_run(s);
}
