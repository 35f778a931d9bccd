#!/bin/sh
# Builds the headroom .deb with cargo-deb.
#
#   packaging/build-deb.sh [--binary PATH] [cargo-deb options...]
#
# By default the release binary is built first. With --binary, that prebuilt binary is
# packaged instead (the tests package their debug build this way: no release build needed);
# it is staged in a temporary target directory as target/release/headroom, which is where
# cargo-deb's assets expect it. The man pages and shell completions are generated from the
# binary's clap definitions into TARGET/release/packaging/. Extra options (--output DIR,
# --deb-version V, --fast, ...) go to cargo-deb.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
binary=
if [ "${1:-}" = --binary ]; then
    binary=$2
    shift 2
fi

if [ -n "$binary" ]; then
    target=$(mktemp -d "${TMPDIR:-/tmp}/headroom-deb.XXXXXX")
    trap 'rm -rf "$target"' EXIT
    mkdir -p "$target/release"
    cp "$binary" "$target/release/headroom"
    export CARGO_TARGET_DIR="$target"
else
    target=${CARGO_TARGET_DIR:-$root/target}
    case "$target" in /*) ;; *) target=$root/$target ;; esac
    cargo build --locked --release -p headroom --manifest-path "$root/Cargo.toml"
fi
bin="$target/release/headroom"

gen="$target/release/packaging"
rm -rf "$gen"
mkdir -p "$gen/man" "$gen/completions"
"$bin" generate man "$gen/man"
"$bin" generate completions "$gen/completions"
gzip -9n "$gen"/man/*.1

cd "$root"
cargo deb -p headroom --no-build "$@"
