//! Sets `cfg(vigilo_loom)` for this crate alone when `VIGILO_LOOM=1`: the atomics of the
//! lock-free protocols become loom's, so that the models in `src/metrics/loom.rs` run the real
//! code:
//!
//! ```sh
//! VIGILO_LOOM=1 cargo test -p vigilo-collector --lib --features loom-models loom_
//! ```
//!
//! A variable read here rather than `RUSTFLAGS="--cfg ..."`: flags would rebuild every
//! dependency (and `--cfg loom` would change tokio's code), where this rebuilds vigilo only.

fn main() {
    println!("cargo::rerun-if-env-changed=VIGILO_LOOM");
    println!("cargo::rustc-check-cfg=cfg(vigilo_loom)");
    if std::env::var_os("VIGILO_LOOM").is_some_and(|v| v == "1") {
        if std::env::var_os("CARGO_FEATURE_LOOM_MODELS").is_none() {
            println!(
                "cargo::error=VIGILO_LOOM=1 needs the `loom-models` feature: \
                 cargo test -p vigilo-collector --lib --features loom-models loom_"
            );
        }
        println!("cargo::rustc-cfg=vigilo_loom");
    }
}
