#!/usr/bin/env bash
# Builds and runs the C example service: the C library (bindings/c/install.sh), the bundled
# webhook plugin (wasm32-wasip2), then service.c against them. Exits non-zero unless the
# service was alerted on its p99 through both the webhook plugin and its C channel.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
profile=${1:---debug}
prefix=$root/target/c-prefix
bindings/c/install.sh $profile "$prefix" >/dev/null
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
guests=$root/target/wasm-guests
# As the plugin host's tests build it (scripts/test-all.sh's clippy wrapper is for the workspace).
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS \
    cargo build --locked -q --release --target wasm32-wasip2 \
    --manifest-path plugins/guests/Cargo.toml --target-dir "$guests" -p vigilo-webhook
mkdir -p target/c-example
# shellcheck disable=SC2046 # pkg-config's output is meant to split into words
cc -std=c11 -Wall -Wextra -Werror -O1 examples/c/service.c \
    $(PKG_CONFIG_PATH="$prefix/lib/pkgconfig" pkg-config --cflags --libs vigilo) -lpthread \
    -o target/c-example/service
target/c-example/service "$guests/wasm32-wasip2/release"
