//! Drivers that hand arbitrary bytes to the entry points taking text or arrays from C, and
//! check what every call must give whatever the input: a status the header lists (never
//! `VIGILO_STATUS_PANIC`), a bounded last error, valid UTF-8 and JSON out. Shared by the
//! libFuzzer targets (`bindings/c/fuzz`) and the seeded random-input test
//! (`tests/random_inputs.rs`), which include this file.
//!
//! An input is split at NUL bytes into pieces, each handed to C as a NUL-terminated string (so
//! any byte sequence, invalid UTF-8 included, reaches the library); the first byte chooses which
//! optional pointers are NULL.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each user takes some drivers; a failed check is a found bug

use std::ffi::{CStr, CString, c_char};
use std::ptr;
use std::sync::OnceLock;

use vigilo_c::*;

/// The status must be one the header lists, not a caught panic, and its message bounded.
fn check(status: vigilo_status, what: &str) {
    // SAFETY: vigilo_last_error never returns NULL; the string lives until the next failure.
    let error = unsafe { CStr::from_ptr(vigilo_last_error()) };
    assert!(
        status != vigilo_status::Panic,
        "{what}: internal error: {error:?}"
    );
    assert!(
        error.to_bytes().len() <= VIGILO_ERROR_MAX,
        "{what}: error not bounded"
    );
    // SAFETY: a static string.
    let name = unsafe { CStr::from_ptr(vigilo_status_name(status as i32)) };
    assert_ne!(name.to_bytes(), b"unknown status", "{what}");
}

/// A string vigilo returned: valid UTF-8 and, for `*_json`, JSON; then freed.
fn take_string(s: *mut c_char, json: bool) {
    assert!(!s.is_null());
    // SAFETY: a string vigilo returned, freed once below.
    let text = unsafe { CStr::from_ptr(s) }.to_str().map(str::to_owned);
    // SAFETY: as above.
    unsafe { vigilo_string_free(s) };
    let text = text.expect("vigilo returned invalid UTF-8");
    if json {
        serde_json::from_str::<serde_json::Value>(&text).expect("vigilo returned invalid JSON");
    }
}

/// The pieces of an input, as C strings, and its selector byte.
struct Pieces {
    selector: u8,
    strings: Vec<CString>,
}

impl Pieces {
    fn of(data: &[u8]) -> Pieces {
        let (selector, rest) = data.split_first().map_or((0, &[][..]), |(s, r)| (*s, r));
        let strings = rest
            .split(|b| *b == 0)
            .map(|p| CString::new(p).expect("split at NUL"))
            .collect();
        Pieces { selector, strings }
    }

    /// Piece `i` (empty if absent), or NULL if bit `bit` of the selector is set.
    fn get(&self, i: usize, bit: u8) -> *const c_char {
        if self.selector & (1 << bit) != 0 {
            return ptr::null();
        }
        self.strings.get(i).map_or(c"".as_ptr(), |s| s.as_ptr())
    }

    /// Labels from the pieces from `first` on, in pairs.
    fn labels(&self, first: usize) -> Vec<vigilo_label> {
        self.strings
            .get(first..)
            .unwrap_or(&[])
            .chunks(2)
            .map(|pair| vigilo_label {
                name: pair[0].as_ptr(),
                value: pair.get(1).map_or(ptr::null(), |v| v.as_ptr()),
            })
            .collect()
    }

    /// A number from piece `i`'s first bytes.
    fn number(&self, i: usize) -> u64 {
        let bytes = self.strings.get(i).map_or(&[][..], |s| s.as_bytes());
        let mut n = [0u8; 8];
        for (d, s) in n.iter_mut().zip(bytes) {
            *d = *s;
        }
        u64::from_le_bytes(n)
    }
}

/// `vigilo_monitor_new` with the input as TOML (no NUL needed: a length is given), named by
/// its first line; then the monitor is freed.
pub fn monitor_from_toml(data: &[u8]) {
    let name = CString::new(
        data.split(|b| *b == b'\n')
            .next()
            .unwrap_or(&[])
            .iter()
            .copied()
            .filter(|b| *b != 0)
            .take(64)
            .collect::<Vec<u8>>(),
    )
    .expect("no NUL");
    let mut m = ptr::null_mut();
    // SAFETY: `data` is readable for its length; `name` is NUL-terminated; `m` is writable.
    let status =
        unsafe { vigilo_monitor_new(data.as_ptr().cast(), data.len(), name.as_ptr(), &mut m) };
    check(status, "vigilo_monitor_new");
    if status == vigilo_status::Ok {
        // SAFETY: a handle just created.
        check(unsafe { vigilo_monitor_free(m) }, "vigilo_monitor_free");
    }
}

/// Metric names and label arrays: every lookup and by-name recording on a fresh monitor.
pub fn names(data: &[u8]) {
    let p = Pieces::of(data);
    let mut m = ptr::null_mut();
    // SAFETY: an empty configuration; `m` is writable.
    check(
        unsafe { vigilo_monitor_new(ptr::null(), 0, ptr::null(), &mut m) },
        "new",
    );
    let name = p.get(0, 0);
    let labels = p.labels(1);
    let (l, n) = if p.selector & 2 != 0 {
        (ptr::null(), 0)
    } else {
        (labels.as_ptr(), labels.len())
    };
    let value = f64::from_bits(p.number(0));
    let mut counter = ptr::null_mut();
    let mut gauge = ptr::null_mut();
    let mut histogram = ptr::null_mut();
    // SAFETY: `m` is live; `name` NULL or NUL-terminated; `l` points to `n` labels whose
    // strings are NUL-terminated or NULL; the outs are writable.
    unsafe {
        check(
            vigilo_monitor_counter(m, name, l, n, &mut counter),
            "counter",
        );
        check(vigilo_monitor_gauge(m, name, l, n, &mut gauge), "gauge");
        check(
            vigilo_monitor_histogram(m, name, l, n, &mut histogram),
            "histogram",
        );
        check(
            vigilo_monitor_add_counter(m, name, l, n, p.number(1)),
            "add_counter",
        );
        check(vigilo_monitor_set_gauge(m, name, l, n, value), "set_gauge");
        check(
            vigilo_monitor_record_histogram(m, name, l, n, value),
            "record_histogram",
        );
        vigilo_counter_add(counter, 1);
        vigilo_gauge_set(gauge, value);
        vigilo_histogram_record(histogram, value);
        vigilo_counter_free(counter);
        vigilo_gauge_free(gauge);
        vigilo_histogram_free(histogram);
        check(vigilo_monitor_free(m), "free");
    }
}

/// The one started monitor the query driver asks (started once: threads are not free).
fn running() -> usize {
    static RUNNING: OnceLock<usize> = OnceLock::new();
    *RUNNING.get_or_init(|| {
        let toml = "[host]\nitems = []\n[[rule]]\nname = \"queue\"\nmetric = \"queue_depth\"\n\
                    [rule.critical]\nthreshold = 100\n";
        let mut m = ptr::null_mut();
        // SAFETY: `toml` is readable for its length; `m` is writable.
        let status =
            unsafe { vigilo_monitor_new(toml.as_ptr().cast(), toml.len(), ptr::null(), &mut m) };
        assert_eq!(status, vigilo_status::Ok);
        // SAFETY: a live handle.
        assert_eq!(unsafe { vigilo_monitor_start(m) }, vigilo_status::Ok);
        m as usize
    })
}

/// The queries and incident actions that take text or arrays (history by rule, silences with
/// matchers, acknowledgements), and the JSON they answer with.
pub fn queries(data: &[u8]) {
    let p = Pieces::of(data);
    let m = running() as *mut vigilo_monitor;
    let matchers = p.labels(3);
    let (l, n) = if p.selector & 8 != 0 {
        (ptr::null(), 0)
    } else {
        (matchers.as_ptr(), matchers.len())
    };
    let mut out = ptr::null_mut();
    let mut id = 0u64;
    // SAFETY: `m` is live; every string is NULL or NUL-terminated; `l` points to `n` labels;
    // the outs are writable.
    unsafe {
        let status = vigilo_monitor_history_json(
            m,
            p.number(2),
            p.get(0, 0),
            p.number(1) as usize % 1000,
            &mut out,
        );
        check(status, "history_json");
        if status == vigilo_status::Ok {
            take_string(out, true);
        }
        let status = vigilo_monitor_silence(
            m,
            p.get(0, 0),
            l,
            n,
            p.number(1),
            p.get(1, 1),
            p.get(2, 2),
            &mut id,
        );
        check(status, "silence");
        if status == vigilo_status::Ok {
            check(vigilo_monitor_expire_silence(m, id), "expire_silence");
        }
        let sticky = (p.number(2) % 4) as i32 - 1;
        check(
            vigilo_monitor_ack(
                m,
                p.number(0),
                p.get(1, 1),
                p.get(2, 2),
                p.number(1),
                sticky,
            ),
            "ack",
        );
        check(vigilo_monitor_unack(m, p.number(0)), "unack");
        let status = vigilo_monitor_status_json(m, &mut out);
        check(status, "status_json");
        if status == vigilo_status::Ok {
            take_string(out, true);
        }
        // Any integer has a status name.
        let name = CStr::from_ptr(vigilo_status_name(p.number(0) as i32));
        assert!(!name.to_bytes().is_empty());
    }
}
