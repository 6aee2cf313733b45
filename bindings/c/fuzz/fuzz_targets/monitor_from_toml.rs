//! libFuzzer target: `inputs::monitor_from_toml` (bindings/c/tests/inputs/mod.rs) on every input.
#![no_main]

#[path = "../../tests/inputs/mod.rs"]
mod inputs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| inputs::monitor_from_toml(data));
