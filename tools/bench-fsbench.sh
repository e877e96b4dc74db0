#!/usr/bin/env bash
#
# bench-fsbench.sh - run identical file-system workloads on several directories
#              and compare each one against the first (normally a tmpfs).
#              memfs's copy of shared/bench/fsbench.sh, driven by tools/bench;
#              it adds the mount and inodes workloads, ratios that read "more
#              is better" for times, a ratios.tsv for plotting and the load.
#
# Usage:
#   bench-fsbench.sh [--quick] [--reps N] [--workloads LIST] NAME=DIR[@PID] ...
#   bench-fsbench.sh --report RUNDIR...
#
#   NAME=DIR    a label and a writable directory on the file system under test
#               (usually a mount point).  The first target is the reference:
#               every other value is also printed as a ratio to it.
#   @PID        optional: the FUSE daemon's PID, for the memory columns.  By
#               default it is found as the process that holds /dev/fuse open
#               and has DIR as one of its command-line arguments.
#   --quick     one repetition instead of three
#   --reps N    N repetitions
#   --workloads comma-separated subset of:
#               seq,rand,mmap,par,small,meta,tree,mount,inodes
#   --report RUNDIR...  no measuring: pool the raw.tsv of earlier runs (each
#               $FSB_WORK/run-*) into one summary under $FSB_WORK/report-*
#
# Repetitions are interleaved (A B C A B C ...) so that slow drift of a shared
# machine hits all targets alike; the summary reports the median over the
# repetitions, its ratio to the first target and the min-max spread.
# Ratios: value / reference for rates (more is better) and for memory (a
# multiple of what the reference costs); reference / value for times (tar,
# rm, mount), so that those too read as "fraction of the reference's speed".
#
# Workloads (single-threaded unless noted; fio uses psync and buffered I/O):
#   seqwrite      fio write, 1 MiB blocks, 1 GiB new file, end_fsync    MiB/s
#   seqread_cold  fio read of that file after fio's default invalidate=1
#                 (POSIX_FADV_DONTNEED: drops a FUSE file's page cache, a no-op
#                 on tmpfs; /proc/sys/vm/drop_caches is never used)    MiB/s
#   seqread_warm  the same read again with invalidate=0                 MiB/s
#   mem_rss       daemon VmRSS right after seqwrite                     MiB
#   mem_pcache    growth of the kernel page cache outside shmem during
#                 seqwrite (a FUSE file's cached copy)                  MiB
#   mem_shmem     growth of shmem during seqwrite (tmpfs pages: the target
#                 itself, or the backing store of a passthrough daemon) MiB
#   mem_total     mem_rss + mem_pcache + mem_shmem: memory that holding the
#                 file costs (1x file size for tmpfs, ~2x with double caching)
#                 (pcache/shmem are system-wide deltas: other activity adds
#                 noise; the daemon's RSS is absolute, so start it fresh)
#   randwrite4k   fio 4 KiB random writes into a pre-written 256 MiB file,
#                 iodepth 1, time based, end_fsync                      IOPS
#   randread4k    fio 4 KiB random reads of that file, invalidate=1     IOPS
#                 (fio invalidates again at each pass over the file, so on
#                 FUSE every read misses: one 4 KiB READ request, as
#                 POSIX_FADV_RANDOM turns readahead off; tmpfs: a copy)
#   dioread4k     the same with O_DIRECT, SHORT_TIME: on FUSE every read
#                 is a request straight to the daemon                  IOPS
#   par2read4k    dioread4k with numjobs=2, aggregate: two requests in
#                 flight; scaling = par2read4k / dioread4k              IOPS
#   mmap4k        one pass of 4 KiB random reads through a mapping of the
#                 invalidated file (ioengine=mmap, MADV_RANDOM): on FUSE
#                 every page faults in with one READ request           IOPS
#   smallwrite    100-byte sequential writes (appends) to a new file,
#                 end_fsync: per-write syscall cost, plus on FUSE a WRITE
#                 round trip (write-through) or, with writeback cache, a
#                 GETXATTR security.capability round trip if the daemon
#                 implements getxattr                                  writes/s
#   create        open(O_CREAT|O_EXCL)+close of N empty files in one dir files/s
#   stat          fstatat() of each of them                             files/s
#   readdir       opendir/readdir of the directory (count checked)      entries/s
#   unlink        unlinkat() of each of them                            files/s
#   tree_extract  tar -xf of a tarball of /usr/include (made once)      s
#   tree_rm       rm -rf of the extracted tree                          s
#   mount_ms      (mount) median of FSB_MOUNT_REPS fresh mounts, each timed
#                 from exec of the daemon (or mount(8)) to the mount point
#                 answering stat(2)                                     ms
#   rss_empty     (inodes) VmRSS of a freshly mounted, empty daemon     MiB
#   inode_rss     (inodes) daemon VmRSS growth while FSB_INODE_FILES empty
#                 files are created in one new directory of a freshly
#                 mounted copy of the target, per file                  B/file
#   inode_slab    (inodes) kernel Slab growth over the same, per file
#                 (tmpfs: its inodes and dentries; FUSE: the kernel's
#                 copy of each inode and dentry; system-wide, so noisy) B/file
#                 Only targets whose name matches FSB_INODE_TARGETS.
#   Both need FSB_PEERS, the command that mounts copies of a target by name:
#   "$FSB_PEERS mounttime NAME N" prints the median mount time in ms,
#   "$FSB_PEERS fresh NAME" mounts a fresh copy and prints "DIR PID" (PID "-"
#   for a kernel fs), "$FSB_PEERS release NAME PID" unmounts it
#   (tools/bench-peers.sh).  Without FSB_PEERS, mount is skipped and inodes
#   runs on the target itself (its RSS then depends on what ran before).
#
# Environment (defaults in brackets):
#   FSB_WORK       [/tmp/bench] helper binary, tarball, results (run-*/)
#   FSB_SEQ_SIZE   [1G]    seqwrite/seqread file size (fio size syntax)
#   FSB_RAND_SIZE  [256M]  random-I/O file size
#   FSB_RAND_TIME  [10]    seconds for randwrite4k and randread4k
#   FSB_SHORT_TIME [2]     seconds for dioread4k and par2read4k; cap for
#                          smallwrite
#   FSB_NFILES     [19000] files for create/stat/readdir/unlink.  Daemons that
#                          keep one fd per inode (libfuse passthrough_ll/_hp)
#                          fail once N nears their RLIMIT_NOFILE (often 20000
#                          in containers), so stay below it or raise it.
#   FSB_TREE_SRC   [/usr/include] tree archived once into $FSB_WORK/tree.tar
#   FSB_TIMEOUT    [300]   seconds before a single command is given up
#   FSB_RUN_DIR    [$FSB_WORK/run-DATE] where this run's results go
#   FSB_PEERS      [unset]  see mount_ms
#   FSB_MOUNT_REPS [5]     mounts per repetition for mount_ms
#   FSB_INODE_FILES [100000] files for inode_rss/inode_slab
#   FSB_INODE_TARGETS [^(tmpfs|memfs)] regex of target names that run the
#                          inodes workload (passthrough_ll keeps one fd per
#                          inode and cannot hold 100,000 under a 20,000 limit)
#
# Needs: bash >= 5, fio, tar, a C compiler (cc), coreutils, awk.
# Writes only below FSB_WORK and inside DIR/fsbench.<pid>.<rep>, which is
# removed after each target's turn.  Run as a user who may read the daemon's
# /proc/PID/status (root for daemons of other users).

set -euo pipefail
export LC_ALL=C

# ----------------------------------------------------------------- settings
WORK=${FSB_WORK:-/tmp/bench}
SEQ_SIZE=${FSB_SEQ_SIZE:-1G}
RAND_SIZE=${FSB_RAND_SIZE:-256M}
RAND_TIME=${FSB_RAND_TIME:-10}
SHORT_TIME=${FSB_SHORT_TIME:-2}
NFILES=${FSB_NFILES:-19000}
TREE_SRC=${FSB_TREE_SRC:-/usr/include}
CMD_TIMEOUT=${FSB_TIMEOUT:-300}
PEERS_CMD=${FSB_PEERS:-}
MOUNT_REPS=${FSB_MOUNT_REPS:-5}
INODE_FILES=${FSB_INODE_FILES:-100000}
INODE_TARGETS=${FSB_INODE_TARGETS:-^(tmpfs|memfs)}
REPS=3
GROUPS_ALL=seq,rand,mmap,par,small,meta,tree,mount,inodes
GROUPS_SEL=$GROUPS_ALL

# Metric table: name|unit|better[|inv].  Defines the row order of the summary.
# "inv": the ratio is reference / value (times), else value / reference.
METRICS=(
	"seqwrite|MiB/s|higher"
	"seqread_cold|MiB/s|higher"
	"seqread_warm|MiB/s|higher"
	"mem_rss|MiB|info"
	"mem_pcache|MiB|info"
	"mem_shmem|MiB|info"
	"mem_total|MiB|lower"
	"randwrite4k|IOPS|higher"
	"randread4k|IOPS|higher"
	"dioread4k|IOPS|higher"
	"par2read4k|IOPS|higher"
	"mmap4k|IOPS|higher"
	"smallwrite|writes/s|higher"
	"create|files/s|higher"
	"stat|files/s|higher"
	"readdir|entries/s|higher"
	"unlink|files/s|higher"
	"tree_extract|s|lower|inv"
	"tree_rm|s|lower|inv"
	"mount_ms|ms|lower|inv"
	"rss_empty|MiB|info"
	"inode_rss|B/file|lower"
	"inode_slab|B/file|lower"
)

usage() {
	sed -n '3,26p' "$0" | sed 's/^# \{0,1\}//'
	exit "${1:-0}"
}

die() { echo "fsbench: $*" >&2; exit 1; }
log() { echo "fsbench: $*" >&2; }

# ----------------------------------------------------------------- summary
# summarize DIR: DIR/raw.tsv (rep target metric value flag) -> DIR/stats.tsv
# (target metric median min max n flagged) -> DIR/summary.md, using NAMES for
# the column order and DIR/header.md, DIR/errors.log for the text around it.
summarize() {
	local dir=$1 nrep
	sort -t $'\t' -k2,2 -k3,3 -k4,4g "$dir/raw.tsv" | awk -F'\t' -v OFS='\t' '
		{ k = $2 OFS $3; if (!(k in n)) { n[k] = 0; f[k] = 0; keys[++nk] = k } }
		$5 != "" { f[k]++ }
		$4 != "NA" { v[k, ++n[k]] = $4 }
		END {
			for (j = 1; j <= nk; j++) {
				k = keys[j]; c = n[k]
				if (c == 0) { print k, "NA", "NA", "NA", 0, f[k]; continue }
				m = (c % 2) ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2
				print k, m, v[k, 1], v[k, c], c, f[k]
			}
		}' >"$dir/stats.tsv"
	nrep=$(cut -f1 "$dir/raw.tsv" | sort -u | wc -l)
	{
		cat "$dir/header.md"
		echo
		echo "## Medians (ratio to ${NAMES[0]})"
		echo
		table median "$dir/stats.tsv" "$nrep"
		echo
		echo "## Spread: min–max over $nrep repetition(s) ((max-min)/median)"
		echo
		table spread "$dir/stats.tsv" "$nrep"
		echo
		echo "Ratios: value/${NAMES[0]} for rates and memory;" \
			"${NAMES[0]}/value for times (tree_extract, tree_rm," \
			"mount_ms), so above 1 means faster than ${NAMES[0]} there."
		if [[ -s $dir/load.log ]]; then
			echo
			echo "Load average (1, 5, 15 min) at the start of each turn:" \
				"$(awk '{ print $(NF - 2) }' "$dir/load.log" | sort -g |
				awk '{ v[NR] = $1 } END { printf "1-min min %s, median %s, max %s", v[1], v[int((NR + 1) / 2)], v[NR] }')"
		fi
		echo
		echo "'!' marks a value where at least one repetition reported an" \
			"error (see errors.log)."
		if [[ -s $dir/errors.log ]]; then
			echo
			echo "## Errors"
			echo
			sed 's/^/    /' "$dir/errors.log"
		fi
	} >"$dir/summary.md"
	table tsv "$dir/stats.tsv" "$nrep" >"$dir/ratios.tsv"
	cat "$dir/summary.md"
	log "summary written to $dir/summary.md"
}

# table MODE STATS NREP: pivot stats into markdown; MODE "median" (value, and
# ratio to the first target) or "spread" (min-max and (max-min)/median, plus
# the sample count where it is below NREP).
table() {
	awk -F'\t' -v mode="$1" -v nrep="$3" -v names="${NAMES[*]}" \
		-v metrics="${METRICS[*]}" '
	function fmt(x, a) {
		if (x == "NA" || x == "") return "NA"
		a = x < 0 ? -x : x
		return sprintf(a >= 100 ? "%.0f" : a >= 10 ? "%.1f" : "%.2f", x)
	}
	{ med[$1, $2] = $3; lo[$1, $2] = $4; hi[$1, $2] = $5; cnt[$1, $2] = $6
	  flag[$1, $2] = $7 }
	END {
		nt = split(names, t, " "); nm = split(metrics, m, " ")
		hdr = "| metric | unit | better |"; sep = "|---|---|---|"
		for (i = 1; i <= nt; i++) { hdr = hdr " " t[i] " |"; sep = sep "---:|" }
		if (mode == "tsv") {
			hdr = "metric"
			for (i = 1; i <= nt; i++) hdr = hdr "\t" t[i]
		}
		print hdr; if (mode != "tsv") print sep
		for (j = 1; j <= nm; j++) {
			delete d
			split(m[j], d, "|"); row = "| " d[1] " | " d[2] " | " d[3] " |"
			trow = d[1]
			any = 0
			for (i = 1; i <= nt; i++) {
				k = t[i] SUBSEP d[1]
				if (!(k in med)) { row = row " - |"; trow = trow "\tNA"; continue }
				any = 1; x = med[k]; r = med[t[1], d[1]]
				ratio = "NA"
				if (d[3] != "info" && x != "NA" && r != "NA" && r + 0 != 0 && x + 0 != 0)
					ratio = sprintf("%.4f", d[4] == "inv" ? r / x : x / r)
				trow = trow "\t" ratio
				if (mode == "median") {
					c = fmt(x)
					if (i > 1 && ratio != "NA")
						c = c " (" sprintf("%.2f", ratio) ")"
				} else {
					c = fmt(lo[k]) "–" fmt(hi[k])
					if (x != "NA" && x + 0 != 0)
						c = c " (" sprintf("%.0f", 100 * (hi[k] - lo[k]) / (x < 0 ? -x : x)) "%)"
					if (cnt[k] < nrep) c = c " n=" cnt[k]
				}
				if (flag[k] > 0) c = c " !"
				row = row " " c " |"
			}
			if (mode == "tsv") { if (any && d[3] != "info") print trow }
			else if (any) print row
		}
	}' "$2"
}

# report RUNDIR...: pool the raw data of earlier runs into one summary.
report() {
	local out k=0 d
	out=$WORK/report-$(date +%Y%m%d-%H%M%S)
	mkdir -p "$out"
	: >"$out/raw.tsv"
	: >"$out/errors.log"
	echo "# fsbench report $(date -u +%Y-%m-%dT%H:%M:%SZ), pooled runs:" >"$out/header.md"
	for d in "$@"; do
		[[ -s $d/raw.tsv ]] || die "$d/raw.tsv not found"
		k=$((k + 1))
		awk -F'\t' -v OFS='\t' -v k=$k '{ $1 = k "." $1; print }' \
			"$d/raw.tsv" >>"$out/raw.tsv"
		sed "s/^/run $k: /" "$d/errors.log" >>"$out/errors.log" 2>/dev/null || true
		{ echo; echo "run $k: $d"; echo; grep '^- ' "$d/header.md" || true; } \
			>>"$out/header.md"
	done
	mapfile -t NAMES < <(awk -F'\t' '!seen[$2]++ { print $2 }' "$out/raw.tsv")
	summarize "$out"
}

# ----------------------------------------------------------------- arguments
ARGS=("$@")
NAMES=() DIRS=() PIDS=()
while (($#)); do
	case $1 in
	--quick) REPS=1 ;;
	--reps) shift; REPS=${1:?--reps needs a number} ;;
	--workloads) shift; GROUPS_SEL=${1:?--workloads needs a list} ;;
	--report) shift; (($#)) || usage 1; report "$@"; exit 0 ;;
	-h | --help) usage 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*=*)
		name=${1%%=*} spec=${1#*=} pid=
		if [[ $spec == *@* ]]; then pid=${spec##*@} spec=${spec%@*}; fi
		[[ $name =~ ^[A-Za-z0-9_.+-]+$ ]] || die "bad target name '$name'"
		[[ -d $spec && -w $spec ]] || die "$spec is not a writable directory"
		NAMES+=("$name") DIRS+=("$(realpath "$spec")") PIDS+=("$pid")
		;;
	*) die "expected NAME=DIR, got '$1' (see --help)" ;;
	esac
	shift
done
((${#NAMES[@]})) || usage 1
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"
for g in ${GROUPS_SEL//,/ }; do
	[[ ,$GROUPS_ALL, == *,$g,* ]] || die "unknown workload group '$g'"
done
want() { [[ ,$GROUPS_SEL, == *,$1,* ]]; }

for tool in fio tar cc timeout awk realpath; do
	command -v "$tool" >/dev/null || die "$tool not found"
done

# ----------------------------------------------------------------- helpers
mkdir -p "$WORK"

# fsops: times create/stat/readdir/unlink of N empty files in a new directory,
# so that the tool's own per-file overhead is a few syscalls, not a fork.
FSOPS_SRC=$(cat <<'EOF'
/* fsops.c - generated by bench-fsbench.sh: metadata micro-benchmark.
 * fsops NEWDIR N: create, stat, readdir, unlink N files, rmdir NEWDIR.
 * fsops NEWDIR N create: only create them (prints "create RATE").
 * fsops DIR N unlink: only unlink them and rmdir DIR. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, long i)
{
	fprintf(stderr, "fsops: %s (file %ld): %s\n", what, i, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	char name[32];
	struct stat st;
	struct dirent *de;
	double t;
	long i, n, seen = 0;
	int dfd, fd;
	DIR *d;

	const char *mode = argc == 4 ? argv[3] : "all";

	if (argc < 3 || argc > 4 || (n = atol(argv[2])) <= 0 ||
	    (strcmp(mode, "all") && strcmp(mode, "create") && strcmp(mode, "unlink"))) {
		fprintf(stderr, "usage: fsops NEWDIR NFILES [create|unlink]\n");
		return 2;
	}
	if (strcmp(mode, "unlink") && mkdir(argv[1], 0755) < 0)
		die("mkdir", -1);
	dfd = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		die("open dir", -1);
	if (!strcmp(mode, "unlink"))
		goto unlink;

	t = now();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%07ld", i);
		fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
		if (fd < 0 || close(fd) < 0)
			die("create", i);
	}
	printf("create %.1f\n", n / (now() - t));
	if (!strcmp(mode, "create"))
		return 0;

	t = now();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%07ld", i);
		if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			die("stat", i);
	}
	printf("stat %.1f\n", n / (now() - t));

	t = now();
	d = opendir(argv[1]);
	if (!d)
		die("opendir", -1);
	errno = 0;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			seen++;
	if (errno)
		die("readdir", seen);
	closedir(d);
	printf("readdir %.1f\n", seen / (now() - t));
	if (seen != n) {
		fprintf(stderr, "fsops: readdir saw %ld of %ld files\n", seen, n);
		return 1;
	}

unlink:
	t = now();
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "f%07ld", i);
		if (unlinkat(dfd, name, 0) < 0)
			die("unlink", i);
	}
	printf("unlink %.1f\n", n / (now() - t));

	close(dfd);
	if (rmdir(argv[1]) < 0)
		die("rmdir", -1);
	return 0;
}
EOF
)
FSOPS=$WORK/fsops
if ! [[ -x $FSOPS ]] || ! cmp -s "$FSOPS.c" - <<<"$FSOPS_SRC"; then
	printf '%s\n' "$FSOPS_SRC" >"$FSOPS.c"
	cc -O2 -Wall -o "$FSOPS" "$FSOPS.c" || die "cannot build $FSOPS"
fi

TREE_TAR=$WORK/tree.tar
if want tree && ! [[ -s $TREE_TAR ]]; then
	log "archiving $TREE_SRC into $TREE_TAR (once)"
	tar -C "$(dirname "$TREE_SRC")" -cf "$TREE_TAR.tmp" "$(basename "$TREE_SRC")"
	mv "$TREE_TAR.tmp" "$TREE_TAR"
fi

# The FUSE daemon serving DIR: holds /dev/fuse and has DIR as an argument.
find_daemon() {
	local dir=$1 p a fd args
	for p in /proc/[0-9]*; do
		[[ -r $p/cmdline ]] || continue
		mapfile -d '' args <"$p/cmdline" 2>/dev/null || continue
		for a in "${args[@]}"; do
			[[ $a == "$dir" || $a == "$dir/" ]] || continue
			for fd in "$p"/fd/*; do
				if [[ $(readlink "$fd" 2>/dev/null) == /dev/fuse ]]; then
					echo "${p#/proc/}"
					return
				fi
			done
		done
	done
}

# "SOURCE (FSTYPE)" of the mount holding DIR.
fs_desc() {
	findmnt -n -o SOURCE,FSTYPE --target "$1" 2>/dev/null |
		awk '{ print $1 " (" $2 ")" }' || echo "?"
}

meminfo_kb() { awk -v k="$1:" '$1 == k { print $2 }' /proc/meminfo; }
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null; }

RUN_DIR=${FSB_RUN_DIR:-$WORK/run-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$RUN_DIR"
RAW=$RUN_DIR/raw.tsv
ERRS=$RUN_DIR/errors.log
: >"$RAW"
: >"$ERRS"

# record METRIC VALUE [FLAG]  (uses $rep and $name of the current turn)
record() {
	printf '%s\t%s\t%s\t%s\t%s\n' "$rep" "$name" "$1" "$2" "${3:-}" >>"$RAW"
	printf '  %-13s %s%s\n' "$1" "$2" "${3:+ ($3)}" >&2
}
fail() {
	echo "rep $rep $name $1: $2" >>"$ERRS"
	record "$1" NA error
}

# fio_job METRIC FIELD fio-args...: run one fio job, record one number.
# FIELD is rbw|riops|wbw|wiops (terse v3 fields 7, 8, 48, 49; bw in KiB/s).
fio_job() {
	local metric=$1 field=$2 out col
	shift 2
	if ! out=$(timeout "$CMD_TIMEOUT" fio --name="$metric" --ioengine=psync \
		--group_reporting --fallocate=none --output-format=terse \
		--terse-version=3 "$@" 2>>"$RUN_DIR/fio.log"); then
		fail "$metric" "fio failed (see fio.log)"
		return 0
	fi
	case $field in
	rbw) col=7 ;; riops) col=8 ;; wbw) col=48 ;; wiops) col=49 ;;
	esac
	out=$(awk -F';' -v c=$col 'NF > 50 {
		if ($5 != 0) { print "ERR"; exit }
		v = $c; if (c == 7 || c == 48) v /= 1024; printf "%.1f\n", v; exit }' \
		<<<"$out")
	if [[ -z $out || $out == ERR ]]; then
		fail "$metric" "fio reported an error"
	else
		record "$metric" "$out"
	fi
}

# elapsed START: seconds since START (an $EPOCHREALTIME value)
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f\n", b - a }'; }

# ----------------------------------------------------------------- workloads
run_target() {
	local dir=$1 pid=$2 scratch t0 pc0 sh0 pc1 sh1 out rc line
	scratch=$dir/fsbench.$$.$rep
	mkdir "$scratch"
	CLEANUP=$scratch

	if want seq; then
		pc0=$(($(meminfo_kb Cached) - $(meminfo_kb Shmem)))
		sh0=$(meminfo_kb Shmem)
		fio_job seqwrite wbw --filename="$scratch/seq" --rw=write --bs=1M \
			--size="$SEQ_SIZE" --end_fsync=1
		pc1=$(($(meminfo_kb Cached) - $(meminfo_kb Shmem)))
		sh1=$(meminfo_kb Shmem)
		out=0
		if [[ -n $pid ]]; then
			out=$(rss_kb "$pid") || out=
			out=${out:-0}
			record mem_rss $((out / 1024))
		fi
		record mem_pcache $(((pc1 - pc0) / 1024))
		record mem_shmem $(((sh1 - sh0) / 1024))
		record mem_total $(((out + pc1 - pc0 + sh1 - sh0) / 1024))
		fio_job seqread_cold rbw --filename="$scratch/seq" --rw=read \
			--bs=1M --size="$SEQ_SIZE" --invalidate=1
		fio_job seqread_warm rbw --filename="$scratch/seq" --rw=read \
			--bs=1M --size="$SEQ_SIZE" --invalidate=0
		rm -f "$scratch/seq"
	fi

	if want rand || want mmap || want par; then
		# Pre-write the file so random writes overwrite, never allocate.
		timeout "$CMD_TIMEOUT" fio --name=prep --ioengine=psync \
			--fallocate=none --filename="$scratch/rand" --rw=write \
			--bs=1M --size="$RAND_SIZE" --end_fsync=1 \
			--output-format=terse >/dev/null 2>>"$RUN_DIR/fio.log" ||
			echo "rep $rep $name prep: fio failed" >>"$ERRS"
		local common=(--filename="$scratch/rand" --size="$RAND_SIZE" --bs=4k
			--iodepth=1 --randrepeat=1)
		if want rand; then
			fio_job randwrite4k wiops "${common[@]}" --rw=randwrite \
				--time_based --runtime="$RAND_TIME" --end_fsync=1
			fio_job randread4k riops "${common[@]}" --rw=randread \
				--time_based --runtime="$RAND_TIME" --invalidate=1
			fio_job dioread4k riops "${common[@]}" --rw=randread \
				--time_based --runtime="$SHORT_TIME" --direct=1
		fi
		if want par; then
			fio_job par2read4k riops "${common[@]}" --rw=randread \
				--time_based --runtime="$SHORT_TIME" --direct=1 \
				--numjobs=2
		fi
		if want mmap; then
			# One pass only: later passes would hit the still-mapped
			# pages, making the result depend on when the first ends.
			fio_job mmap4k riops "${common[@]}" --rw=randread \
				--ioengine=mmap --invalidate=1
		fi
		rm -f "$scratch/rand"
	fi

	if want small; then
		# Stops after SHORT_TIME seconds or 64 MiB, whichever comes first.
		fio_job smallwrite wiops --filename="$scratch/small" --rw=write \
			--bs=100 --size=64M --runtime="$SHORT_TIME" --end_fsync=1
		rm -f "$scratch/small"
	fi

	if want meta; then
		local -A ops=()
		rc=0
		out=$(timeout "$CMD_TIMEOUT" "$FSOPS" "$scratch/meta" "$NFILES" \
			2>>"$ERRS") || rc=$?
		while read -r line; do
			[[ -n $line ]] && ops[${line% *}]=${line#* }
		done <<<"$out"
		((rc == 0)) || echo "rep $rep $name fsops: exit status $rc" >>"$ERRS"
		for line in create stat readdir unlink; do
			if [[ -n ${ops[$line]:-} ]]; then
				record "$line" "${ops[$line]}" "$( ((rc)) && echo error)"
			else
				fail "$line" "fsops did not get this far"
			fi
		done
		rm -rf "$scratch/meta"
	fi

	if want tree; then
		mkdir "$scratch/tree"
		t0=$EPOCHREALTIME rc=0
		timeout "$CMD_TIMEOUT" tar -C "$scratch/tree" -xf "$TREE_TAR" \
			2>>"$RUN_DIR/tar.log" || rc=$?
		out=$(elapsed "$t0")
		if ((rc)); then
			echo "rep $rep $name tree_extract: tar exit status $rc" \
				"(see tar.log)" >>"$ERRS"
			record tree_extract "$out" error
		else
			record tree_extract "$out"
		fi
		t0=$EPOCHREALTIME rc=0
		timeout "$CMD_TIMEOUT" rm -rf "$scratch/tree" || rc=$?
		out=$(elapsed "$t0")
		if ((rc)); then
			echo "rep $rep $name tree_rm: rm exit status $rc" >>"$ERRS"
			record tree_rm "$out" error
		else
			record tree_rm "$out"
		fi
	fi

	rm -rf "$scratch"
	CLEANUP=

	if want inodes && [[ $name =~ $INODE_TARGETS ]]; then
		inodes_cost "$dir" "$pid"
	fi

	if want mount && [[ -n $PEERS_CMD ]]; then
		# shellcheck disable=SC2086
		if out=$(timeout "$CMD_TIMEOUT" $PEERS_CMD mounttime "$name" "$MOUNT_REPS" \
			2>>"$ERRS") && [[ $out =~ ^[0-9.]+$ ]]; then
			record mount_ms "$out"
		else
			fail mount_ms "mount timer failed"
		fi
	fi
}

# inodes_cost DIR PID: memory per empty file, on a fresh copy of the target
# when FSB_PEERS can mount one, else in DIR.
inodes_cost() {
	local dir=$1 pid=$2 fdir fpid=- r0 r1 s0 s1 rc=0 out
	if [[ -n $PEERS_CMD ]]; then
		# shellcheck disable=SC2086
		if ! out=$($PEERS_CMD fresh "$name" 2>>"$ERRS"); then
			fail inode_slab "cannot mount a fresh $name"
			return 0
		fi
		fdir=${out% *} fpid=${out#* }
		pid=$fpid
		[[ $pid == - ]] && pid=
		CLEANUP=$fdir/inodes
	else
		fdir=$dir/fsbench.$$.$rep.inodes
		mkdir "$fdir"
		CLEANUP=$fdir
	fi
	sleep 0.2 # let a new daemon's threads settle
	r0=$( [[ -n $pid ]] && rss_kb "$pid" || true)
	[[ -n $r0 ]] && record rss_empty $((r0 / 1024))
	s0=$(meminfo_kb Slab)
	timeout "$CMD_TIMEOUT" "$FSOPS" "$fdir/inodes" "$INODE_FILES" create \
		>/dev/null 2>>"$ERRS" || rc=$?
	r1=$( [[ -n $pid ]] && rss_kb "$pid" || true)
	s1=$(meminfo_kb Slab)
	if ((rc)); then
		echo "rep $rep $name inodes: fsops exit status $rc" >>"$ERRS"
		[[ -n $pid ]] && record inode_rss NA error
		record inode_slab NA error
	else
		if [[ -n $pid && -n $r0 && -n $r1 ]]; then
			record inode_rss $(((r1 - r0) * 1024 / INODE_FILES))
		fi
		record inode_slab $(((s1 - s0) * 1024 / INODE_FILES))
	fi
	timeout "$CMD_TIMEOUT" "$FSOPS" "$fdir/inodes" "$INODE_FILES" unlink \
		>/dev/null 2>>"$ERRS" || rm -rf "$fdir/inodes"
	if [[ -n $PEERS_CMD ]]; then
		# shellcheck disable=SC2086
		$PEERS_CMD release "$name" "$fpid" 2>>"$ERRS" || true
	else
		rm -rf "$fdir"
	fi
	CLEANUP=
}

CLEANUP=
trap 'if [[ -n $CLEANUP ]]; then rm -rf "$CLEANUP"; fi' EXIT

# ----------------------------------------------------------------- main
{
	echo "# fsbench $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo
	echo "- host: $(uname -srm), $(nproc) CPUs," \
		"$(awk '$1 == "MemTotal:" { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
	echo "- $(fio --version), reps=$REPS, workloads=$GROUPS_SEL," \
		"seq=$SEQ_SIZE rand=$RAND_SIZE rand_time=${RAND_TIME}s" \
		"short_time=${SHORT_TIME}s files=$NFILES tree=$TREE_SRC" \
		"($(tar -tf "$TREE_TAR" 2>/dev/null | wc -l) entries," \
		"$(du -m "$TREE_TAR" 2>/dev/null | cut -f1) MiB)"
	echo "- command: $0 ${ARGS[*]}"
	echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$RUN_DIR/header.md"

DEVS=()
for i in "${!NAMES[@]}"; do
	DEVS[i]=$(stat -c %d "${DIRS[i]}")
	[[ -n ${PIDS[i]} ]] || PIDS[i]=$(find_daemon "${DIRS[i]}")
	echo "- target ${NAMES[i]}: ${DIRS[i]} on $(fs_desc "${DIRS[i]}")," \
		"daemon pid ${PIDS[i]:--}" >>"$RUN_DIR/header.md"
done
cat "$RUN_DIR/header.md" >&2

START=$EPOCHREALTIME
for ((rep = 1; rep <= REPS; rep++)); do
	for i in "${!NAMES[@]}"; do
		name=${NAMES[i]}
		log "rep $rep/$REPS: $name (${DIRS[i]})"
		t_turn=$EPOCHREALTIME
		# A target unmounted behind our back would silently measure the
		# directory below it: skip it instead, loudly.
		if [[ $(stat -c %d "${DIRS[i]}" 2>/dev/null) != "${DEVS[i]}" ]] ||
			{ [[ -n ${PIDS[i]} ]] && ! kill -0 "${PIDS[i]}" 2>/dev/null; }; then
			log "rep $rep/$REPS: $name: ${DIRS[i]} is no longer the file system" \
				"it was at the start (or its daemon died): skipped"
			echo "rep $rep $name: ${DIRS[i]} lost its mount or daemon: turn skipped" >>"$ERRS"
			continue
		fi
		echo "rep $rep $name $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RUN_DIR/load.log"
		run_target "${DIRS[i]}" "${PIDS[i]}"
		log "rep $rep/$REPS: $name took $(elapsed "$t_turn") s"
	done
done
log "finished in $(elapsed "$START") s; raw data in $RAW"
summarize "$RUN_DIR"
