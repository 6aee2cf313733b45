//! `include/vigilo.h` is what cbindgen generates from the crate today.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

#[test]
fn the_committed_header_is_up_to_date() {
    let dir = env!("CARGO_MANIFEST_DIR");
    let config = cbindgen::Config::from_file(format!("{dir}/cbindgen.toml")).unwrap();
    let bindings = cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(config)
        .generate()
        .unwrap();
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let path = format!("{dir}/include/vigilo.h");
    if std::env::var_os("VIGILO_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/vigilo.h is not what cbindgen generates from the sources: regenerate it with \
         `VIGILO_BLESS=1 cargo test -p vigilo-c --test header` and commit it"
    );
}
