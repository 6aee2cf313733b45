//! The host agent as a user runs it: the demo from end to end, and the incident commands
//! against a running agent's database.

#![allow(clippy::unwrap_used, clippy::expect_used)] // in a test, a failed unwrap is the test failing

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn agent() -> Command {
    Command::new(env!("CARGO_BIN_EXE_host-agent"))
}

#[test]
fn the_demo_ends_by_itself_and_its_receiver_got_every_notification() {
    let out = agent()
        .args(["--demo", "--color", "never"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for expected in [
        "inbox received: firing   warning  demo-load",
        "inbox received: firing   major    demo-load",
        "inbox received: firing   critical demo-load",
        "clear-cache #1 succeeded (exit 0)",
        "cache of demo-load cleared",
        "inbox received: resolved normal   demo-load",
        "demo load at 20",
        "resolved #1 demo-load",
        "state: SQLite file",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    let received = stdout.matches("inbox received:").count();
    assert_eq!(received, 4, "four notifications, each once:\n{stdout}");
}

const CONFIG: &str = r#"
[host]
interval = "200ms"
items = ["processes"]

[[rule]]
name = "busy"
metric = "host_processes"
[rule.warning]
threshold = 0
"#;

#[test]
fn incidents_can_be_listed_acked_and_silenced_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let db = dir.path().join("agent.db");
    let db_arg = db.to_str().unwrap();
    let mut running = agent()
        .args([
            "--config",
            config.to_str().unwrap(),
            "--db",
            db_arg,
            "--iterations",
            "600",
            "--color",
            "never",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let cli = |args: &[&str]| {
        let out = agent().args(["--db", db_arg]).args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let give_up = Instant::now() + Duration::from_secs(60);
    let listed = loop {
        let (ok, out) = cli(&["incidents"]);
        if ok && out.contains("#1") {
            break out;
        }
        assert!(Instant::now() < give_up, "no incident appeared: {out}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(listed.contains("busy"), "{listed}");
    let (ok, out) = cli(&["ack", "1", "--by", "kim", "--comment", "looking"]);
    assert!(
        ok && out.contains("incident 1 acknowledged by kim"),
        "{out}"
    );
    let (ok, out) = cli(&["silence", "--rule", "busy", "--for", "1h", "--by", "kim"]);
    assert!(ok && out.contains("silence 1 created"), "{out}");
    let (ok, out) = cli(&["silences"]);
    assert!(ok && out.contains("silence 1"), "{out}");
    let (ok, out) = cli(&["expire-silence", "1"]);
    assert!(ok && out.contains("silence 1 expired"), "{out}");
    let (ok, out) = cli(&["incidents"]);
    assert!(ok && out.contains("acked by kim (looking)"), "{out}");
    let (ok, out) = cli(&["history", "--rule", "busy"]);
    assert!(
        ok && out.contains("opened #1") && out.contains("acked #1"),
        "{out}"
    );
    let (ok, out) = cli(&["ack", "99", "--by", "kim"]);
    assert!(!ok && out.contains("no open incident #99"), "{out}");
    let _ = running.kill();
    let _ = running.wait();
    // With no agent running, a request waits in the database for the next start.
    let (ok, out) = cli(&["unack", "1"]);
    assert!(ok && out.contains("no running agent answered"), "{out}");
}

/// `try-plugin` loads one plugin from a settings file, sends it a firing and a resolved alert,
/// and prints each HTTP request it made, the result and the time taken.
#[test]
fn try_plugin_sends_a_firing_and_a_resolved_alert_and_shows_the_requests() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let addr = server.server_addr().to_ip().unwrap();
    let received = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for _ in 0..2 {
            let mut request = server.recv().unwrap();
            let mut body = String::new();
            request.as_reader().read_to_string(&mut body).unwrap();
            bodies.push(body);
            request.respond(tiny_http::Response::empty(204)).unwrap();
        }
        bodies
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hook.toml");
    std::fs::write(
        &file,
        format!(
            "[[channel]]\nname = \"hook\"\nplugin = \"webhook\"\nallowed_hosts = [\"{addr}\"]\n\
             config = {{ url = \"http://{addr}/alerts\" }}\n"
        ),
    )
    .unwrap();
    let out = agent()
        .args([
            "try-plugin",
            file.to_str().unwrap(),
            "--severity",
            "critical",
        ])
        .args(["--label", "host=web-1", "--annotation", "summary=disk full"])
        .env("XDG_STATE_HOME", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("POST http://{addr}/alerts -> 204")),
        "{stdout}"
    );
    assert!(stdout.contains("firing (critical):"), "{stdout}");
    assert!(stdout.contains("resolved (from critical):"), "{stdout}");
    assert_eq!(stdout.matches("delivered in").count(), 2, "{stdout}");
    let bodies = received.join().unwrap();
    assert!(
        bodies[0].contains("\"summary\":\"disk full\""),
        "{}",
        bodies[0]
    );
    assert!(
        bodies[1].contains("\"status\":\"resolved\""),
        "{}",
        bodies[1]
    );

    // A plugin that fails: the typed error is shown and the command fails.
    std::fs::write(
        &file,
        "[[channel]]\nname = \"hook\"\nplugin = \"webhook\"\nallowed_hosts = [\"127.0.0.1:9\"]\n\
         config = { url = \"http://203.0.113.9/alerts\" }\n",
    )
    .unwrap();
    let out = agent()
        .args(["try-plugin", file.to_str().unwrap(), "--no-resolve"])
        .env("XDG_STATE_HOME", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("was denied"), "{stdout}");
    assert!(stdout.contains("denied: host not allowed"), "{stdout}");
}

#[test]
fn with_listen_the_agent_serves_its_metrics_and_the_board() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let mut child = agent()
        .args([
            "--listen",
            "127.0.0.1:0",
            "--color",
            "never",
            "--interval",
            "200ms",
        ])
        .arg("--db")
        .arg(dir.path().join("agent.db"))
        .env("XDG_STATE_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let address = loop {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "the agent ended");
        if let Some(rest) = line
            .trim()
            .strip_prefix("host-agent: status board on http://")
        {
            // The start-up line says who may read and write.
            assert!(
                rest.contains(
                    "reads open to this machine only (loopback); writes refused (no token)"
                ),
                "{line}"
            );
            break rest.split('/').next().unwrap().to_owned();
        }
    };
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(&address).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    // The host items appear after the collector's first refreshes.
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let m = get("/metrics");
        if m.contains("vigilo_item_severity{") || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let board = get("/");
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        board.contains("<title>vigilo status board</title>"),
        "{board:.300}"
    );
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics:.200}");
    assert!(
        metrics.contains("# TYPE host_cpu_usage_ratio gauge"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigilo_item_severity{rule=\"cpu\""),
        "{metrics}"
    );
    assert!(metrics.contains("vigilo_incidents_open "));
}

/// `--listen` on an address other than loopback, with no token in the configuration, is refused
/// before anything starts, and the message names the opt-in; `--public-read` is that opt-in.
#[test]
fn a_public_listen_address_without_a_token_is_refused_unless_public_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = agent()
        .args(["--listen", "0.0.0.0:0", "--once"])
        .arg("--db")
        .arg(dir.path().join("agent.db"))
        .env("XDG_STATE_HOME", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("--listen 0.0.0.0:0") && stderr.contains("not a loopback address"),
        "{stderr}"
    );
    assert!(stderr.contains("--public-read"), "{stderr}");
    assert!(stderr.contains("token"), "{stderr}");
}
