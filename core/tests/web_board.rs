//! The status board in a real headless Chromium (Debian's `chromium`, installed by
//! `scripts/install-test-peers.sh`), driven over the DevTools protocol: it loads, shows the
//! items with their severity colours, updates live when an item goes Critical, and refuses an
//! ack without the operator token. A screenshot is saved for review
//! (`target/tmp/vigilo-board.png`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod web_support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};
use vigilo::Severity;
use web_support::{Running, which};

/// The seed scenario: a host's CPU, memory and disk, beside the job queue of
/// [`web_support::CONFIG`].
const HOST_RULES: &str = r#"
[[rule]]
name = "cpu"
metric = "cpu_usage_ratio"
[rule.warning]
threshold = 0.7
[rule.critical]
threshold = 0.95

[[rule]]
name = "memory"
metric = "memory_usage_ratio"
[rule.major]
threshold = 0.9

[[rule]]
name = "disk"
metric = "disk_usage_ratio"
[rule.minor]
threshold = 0.8
"#;

#[test]
fn the_board_shows_the_items_updates_live_and_refuses_an_ack_without_the_token() {
    let chromium = which("chromium")
        .or_else(|| which("chromium-browser"))
        .expect("chromium is not installed: run scripts/install-test-peers.sh (Debian package chromium)");
    let rules = format!("{HOST_RULES}{}", web_support::CONFIG);
    let r = Running::start_with(&rules, "token = \"s3cret\"");
    let reg = r.monitor.registry();
    reg.gauge("cpu_usage_ratio", &[("host", "web-1")])
        .unwrap()
        .set(0.75);
    reg.gauge("memory_usage_ratio", &[("host", "web-1")])
        .unwrap()
        .set(0.5);
    reg.gauge("disk_usage_ratio", &[("mount", "/")])
        .unwrap()
        .set(0.85);
    let queue = reg.gauge("queue_depth", &[]).unwrap();
    queue.set(150.0);
    web_support::incident(&r.monitor);

    let browser = Browser::start(&chromium);
    let mut page = browser.page();
    page.call("Page.enable", json!({}));
    page.call("Page.navigate", json!({ "url": r.url("/") }));
    page.wait_for(
        "document.querySelectorAll('#items tbody tr').length === 4 && document.querySelector('#live').className === 'on'",
        Duration::from_secs(20),
    );

    // Worst first, each severity cell in the severity's colour.
    let rows = page.eval(
        "[...document.querySelectorAll('#items tbody tr')].map(tr => [tr.children[1].textContent, tr.dataset.severity, getComputedStyle(tr.querySelector('td.sev')).backgroundColor])",
    );
    let rows: Vec<(String, String, String)> = serde_json::from_value(rows).unwrap();
    let expected = [
        ("queue", Severity::Major),
        ("disk", Severity::Minor),
        ("cpu", Severity::Warning),
        ("memory", Severity::Normal),
    ];
    assert_eq!(rows.len(), expected.len(), "{rows:?}");
    for ((rule, severity, colour), (want_rule, want)) in rows.iter().zip(expected) {
        assert_eq!(rule, want_rule, "{rows:?}");
        assert_eq!(severity, want.name());
        assert_eq!(colour, &rgb(want.colour()), "{rule}");
    }
    assert_eq!(
        page.eval("document.querySelectorAll('#incidents tbody tr[data-incident]').length"),
        json!(3),
        "queue, disk and cpu are open incidents"
    );

    // Live: with the fallback poll switched off, only the event stream can bring the change.
    page.eval("clearInterval(window.vigiloPoller); 1");
    let t0 = Instant::now();
    queue.set(5000.0);
    page.wait_for(
        "document.querySelector('#items tbody tr').dataset.severity === 'critical'",
        Duration::from_secs(10),
    );
    eprintln!(
        "board showed the critical item {:?} after the record",
        t0.elapsed()
    );

    // Without the token the buttons are disabled and the API refuses the ack.
    assert_eq!(
        page.eval("document.querySelector('#incidents button').disabled"),
        json!(true)
    );
    let id = r.monitor.incidents().unwrap()[0].id.0;
    let status = page.eval_async(&format!(
        "fetch('/api/incidents/{id}/ack', {{method: 'POST', headers: {{'Content-Type': 'application/json'}}, body: JSON.stringify({{by: 'someone'}})}}).then(r => r.status)"
    ));
    assert_eq!(status, json!(401));
    assert!(
        r.monitor
            .incidents()
            .unwrap()
            .iter()
            .all(|i| i.ack.is_none())
    );

    // With the token typed in, the button acks.
    page.eval("const t = document.querySelector('#token'); t.value = 's3cret'; t.dispatchEvent(new Event('input')); 1");
    page.eval("document.querySelector('#incidents button').click(); 1");
    page.wait_for(
        "document.querySelector('#message').textContent === 'done'",
        Duration::from_secs(5),
    );
    assert!(
        r.monitor
            .incidents()
            .unwrap()
            .iter()
            .any(|i| i.ack.is_some())
    );

    let shot = page.call("Page.captureScreenshot", json!({ "format": "png" }));
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap();
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("vigilo-board.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// The SLO and canary panel: an SLO's budget and burn rates, a failed canary's score and verdict
/// in the critical colour.
#[test]
fn the_board_shows_slos_and_canaries() {
    let chromium = which("chromium")
        .or_else(|| which("chromium-browser"))
        .expect("chromium is not installed: run scripts/install-test-peers.sh (Debian package chromium)");
    let slo = r#"
[[slo]]
name = "checkout"
objective = "99.9%"
window = "28d"
bad = { metric = "http_requests_errors_total" }
total = { metric = "http_requests_total" }
"#;
    let r = Running::start_with(&format!("{slo}{}", web_support::CONFIG), "");
    let reg = r.monitor.registry();
    reg.counter("http_requests_total", &[]).unwrap().add(1000);
    reg.counter("http_requests_errors_total", &[]).unwrap();
    r.monitor.tick_slos();
    // What a finished, failed canary run leaves behind.
    reg.gauge("vigilo_canary_score", &[("canary", "checkout-v2")])
        .unwrap()
        .set(9.1);
    reg.gauge("vigilo_canary_verdict", &[("canary", "checkout-v2")])
        .unwrap()
        .set(2.0);

    let browser = Browser::start(&chromium);
    let mut page = browser.page();
    page.call("Page.enable", json!({}));
    page.call("Page.navigate", json!({ "url": r.url("/") }));
    page.wait_for(
        "document.querySelector('#slos tbody tr[data-slo]') && document.querySelector('#canaries tbody tr[data-canary]')",
        Duration::from_secs(20),
    );
    let slo = page.eval(
        "[...document.querySelector('#slos tbody tr[data-slo]').children].map(td => td.textContent)",
    );
    let slo: Vec<String> = serde_json::from_value(slo).unwrap();
    assert_eq!(slo[0], "checkout", "{slo:?}");
    assert_eq!(slo[1], "99.90 %", "{slo:?}");
    assert_eq!(slo[3], "100.0 %", "the budget is untouched: {slo:?}");
    assert!(slo[4].contains("1h 0×"), "burn rates per window: {slo:?}");
    assert_eq!(slo[5], "normal", "{slo:?}");
    let canary = page.eval(
        "(() => { const tr = document.querySelector('#canaries tbody tr[data-canary]'); return [...tr.children].map(td => td.textContent).concat([getComputedStyle(tr.children[2]).backgroundColor]); })()",
    );
    let canary: Vec<String> = serde_json::from_value(canary).unwrap();
    assert_eq!(
        canary,
        [
            "checkout-v2",
            "9.1",
            "fail",
            &rgb(Severity::Critical.colour())
        ]
    );
}

/// `#rrggbb` as the browser reports a computed colour.
fn rgb(hex: &str) -> String {
    let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
    format!("rgb({}, {}, {})", c(1), c(3), c(5))
}

/// A headless Chromium with its DevTools endpoint, killed on drop.
struct Browser {
    child: std::process::Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start(binary: &std::path::Path) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1280,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        // Chromium writes the port it chose into the profile.
        let file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let port = loop {
            if let Some(p) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.parse().ok()))
            {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "chromium did not open its DevTools port"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Browser {
            child,
            port,
            _profile: profile,
        }
    }

    /// The DevTools connection of the browser's first page.
    fn page(&self) -> Page {
        let deadline = Instant::now() + Duration::from_secs(10);
        let url = loop {
            let list: Value = ureq::get(&format!("http://127.0.0.1:{}/json/list", self.port))
                .call()
                .ok()
                .and_then(|r| r.into_json().ok())
                .unwrap_or_default();
            let page = list
                .as_array()
                .and_then(|l| l.iter().find(|t| t["type"] == "page"))
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                .map(str::to_owned);
            if let Some(u) = page {
                break u;
            }
            assert!(Instant::now() < deadline, "no page target");
            std::thread::sleep(Duration::from_millis(50));
        };
        let (socket, _) = tungstenite::connect(url.as_str()).unwrap();
        Page { socket, next: 0 }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Page {
    socket: WebSocket<tungstenite::stream::MaybeTlsStream<TcpStream>>,
    next: u64,
}

impl Page {
    /// Sends a DevTools command and returns its result (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({ "id": id, "method": method, "params": params }).to_string();
        self.socket.send(Message::Text(msg.into())).unwrap();
        loop {
            let Message::Text(text) = self.socket.read().unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    fn evaluate(&mut self, expression: &str, promise: bool) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": promise }),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    fn eval(&mut self, expression: &str) -> Value {
        self.evaluate(expression, false)
    }

    fn eval_async(&mut self, expression: &str) -> Value {
        self.evaluate(expression, true)
    }

    /// Waits until `condition` (a JavaScript expression) is true.
    fn wait_for(&mut self, condition: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.evaluate(&format!("(() => {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"), false)
                == json!(true)
            {
                return;
            }
            if Instant::now() > deadline {
                let body = self.eval("document.body ? document.body.innerText : ''");
                panic!("not true within {within:?}: {condition}\npage:\n{body}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
