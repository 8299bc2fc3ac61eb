# Shared settings for the build and VM scripts. Sourced, not run.
# shellcheck shell=bash

RCT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RCT_CACHE=${RCT_CACHE:-$HOME/.cache/rust-conntrack}
RCT_KERNELS="um-debug x86 um"
RCT_LOGDIR=${RCT_LOGDIR:-$RCT_ROOT/build/logs}
mkdir -p "$RCT_CACHE" "$RCT_LOGDIR"

# Kernel and module builds use Debian's rustc (the one with rust-src), never
# rustup's in ~/.cargo/bin; bindgen lives in the cache.
RCT_TOOLS=$RCT_CACHE/tools
RCT_CLEAN_PATH=$RCT_TOOLS/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RCT_KMAKE_VARS=(LLVM=-19 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
	RUSTFMT=/usr/bin/rustfmt BINDGEN="$RCT_TOOLS/bin/bindgen")
export LIBCLANG_PATH=/usr/lib/llvm-19/lib

rct_t0=$(date +%s)
# One progress line per stage, with the time since the script started.
rct_stage() {
	printf '[%4ds] %s\n' $(($(date +%s) - rct_t0)) "$*"
}
rct_die() {
	printf 'error: %s\n' "$*" >&2
	exit 1
}

# Runs a long command with its output in a log; prints the log's tail and path on failure.
rct_logged() {
	local log=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		rct_die "failed: $* (full log: $log)"
	fi
}

rct_arch() {
	case $1 in
	um | um-debug) echo um ;;
	x86) echo x86_64 ;;
	*) rct_die "unknown kernel '$1' (one of: $RCT_KERNELS)" ;;
	esac
}

rct_kbuild_dir() { echo "$RCT_CACHE/kernel/$1"; }
# Kernel modules of a kernel, installed where modprobe in the guest finds them.
rct_kmods_dir() { echo "$RCT_CACHE/kernel/$1-modules"; }
# Our module's build directory for a kernel: one per kernel, never shared.
rct_mod_dir() { echo "$RCT_ROOT/build/$1"; }

rct_kmake() {
	local kernel=$1
	shift
	env PATH="$RCT_CLEAN_PATH" make -C "$(rct_kbuild_dir "$kernel")" ARCH="$(rct_arch "$kernel")" \
		"${RCT_KMAKE_VARS[@]}" "$@"
}
