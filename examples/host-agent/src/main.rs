//! `host-agent`: watches this machine through vigilo's host collector, judges every item with the
//! rules of `examples/rules.toml` (or `--config`), and prints a colour-coded status board, the
//! coverage report, the latest transitions and the host items every interval, redrawn in place
//! on a terminal and appended otherwise.
//!
//! ```text
//! host-agent                      # every second until Ctrl-C
//! host-agent --once               # one board, then exit
//! host-agent --config my.toml --interval 5s --iterations 3 --watch nginx
//! ```

mod board;
mod table;

use std::collections::VecDeque;
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use crossbeam_channel::select;
use vigilo::Registry;
use vigilo::clock::SystemClock;
use vigilo::config::Config;
use vigilo::eval::Evaluator;
use vigilo::host::{HostCollector, RefreshNotice};

/// The default rules: the seed scenario and sensible host rules.
const DEFAULT_RULES: &str = include_str!("../../rules.toml");

/// Prints this machine's host items (CPU, load, memory, disks, network, processes) as a table.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Rules and settings (TOML); default: the bundled examples/rules.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Time between refreshes: "1s", "500ms", "1m30s"… (default: the config's host.interval).
    #[arg(long, value_parser = parse_interval)]
    interval: Option<Duration>,
    /// Colour the severities: auto (on a terminal), always, never.
    #[arg(long, default_value = "auto", value_parser = ["auto", "always", "never"])]
    color: String,
    /// Print one table (measured over one interval) and exit.
    #[arg(long, conflicts_with = "iterations")]
    once: bool,
    /// Print this many tables and exit (default: until Ctrl-C).
    #[arg(long, value_name = "N")]
    iterations: Option<u64>,
    /// A process name to report as up or down; repeat for several.
    #[arg(long = "watch", value_name = "NAME")]
    watch: Vec<String>,
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
    match run(&args) {
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

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let limit = if args.once { Some(1) } else { args.iterations };
    if limit == Some(0) {
        return Ok(());
    }
    let config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::from_str_named(DEFAULT_RULES, "examples/rules.toml")?,
    };
    let registry = Registry::with_config(config.registry.clone());
    let mut host = config.host.clone();
    if let Some(interval) = args.interval {
        host.interval = interval;
    }
    host.processes_watched.extend(args.watch.iter().cloned());
    let interval = host.interval;
    let (evaluator, transitions) = Evaluator::new(
        registry.clone(),
        config.rules.clone(),
        Arc::new(SystemClock),
        config.evaluator.clone(),
    )?;
    let evaluator = evaluator.spawn()?;
    let collector = HostCollector::start(&registry, host)?;
    let notices = collector.notices();
    let colour = match args.color.as_str() {
        "always" => true,
        "never" => false,
        _ => io::stdout().is_terminal(),
    };
    let mut recent: VecDeque<vigilo::eval::Transition> = VecDeque::new();

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
                recent.extend(transitions.try_iter());
                while recent.len() > 8 {
                    recent.pop_front();
                }
                let status = evaluator.status()?;
                let coverage = evaluator.coverage(config.expect.clone())?;
                let text = format!(
                    "{}\n{}\n{}\n{}\n",
                    header(&notice, interval, terminal),
                    board::status(&status, colour),
                    board::coverage(&coverage),
                    board::transitions(&recent, colour),
                ) + &table::render("HOST ITEMS", &table::rows(&registry.snapshot()));
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
    collector.stop()?;
    drop(evaluator);
    Ok(())
}

fn header(notice: &RefreshNotice, interval: Duration, terminal: bool) -> String {
    let every = vigilo::duration::format_duration(interval);
    let status = match &notice.result {
        Ok(stats) => format!("took {:.1} ms", stats.duration.as_secs_f64() * 1000.0),
        Err(e) => format!("FAILED: {e}"),
    };
    let quit = if terminal { " · Ctrl-C to quit" } else { "" };
    format!(
        "vigilo host agent · refresh #{} {status} · every {every}{quit}",
        notice.seq
    )
}
