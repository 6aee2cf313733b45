//! Push export (issue 28): a counter increment while each export runs beside it (against a
//! loopback receiver, every 100 ms, 10,000 series), and the export's own cost: one reading of
//! 10,000 series encoded as remote-write (protobuf + snappy) and as OTLP, and the bytes sent.

#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use vigilo::Registry;
use vigilo::clock::Timestamp;
use vigilo::config::Config;
use vigilo::export::{otlp_bodies, remote_write_bodies};
use vigilo::monitor::Monitor;

const SERIES: usize = 10_000;

/// 10,000 counters of one metric, two labels each (the exposition bench's series).
fn populate(v: &Registry) {
    for i in 0..SERIES {
        let route = format!("/api/v1/items/{i}");
        let code = ["200", "404", "500"][i % 3];
        v.counter("http_requests_total", &[("route", &route), ("code", code)])
            .unwrap_or_else(|e| panic!("{e}"))
            .add(i as u64);
    }
}

/// A loopback receiver answering 204 to every request, counting the bytes it read.
struct Receiver {
    addr: String,
    stop: Arc<AtomicBool>,
    bytes: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Receiver {
    fn start() -> Receiver {
        let server = tiny_http::Server::http("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
        let addr = server.server_addr().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let bytes = Arc::new(AtomicU64::new(0));
        let (s, b) = (Arc::clone(&stop), Arc::clone(&bytes));
        let thread = std::thread::spawn(move || {
            // Relaxed: a flag polled in a loop; the join orders the rest.
            while !s.load(Ordering::Relaxed) {
                if let Ok(Some(mut r)) = server.recv_timeout(Duration::from_millis(50)) {
                    let mut body = Vec::new();
                    let _ = r.as_reader().read_to_end(&mut body);
                    b.fetch_add(body.len() as u64, Ordering::Relaxed);
                    let _ = r.respond(tiny_http::Response::empty(204));
                }
            }
        });
        Receiver {
            addr,
            stop,
            bytes,
            thread: Some(thread),
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn monitor(section: &str) -> Monitor {
    let config: Config = section.parse().unwrap_or_else(|e| panic!("{e}"));
    Monitor::builder(config)
        .without_host_items()
        .start()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn record_while_exporting(c: &mut Criterion) {
    let mut group = c.benchmark_group("record_while_exporting");
    let receiver = Receiver::start();
    for (name, section) in [
        ("no_export", String::new()),
        (
            "remote_write_every_100ms",
            format!(
                "[export.remote_write]\nurl = \"http://{}/api/v1/write\"\ninterval = \"100ms\"\n",
                receiver.addr
            ),
        ),
        (
            "otlp_every_100ms",
            format!(
                "[export.otlp]\nendpoint = \"http://{}/v1/metrics\"\ninterval = \"100ms\"\n",
                receiver.addr
            ),
        ),
    ] {
        let m = monitor(&section);
        populate(m.registry());
        let counter = m
            .registry()
            .counter("work_total", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        group.bench_function(name, |b| b.iter(|| counter.increment()));
        let stats = m.export_stats();
        m.stop(Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("{e}"));
        println!("export: {name}: {stats:?}");
    }
    group.finish();
    println!(
        "export: the receiver read {} bytes in all",
        receiver.bytes.load(Ordering::Relaxed)
    );
}

fn encode(c: &mut Criterion) {
    let v = Registry::new();
    populate(&v);
    let at = Timestamp::from_secs(1_767_225_600);
    let rw: Config = "[export.remote_write]\nurl = \"http://x/w\"\nexternal_labels = { instance = \"orders-api-1\", replica = \"a\" }\n"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let rw = rw.export.remote_write.unwrap_or_else(|| panic!("section"));
    let otlp: Config = "[export.otlp]\nendpoint = \"http://x/v1/metrics\"\nresource = { \"service.name\" = \"orders-api\", \"service.instance.id\" = \"orders-api-1\" }\n"
        .parse()
        .unwrap_or_else(|e| panic!("{e}"));
    let otlp = otlp.export.otlp.unwrap_or_else(|| panic!("section"));
    let size = |bodies: Vec<Vec<u8>>| (bodies.len(), bodies.iter().map(Vec::len).sum::<usize>());
    let (n, bytes) = size(remote_write_bodies(&v, &rw, at));
    println!(
        "export: remote-write, {SERIES} series: {n} requests, {bytes} bytes on the wire ({:.1} per series)",
        bytes as f64 / SERIES as f64
    );
    let (n, bytes) = size(otlp_bodies(&v, &otlp, at));
    println!(
        "export: otlp, {SERIES} series: {n} requests, {bytes} bytes on the wire ({:.1} per series)",
        bytes as f64 / SERIES as f64
    );
    let mut group = c.benchmark_group("export_encode_10k");
    group.throughput(Throughput::Elements(SERIES as u64));
    group.bench_function("remote_write", |b| {
        b.iter(|| black_box(remote_write_bodies(&v, &rw, at)))
    });
    group.bench_function("otlp", |b| b.iter(|| black_box(otlp_bodies(&v, &otlp, at))));
    group.bench_function("snapshot_only", |b| b.iter(|| black_box(v.snapshot())));
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = config();
    targets = encode, record_while_exporting
}
criterion_main!(benches);
