//! What the `[http]` tests share: a monitor with the endpoint, HTTP calls, a real Prometheus.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigilo::alert::{Alert, Channel, DeliveryError};
use vigilo::clock::{Clock, ManualClock, Timestamp};
use vigilo::config::Config;
use vigilo::monitor::Monitor;

/// A channel that takes every alert.
struct Accept;

impl Channel for Accept {
    fn name(&self) -> &str {
        "ops"
    }
    fn deliver(&self, _: &Alert) -> Result<(), DeliveryError> {
        Ok(())
    }
}

/// A monitor (rule `queue`: `queue_depth` above 100 is Major, above 1000 Critical) serving
/// `[http]` on a free loopback port, with `http` added to that section.
pub struct Running {
    pub monitor: Monitor,
    pub address: SocketAddr,
}

/// A channel `ops` (the test's, taking every alert) and a route `all` to it.
macro_rules! route_all {
    () => {
        r#"
[[channel]]
name = "ops"

[[route]]
name = "all"
channels = ["ops"]
"#
    };
}

/// [`CONFIG`]'s channel and route, to put after other rules.
pub const ROUTE_ALL: &str = route_all!();

pub const CONFIG: &str = concat!(
    r#"
[[rule]]
name = "queue"
metric = "queue_depth"
annotations = { summary = "{{value}} jobs waiting" }
[rule.major]
threshold = 100
[rule.critical]
threshold = 1000
"#,
    route_all!()
);

/// CPU usage (a ratio) with a warning at 70 % and a critical level at 95 %, its summary with
/// units.
pub const CPU_RULE: &str = r#"
[[rule]]
name = "cpu"
metric = "cpu_usage_ratio"
annotations = { summary = "CPU at {{value_human}} (threshold {{threshold_human}})" }
[rule.warning]
threshold = "70%"
[rule.critical]
threshold = "95%"
"#;

impl Running {
    pub fn start(http: &str) -> Running {
        Running::start_with(CONFIG, http)
    }

    /// The same with other rules, channel `ops` and routes.
    pub fn start_with(rules: &str, http: &str) -> Running {
        Running::start_on(
            rules,
            "127.0.0.1:0",
            http,
            Arc::new(vigilo::clock::SystemClock),
        )
    }

    /// The same on a clock of the test's, the evaluator sweeping every 50 ms (so a value set
    /// is on the board within that).
    pub fn start_with_clock(rules: &str, http: &str, clock: &ManualClock) -> Running {
        let rules = format!("[evaluator]\ntick = \"50ms\"\n{rules}");
        Running::start_on(&rules, "127.0.0.1:0", http, Arc::new(clock.clone()))
    }

    /// Listening on `listen`.
    pub fn start_on(rules: &str, listen: &str, http: &str, clock: Arc<dyn Clock>) -> Running {
        let text = format!("{rules}\n[http]\nlisten = \"{listen}\"\n{http}\n");
        let config: Config = text.parse().unwrap_or_else(|e| panic!("{e}"));
        let monitor = Monitor::builder(config)
            .without_host_items()
            .channel(Arc::new(Accept))
            .clock(clock)
            .start()
            .unwrap_or_else(|e| panic!("{e}"));
        let mut address = monitor.http_address().expect("the endpoint runs");
        if address.ip().is_unspecified() {
            address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        Running { monitor, address }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }
}

/// The id of the first open incident, once the pipeline has opened one (at most 10 s).
pub fn incident(monitor: &Monitor) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        monitor.settle(Duration::from_secs(5)).unwrap();
        if let Some(i) = monitor.incidents().unwrap().first() {
            return i.id.0;
        }
        assert!(Instant::now() < deadline, "no incident opened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Moves `clock` on by `step`, sets `gauge` to `value`, and waits until the board shows the
/// item of `rule` at that value.
pub fn step(
    r: &Running,
    clock: &ManualClock,
    gauge: &vigilo::metrics::Gauge,
    rule: &str,
    value: f64,
    step: Duration,
) {
    clock.advance(step);
    gauge.set(value);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = r.monitor.status().unwrap().status;
        if status
            .items
            .iter()
            .any(|i| &*i.rule == rule && i.value == Some(value))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{rule} never showed {value}: {:?}",
            status
                .items
                .iter()
                .map(|i| (i.rule.to_string(), i.value))
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A fixed start for the tests' clocks (2027-01-15T08:00:00Z).
pub fn start_time() -> Timestamp {
    Timestamp::from_secs(1_800_000_000)
}

/// GET with `headers`: status, the answer's headers (names in lower case), body.
pub fn get_with(
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, std::collections::BTreeMap<String, String>, String) {
    let mut req = ureq::get(url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let response = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = response.status();
    let names = response.headers_names();
    let answer_headers = names
        .iter()
        .filter_map(|n| Some((n.to_ascii_lowercase(), response.header(n)?.to_owned())))
        .collect();
    (
        status,
        answer_headers,
        response.into_string().unwrap_or_default(),
    )
}

/// GET: status, content type, body (error statuses too).
pub fn get(url: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut req = ureq::get(url).timeout(Duration::from_secs(30));
    if let Some(a) = accept {
        req = req.set("Accept", a);
    }
    let response = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = response.status();
    let content_type = response
        .header("content-type")
        .unwrap_or_default()
        .to_owned();
    (
        status,
        content_type,
        response.into_string().unwrap_or_default(),
    )
}

/// POST `body` with `headers` and a content type: status and body.
pub fn post(
    url: &str,
    headers: &[(&str, &str)],
    content_type: Option<&str>,
    body: &str,
) -> (u16, String) {
    let mut req = ureq::post(url).timeout(Duration::from_secs(30));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    if let Some(c) = content_type {
        req = req.set("Content-Type", c);
    }
    let response = match req.send_string(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url}: {e}"),
    };
    (
        response.status(),
        response.into_string().unwrap_or_default(),
    )
}

/// A program on the `PATH` (or in /usr/sbin, /usr/bin).
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real Prometheus server scraping one target every second, killed on drop.
pub struct Prometheus {
    child: std::process::Child,
    pub address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    pub fn start(binary: &std::path::Path, target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: vigilo\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = std::process::Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={address}"))
            .arg("--log.level=warn")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        Prometheus {
            child,
            address,
            _dir: dir,
        }
    }

    /// The value of an instant query once it has one (scrapes take a second or two).
    pub fn query_until(&self, query: &str, within: Duration) -> f64 {
        let deadline = Instant::now() + within;
        let url = format!("http://{}/api/v1/query", self.address);
        loop {
            if let Ok(r) = ureq::get(&url).query("query", query).call() {
                let v: serde_json::Value = r.into_json().unwrap_or_default();
                if let Some(value) = v["data"]["result"][0]["value"][1].as_str() {
                    return value.parse().unwrap();
                }
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self._dir.path().join("prometheus.log"))
                    .unwrap_or_default();
                panic!("no value for {query} within {within:?}; prometheus log:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
