#!/usr/bin/env bash
# Builds the C library and installs it, with its header and a pkg-config file, under PREFIX:
#
#   bindings/c/install.sh [--debug] PREFIX
#   cc app.c $(PKG_CONFIG_PATH=PREFIX/lib/pkgconfig pkg-config --cflags --libs vigilo)
#
# PREFIX/lib gets libvigilo_c.so and libvigilo_c.a, PREFIX/include vigilo.h, and
# PREFIX/lib/pkgconfig vigilo.pc (the shared library is found at run time through its rpath).
set -euo pipefail
profile=release
flag=--release
if [ "${1:-}" = "--debug" ]; then
    profile=debug
    flag=""
    shift
fi
prefix=${1:?usage: bindings/c/install.sh [--debug] PREFIX}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
# VIGILO_CARGO_SELECT replaces `-p vigilo-c` (scripts/test-all.sh sets `--workspace
# --all-targets`, so the library is built with the features the workspace's tests unified and
# nothing already built for them is built again).
# shellcheck disable=SC2086 # the selection is meant to split into words
cargo build --locked $flag ${VIGILO_CARGO_SELECT:--p vigilo-c}
target=${CARGO_TARGET_DIR:-$root/target}/$profile
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
cp "$target/libvigilo_c.so" "$target/libvigilo_c.a" "$prefix/lib/"
cp bindings/c/include/vigilo.h "$prefix/include/"
prefix=$(cd "$prefix" && pwd)
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" bindings/c/vigilo.pc.in \
    > "$prefix/lib/pkgconfig/vigilo.pc"
echo "vigilo $version installed in $prefix ($profile)"
