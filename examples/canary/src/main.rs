//! # Deploy guard: a canary, its verdict, and the kill switch
//!
//! Runs a baseline and a canary of a checkout service in-process, with synthetic traffic in
//! which the canary answers 25 % slower, and lets vigilo judge the deploy
//! (`examples/canary/canary.toml`):
//!
//! 1. the canary run `checkout-v2` compares the two groups' latency histograms and request
//!    rates every second for six seconds (Mann-Whitney U with a 10 % effect tolerance) and
//!    scores the canary out of 100;
//! 2. the finished run publishes `vigilo_canary_verdict{canary="checkout-v2"}` = 2 (fail); an
//!    ordinary rule turns that into a Critical incident;
//! 3. the recovery policy runs the bundled `feature-flag` action plugin, which switches the
//!    feature `new-checkout` off on the demo's feature-flag service (the kill switch: the
//!    feature goes off instead of a rollback), and the bundled webhook tells the deploy channel.
//!
//! The same kill switch is wired to the SLO `checkout`'s critical burn rate.
//!
//! ```text
//! cargo run --release -p canary [-- REPORT.json]
//! ```
//!
//! It prints the score, each metric's verdict and reason, and what the kill switch did; the
//! whole report goes to `REPORT.json` if given. Exits 0 once the flag is off, 1 otherwise.

use std::collections::BTreeMap;
use std::error::Error;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigilo::Registry;
use vigilo::canary::MetricVerdict;
use vigilo::config::Config;
use vigilo::monitor::Monitor;
use vigilo::pipeline::EventKind;

/// How much slower the canary answers.
const REGRESSION: f64 = 1.25;

/// How long to wait for the kill switch after the verdict (the first start builds the bundled
/// plugins, before this wait).
const KILL_SWITCH_WAIT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("canary: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode, Box<dyn Error>> {
    let report_path = std::env::args().nth(1);
    let flags = FlagService::start(&[("new-checkout", true)])?;
    let text = include_str!("../canary.toml").replace("{flags}", &flags.addr);
    let config: Config = text.parse()?;
    println!("building and loading the bundled feature-flag and webhook plugins …");
    let loader = vigilo_plugin_host::loader(&config)?.with_resolver(bundled);
    let monitor = Monitor::builder(config)
        .loader(Arc::new(loader))
        .without_host_items()
        .start()?;
    let events = monitor.subscribe()?;

    let traffic = Traffic::start(monitor.registry())?;
    println!(
        "canary checkout-v2: baseline and canary serving, the canary {:.0} % slower; \
         6 intervals of 1 s",
        (REGRESSION - 1.0) * 100.0
    );
    let run = monitor.canary("checkout-v2")?.spawn()?;
    let report = run
        .join()
        .map_err(|_| "the canary run's thread panicked")??;
    traffic.stop();

    println!(
        "\nscore {:.1} / 100: {:?} (pass at {}, marginal at {})",
        report.score(),
        report.verdict(),
        report.pass,
        report.marginal
    );
    for m in &report.result.metrics {
        let mark = match m.verdict {
            MetricVerdict::Pass => "pass",
            MetricVerdict::Fail => "FAIL",
            _ => "----",
        };
        println!(
            "  {mark} {:<32} group {:<8} weight {:>4}  {}",
            m.metric, m.group, m.weight, m.reason
        );
    }
    if let Some(path) = &report_path {
        std::fs::write(path, report.to_json())?;
        println!("the whole report: {path}");
    }

    // The verdict is a series: the rule, the incident, the recovery and the kill switch follow.
    let give_up = Instant::now() + KILL_SWITCH_WAIT;
    let mut finished = false;
    while Instant::now() < give_up && !finished {
        let Ok(e) = events.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let rule = e.rule.as_deref().unwrap_or("");
        let severity = e.severity.map(|s| s.to_string()).unwrap_or_default();
        match e.kind {
            EventKind::Opened => println!("\nincident opened: {rule}, {severity}"),
            EventKind::ActionStarted => {
                println!("kill switch: {} started", e.action.as_deref().unwrap_or(""));
            }
            EventKind::ActionFinished | EventKind::ActionSkipped => {
                println!("kill switch: {}", e.detail);
                finished = true;
            }
            _ => {}
        }
    }
    let switched = flags.enabled("new-checkout") == Some(false);
    monitor.settle(Duration::from_secs(10))?;
    for note in flags.notifications() {
        println!("deploy channel told: {note}");
    }
    monitor.stop(Duration::from_secs(5))?;
    if switched {
        println!("\nfeature new-checkout is off: the canary's users are back on the old checkout");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("canary: the kill switch did not switch new-checkout off in time");
        Ok(ExitCode::FAILURE)
    }
}

/// Finds a bundled plugin, building it from `plugins/guests` the first time.
fn bundled(name: &str) -> Result<std::path::PathBuf, String> {
    vigilo_plugin_build::build_guest(&format!("vigilo-{name}")).map_err(|e| e.to_string())
}

/// The synthetic traffic: both groups serve the same request rate; latencies are log-normal
/// (median 80 ms), the canary's `REGRESSION` times slower; one request in a thousand fails.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Traffic {
    fn start(registry: &Registry) -> Result<Traffic, Box<dyn Error>> {
        let mut groups = Vec::new();
        for (deployment, slower) in [("baseline", 1.0), ("canary", REGRESSION)] {
            let labels = [("deployment", deployment)];
            groups.push((
                registry.histogram("http_request_duration_seconds", &labels)?,
                registry.counter("http_requests_total", &labels)?,
                registry.counter("http_requests_errors_total", &labels)?,
                slower,
            ));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
            let mut n: u64 = 0;
            // Relaxed: a stop request, nothing else to see.
            while !stopping.load(Ordering::Relaxed) {
                for (latency, requests, errors, slower) in &groups {
                    for _ in 0..10 {
                        latency.record(0.080 * slower * rng.lognormal(0.5));
                        requests.increment();
                        n += 1;
                        if n.is_multiple_of(1000) {
                            errors.increment();
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        Ok(Traffic { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// A small deterministic generator for the demo's traffic (xorshift64*).
struct XorShift(u64);

impl XorShift {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        // 53 random bits in (0, 1].
        ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// exp(σ·z) for a standard normal z (Box-Muller): a log-normal factor with median 1.
    fn lognormal(&mut self, sigma: f64) -> f64 {
        let (u1, u2) = (self.next_f64(), self.next_f64());
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        (sigma * z).exp()
    }
}

/// The demo's feature-flag service: `GET /api/flags/NAME`, `PUT` or `PATCH` it with
/// `{"enabled": bool}` and the bearer token; `POST /notify` takes the deploy channel's
/// notifications.
struct FlagService {
    addr: String,
    flags: Arc<Mutex<BTreeMap<String, bool>>>,
    notes: Arc<Mutex<Vec<String>>>,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl FlagService {
    fn start(flags: &[(&str, bool)]) -> Result<FlagService, Box<dyn Error>> {
        let server = Arc::new(
            tiny_http::Server::http("127.0.0.1:0")
                .map_err(|e| format!("the flag service cannot listen: {e}"))?,
        );
        let addr = server
            .server_addr()
            .to_ip()
            .ok_or("the flag service has no IP address")?
            .to_string();
        let flags = Arc::new(Mutex::new(
            flags.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
        ));
        let notes = Arc::new(Mutex::new(Vec::new()));
        let (s, f, n) = (Arc::clone(&server), Arc::clone(&flags), Arc::clone(&notes));
        let thread = std::thread::spawn(move || {
            for request in s.incoming_requests() {
                answer(request, &f, &n);
            }
        });
        Ok(FlagService {
            addr,
            flags,
            notes,
            server,
            thread: Some(thread),
        })
    }

    fn enabled(&self, name: &str) -> Option<bool> {
        self.flags.lock().ok()?.get(name).copied()
    }

    fn notifications(&self) -> Vec<String> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }
}

fn answer(
    mut request: tiny_http::Request,
    flags: &Mutex<BTreeMap<String, bool>>,
    notes: &Mutex<Vec<String>>,
) {
    let authorised = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Authorization") && h.value.as_str() == "Bearer demo-token");
    let method = request.method().to_string();
    let path = request.url().to_owned();
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
    let json = serde_json::from_str::<serde_json::Value>(&body).ok();
    let reply =
        |code: u16, text: String| tiny_http::Response::from_string(text).with_status_code(code);
    let response = if path == "/notify" && method == "POST" {
        let field = |k: &str| {
            json.as_ref()
                .and_then(|j| j.get(k))
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        if let Ok(mut n) = notes.lock() {
            n.push(format!(
                "[{}] {} {}",
                field("severity"),
                field("status"),
                field("summary")
            ));
        }
        reply(200, "ok".into())
    } else if let Some(name) = path.strip_prefix("/api/flags/") {
        let wanted = json
            .as_ref()
            .and_then(|j| j.get("enabled"))
            .and_then(serde_json::Value::as_bool);
        match (flags.lock(), method.as_str()) {
            (Err(_), _) => reply(500, "flag store poisoned".into()),
            (Ok(f), "GET") => match f.get(name) {
                Some(on) => reply(
                    200,
                    serde_json::json!({"name": name, "enabled": on}).to_string(),
                ),
                None => reply(404, format!("no flag {name}")),
            },
            (Ok(_), _) if !authorised => reply(401, "missing or wrong token".into()),
            (Ok(mut f), "PUT" | "PATCH") => match (f.get_mut(name), wanted) {
                (None, _) => reply(404, format!("no flag {name}")),
                (Some(_), None) => reply(400, "body must be {\"enabled\": bool}".into()),
                (Some(on), Some(w)) => {
                    *on = w;
                    reply(
                        200,
                        serde_json::json!({"name": name, "enabled": w}).to_string(),
                    )
                }
            },
            (Ok(_), _) => reply(405, format!("{method} not allowed")),
        }
    } else {
        reply(404, "no such endpoint".into())
    };
    let _ = request.respond(response);
}

impl Drop for FlagService {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
