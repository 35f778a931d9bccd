#!/bin/sh
# Builds the headroom .deb with cargo-deb.
#
#   packaging/build-deb.sh [--binary PATH] [cargo-deb options...]
#
# By default both binaries are built first: `headroom` (agent and CLI, package `headroom`) with
# the size-optimised `agent` profile, `headroom-coordinator` (its own package) with the release
# profile. With --binary, that prebuilt `headroom` and the `headroom-coordinator` beside it are
# packaged instead (the tests package their debug build this way: no release build needed). Either way the two are staged in a
# temporary target directory under release/, which is where cargo-deb's assets expect them.
# The man pages and shell completions are generated from the binary's clap definitions into
# the staging directory. Extra options (--output DIR, --deb-version V, --fast, ...) go to
# cargo-deb.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
binary=
if [ "${1:-}" = --binary ]; then
    binary=$2
    shift 2
fi

target=${CARGO_TARGET_DIR:-$root/target}
case "$target" in /*) ;; *) target=$root/$target ;; esac
if [ -n "$binary" ]; then
    agent_bin=$binary
    coordinator_bin=$(dirname "$binary")/headroom-coordinator
else
    # From the workspace, so that its .cargo/config.toml (linker flags, code layout) applies.
    cd "$root"
    # Two commands, not one: each package is built with its own features and profile.
    cargo build --locked --release -p headroom-coordinator --manifest-path "$root/Cargo.toml"
    cargo build --locked --profile agent -p headroom --manifest-path "$root/Cargo.toml"
    agent_bin=$target/agent/headroom
    coordinator_bin=$target/release/headroom-coordinator
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/headroom-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/release"
cp "$agent_bin" "$stage/release/headroom"
cp "$coordinator_bin" "$stage/release/headroom-coordinator"
export CARGO_TARGET_DIR="$stage"
bin="$stage/release/headroom"

gen="$stage/release/packaging"
mkdir -p "$gen/man" "$gen/completions"
"$bin" generate man "$gen/man"
"$bin" generate completions "$gen/completions"
gzip -9n "$gen"/man/*.1

# The staging directory goes away: without --output, the .deb lands in target/debian/.
case " $* " in
    *" --output "* | *" -o "*) out= ;;
    *) out=$target/debian ;;
esac

cd "$root"
if [ -n "$out" ]; then
    cargo deb -p headroom --no-build --output "$out" "$@"
else
    cargo deb -p headroom --no-build "$@"
fi
