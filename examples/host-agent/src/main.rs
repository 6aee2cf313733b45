//! `host-agent`: watches this machine through vigilo — host items, the rules of
//! `examples/rules.toml` (or `--config`), the alert pipeline delivering through the bundled
//! webhook plugin to the agent's own inbox, state kept in SQLite, its own log
//! (`host-agent.log` in its state folder) watched by a `[[log]]` and its inbox by a
//! `[[probe]]` — and prints a colour-coded
//! status board with open incidents and the notifications received, redrawn in place on a
//! terminal and appended otherwise.
//!
//! ```text
//! host-agent                      # every second until Ctrl-C
//! host-agent --once               # one board, then exit
//! host-agent --demo               # the whole path on a synthetic item, in under a minute
//! host-agent --config my.toml --interval 5s --iterations 3 --watch nginx
//! host-agent incidents            # and ack, unack, silence, expire-silence, silences, history
//! ```

mod agent_log;
mod board;
mod cli;
mod demo;
mod inbox;
mod table;
mod try_plugin;

use std::collections::VecDeque;
use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use crossbeam_channel::select;
use vigilo::config::Config;
use vigilo::host::RefreshNotice;
use vigilo::monitor::Monitor;
use vigilo::pipeline::{Event, EventKind};

/// The default rules: the seed scenario and sensible host rules.
const DEFAULT_RULES: &str = include_str!("../../rules.toml");
/// The default alerting: the bundled webhook posting to the agent's inbox, SQLite state.
const DEFAULT_ALERTING: &str = include_str!("../alerting.toml");

/// Watches this machine: host items, rules, alerts through a Wasm plugin, a status board.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(subcommand)]
    command: Option<cli::Command>,
    /// Rules, channels, routes and settings (TOML); default: examples/rules.toml with alerts
    /// delivered to the agent's inbox.
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The SQLite file of incidents, notifications and history (default:
    /// $XDG_STATE_HOME/vigilo/host-agent.db, or ~/.local/state/vigilo/host-agent.db).
    #[arg(long, value_name = "FILE", global = true)]
    db: Option<PathBuf>,
    /// Where the agent's inbox (the default webhook's receiver) listens.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR")]
    inbox: SocketAddr,
    /// Time between refreshes: "1s", "500ms", "1m30s"… (default: the config's host.interval).
    #[arg(long, value_parser = parse_interval)]
    interval: Option<Duration>,
    /// Colour the severities: auto (on a terminal), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
    /// Print one board (measured over one interval) and exit.
    #[arg(long, conflicts_with = "iterations")]
    once: bool,
    /// Print this many boards and exit (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,
    /// A process name to report as up or down; repeat for several.
    #[arg(long = "watch", value_name = "NAME")]
    watch: Vec<String>,
    /// Serve the Prometheus exposition (`/metrics`), the live status board (`/`) and the
    /// status API on ADDR, e.g. 127.0.0.1:9187 (the config's `[http]` section does the same;
    /// this overrides its address). An address other than loopback needs the config's
    /// `[http] token` (reads and writes then need it) or --public-read.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// With --listen on an address other than loopback: let the network read the board, the
    /// status, the history and /metrics without the token (every item, label, annotation, ack
    /// comment and history entry). Same as `[http] public_read = true`.
    #[arg(long)]
    public_read: bool,
    /// Show the whole path on a synthetic item: Warning, Major, Critical delivered through the
    /// webhook plugin, a recovery script run by the exec-recovery plugin, the resolve, the
    /// incident's history. Ends by itself in under a minute; needs no root.
    #[arg(long, conflicts_with_all = ["once", "iterations"])]
    demo: bool,
}

fn parse_interval(s: &str) -> Result<Duration, String> {
    match vigilo::duration::parse_duration(s) {
        Ok(d) if d.is_zero() => Err("the interval must be greater than zero".to_owned()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match &args.command {
        Some(command) => cli::run(command, &db_path(&args)),
        None if args.demo => demo::run(&args.color),
        None => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Configuration errors print with the offending line underlined.
            match e.downcast_ref::<vigilo::config::ConfigError>() {
                Some(c) => eprintln!("host-agent: {}", c.with_excerpt()),
                None => eprintln!("host-agent: {e}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// The database: `--db`, the config's `[store] path`, or the default place.
fn db_path(args: &Args) -> PathBuf {
    if let Some(db) = &args.db {
        return db.clone();
    }
    if let Some(path) = args
        .config
        .as_ref()
        .and_then(|c| Config::from_file(c).ok())
        .and_then(|c| c.pipeline.store.path)
    {
        return path;
    }
    default_db()
}

/// The agent's state folder: $XDG_STATE_HOME/vigilo, ~/.local/state/vigilo, or a temporary one.
fn state_dir() -> PathBuf {
    std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir)
        .join("vigilo")
}

fn default_db() -> PathBuf {
    state_dir().join("host-agent.db")
}

/// Finds a bundled plugin, building it from `plugins/guests` the first time.
pub fn bundled(name: &str) -> Result<PathBuf, String> {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        eprintln!(
            "host-agent: building the bundled plugins if needed (the first time takes a minute or two) …"
        );
    });
    vigilo_plugin_build::build_guest(&format!("vigilo-{name}")).map_err(|e| e.to_string())
}

/// A monitor of `config` whose plugins come from [`bundled`].
pub fn start(mut config: Config, host_items: bool) -> Result<Monitor, Box<dyn std::error::Error>> {
    // Compiled plugins are cached, so later starts do not compile them again.
    let cache = state_dir().join("wasm-cache");
    if config.plugins.cache_dir.is_none() && cache.is_absolute() {
        std::fs::create_dir_all(&cache)?;
        config.plugins.cache_dir = Some(cache);
    }
    let loader = vigilo_plugin_host::loader(&config)?.with_resolver(bundled);
    let builder = Monitor::builder(config).loader(Arc::new(loader));
    let builder = if host_items {
        builder
    } else {
        builder.without_host_items()
    };
    Ok(builder.start()?)
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let limit = if args.once { Some(1) } else { args.iterations };
    if limit == Some(0) {
        return Ok(());
    }
    let inbox = inbox::Inbox::start(args.inbox, |_| {})?;
    let db = db_path(args);
    // Its own log, which the default configuration watches.
    let own_log = state_dir().join("host-agent.log");
    agent_log::install(&own_log)?;
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => {
            let text = format!("{DEFAULT_RULES}\n{DEFAULT_ALERTING}")
                .replace("{inbox}", &inbox.addr().to_string())
                .replace("{db}", &db.display().to_string())
                .replace("{log}", &own_log.display().to_string());
            Config::from_str_named(
                &text,
                "examples/rules.toml + examples/host-agent/alerting.toml",
            )?
        }
    };
    if args.db.is_some() {
        config.pipeline.store.path = Some(db);
    }
    if let Some(interval) = args.interval {
        config.host.interval = interval;
    }
    config
        .host
        .processes_watched
        .extend(args.watch.iter().cloned());
    if args.listen.is_some() || args.public_read {
        let mut http = config.http.take().unwrap_or_default();
        if let Some(listen) = &args.listen {
            http.listen = listen.clone();
        }
        http.public_read |= args.public_read;
        // Refused here, before anything starts: a public address needs a token or the opt-in.
        http.validate().map_err(|e| {
            format!(
                "--listen {}: {e} (with this agent: --public-read)",
                http.listen
            )
        })?;
        config.http = Some(http);
    }
    let interval = config.host.interval;
    let store_path = config.pipeline.store.path.clone();
    let http = config.http.clone();
    let monitor = start(config, true)?;
    if let (Some(address), Some(http)) = (monitor.http_address(), &http) {
        eprintln!(
            "host-agent: status board on http://{address}/ (metrics at /metrics); {}",
            http.access()
        );
    }
    let events = monitor.subscribe()?;
    let notices = monitor
        .host_refreshes()
        .ok_or("the host collector is not running")?;
    let colour = match args.color.as_str() {
        "always" => true,
        "never" => false,
        _ => io::stdout().is_terminal(),
    };
    let mut recent: VecDeque<Event> = VecDeque::new();

    let (quit_tx, quit_rx) = crossbeam_channel::bounded(1);
    if let Err(e) = ctrlc::set_handler(move || {
        let _ = quit_tx.try_send(());
    }) {
        eprintln!("host-agent: Ctrl-C will not stop cleanly: {e}");
    }

    let stdout = io::stdout();
    let terminal = stdout.is_terminal();
    let mut screen = table::Screen::new(stdout.lock(), terminal);
    let mut printed = 0;
    loop {
        select! {
            recv(quit_rx) -> _ => break,
            recv(notices) -> notice => {
                // Disconnected: the collector thread is gone; `stop` below says why.
                let Ok(notice) = notice else { break };
                // The first refresh only starts the rate windows.
                if notice.seq == 1 {
                    continue;
                }
                recent.extend(events.try_iter().filter(|e| e.kind == EventKind::Transition));
                while recent.len() > 8 {
                    recent.pop_front();
                }
                let status = monitor.status()?;
                let text = format!(
                    "{}\n{}\n{}\n{}\n{}\n{}\n",
                    header(&notice, interval, terminal, store_path.as_deref()),
                    board::status(&status.status, colour),
                    board::incidents(&status.incidents, colour),
                    board::notifications(&inbox.latest(), inbox.addr()),
                    board::coverage(&status.coverage),
                    board::transitions(&recent),
                ) + &table::render("HOST ITEMS", &table::rows(monitor.registry()));
                match screen.draw(&text) {
                    Ok(()) => {}
                    // The reader went away (`host-agent | head`): stop quietly.
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => break,
                    Err(e) => return Err(e.into()),
                }
                printed += 1;
                if limit.is_some_and(|n| printed >= n) {
                    break;
                }
            }
        }
    }
    drop(screen);
    monitor.stop(Duration::from_secs(5))?;
    Ok(())
}

fn header(notice: &RefreshNotice, interval: Duration, terminal: bool, db: Option<&Path>) -> String {
    let every = vigilo::duration::format_duration(interval);
    let status = match &notice.result {
        Ok(stats) => format!("took {:.1} ms", stats.duration.as_secs_f64() * 1000.0),
        Err(e) => format!("FAILED: {e}"),
    };
    let quit = if terminal { " · Ctrl-C to quit" } else { "" };
    let db = db.map_or_else(
        || "state in memory".to_owned(),
        |p| format!("state in {}", p.display()),
    );
    format!(
        "vigilo host agent · refresh #{} {status} · every {every} · {db}{quit}",
        notice.seq
    )
}
