//! `host-agent --demo`: the whole path in under a minute, without root. A synthetic item goes
//! through Warning, Major and Critical; each notification travels through the bundled webhook
//! plugin to the agent's inbox and is printed as it arrives; at Critical the bundled
//! exec-recovery plugin runs a granted, harmless script; the item comes back to Normal and the
//! resolve arrives with the script's outcome; then the incident's history and the SQLite file.

use std::os::unix::fs::PermissionsExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vigilo::config::Config;
use vigilo::pipeline::{EventKind, HistoryQuery};

use crate::inbox::Inbox;

const DEMO: &str = include_str!("../demo.toml");

/// How long the demo waits for any one step.
const STEP: Duration = Duration::from_secs(30);

pub fn run(color: &str) -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("vigilo-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("clear-cache.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"cache of $1 cleared\"\n")?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let db = dir.join("demo.db");

    let (tx, received) = mpsc::channel();
    let inbox = Inbox::start("127.0.0.1:0".parse()?, move |r| {
        let _ = tx.send(r.line());
    })?;
    let text = DEMO
        .replace("{inbox}", &inbox.addr().to_string())
        .replace("{db}", &db.display().to_string())
        .replace("{script}", &script.display().to_string());
    let config = Config::from_str_named(&text, "examples/host-agent/demo.toml")?;
    let bold = |s: &str| {
        if color == "never" {
            s.to_owned()
        } else {
            format!("\x1b[1m{s}\x1b[0m")
        }
    };
    println!("{}", bold("vigilo demo: one item through the whole path"));
    println!(
        "  receiver (the agent's inbox): http://{}/alerts",
        inbox.addr()
    );
    println!("  state: SQLite file {}", db.display());
    let monitor = crate::start(config, false)?;
    let events = monitor.subscribe()?;
    let load = monitor.registry().gauge("demo_load", &[("host", "demo")])?;
    load.set(10.0);

    let started = Instant::now();
    let expect = |what: &str| -> Result<(), Box<dyn std::error::Error>> {
        let line = received
            .recv_timeout(STEP)
            .map_err(|_| format!("no notification for {what} within {STEP:?}"))?;
        println!("  inbox received: {line}");
        Ok(())
    };
    // A short pause between steps, so a person can follow.
    let pause = || std::thread::sleep(Duration::from_millis(700));
    for (value, what) in [(60.0, "warning"), (85.0, "major"), (97.0, "critical")] {
        pause();
        println!("{}", bold(&format!("→ demo_load = {value} ({what})")));
        load.set(value);
        expect(what)?;
    }
    println!(
        "{}",
        bold("→ recovery: the exec-recovery plugin runs the granted script")
    );
    let give_up = Instant::now() + STEP;
    loop {
        let e = events
            .recv_timeout(give_up.saturating_duration_since(Instant::now()))
            .map_err(|_| "the recovery action did not finish")?;
        if e.kind == EventKind::ActionFinished {
            println!("  {}", e.detail);
            break;
        }
    }
    pause();
    println!("{}", bold("→ demo_load = 20: back to normal"));
    load.set(20.0);
    expect("the resolve")?;
    monitor.settle(STEP)?;
    let id = monitor
        .history(HistoryQuery {
            kinds: vec![EventKind::Opened],
            ..HistoryQuery::default()
        })?
        .last()
        .and_then(|e| e.incident);
    println!("{}", bold("→ the incident's history"));
    for e in monitor.history(HistoryQuery {
        incident: id,
        limit: 100,
        ..HistoryQuery::default()
    })? {
        println!("  {e}");
    }
    monitor.stop(Duration::from_secs(5))?;
    println!(
        "{}",
        bold(&format!(
            "done in {:.1} s. The history stays in {} — try:\n  cargo run -p host-agent -- --db {} history",
            started.elapsed().as_secs_f64(),
            db.display(),
            db.display()
        ))
    );
    Ok(())
}
