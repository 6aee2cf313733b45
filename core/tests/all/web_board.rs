//! The status board in a real headless Chromium (Debian's `chromium`, installed by
//! `scripts/install-test-peers.sh`), driven over the DevTools protocol: it loads under its
//! Content-Security-Policy, shows the items with their severity colours, values with their
//! units and a chart of each, updates live when an item goes Critical (a change marked on its
//! chart too), refuses an ack without the operator token, and, off loopback, reads only once
//! the operator has typed the token. Screenshots are saved for review
//! (`target/tmp/vigilo-board.png`, `target/tmp/vigilo-board-charts.png`; with
//! `VIGILO_UPDATE_SCREENSHOT=1` the second also replaces `docs/board.png`, the README's).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::web_support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};
use vigilo::Severity;
use vigilo::clock::ManualClock;
use web_support::{CPU_RULE, ROUTE_ALL, Running, get, which};

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

    let (_browser, mut page) = open_board(&r);
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

    let png = screenshot(&mut page);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("vigilo-board.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// Beside [`CPU_RULE`], a host's items over a minute on the test's clock: memory in bytes, a
/// disk ratio, a job queue (a plain number).
const CHART_RULES: &str = r#"
[[rule]]
name = "memory"
metric = "memory_used_bytes"
annotations = { summary = "{{value_human}} in use" }
[rule.major]
threshold = 21474836480

[[rule]]
name = "disk"
metric = "disk_usage_ratio"
[rule.minor]
threshold = "80%"
[rule.major]
threshold = "90%"

[[rule]]
name = "queue"
metric = "queue_depth"
[rule.major]
threshold = 100
"#;

/// Each row has a small chart of the item's recent values with its thresholds; a severity
/// change shows on it live; clicking the row opens a large chart with labelled thresholds,
/// ticks and changes, and the item's events; values, thresholds and summaries carry units. The
/// page runs under its Content-Security-Policy (an injected inline script does not run).
#[test]
fn each_item_has_a_chart_with_its_thresholds_live_changes_and_units() {
    let clock = ManualClock::new(web_support::start_time());
    let rules = format!("{CPU_RULE}{CHART_RULES}{ROUTE_ALL}");
    let r = Running::start_with_clock(&rules, "", &clock);
    let reg = r.monitor.registry();
    let host = [("host", "web-1")];
    let cpu = reg.gauge("cpu_usage_ratio", &host).unwrap();
    let memory = reg.gauge("memory_used_bytes", &host).unwrap();
    let disk = reg.gauge("disk_usage_ratio", &[("mount", "/var")]).unwrap();
    let queue = reg.gauge("queue_depth", &[]).unwrap();
    const STEPS: usize = 12;
    for i in 0..STEPS {
        let f = i as f64;
        let c = 0.42 + 0.03 * f + if i % 3 == 1 { 0.04 } else { 0.0 };
        let m = (18.0 + 0.12 * f) * 1073741824.0;
        memory.set(m);
        disk.set(0.83 + 0.002 * f);
        queue.set(20.0 + (f * 7.0) % 13.0);
        // The first in the slot the series appeared in (1 s on, so the evaluator sweeps), then
        // one slot (5 s) each.
        let after = Duration::from_secs(if i == 0 { 1 } else { 5 });
        web_support::step(&r, &clock, &cpu, "cpu", c, after);
        // Each step is read into its own slot.
        assert_eq!(get(&r.url("/api/charts"), None).0, 200);
    }

    let (_browser, mut page) = open_board(&r);
    page.wait_for(
        "document.querySelectorAll('#items tbody tr svg.spark').length === 4 && document.querySelector('#live').className === 'on'",
        Duration::from_secs(20),
    );

    // The Content-Security-Policy holds: an inline script put into the page does not run.
    let ran = page.eval(
        "(() => { const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.body.append(s); return window.injected === 1; })()",
    );
    assert_eq!(ran, json!(false), "inline script ran despite the policy");

    // Units on the board: the same text the API and the terminal board show.
    let row = |rule: &str| {
        format!(
            "[...document.querySelectorAll('#items tbody tr')].find(tr => tr.children[1].textContent === '{rule}')"
        )
    };
    let cells = |page: &mut Page, rule: &str| -> Vec<String> {
        let v = page.eval(&format!(
            "[...{}.children].map(td => td.textContent)",
            row(rule)
        ));
        serde_json::from_value(v).unwrap()
    };
    let cpu_row = cells(&mut page, "cpu");
    assert_eq!(
        (cpu_row[3].as_str(), cpu_row[4].as_str()),
        ("75.0 %", "70.0 %"),
        "{cpu_row:?}"
    );
    assert_eq!(
        cpu_row[8], "CPU at 75.0 % (threshold 70.0 %)",
        "{cpu_row:?}"
    );
    let memory_row = cells(&mut page, "memory");
    assert_eq!(
        (memory_row[3].as_str(), memory_row[4].as_str()),
        ("19.3 GiB", "20.0 GiB"),
        "{memory_row:?}"
    );
    assert_eq!(cells(&mut page, "queue")[3], "32");

    // The small chart: a point per step, the two threshold lines in their colours, critical
    // drawn above warning.
    let spark = page.eval(&format!(
        "(() => {{ const s = {}.querySelector('svg.spark'); return {{ points: Number(s.querySelector('path.values').dataset.points), lines: [...s.querySelectorAll('line.threshold')].map(l => [l.dataset.severity, l.dataset.label, l.getAttribute('stroke'), Number(l.getAttribute('y1'))]) }}; }})()",
        row("cpu")
    ));
    assert_eq!(spark["points"], json!(STEPS), "{spark}");
    let lines = spark["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{spark}");
    assert_eq!(lines[0][0], "warning");
    assert_eq!(lines[0][1], "70.0 %");
    assert_eq!(lines[0][2], Severity::Warning.colour());
    assert_eq!(lines[1][1], "95.0 %");
    assert!(lines[1][3].as_f64() < lines[0][3].as_f64(), "{spark}");

    // Live: with the fallback poll off, the event stream brings the change, marked on the chart.
    page.eval("clearInterval(window.vigiloPoller); 1");
    let t0 = Instant::now();
    clock.advance(Duration::from_secs(5));
    cpu.set(0.97);
    page.wait_for(
        &format!(
            "{}.querySelector('svg.spark line.change[data-to=\"critical\"]')",
            row("cpu")
        ),
        Duration::from_secs(10),
    );
    eprintln!(
        "the change was on the chart {:?} after the record",
        t0.elapsed()
    );
    assert_eq!(cells(&mut page, "cpu")[3], "97.0 %");

    // Clicking the row opens the large chart: labelled thresholds, ticks, the change, events.
    page.eval(&format!("{}.click(); 1", row("cpu")));
    page.wait_for(
        "document.querySelector('#detail svg.chart text.change-label') && document.querySelectorAll('#detail-events tbody tr[data-kind]').length > 0",
        Duration::from_secs(10),
    );
    let detail = page.eval(
        "(() => { const s = document.querySelector('#detail svg.chart'); const t = sel => [...s.querySelectorAll(sel)].map(e => e.textContent); return { title: document.querySelector('#detail-title').textContent, thresholds: t('text.threshold-label'), ticks: t('text.tick'), changes: t('text.change-label'), points: Number(s.querySelector('path.values').dataset.points), events: [...document.querySelectorAll('#detail-events tbody tr')].map(tr => tr.dataset.kind) }; })()",
    );
    assert_eq!(
        detail["thresholds"],
        json!(["warning 70.0 %", "critical 95.0 %"]),
        "{detail}"
    );
    assert!(
        detail["ticks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.as_str().unwrap().ends_with(" %")),
        "{detail}"
    );
    assert!(
        detail["changes"]
            .as_array()
            .unwrap()
            .contains(&json!("warning → critical")),
        "{detail}"
    );
    assert_eq!(detail["points"], json!(STEPS + 1), "{detail}");
    assert!(
        detail["title"].as_str().unwrap().contains("97.0 %"),
        "{detail}"
    );
    let events: Vec<String> = serde_json::from_value(detail["events"].clone()).unwrap();
    assert!(events.iter().any(|k| k == "transition"), "{events:?}");
    assert!(events.iter().any(|k| k == "opened"), "{events:?}");

    page.eval("window.scrollTo(0, 0); 1");
    let png = screenshot(&mut page);
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("vigilo-board-charts.png");
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {} ({} bytes)", path.display(), png.len());
    if std::env::var_os("VIGILO_UPDATE_SCREENSHOT").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/board.png");
        std::fs::write(&docs, &png).unwrap();
        eprintln!("updated {}", docs.display());
    }
}

/// A PNG of the page as it is.
fn screenshot(page: &mut Page) -> Vec<u8> {
    let shot = page.call("Page.captureScreenshot", json!({ "format": "png" }));
    base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().unwrap())
        .unwrap()
}

/// The SLO and canary panel: an SLO's budget and burn rates, a failed canary's score and verdict
/// in the critical colour.
#[test]
fn the_board_shows_slos_and_canaries() {
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

    let (_browser, mut page) = open_board(&r);
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

/// A headless Chromium showing `r`'s board (the browser ends when the first is dropped).
fn open_board(r: &Running) -> (Browser, Page) {
    let chromium = which("chromium")
        .or_else(|| which("chromium-browser"))
        .expect("chromium is not installed: run scripts/install-test-peers.sh (Debian package chromium)");
    let browser = Browser::start(&chromium);
    let mut page = browser.page();
    page.call("Page.enable", json!({}));
    page.call("Page.navigate", json!({ "url": r.url("/") }));
    (browser, page)
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

/// Off loopback with a token, the page loads but reads nothing until the operator types the
/// token; then it reads the status, the charts and the event stream with it (fetch sends the
/// token, which EventSource could not).
#[test]
fn off_loopback_the_board_reads_only_with_the_token() {
    let clock = std::sync::Arc::new(vigilo::clock::SystemClock);
    let rules = format!("{CPU_RULE}{ROUTE_ALL}");
    let r = Running::start_on(&rules, "0.0.0.0:0", "token = \"s3cret\"", clock);
    let cpu = r.monitor.registry().gauge("cpu_usage_ratio", &[]).unwrap();
    cpu.set(0.8);
    let (_browser, mut page) = open_board(&r);
    page.wait_for(
        "document.querySelector('#message').textContent.includes('type the operator token')",
        Duration::from_secs(10),
    );
    assert_eq!(
        page.eval("document.querySelectorAll('#items tbody tr').length"),
        json!(0)
    );
    page.eval("const t = document.querySelector('#token'); t.value = 's3cret'; t.dispatchEvent(new Event('input')); 1");
    page.wait_for(
        "document.querySelectorAll('#items tbody tr svg.spark').length === 1 && document.querySelector('#live').className === 'on' && document.querySelector('#message').textContent === ''",
        Duration::from_secs(10),
    );
    // Live through the token-carrying event stream.
    page.eval("clearInterval(window.vigiloPoller); 1");
    cpu.set(0.99);
    page.wait_for(
        "document.querySelector('#items tbody tr').dataset.severity === 'critical'",
        Duration::from_secs(10),
    );
}
