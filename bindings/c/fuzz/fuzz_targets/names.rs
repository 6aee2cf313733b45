//! libFuzzer target: `inputs::names` (bindings/c/tests/inputs/mod.rs) on every input.
#![no_main]

#[path = "../../tests/inputs/mod.rs"]
mod inputs;

libfuzzer_sys::fuzz_target!(|data: &[u8]| inputs::names(data));
