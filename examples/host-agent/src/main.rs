//! `host-agent`: watches this machine through vigilo's host collector and prints its items as a
//! table every interval, redrawn in place on a terminal and appended otherwise.
//!
//! ```text
//! host-agent                      # every second until Ctrl-C
//! host-agent --once               # one table, then exit
//! host-agent --interval 5s --iterations 3 --watch nginx
//! ```

mod table;

use std::io::{self, IsTerminal};
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use crossbeam_channel::select;
use vigilo::Registry;
use vigilo::host::{HostCollector, HostConfig, RefreshNotice};

/// Prints this machine's host items (CPU, load, memory, disks, network, processes) as a table.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Time between refreshes: "1s", "500ms", "1m30s"…
    #[arg(long, default_value = "1s", value_parser = parse_interval)]
    interval: Duration,
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
            eprintln!("host-agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let limit = if args.once { Some(1) } else { args.iterations };
    if limit == Some(0) {
        return Ok(());
    }
    let registry = Registry::new();
    let config = HostConfig {
        interval: args.interval,
        processes_watched: args.watch.clone(),
        ..HostConfig::default()
    };
    let collector = HostCollector::start(&registry, config)?;
    let notices = collector.notices();

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
                let text = table::render(&header(&notice, args, terminal), &table::rows(&registry.snapshot()));
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
    Ok(())
}

fn header(notice: &RefreshNotice, args: &Args, terminal: bool) -> String {
    let every = vigilo::duration::format_duration(args.interval);
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
