//! `service`: a small HTTP service that embeds vigilo, as the design card's first user would.
//!
//! It records `http_requests_total{route,status}` and `http_request_duration_seconds{route}`
//! for every request, loads `vigilo.toml` (p99 latency and error-rate rules, routed to the
//! bundled webhook plugin) through vigilo's one entry point, and receives its own alerts on
//! `POST /alerts`, printing each one.
//!
//! ```text
//! service                         # serve on 127.0.0.1:8080 until Ctrl-C
//! service --load                  # serve, drive traffic that makes the rules fire, report, exit
//! ```
//!
//! Endpoints: `/` (fast), `/slow` (150–400 ms), `/flaky` (500 one time in two), `/alerts`.

use std::io::Read;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use clap::Parser;
use inbox::Alerts;
use vigilo::config::Config;
use vigilo::monitor::Monitor;
use vigilo::{Counter, Histogram};

/// The configuration shipped with the example.
const CONFIG: &str = include_str!("../vigilo.toml");

#[derive(Debug, Parser)]
#[command(version, about = "A small HTTP service embedding vigilo")]
struct Args {
    /// Address to serve on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Drive traffic that makes the p99 and error-rate rules fire, print what was alerted,
    /// and exit (non-zero if an expected alert did not arrive).
    #[arg(long)]
    load: bool,
    /// How long the load runs.
    #[arg(long, default_value = "12s", value_parser = parse_duration)]
    duration: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    vigilo::duration::parse_duration(s).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("service: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Per-route handles, resolved once: recording is a lock-free call on a handle.
struct RouteMetrics {
    ok: Counter,
    error: Counter,
    latency: Histogram,
}

impl RouteMetrics {
    fn new(monitor: &Monitor, route: &str) -> Result<Self, vigilo::MetricError> {
        let r = monitor.registry();
        Ok(RouteMetrics {
            ok: r.counter(
                "http_requests_total",
                &[("route", route), ("status", "200")],
            )?,
            error: r.counter(
                "http_requests_total",
                &[("route", route), ("status", "500")],
            )?,
            latency: r.histogram("http_request_duration_seconds", &[("route", route)])?,
        })
    }
}

fn run(args: &Args) -> Result<ExitCode, Box<dyn std::error::Error>> {
    // Bind first, so `--listen 127.0.0.1:0` works: the configuration gets the real port.
    let listener = std::net::TcpListener::bind(args.listen)?;
    let listen = listener.local_addr()?;
    let text = CONFIG.replace("{listen}", &listen.to_string());
    let config = Config::from_str_named(&text, "examples/service/vigilo.toml")
        .map_err(|e| e.with_excerpt())?;
    // The bundled webhook plugin is built from plugins/guests the first time (a minute or two).
    eprintln!("service: loading vigilo (building the bundled webhook plugin if needed) …");
    let loader = vigilo_plugin_host::loader(&config)?.with_resolver(|name| {
        vigilo_plugin_build::build_guest(&format!("vigilo-{name}")).map_err(|e| e.to_string())
    });
    let monitor = Monitor::builder(config)
        .loader(Arc::new(loader))
        .without_host_items()
        .start()?;

    let server =
        Arc::new(tiny_http::Server::from_listener(listener, None).map_err(|e| e.to_string())?);
    let routes = Arc::new([
        ("/", RouteMetrics::new(&monitor, "/")?),
        ("/slow", RouteMetrics::new(&monitor, "/slow")?),
        ("/flaky", RouteMetrics::new(&monitor, "/flaky")?),
    ]);
    let alerts = Arc::new(Alerts::default());
    let counter = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (server, routes, alerts, counter) = (
            Arc::clone(&server),
            Arc::clone(&routes),
            Arc::clone(&alerts),
            Arc::clone(&counter),
        );
        workers.push(thread::spawn(move || {
            serve(&server, &routes, &alerts, &counter)
        }));
    }
    eprintln!("service: serving on http://{listen}");

    let code = if args.load {
        load(listen, args.duration, &alerts)
    } else {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        ctrlc::set_handler(move || flag.store(true, Ordering::Release))?;
        while !stop.load(Ordering::Acquire) {
            thread::sleep(Duration::from_millis(100));
        }
        ExitCode::SUCCESS
    };

    println!("\nopen incidents:");
    for i in monitor.incidents()? {
        println!(
            "  #{} {} {} since {}",
            i.id, i.item, i.severity, i.opened_at
        );
    }
    let report = monitor.stop(Duration::from_secs(5))?;
    println!(
        "vigilo stopped: {} delivered while stopping, {} left in the outbox",
        report.delivered, report.outbox_left
    );
    server.unblock();
    for _ in 0..workers.len() {
        server.unblock();
    }
    Ok(code)
}

fn serve(
    server: &tiny_http::Server,
    routes: &[(&str, RouteMetrics); 3],
    alerts: &Alerts,
    counter: &AtomicU64,
) {
    while let Ok(mut request) = server.recv() {
        let path = request.url().split('?').next().unwrap_or("").to_owned();
        if path == "/alerts" {
            let mut body = String::new();
            let _ = request.as_reader().take(1 << 20).read_to_string(&mut body);
            alerts.received(&body);
            let _ = request.respond(tiny_http::Response::empty(204));
            continue;
        }
        let Some((_, m)) = routes.iter().find(|(p, _)| *p == path) else {
            let _ = request
                .respond(tiny_http::Response::from_string("not found\n").with_status_code(404));
            continue;
        };
        let started = Instant::now();
        let n = counter.fetch_add(1, Ordering::Relaxed);
        let status = match path.as_str() {
            "/slow" => {
                thread::sleep(Duration::from_millis(150 + (n * 37) % 250));
                200
            }
            "/flaky" if n.is_multiple_of(2) => 500,
            _ => 200,
        };
        let _ =
            request.respond(tiny_http::Response::from_string("hello\n").with_status_code(status));
        if status == 500 {
            m.error.increment();
        } else {
            m.ok.increment();
        }
        // Finite by construction, so the checked record cannot fail here.
        m.latency.record(started.elapsed().as_secs_f64());
    }
}

/// Traffic that makes both rules fire: slow requests (p99 above 250 ms) and failing ones
/// (about 10 errors per second).
fn load(listen: SocketAddr, duration: Duration, alerts: &Alerts) -> ExitCode {
    let base = format!("http://{listen}");
    let end = Instant::now() + duration;
    eprintln!("service: driving traffic for {duration:?} …");
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let base = base.clone();
            thread::spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(5))
                    .build();
                let mut n = 0u64;
                while Instant::now() < end {
                    let path = match (i + n) % 4 {
                        0 => "/slow",
                        1 | 2 => "/flaky",
                        _ => "/",
                    };
                    // A 500 is an answer too: only transport errors matter here, and there are none
                    // to handle on loopback beyond giving up this request.
                    let _ = agent.get(&format!("{base}{path}")).call();
                    n += 1;
                    thread::sleep(Duration::from_millis(40));
                }
            })
        })
        .collect();
    for c in clients {
        let _ = c.join();
    }
    // Give the last notifications a moment to arrive.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !(alerts.saw("latency-p99") && alerts.saw("error-rate")) {
        thread::sleep(Duration::from_millis(100));
    }
    let ok = alerts.saw("latency-p99") && alerts.saw("error-rate");
    println!(
        "\n{} alert(s) received on /alerts; p99 rule fired: {}, error-rate rule fired: {}",
        alerts.count(),
        alerts.saw("latency-p99"),
        alerts.saw("error-rate")
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What arrived on `/alerts`.
mod inbox {
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct Alerts(Mutex<Vec<String>>);

    impl Alerts {
        /// Prints one alert as the webhook plugin posted it (JSON) and keeps its rule.
        pub fn received(&self, body: &str) {
            let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
            let rule = v["rule"].as_str().unwrap_or("?").to_owned();
            println!(
                "ALERT {:<8} {:<8} {:<12} {}",
                v["status"].as_str().unwrap_or("?"),
                v["severity"].as_str().unwrap_or("?"),
                rule,
                v["annotations"]["summary"].as_str().unwrap_or("")
            );
            if let Ok(mut seen) = self.0.lock() {
                seen.push(rule);
            }
        }

        pub fn saw(&self, rule: &str) -> bool {
            self.0
                .lock()
                .map(|s| s.iter().any(|r| r == rule))
                .unwrap_or(false)
        }

        pub fn count(&self) -> usize {
            self.0.lock().map(|s| s.len()).unwrap_or(0)
        }
    }
}
