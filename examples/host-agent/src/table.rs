//! Renders a registry's series as an aligned table with human units (`vigilo::units`, as the
//! web board shows them), and draws it on a terminal (redrawn in place) or on a pipe
//! (appended).

use std::cmp::Ordering;
use std::io::{self, Write};

use vigilo::metrics::Value;
use vigilo::units::Unit;
use vigilo::{Labels, Registry};

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The metric name.
    pub item: String,
    /// The labels as `name=value` pairs separated by spaces.
    pub labels: String,
    /// The value with its unit.
    pub value: String,
}

/// The rows of every series of `registry`, sorted by item then labels, numbers in labels
/// compared as numbers (`core=2` before `core=10`).
pub fn rows(registry: &Registry) -> Vec<Row> {
    let snapshot = registry.snapshot();
    let mut series: Vec<_> = snapshot.series.iter().collect();
    series.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then_with(|| compare_labels(&a.labels, &b.labels))
    });
    series
        .into_iter()
        .map(|s| Row {
            item: s.name.to_string(),
            labels: s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
            value: format_value(
                &s.name,
                &Unit::of_metric(
                    &s.name,
                    registry
                        .description(&s.name)
                        .and_then(|d| d.unit)
                        .as_deref(),
                ),
                &s.value,
            ),
        })
        .collect()
}

fn compare_labels(a: &Labels, b: &Labels) -> Ordering {
    let mut a = a.iter();
    let mut b = b.iter();
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ka, va)), Some((kb, vb))) => {
                let ord = ka.cmp(kb).then_with(|| natural(va, vb));
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// Numbers compare as numbers, everything else as text.
fn natural(a: &str, b: &str) -> Ordering {
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// A value with its metric's unit; `host_process_up` as up/down, a histogram as its count.
pub fn format_value(name: &str, unit: &Unit, value: &Value) -> String {
    let v = match value {
        Value::Counter(n) => *n as f64,
        Value::Gauge(v) => *v,
        Value::Histogram(h) => return format!("{} observations", h.count()),
    };
    if name == "host_process_up" {
        return if v >= 1.0 { "up" } else { "DOWN" }.to_owned();
    }
    unit.format(v)
}

/// The table: a header line, column titles, then one aligned line per row (values
/// right-aligned).
pub fn render(header: &str, rows: &[Row]) -> String {
    const TITLES: [&str; 3] = ["ITEM", "LABELS", "VALUE"];
    let width = |f: fn(&Row) -> &str, title: &str| {
        rows.iter()
            .map(|r| f(r).chars().count())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let w_item = width(|r| &r.item, TITLES[0]);
    let w_labels = width(|r| &r.labels, TITLES[1]);
    let w_value = width(|r| &r.value, TITLES[2]);
    let mut out = String::new();
    out.push_str(header);
    out.push('\n');
    let mut line = |item: &str, labels: &str, value: &str| {
        let text = format!("{item:<w_item$}  {labels:<w_labels$}  {value:>w_value$}");
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(TITLES[0], TITLES[1], TITLES[2]);
    for r in rows {
        line(&r.item, &r.labels, &r.value);
    }
    out
}

/// Where tables go: a terminal, redrawn in place, or anything else, appended.
pub struct Screen<W: Write> {
    out: W,
    terminal: bool,
    drawn: bool,
}

impl<W: Write> Screen<W> {
    /// A screen writing to `out`; `terminal` selects in-place redrawing.
    pub fn new(out: W, terminal: bool) -> Self {
        Screen {
            out,
            terminal,
            drawn: false,
        }
    }

    /// Draws one table.
    pub fn draw(&mut self, table: &str) -> io::Result<()> {
        if self.terminal {
            if !self.drawn {
                // Clear the screen once; later frames overwrite it line by line.
                self.out.write_all(b"\x1b[2J")?;
            }
            // Home, then every line followed by "clear to end of line", then clear below.
            self.out.write_all(b"\x1b[H")?;
            for line in table.lines() {
                writeln!(self.out, "{line}\x1b[K")?;
            }
            self.out.write_all(b"\x1b[J")?;
        } else {
            if self.drawn {
                self.out.write_all(b"\n")?;
            }
            self.out.write_all(table.as_bytes())?;
        }
        self.drawn = true;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauge(name: &str, v: f64) -> String {
        format_value(name, &Unit::of_metric(name, None), &Value::Gauge(v))
    }

    #[test]
    fn units() {
        assert_eq!(gauge("host_cpu_usage_ratio", 0.1234), "12.3 %");
        assert_eq!(gauge("host_memory_used_bytes", 512.0), "512 B");
        assert_eq!(gauge("host_memory_used_bytes", 1536.0), "1.5 KiB");
        assert_eq!(
            gauge("host_memory_total_bytes", 25.0 * (1u64 << 30) as f64),
            "25.0 GiB"
        );
        assert_eq!(gauge("host_disk_read_bytes_per_second", 0.0), "0 B/s");
        assert_eq!(
            gauge("host_network_receive_bytes_per_second", 3.0 * 1048576.0),
            "3.0 MiB/s"
        );
        assert_eq!(gauge("host_process_up", 1.0), "up");
        assert_eq!(gauge("host_process_up", 0.0), "DOWN");
        assert_eq!(gauge("host_load1", 0.5), "0.5");
        assert_eq!(gauge("host_processes", 86.0), "86");
        assert_eq!(
            format_value("x_total", &Unit::NONE, &Value::Counter(3)),
            "3"
        );
    }

    #[test]
    fn table_is_aligned_and_sorted_naturally() -> Result<(), vigilo::MetricError> {
        let registry = vigilo::Registry::new();
        for core in ["0", "2", "10"] {
            registry.set_gauge("host_cpu_core_usage_ratio", &[("core", core)], 0.5)?;
        }
        registry.set_gauge("host_load1", &[], 1.25)?;
        registry.describe("host_load1", Some("percent"), "test")?;
        let rows = rows(&registry);
        let labels: Vec<&str> = rows.iter().map(|r| r.labels.as_str()).collect();
        assert_eq!(labels, ["core=0", "core=2", "core=10", ""]);
        // The described unit is the one shown.
        assert!(rows[3].value.ends_with(" %"), "{:?}", rows[3]);
        let table = render("header", &rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 6);
        assert!(lines[1].starts_with("ITEM"));
        // Values are right-aligned: every value line ends at the same column.
        let ends: Vec<usize> = lines[1..].iter().map(|l| l.chars().count()).collect();
        assert!(ends.windows(2).all(|w| w[0] == w[1]), "{table}");
        Ok(())
    }

    #[test]
    fn pipe_output_appends() -> std::io::Result<()> {
        let mut screen = Screen::new(Vec::new(), false);
        screen.draw("a\n")?;
        screen.draw("b\n")?;
        assert_eq!(screen.out, b"a\n\nb\n");
        let mut term = Screen::new(Vec::new(), true);
        term.draw("a\n")?;
        assert!(term.out.starts_with(b"\x1b[2J\x1b[H"));
        Ok(())
    }
}
