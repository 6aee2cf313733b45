//! The cost of a Wasm plugin call: a channel's `deliver` in a fresh sandbox with no I/O (the
//! `vigilo-test-healthy` guest: instantiate from the pooling allocator, call, drop), beside a
//! raw wasmtime call of a no-op component instantiated per call the same way on the same
//! engine; then the memory one loaded plugin costs.
//!
//! Besides criterion's estimates it prints `plugins:` lines with p50/p99 of individually timed
//! calls, and the RSS per loaded plugin. The goal is p50 ≤ 50 µs for the channel call.
//!
//! Then the bundled webhook plugin's `deliver` to a loopback HTTP receiver (a hyper server in
//! this process answering 204), timed one call at a time, interleaved with a plain hyper POST of
//! the same bytes from the host (on one kept-alive connection and on a new connection each
//! time), back to back: once on a quiet process, once with a spinning thread per core beside
//! them (a loaded machine: a thread that is woken, or that runs long, then waits for the
//! scheduler). The goal is p99 ≤ 1 ms for the `deliver`.
//!
//! Run with `cargo bench -p vigilo-benches --bench plugins` (builds the guest on first use).

#[path = "common/loopback.rs"]
mod loopback;

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use vigilo::Severity;
use vigilo::alert::Alert;
use vigilo::clock::Timestamp;
use vigilo_plugin_host::{PluginHost, PluginHostConfig, PluginSettings};
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{Engine, Store};

/// A component exporting one no-op function, lifted straight from a core module.
const NOOP: &str = r#"
(component
  (core module $m (func (export "noop")))
  (core instance $i (instantiate $m))
  (func (export "noop") (canon lift (core func $i "noop")))
)
"#;

/// How many plugins are loaded to measure the memory of one.
const COPIES: usize = 40;

fn alert() -> Alert {
    Alert::builder("cpu-high", Severity::Major)
        .metric("cpu.usage")
        .label("host", "web-1")
        .annotation("summary", "CPU at 93%")
        .previous(Severity::Warning)
        .value(93.0)
        .threshold(80.0)
        .since(Timestamp::from_secs(1_700_000_000))
        .at(Timestamp::from_secs(1_700_000_060))
        .recipient("ops@example.com")
        .build()
}

struct RawNoop {
    pre: InstancePre<()>,
}

impl RawNoop {
    fn new(engine: &Engine) -> RawNoop {
        let component =
            Component::new(engine, NOOP).unwrap_or_else(|e| panic!("noop component: {e}"));
        let linker = Linker::<()>::new(engine);
        let pre = linker
            .instantiate_pre(&component)
            .unwrap_or_else(|e| panic!("noop pre: {e}"));
        RawNoop { pre }
    }

    /// A fresh store and instance, one call, as the host does for a plugin.
    fn call(&self) {
        let mut store = Store::new(self.pre.engine(), ());
        store.set_epoch_deadline(1000);
        let instance = self
            .pre
            .instantiate(&mut store)
            .unwrap_or_else(|e| panic!("noop instantiate: {e}"));
        let f = instance
            .get_typed_func::<(), ()>(&mut store, "noop")
            .unwrap_or_else(|e| panic!("noop export: {e}"));
        f.call(&mut store, ())
            .unwrap_or_else(|e| panic!("noop call: {e}"));
    }
}

/// Calls timed one by one in the HTTP case, for each of its rows.
const HTTP_CALLS: usize = 3_000;

fn percentiles(label: &str, n: usize, mut f: impl FnMut()) {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "plugins: {label}: p50 = {:.1} µs, p99 = {:.1} µs, max = {:.1} µs ({n} calls)",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        at(1.0).as_secs_f64() * 1e6
    );
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn plugin_call(c: &mut Criterion) {
    let wasm =
        vigilo_plugin_build::build_guest("vigilo-test-healthy").unwrap_or_else(|e| panic!("{e}"));
    let host = PluginHost::new(PluginHostConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let channel = host
        .load_channel(PluginSettings::new("healthy", &wasm))
        .unwrap_or_else(|e| panic!("{e}"));
    let raw = RawNoop::new(host.engine());
    let alert = alert();
    assert_eq!(channel.try_deliver(&alert), Ok(Ok(())));

    let mut group = c.benchmark_group("plugin_call");
    group.bench_function("channel_deliver_no_io", |b| {
        b.iter(|| black_box(channel.try_deliver(black_box(&alert))))
    });
    group.bench_function("raw_wasmtime_noop", |b| b.iter(|| raw.call()));
    group.finish();

    percentiles("channel deliver, fresh sandbox, no I/O", 20_000, || {
        let _ = black_box(channel.try_deliver(&alert));
    });
    percentiles("raw wasmtime no-op component, fresh store", 20_000, || {
        raw.call()
    });
}

/// p50, p99 and max of `times`, in µs.
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    format!(
        "p50 = {:.1} µs, p99 = {:.1} µs, max = {:.1} µs",
        at(0.50).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6,
        at(1.0).as_secs_f64() * 1e6
    )
}

/// Threads that spin until `stop`: the other work of a loaded machine.
fn spinners(n: usize, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let stop = Arc::clone(stop);
            // Relaxed: a stop flag, nothing else is published through it.
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect()
}

/// The bundled webhook's `deliver` to a loopback receiver, beside a plain POST of the same
/// bytes: the three interleaved call by call (so they share the machine's conditions), on a
/// quiet process and then with one spinning thread per core beside them.
fn plugin_http(_: &mut Criterion) {
    let wasm = vigilo_plugin_build::build_guest("vigilo-webhook").unwrap_or_else(|e| panic!("{e}"));
    let receiver = loopback::Receiver::start();
    let host = PluginHost::new(PluginHostConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut settings = PluginSettings::new("webhook", &wasm);
    settings.allowed_hosts = vec![receiver.addr.to_string()];
    settings.config = serde_json::json!({ "url": format!("http://{}/alerts", receiver.addr) });
    let mut refused = settings.clone();
    refused.name = "webhook-refused".into();
    refused.allowed_hosts = Vec::new();
    let webhook = host
        .load_channel(settings)
        .unwrap_or_else(|e| panic!("{e}"));
    let alert = alert();
    assert_eq!(webhook.try_deliver(&alert), Ok(Ok(())));
    // The same guest and alert, its request refused by the allowlist: the sandbox and the
    // guest's own work (rendering the JSON, the wasi:http resources) without any I/O.
    let refused = host.load_channel(refused).unwrap_or_else(|e| panic!("{e}"));
    assert!(refused.try_deliver(&alert).is_err());
    percentiles(
        "channel deliver of the webhook, its request refused (no I/O)",
        HTTP_CALLS,
        || {
            let _ = black_box(refused.try_deliver(&alert));
        },
    );
    let captured = receiver
        .last()
        .unwrap_or_else(|| panic!("no request received"));
    let body = captured.1.len();
    let mut plain = loopback::PlainPost::new(receiver.addr, captured);
    plain.post(false);
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    for spinning in [0, cores] {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = spinners(spinning, &stop);
        // Relaxed: read after the calls that made the connections returned.
        let before = receiver.accepted.load(Ordering::Relaxed);
        let (mut deliver, mut kept, mut fresh) = (
            Vec::with_capacity(HTTP_CALLS),
            Vec::with_capacity(HTTP_CALLS),
            Vec::with_capacity(HTTP_CALLS),
        );
        let time = |into: &mut Vec<Duration>, f: &mut dyn FnMut()| {
            let t0 = Instant::now();
            f();
            into.push(t0.elapsed());
        };
        for _ in 0..HTTP_CALLS {
            time(&mut deliver, &mut || {
                let _ = black_box(webhook.try_deliver(&alert));
            });
            time(&mut kept, &mut || plain.post(false));
            time(&mut fresh, &mut || plain.post(true));
        }
        stop.store(true, Ordering::Relaxed);
        threads.into_iter().for_each(|t| {
            let _ = t.join();
        });
        // The fresh plain POSTs open one each; the kept one none.
        let connections = receiver
            .accepted
            .load(Ordering::Relaxed)
            .saturating_sub(before + HTTP_CALLS);
        let state = if spinning == 0 {
            "quiet".to_owned()
        } else {
            format!("{spinning} spinning threads beside it")
        };
        println!(
            "plugins: channel deliver, loopback HTTP receiver ({state}): {} ({HTTP_CALLS} calls, {connections} TCP connections opened by the deliveries, {body} bytes of body)",
            summary(&mut deliver)
        );
        println!(
            "plugins: plain hyper POST of the same bytes, kept-alive connection ({state}): {}",
            summary(&mut kept)
        );
        println!(
            "plugins: plain hyper POST of the same bytes, new connection each ({state}): {}",
            summary(&mut fresh)
        );
    }
}

/// `bytes` with a custom section named `name` appended: the same component, a different
/// content digest (so the host's cache of compiled components cannot share it).
fn distinct(bytes: &[u8], name: &str) -> Vec<u8> {
    fn leb(mut n: usize, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    let mut payload = Vec::new();
    leb(name.len(), &mut payload);
    payload.extend_from_slice(name.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0); // custom section
    leb(payload.len(), &mut out);
    out.extend_from_slice(&payload);
    out
}

/// RSS growth and load time per plugin, for `COPIES` plugins loaded and called once each;
/// `bytes(i)` gives the component of the i-th.
fn per_plugin(host: &PluginHost, prefix: &str, bytes: impl Fn(usize) -> Vec<u8>) -> (f64, f64) {
    let components: Vec<Vec<u8>> = (0..COPIES).map(&bytes).collect();
    let before = rss();
    let t0 = Instant::now();
    let loaded: Vec<_> = components
        .iter()
        .enumerate()
        .map(|(i, b)| {
            host.load_channel_bytes(PluginSettings::new(format!("{prefix}-{i}"), "copy.wasm"), b)
                .unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let load_ms = t0.elapsed().as_secs_f64() * 1e3 / COPIES as f64;
    for p in &loaded {
        let _ = p.try_deliver(&alert());
    }
    let per_kib = rss().saturating_sub(before) as f64 / 1024.0 / COPIES as f64;
    (per_kib, load_ms)
}

fn plugin_memory(_: &mut Criterion) {
    let wasm =
        vigilo_plugin_build::build_guest("vigilo-test-healthy").unwrap_or_else(|e| panic!("{e}"));
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| panic!("{e}"));
    let host = PluginHost::new(PluginHostConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    // One first load so that one-time costs (linker, engine state) are not counted.
    let first = host
        .load_channel(PluginSettings::new("warm", &wasm))
        .unwrap_or_else(|e| panic!("{e}"));
    let _ = first.try_deliver(&alert());
    let (distinct_kib, distinct_ms) = per_plugin(&host, "distinct", |i| {
        distinct(&bytes, &format!("copy-{i}"))
    });
    let (shared_kib, shared_ms) = per_plugin(&host, "shared", |_| bytes.clone());
    println!(
        "plugins: memory per loaded plugin ({COPIES} plugins, each called once; a {} KiB component): {distinct_kib:.1} KiB RSS and {distinct_ms:.1} ms to load when each is a distinct component (compiled); {shared_kib:.1} KiB and {shared_ms:.2} ms when all come from the same file (compiled once, then taken from the host's cache)",
        bytes.len() / 1024,
    );
}

/// Loading a component: cold (a new host, nothing cached), again in the same host (the
/// in-memory cache of compiled components), and in a new host whose `cache_dir` already holds
/// it (wasmtime's on-disk cache: a service restart).
fn plugin_load(_: &mut Criterion) {
    let wasm = vigilo_plugin_build::build_guest("vigilo-webhook").unwrap_or_else(|e| panic!("{e}"));
    let size = std::fs::metadata(&wasm).map_or(0, |m| m.len()) / 1024;
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let load = |host: &PluginHost, name: &str| {
        let t0 = Instant::now();
        host.load_channel(PluginSettings::new(name, &wasm))
            .unwrap_or_else(|e| panic!("{e}"));
        t0.elapsed()
    };
    let cold: Vec<Duration> = (0..3)
        .map(|_| {
            let host =
                PluginHost::new(PluginHostConfig::default()).unwrap_or_else(|e| panic!("{e}"));
            load(&host, "cold")
        })
        .collect();
    let host = PluginHost::new(PluginHostConfig::default()).unwrap_or_else(|e| panic!("{e}"));
    load(&host, "first");
    let again: Vec<Duration> = (0..5).map(|i| load(&host, &format!("again-{i}"))).collect();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cached = PluginHostConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        ..PluginHostConfig::default()
    };
    let first_host = PluginHost::new(cached.clone()).unwrap_or_else(|e| panic!("{e}"));
    load(&first_host, "fills-the-cache");
    let disk: Vec<Duration> = (0..3)
        .map(|_| {
            let host = PluginHost::new(cached.clone()).unwrap_or_else(|e| panic!("{e}"));
            load(&host, "restart")
        })
        .collect();
    println!(
        "plugins: load of the webhook component ({size} KiB), medians: cold {:.1} ms; again in the same host {:.2} ms; in a new host with a warm cache_dir {:.1} ms",
        median(cold),
        median(again),
        median(disk)
    );
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = plugin_call, plugin_http, plugin_memory, plugin_load
}
criterion_main!(benches);
