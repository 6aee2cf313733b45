//! Guest text made inert before it reaches the host's log, a terminal or a page.
//!
//! Everything a guest says (its `log` calls, its stdout and stderr, its error messages, an
//! action's message and output, the details of a request the host refused) is escaped at the
//! boundary, once, so that what the host stores and shows downstream (the log, the pipeline's
//! events and history, the board) can never be read as anything but the guest's text:
//!
//! - control characters (C0, DEL, C1) are shown as escapes: `\n`, `\r`, `\t`, `\u{1b}` (ESC) …,
//!   so a guest cannot end a log record and forge the next one, nor move a terminal's cursor or
//!   change its colours;
//! - characters that reorder or hide text (bidirectional overrides and isolates, zero-width
//!   characters, the Unicode line and paragraph separators) are shown as `\u{…}` too;
//! - a backslash is doubled, so an escape the guest wrote itself (`\n` as two characters) stays
//!   distinguishable from one the host made.
//!
//! [`line`] escapes every control character (one record, one line); [`block`] keeps line feeds
//! and tabs (the tail of a command's output, which is multi-line by nature) and escapes the rest.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` on one line: every control character escaped.
pub(crate) fn line(s: &str) -> Cow<'_, str> {
    escape(s, false)
}

/// `s` with its line feeds and tabs kept, every other control character escaped.
pub(crate) fn block(s: &str) -> Cow<'_, str> {
    escape(s, true)
}

/// [`line`], for an owned string (no copy when nothing needs escaping).
pub(crate) fn line_owned(s: String) -> String {
    match line(&s) {
        Cow::Borrowed(_) => s,
        Cow::Owned(escaped) => escaped,
    }
}

fn escape(s: &str, keep_lines: bool) -> Cow<'_, str> {
    let needs = |c: char| c == '\\' || (hidden(c) && !(keep_lines && (c == '\n' || c == '\t')));
    let Some(first) = s.find(needs) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 16);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if needs(c) {
            // `escape_debug` writes `\n`, `\r`, `\t`, `\\` and `\u{…}` for the rest.
            let _ = write!(out, "{}", c.escape_debug());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Characters a terminal, a log viewer or a page would act on rather than show.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        let forged = "benign\n2030-01-01T00:00:00Z ERROR vigilo::pipeline: FORGED\r\u{1b}[31mred";
        let shown = line(forged);
        assert_eq!(
            shown,
            "benign\\n2030-01-01T00:00:00Z ERROR vigilo::pipeline: FORGED\\r\\u{1b}[31mred"
        );
        assert!(!shown.chars().any(char::is_control));
        assert_eq!(line("a\\nb"), "a\\\\nb", "a written escape stays distinct");
        assert_eq!(line("right\u{202e}txt.exe"), "right\\u{202e}txt.exe");
        assert!(matches!(line("plain text, é, 치명"), Cow::Borrowed(_)));
        assert_eq!(block("a\n\tb\r\u{1b}"), "a\n\tb\\r\\u{1b}");
        assert_eq!(line_owned("x\u{7}".into()), "x\\u{7}");
    }
}
