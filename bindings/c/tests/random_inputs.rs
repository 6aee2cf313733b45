//! Seeded random inputs over the entry points that take text or arrays from C: the seeds of
//! the fuzz targets (`fuzz/seeds/`) and the example configurations, mutated by a fixed-seed
//! generator, through the same drivers as the libFuzzer targets (`tests/inputs/mod.rs`). A
//! short stand-in for `cargo fuzz` where no nightly toolchain is (CI): a few seconds.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

mod inputs;

use std::time::{Duration, Instant};

/// xorshift64*: reproducible, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that make parsers and validators work: TOML and label punctuation, NUL (a piece
/// separator for the drivers), invalid UTF-8, multi-byte characters.
const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\n",
    b"\"",
    b"'",
    b"[",
    b"]",
    b"[[",
    b"=",
    b"{",
    b"}",
    b",",
    b".",
    b"#",
    b"\\",
    b"\xff",
    b"\xc3\x28",
    b"\xe2\x82",
    "é".as_bytes(),
    "치명".as_bytes(),
    b"rule",
    b"name",
    b"metric",
    b"threshold",
    b"for",
    b"\"1s\"",
    b"=~",
    b"!=",
    b"(",
    b"*",
    b"1e309",
    b"-1",
    b"18446744073709551615",
    b"[rule.critical]",
    b"[[channel]]",
    b"[[route]]",
];

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..1 + rng.below(8) {
        let at = rng.below(data.len() + 1);
        match rng.below(5) {
            0 => data.insert(at, rng.next() as u8),
            1 if at < data.len() => data[at] = rng.next() as u8,
            2 => {
                let piece = INTERESTING[rng.below(INTERESTING.len())];
                data.splice(at..at, piece.iter().copied());
            }
            3 if at < data.len() => {
                let end = (at + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            _ => {
                // Repeat a stretch: long names, long lines, deep nesting.
                let end = (at + rng.below(8)).min(data.len());
                let stretch = data[at..end].repeat(1 + rng.below(64));
                data.splice(at..at, stretch);
            }
        }
    }
    data
}

/// Runs `driver` on mutations of `seeds` for about `budget`.
fn fuzz(seed: u64, seeds: &[&[u8]], budget: Duration, driver: fn(&[u8])) -> usize {
    let mut rng = Rng(seed);
    let until = Instant::now() + budget;
    let mut runs = 0;
    for s in seeds {
        driver(s);
    }
    while Instant::now() < until {
        let base = seeds[rng.below(seeds.len())];
        driver(&mutate(&mut rng, base));
        runs += 1;
    }
    runs
}

const BUDGET: Duration = Duration::from_millis(1500);

#[test]
fn monitor_from_random_toml() {
    let seeds: &[&[u8]] = &[
        include_bytes!("../fuzz/seeds/monitor_from_toml/rules.toml"),
        include_bytes!("../fuzz/seeds/monitor_from_toml/errors.toml"),
        include_bytes!("../../../examples/rules.toml"),
        include_bytes!("../../../examples/pipeline.toml"),
    ];
    assert!(fuzz(0x5EED_0001, seeds, BUDGET, inputs::monitor_from_toml) > 0);
}

#[test]
fn random_names_and_label_arrays() {
    let seeds: &[&[u8]] = &[
        include_bytes!("../fuzz/seeds/names/labels"),
        include_bytes!("../fuzz/seeds/names/invalid"),
    ];
    assert!(fuzz(0x5EED_0002, seeds, BUDGET, inputs::names) > 0);
}

#[test]
fn random_queries_silences_and_acks() {
    let seeds: &[&[u8]] = &[
        include_bytes!("../fuzz/seeds/queries/silence"),
        include_bytes!("../fuzz/seeds/queries/null_rule"),
    ];
    assert!(fuzz(0x5EED_0003, seeds, BUDGET, inputs::queries) > 0);
}
