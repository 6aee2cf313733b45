//! Compiles `c/c_api.c`, the C side of the `c_api` bench: the header's inline functions measured
//! as a C compiler builds them into a program. With the `cc` crate (the usual way to build C
//! for a Rust crate: it finds the compiler and passes the profile's optimisation level).

fn main() {
    println!("cargo::rerun-if-changed=c/c_api.c");
    println!("cargo::rerun-if-changed=../bindings/c/include/vigilo.h");
    cc::Build::new()
        .file("c/c_api.c")
        .include("../bindings/c/include")
        .std("c11")
        .warnings_into_errors(true)
        .compile("vigilo_bench_c");
}
