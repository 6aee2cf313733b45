//! Shared by the bundled-plugin tests (`bundled_*.rs`, `sdk_readme.rs`, `fleet.rs`): a tiny
//! loopback HTTP server that records what it receives, a minimal HTTP client, child processes
//! killed on drop, free ports, bounded waits, a real Alertmanager, and a sample alert.
//!
//! Everything listens on 127.0.0.1 and every loop is bounded in time.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use vigilo::Severity;
use vigilo::alert::{Alert, AlertStatus};
use vigilo::clock::Timestamp;
use vigilo_plugin_host::{
    ActionPlugin, ChannelPlugin, PluginHost, PluginHostConfig, PluginSettings,
};

/// How long a test waits for anything (a request, a peer to start).
pub const WAIT: Duration = Duration::from_secs(20);

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names lower-case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    /// The first value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }
}

/// A loopback HTTP/1.1 server answering every request with `status` (changeable) and
/// recording what it received. Stops when dropped.
pub struct HttpSink {
    pub addr: SocketAddr,
    status: Arc<Mutex<u16>>,
    received: Receiver<Received>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpSink {
    pub fn start() -> HttpSink {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let status = Arc::new(Mutex::new(200u16));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel();
        let (st, stp) = (Arc::clone(&status), Arc::clone(&stop));
        let thread = thread::spawn(move || {
            let started = Instant::now();
            // Bounded: a test never needs the server for more than a few minutes.
            while !stp.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(300) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let code = *st.lock().unwrap();
                        if let Some(r) = serve(stream, code) {
                            let _ = tx.send(r);
                        }
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpSink {
            addr,
            status,
            received: rx,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The `allowed_hosts` entry for this server.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The status of the following answers.
    pub fn set_status(&self, code: u16) {
        *self.status.lock().unwrap() = code;
    }

    /// The next request received, waiting at most [`WAIT`].
    pub fn next(&self) -> Received {
        self.received
            .recv_timeout(WAIT)
            .expect("the HTTP server received no request in time")
    }

    /// Every request received so far, without waiting.
    pub fn drain(&self) -> Vec<Received> {
        self.received.try_iter().collect()
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, status: u16) -> Option<Received> {
    stream.set_nonblocking(false).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v): &(String, String)| v.clone())
    };
    let mut body = Vec::new();
    if let Some(len) = get("content-length") {
        let mut buf = vec![0; len.parse().ok()?];
        reader.read_exact(&mut buf).ok()?;
        body = buf;
    } else if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; n + 2];
            reader.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let reason = if (200..300).contains(&status) {
        "OK"
    } else {
        "Error"
    };
    let answer =
        format!("HTTP/1.1 {status} {reason}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
    let mut stream = stream;
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
    Some(Received {
        method,
        path,
        headers,
        body,
    })
}

/// A minimal HTTP/1.1 request to a loopback peer: (status, body).
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad answer: {head}")))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `f` until it returns `Some`, at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if t0.elapsed() > limit {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed (and reaped) when dropped.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The absolute path of `program` on PATH (or the path itself if it names a file).
pub fn which(program: &str) -> Option<PathBuf> {
    let p = PathBuf::from(program);
    if p.is_absolute() {
        return p.is_file().then_some(p);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|c| c.is_file())
}

/// A REAL Prometheus Alertmanager (Debian's `prometheus-alertmanager`, installed by
/// `scripts/install-test-peers.sh`) on a free loopback port, with the given `alertmanager.yml`,
/// throw-away storage and no clustering (or as one peer of a loopback cluster); killed when dropped.
pub struct Alertmanager {
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    _child: KillOnDrop,
}

impl Alertmanager {
    /// Starts it with `config` (the text of `alertmanager.yml`) and waits until it is ready.
    pub fn start(config: &str) -> Alertmanager {
        Alertmanager::start_with(config, &["--cluster.listen-address=".to_owned()])
    }

    /// Starts one peer of a cluster on loopback: gossip on `cluster_port`, joining the peers
    /// gossiping on `peers` (short gossip and settle times, as a test wants).
    pub fn start_peer(config: &str, cluster_port: u16, peers: &[u16]) -> Alertmanager {
        let mut args = vec![
            format!("--cluster.listen-address=127.0.0.1:{cluster_port}"),
            "--cluster.gossip-interval=50ms".to_owned(),
            "--cluster.settle-timeout=2s".to_owned(),
        ];
        args.extend(
            peers
                .iter()
                .map(|p| format!("--cluster.peer=127.0.0.1:{p}")),
        );
        Alertmanager::start_with(config, &args)
    }

    fn start_with(config: &str, cluster_args: &[String]) -> Alertmanager {
        let bin = which("prometheus-alertmanager")
            .or_else(|| which("alertmanager"))
            .unwrap_or_else(|| {
                panic!(
                    "prometheus-alertmanager is not installed: run scripts/install-test-peers.sh \
                     (it installs the Debian package prometheus-alertmanager)"
                )
            });
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("alertmanager.yml");
        std::fs::write(&file, config).unwrap();
        let storage = dir.path().join("data");
        std::fs::create_dir(&storage).unwrap();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let child = Command::new(&bin)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address={addr}"))
            .args(cluster_args)
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut child = KillOnDrop(child);
        let ready = wait_for(WAIT, || {
            if let Ok(Some(status)) = child.0.try_wait() {
                let log = std::fs::read_to_string(dir.path().join("alertmanager.log"))
                    .unwrap_or_default();
                panic!("alertmanager exited with {status}:\n{log}");
            }
            matches!(http_request(addr, "GET", "/-/ready", None), Ok((200, _))).then_some(())
        });
        assert!(
            ready.is_some(),
            "alertmanager on {addr} was not ready within {WAIT:?}"
        );
        Alertmanager {
            addr,
            dir,
            _child: child,
        }
    }

    /// The active alerts named `alertname` (`GET /api/v2/alerts`).
    pub fn alerts(&self, alertname: &str) -> Vec<serde_json::Value> {
        let (status, body) = http_request(self.addr, "GET", "/api/v2/alerts", None).unwrap();
        assert_eq!(status, 200, "{body}");
        let all: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
        all.into_iter()
            .filter(|a| a["labels"]["alertname"] == alertname)
            .collect()
    }

    /// What it logged (warnings and errors), for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }
}

/// Builds the guest `package` with `vigilo-plugin-build` and loads it as a channel.
pub fn load_channel(
    package: &str,
    settings: impl FnOnce(&mut PluginSettings),
) -> (PluginHost, ChannelPlugin) {
    load(package, settings, PluginHost::load_channel)
}

/// Builds the guest `package` with `vigilo-plugin-build` and loads it as an action.
pub fn load_action(
    package: &str,
    settings: impl FnOnce(&mut PluginSettings),
) -> (PluginHost, ActionPlugin) {
    load(package, settings, PluginHost::load_action)
}

/// Builds `package`, applies `settings` and loads it with `load` (channel or action).
fn load<P, E: std::fmt::Display>(
    package: &str,
    settings: impl FnOnce(&mut PluginSettings),
    load: impl FnOnce(&PluginHost, PluginSettings) -> Result<P, E>,
) -> (PluginHost, P) {
    let wasm = vigilo_plugin_build::build_guest(package)
        .unwrap_or_else(|e| panic!("building {package}: {e}"));
    // The tests' compilation cache (see `common::cache_dir`): each bundled component is
    // compiled once across the tests, not once per test.
    let host = PluginHost::new(PluginHostConfig {
        cache_dir: Some(vigilo_plugin_build::guest_target_dir().join("wasmtime-cache")),
        ..PluginHostConfig::default()
    })
    .unwrap();
    let mut s = PluginSettings::new(package, wasm);
    settings(&mut s);
    let plugin = load(&host, s).unwrap_or_else(|e| panic!("loading {package}: {e}"));
    (host, plugin)
}

/// A firing Major alert on `host.cpu.usage` (value 93.5, threshold 80) of `web-1`.
pub fn sample_alert() -> Alert {
    Alert::builder("cpu-high", Severity::Major)
        .metric("host.cpu.usage")
        .label("host", "web-1")
        .label("team", "ops")
        .annotation("runbook", "https://runbooks.example/cpu")
        .annotation("summary", "CPU at 93.5% on web-1")
        .previous(Severity::Warning)
        .value(93.5)
        .threshold(80.0)
        .since(Timestamp::from_secs(1_700_000_000))
        .at(Timestamp::from_secs(1_700_000_060))
        .idempotency_key("cpu-high{host=\"web-1\"}@1700000060000000000:4")
        .recipient("ops@example.com")
        .recipient("+82-10-1234-5678")
        .build()
}

/// The same item back to normal.
pub fn resolved(mut a: Alert) -> Alert {
    a.previous = a.severity;
    a.severity = Severity::Normal;
    a.status = AlertStatus::Resolved;
    a.value = Some(12.0);
    a.since = a.at;
    a.at = Timestamp::from_secs(1_700_000_360);
    a.idempotency_key = "cpu-high{host=\"web-1\"}@1700000360000000000:0".into();
    a
}
