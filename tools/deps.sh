# tools/deps.sh — sourced by tools/run and tools/test: install what a fresh
# Debian 12 machine lacks for building (and, with "test", testing) memfs.
# Needs root for apt-get; does nothing when everything is there.
memfs_need_packages() {
	local want=(gcc pkg-config meson ninja-build fuse3 libfuse3-dev uthash-dev liburing-dev)
	if [ "${1:-}" = test ]; then
		want+=(check libsubunit-dev git sqlite3 attr rsync valgrind mandoc xz-utils)
		want+=(clang libclang-rt-14-dev) # libFuzzer (tools/fuzz)
	fi
	local missing=() p
	for p in "${want[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "memfs: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
