//! The incident commands, against the agent's database: read it directly, and queue acks and
//! silences for the running agent (which applies them within half a second and answers; if no
//! agent runs, they wait in the database and apply at its next start).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use clap::Subcommand;
use vigilo::clock::{Clock, SystemClock, Timestamp};
use vigilo::pipeline::{HistoryQuery, IncidentId, SqliteStore, Store, StoreRequest};

/// What to do: try a plugin, or act on the database.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Try one plugin without a monitor: load the `[[channel]]` (or `[[action]]`) of FILE and
    /// send it a sample alert, firing then resolved, printing each HTTP request it makes, its
    /// log lines, the result and the time taken.
    TryPlugin(crate::try_plugin::TryPlugin),
    /// List the open incidents.
    Incidents,
    /// Acknowledge an incident: its repeats and escalation stop.
    Ack {
        /// The incident's number.
        incident: u64,
        /// Who is on it.
        #[arg(long)]
        by: String,
        /// What they are doing.
        #[arg(long, default_value = "")]
        comment: String,
        /// Lapse after this long ("30m", "2h").
        #[arg(long, value_parser = crate::parse_interval)]
        expires: Option<Duration>,
        /// Survive a rise in severity.
        #[arg(long)]
        sticky: bool,
    },
    /// Remove an acknowledgement.
    Unack {
        /// The incident's number.
        incident: u64,
    },
    /// Silence alerts for a while.
    Silence {
        /// Only this rule (repeat for several).
        #[arg(long = "rule")]
        rules: Vec<String>,
        /// Only alerts whose label matches: `mount=/data`, `host!=db1`, `name=~ng.*`.
        #[arg(long = "match", value_name = "LABEL=SPEC")]
        matchers: Vec<String>,
        /// How long ("1h").
        #[arg(long = "for", value_parser = crate::parse_interval)]
        duration: Duration,
        /// Who.
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// End a silence now.
    ExpireSilence {
        /// The silence's number.
        silence: u64,
    },
    /// List the silences.
    Silences,
    /// Print the history (latest first is last).
    History {
        /// Only this item, as the board names it (`disk{device="sda1",mount="/"}`).
        #[arg(long)]
        item: Option<String>,
        /// Only this rule.
        #[arg(long)]
        rule: Option<String>,
        /// Only this incident.
        #[arg(long)]
        incident: Option<u64>,
        /// Only from this time on (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

pub fn run(command: &Command, db: &Path) -> Result<(), Box<dyn std::error::Error>> {
    if let Command::TryPlugin(t) = command {
        return crate::try_plugin::run(t);
    }
    let store = SqliteStore::open_shared(db)?;
    match command {
        Command::TryPlugin(_) => Ok(()),
        Command::Incidents => {
            let open = store.open_incidents()?;
            println!("{} open incident(s) in {}", open.len(), db.display());
            for i in open {
                let ack = i
                    .ack
                    .as_ref()
                    .map(|a| format!("  acked by {} ({})", a.by, a.comment))
                    .unwrap_or_default();
                println!(
                    "#{:<4} {:<8} {}  since {}{ack}",
                    i.id, i.severity, i.item, i.opened_at
                );
            }
            Ok(())
        }
        Command::Silences => {
            for s in store.stored_silences()? {
                println!(
                    "silence {}  rules {:?}  match {:?}  {} → {}  by {}: {}",
                    s.id, s.rules, s.matchers, s.starts_at, s.ends_at, s.created_by, s.comment
                );
            }
            Ok(())
        }
        Command::History {
            item,
            rule,
            incident,
            since,
            limit,
        } => {
            let query = HistoryQuery {
                limit: *limit,
                item: item.clone(),
                rule: rule.clone(),
                incident: incident.map(IncidentId),
                since: since.as_deref().map(Timestamp::parse).transpose()?,
                ..HistoryQuery::default()
            };
            for e in store.history(&query)? {
                println!("{e}");
            }
            Ok(())
        }
        Command::Ack {
            incident,
            by,
            comment,
            expires,
            sticky,
        } => submit(
            &store,
            StoreRequest::Ack {
                incident: IncidentId(*incident),
                by: by.clone(),
                comment: comment.clone(),
                expires_after_secs: expires.map(|d| d.as_secs()),
                sticky: *sticky,
            },
        ),
        Command::Unack { incident } => submit(
            &store,
            StoreRequest::Unack {
                incident: IncidentId(*incident),
            },
        ),
        Command::Silence {
            rules,
            matchers,
            duration,
            by,
            comment,
        } => {
            let mut parsed = BTreeMap::new();
            for m in matchers {
                let (label, spec) = split_matcher(m)?;
                parsed.insert(label, spec);
            }
            submit(
                &store,
                StoreRequest::Silence {
                    rules: rules.clone(),
                    matchers: parsed,
                    duration_secs: duration.as_secs(),
                    created_by: by.clone(),
                    comment: comment.clone(),
                },
            )
        }
        Command::ExpireSilence { silence } => {
            submit(&store, StoreRequest::ExpireSilence { silence: *silence })
        }
    }
}

/// `mount=/data` → (`mount`, `/data`); `host!=db1` → (`host`, `!=db1`); `name=~ng.*` → …
fn split_matcher(m: &str) -> Result<(String, String), String> {
    for op in ["!=", "=~", "!~"] {
        if let Some((l, v)) = m.split_once(op) {
            return Ok((l.to_owned(), format!("{op}{v}")));
        }
    }
    m.split_once('=')
        .map(|(l, v)| (l.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("bad matcher {m:?}: use LABEL=VALUE, LABEL!=VALUE, LABEL=~REGEX"))
}

/// Queues a request and waits a few seconds for the running agent's answer.
fn submit(store: &SqliteStore, request: StoreRequest) -> Result<(), Box<dyn std::error::Error>> {
    let id = store.submit(&request, SystemClock.now())?;
    let give_up = Instant::now() + Duration::from_secs(5);
    while Instant::now() < give_up {
        match store.request_result(id)? {
            Some(Ok(message)) => {
                println!("{message}");
                return Ok(());
            }
            Some(Err(message)) => return Err(message.into()),
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    println!(
        "queued as request {id}: no running agent answered; it applies at the agent's next start"
    );
    Ok(())
}
