#!/usr/bin/env bash
# Installs the real peers the bundled-plugin tests talk to (idempotent; safe to run again):
#   - the wasm32-wasip2 Rust target (the plugins are WebAssembly components);
#   - Prometheus Alertmanager (Debian package prometheus-alertmanager, binary
#     /usr/bin/prometheus-alertmanager) for plugins/host/tests/host/bundled_alertmanager.rs;
#   - aiosmtpd (PyPI) for the SMTP server of plugins/host/tests/host/bundled_email.rs, installed for
#     the `python3` on PATH, which is the one the test runs;
#   - for the C API's tests (bindings/c/test.sh): a C compiler, pkg-config and valgrind (Debian
#     packages gcc, pkg-config, valgrind); for the Python bindings' tests: pytest (PyPI);
#   - for the [http] endpoint's tests: Prometheus and promtool (Debian package prometheus) and
#     a headless Chromium (Debian package chromium); the remote-write export's tests use the
#     same Prometheus, as a remote-write receiver;
#   - for the OTLP export's tests: opentelemetry-proto (PyPI), the OpenTelemetry project's
#     protobuf schema, for the `python3` on PATH.
set -euo pipefail

say() { printf '== %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
fi

if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx wasm32-wasip2; then
        say "rustup target add wasm32-wasip2"
        rustup target add wasm32-wasip2
    fi
fi

if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
    say "apt-get install prometheus-alertmanager"
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine's package lists may be missing or stale: update them before installing.
    $SUDO apt-get update -q
    # The package's maintainer scripts may try to start the service; there is no init here,
    # and the tests start their own instance anyway.
    $SUDO apt-get install -y -q --no-install-recommends prometheus-alertmanager
fi
command -v prometheus-alertmanager >/dev/null
# The package starts a daemon where an init system runs; the tests do not need it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus-alertmanager 2>/dev/null; then
    $SUDO systemctl stop prometheus-alertmanager || true
fi

missing=""
# The [http] endpoint's tests (core/tests/all/web.rs, web_board.rs): a real Prometheus server and
# promtool (Debian package prometheus), and a headless Chromium (Debian package chromium).
command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v cc >/dev/null 2>&1 || missing="$missing gcc libc6-dev"
command -v pkg-config >/dev/null 2>&1 || missing="$missing pkg-config"
command -v valgrind >/dev/null 2>&1 || missing="$missing valgrind"
if [ -n "$missing" ]; then
    say "apt-get install$missing"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    # shellcheck disable=SC2086 # the list is meant to split into package names
    $SUDO apt-get install -y -q --no-install-recommends $missing
fi

if ! python3 -c 'import pytest' >/dev/null 2>&1; then
    say "pip install pytest"
    python3 -m pip install -q pytest || python3 -m pip install -q --break-system-packages pytest
fi
python3 -c 'import pytest' >/dev/null

if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    say "pip install aiosmtpd"
    python3 -m pip install -q aiosmtpd \
        || python3 -m pip install -q --break-system-packages aiosmtpd
fi
python3 -c 'import aiosmtpd' >/dev/null

# The OTLP export's test receiver (core/tests/all/export_support/otlp_receiver.py) decodes with the
# OpenTelemetry project's published protobuf schema: opentelemetry-proto (PyPI).
if ! python3 -c 'import opentelemetry.proto.collector.metrics.v1.metrics_service_pb2' >/dev/null 2>&1; then
    say "pip install opentelemetry-proto"
    python3 -m pip install -q opentelemetry-proto \
        || python3 -m pip install -q --break-system-packages opentelemetry-proto
fi
python3 -c 'import opentelemetry.proto.collector.metrics.v1.metrics_service_pb2' >/dev/null

# The prometheus package starts a server where an init system runs; the tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    $SUDO systemctl stop prometheus || true
fi
say "test peers ready: $(prometheus-alertmanager --version 2>&1 | head -n1); $(prometheus --version 2>&1 | head -n1); $(chromium --version 2>/dev/null); aiosmtpd $(python3 -c 'import aiosmtpd; print(aiosmtpd.__version__)'); opentelemetry-proto $(python3 -m pip show opentelemetry-proto 2>/dev/null | sed -n 's/^Version: //p'); pytest $(python3 -c 'import pytest; print(pytest.__version__)'); $(valgrind --version)"
