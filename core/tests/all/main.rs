//! The integration tests of `vigilo`, one module a topic, in one test binary (as wasmtime's
//! `tests/all`): one link of the crate instead of one per file. The pipeline's tests
//! (`tests/pipeline`) and the operator checks' (`tests/checks`) are binaries of their own.
//!
//! Run one topic with its module's name: `cargo test -p vigilo --test all -- web_board::`.

mod aggregations;
mod canary;
mod config;
mod coverage;
mod evaluator;
#[cfg(feature = "otlp")]
mod export_otlp;
#[cfg(feature = "remote-write")]
mod export_remote_write;
#[cfg(any(feature = "otlp", feature = "remote-write"))]
mod export_support;
mod facade;
mod host;
mod metrics_errors;
mod metrics_model;
mod metrics_stress;
mod rule_test;
mod semantics;
mod slo;
#[cfg(feature = "tracing")]
mod tracing_layer;
mod web;
mod web_board;
mod web_hardening;
mod web_support;
