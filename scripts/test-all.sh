#!/usr/bin/env bash
# Runs every check of the project on this machine, installing what the tests need first.
# This is README command 2 and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."
# A clean checkout gains nothing from incremental caches; they only take disk.
export CARGO_INCREMENTAL=0

# Each step prints how long the one before it took, so a slow CI run shows where its time went.
SECONDS=0
last=0
step() {
    printf '\n(%d s; %d s in all)\n== %s\n' "$((SECONDS - last))" "$SECONDS" "$*"
    last=$SECONDS
}
trap 'printf "\n(%d s; %d s in all)\n" "$((SECONDS - last))" "$SECONDS"' EXIT

step "toolchain components"
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "test peers (wasm32-wasip2 target, Alertmanager, aiosmtpd)"
./scripts/install-test-peers.sh

step "format"
cargo fmt --all -- --check
cargo fmt --manifest-path plugins/guests/Cargo.toml --all -- --check

step "module structure: no two files or modules import each other (and the check's own tests)"
python3 scripts/test_check_imports.py
python3 scripts/check-imports.py

step "clippy (plugin guests, wasm32-wasip2)"
cargo clippy --manifest-path plugins/guests/Cargo.toml --target wasm32-wasip2 --locked -- -D warnings

step "tests, the workspace compiled with clippy's lints (-D warnings)"
# What `cargo clippy --workspace --all-targets -- -D warnings` checks, done while the tests are
# compiled: cargo runs the workspace's own crates through clippy-driver (as `cargo clippy`
# does), which lints and then compiles them. A separate `cargo clippy` type-checked every
# dependency once more, about five minutes of a clean run on two cores.
export RUSTC_WORKSPACE_WRAPPER=clippy-driver CLIPPY_ARGS=-Dwarnings
cargo test --workspace --locked
# The benches, and the libraries and programs the steps below run, with the features the
# tests unified (a narrower selection such as `cargo run -p host-agent` resolves other features
# and would build wasmtime and the rest again): `cargo test` built all but the binaries
# without tests.
cargo build --workspace --all-targets --locked -q
export VIGILO_CARGO_SELECT="--workspace --all-targets"
bin=${CARGO_TARGET_DIR:-target}/debug

step "API docs build without warnings (broken links, missing docs)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked -q --no-deps -p vigilo-collector -p vigilo -p vigilo-plugin-host -p vigilo-c

step "features: the collector crate alone; vigilo with each feature alone (clippy, docs)"
# What a service that only records and exposes builds: the collector crate without features,
# its tests under clippy and its docs (with every feature, `cargo test --workspace` ran them).
cargo test --locked -q -p vigilo-collector
RUSTDOCFLAGS="-D warnings" cargo doc --locked -q --no-deps -p vigilo-collector
for f in serde facade; do
    cargo check --locked -q -p vigilo-collector --features "$f"
done
# Each of vigilo's features alone on top of no default features (core/Cargo.toml): the library
# under clippy and its docs, so that a part gated by one feature never names one of another
# without saying so. `monitor` alone also builds its test targets (those that need no other
# feature). Testing each set would build vigilo's tests nine times; the tests run with the
# collector alone (above) and with every feature (the workspace run).
for f in "" serde facade monitor logs probes remote-write otlp tracing; do
    echo "vigilo --no-default-features ${f:+--features $f}"
    cargo check --locked -q -p vigilo --no-default-features ${f:+--features "$f"}
    RUSTDOCFLAGS="-D warnings" cargo doc --locked -q --no-deps -p vigilo --no-default-features \
        ${f:+--features "$f"}
done
cargo check --locked -q -p vigilo --no-default-features --features monitor --all-targets

step "plugin SDK unit tests (native, plugins/guests/sdk)"
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS \
    cargo test --manifest-path plugins/guests/Cargo.toml --locked -q -p vigilo-plugin-sdk

step "loom models of the record / arm and create / read protocols (collector/src/metrics/loom.rs)"
# collector/build.rs sets cfg(vigilo_loom) for the collector alone (its dependencies are the
# ones built already).
env -u RUSTC_WORKSPACE_WRAPPER -u CLIPPY_ARGS VIGILO_LOOM=1 \
    cargo test --locked -q -p vigilo-collector --lib --features loom-models loom_

step "C API from C: plain, under valgrind, with -fsanitize=address,undefined"
./bindings/c/test.sh

step "C example service: alerted on its p99 through the webhook plugin and a C channel"
./examples/c/run.sh

step "Python bindings (ctypes) with pytest"
# pip builds the C library into the package (bindings/python/setup.py): here the debug one,
# with the selection above, so cargo finds it built already. The tests load that one.
export VIGILO_C_PROFILE=debug
python3 -m pip install -q ./bindings/python 2>/dev/null \
    || python3 -m pip install -q --break-system-packages ./bindings/python
# From /, so that `import vigilo` is the installed package, not the source tree.
tests=$PWD/bindings/python/tests
(cd / && env -u VIGILO_LIBRARY python3 -m pytest -q -p no:cacheprovider "$tests")

step "host agent smoke run"
"$bin/host-agent" --once >/dev/null
echo "host agent ran"

step "example service: load until its p99 and error-rate rules alert through the webhook plugin"
"$bin/service" --load --listen 127.0.0.1:0

step "canary example: a 25 % latency regression fails the canary, the kill switch turns the feature off"
"$bin/canary" target/canary-report.json
