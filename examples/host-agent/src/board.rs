//! The status board: every watched item, worst first, colour-coded by severity; the open
//! incidents; the notifications the inbox received; the coverage report; the latest
//! transitions.

use std::collections::VecDeque;
use std::fmt::Write;
use std::net::SocketAddr;

use vigilo::Severity;
use vigilo::coverage::CoverageReport;
use vigilo::pipeline::{Event, Incident};
use vigilo::status::StatusReport;

use crate::inbox::Received;

/// Colours text as the severity's colour when `colour` is on (24-bit ANSI).
pub fn paint(text: &str, severity: Severity, colour: bool) -> String {
    if !colour {
        return text.to_owned();
    }
    let (r, g, b) = severity.rgb();
    format!("\x1b[1;38;2;{r};{g};{b}m{text}\x1b[0m")
}

fn badge(severity: Severity, colour: bool) -> String {
    let label = format!("● {:<8}", severity.name().to_uppercase());
    paint(&label, severity, colour)
}

/// The status section.
pub fn status(report: &StatusReport, colour: bool) -> String {
    let c = &report.counts;
    let mut out = format!(
        "STATUS · worst {} · critical {} · major {} · minor {} · warning {} · info {} · normal {}\n",
        paint(report.worst.name(), report.worst, colour),
        c.critical,
        c.major,
        c.minor,
        c.warning,
        c.info,
        c.normal
    );
    let width = report
        .items
        .iter()
        .map(|i| i.rule.len() + i.labels.to_string().len())
        .max()
        .unwrap_or(0);
    for item in &report.items {
        let name = format!("{}{}", item.rule, item.labels);
        // Formatted with the item's unit by vigilo, as on the web board.
        let value = &item.value_text;
        let threshold = item.threshold_text.as_deref().unwrap_or_default();
        let mut flags = String::new();
        if item.flapping {
            flags.push_str(" [flapping]");
        }
        if item.no_data {
            flags.push_str(" [no data]");
        }
        if !item.in_schedule {
            flags.push_str(" [off schedule]");
        }
        let _ = write!(
            out,
            "  {} {name:<width$}  {value:>12}  (threshold {threshold}){flags}",
            badge(item.severity, colour)
        );
        if let Some(summary) = item
            .summary
            .as_ref()
            .filter(|_| item.severity > Severity::Normal)
        {
            let _ = write!(out, "  {summary}");
        }
        out.push('\n');
    }
    out
}

/// The coverage section.
pub fn coverage(report: &CoverageReport) -> String {
    let mut out = format!(
        "COVERAGE · expected items {} · registered {} · unwatched series {} · silent rules {}\n",
        report.expected,
        report.registered,
        report.unwatched.len(),
        report.silent_rules.len()
    );
    for m in &report.missing {
        let labels = m.labels.as_ref().map(|l| l.to_string()).unwrap_or_default();
        let _ = writeln!(out, "  unregistered: {}{labels} — {}", m.metric, m.reason);
    }
    if !report.silent_rules.is_empty() {
        let _ = writeln!(out, "  never reported: {}", report.silent_rules.join(", "));
    }
    let shown: Vec<String> = report
        .unwatched
        .iter()
        .take(6)
        .map(|s| s.to_string())
        .collect();
    if !shown.is_empty() {
        let more = report.unwatched.len().saturating_sub(shown.len());
        let tail = if more > 0 {
            format!(" … and {more} more")
        } else {
            String::new()
        };
        let _ = writeln!(out, "  no rule watches: {}{tail}", shown.join(", "));
    }
    out
}

/// The open incidents.
pub fn incidents(open: &[Incident], colour: bool) -> String {
    let mut out = format!("INCIDENTS · {} open\n", open.len());
    for i in open {
        let mut notes = String::new();
        if let Some(a) = &i.ack {
            let _ = write!(notes, " [acked by {}]", a.by);
        }
        if let Some(h) = &i.held_back {
            let _ = write!(notes, " [held: {h}]");
        }
        if let Some(r) = i.actions.last() {
            let _ = write!(notes, " [action {} {:?}]", r.action, r.result);
        }
        let since = i.opened_at.to_string();
        let _ = writeln!(
            out,
            "  #{:<4} {} {}  since {}{notes}",
            i.id,
            badge(i.severity, colour),
            i.item,
            since.get(..19).unwrap_or(&since)
        );
    }
    out
}

/// What the inbox received, newest last.
pub fn notifications(latest: &[Received], addr: SocketAddr) -> String {
    let mut out =
        format!("NOTIFICATIONS · received by the agent's inbox on http://{addr}/alerts\n");
    if latest.is_empty() {
        out.push_str("  none yet\n");
    }
    for r in latest {
        let _ = writeln!(out, "  {}", r.line());
    }
    out
}

/// The last transitions, newest last.
pub fn transitions(recent: &VecDeque<Event>) -> String {
    let mut out = String::from("TRANSITIONS (latest)\n");
    if recent.is_empty() {
        out.push_str("  none yet\n");
    }
    for e in recent {
        let time = e.at.to_string();
        let time = time.get(11..19).unwrap_or(&time);
        let _ = writeln!(
            out,
            "  {time}  {}  {}",
            e.item.as_deref().unwrap_or(""),
            e.detail
        );
    }
    out
}
