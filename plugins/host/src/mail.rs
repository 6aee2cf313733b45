//! The `mail` import: the host speaks SMTP (lettre, rustls, blocking) to the one server the
//! operator configured for the plugin; the plugin only composes the message.

use std::time::Duration;

use lettre::Transport;
use lettre::address::{Address, Envelope};
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::Credentials;

use crate::{SmtpSettings, SmtpTls};

/// The largest message a plugin may send.
const MAX_MESSAGE: usize = 1 << 20;
/// The most recipients one message may have.
const MAX_RECIPIENTS: usize = 100;

/// `message` with every line ending as CRLF: a bare LF or CR becomes CRLF. SMTP ends a message
/// at CRLF `.` CRLF, and lettre stuffs a leading dot only after CRLF; a body with a bare LF
/// before a lone dot would otherwise end the message early on a lenient server and smuggle the
/// rest in as commands of the session.
pub(crate) fn crlf(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + message.len() / 32);
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                out.push_str("\r\n");
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    out
}

/// A ready SMTP transport for one plugin.
pub(crate) struct Mailer {
    transport: SmtpTransport,
    server: String,
}

/// Why a send failed, in the contract's terms.
pub(crate) enum MailFailure {
    Denied(String),
    Retryable(String),
    Permanent(String),
}

impl Mailer {
    pub(crate) fn new(s: &SmtpSettings) -> Result<Mailer, String> {
        let bad = |e: lettre::transport::smtp::Error| format!("smtp server {:?}: {e}", s.server);
        let builder = match s.tls {
            SmtpTls::Tls => SmtpTransport::relay(&s.server)
                .map_err(bad)?
                .port(s.port.unwrap_or(465)),
            SmtpTls::Starttls => SmtpTransport::starttls_relay(&s.server)
                .map_err(bad)?
                .port(s.port.unwrap_or(587)),
            SmtpTls::None => {
                SmtpTransport::builder_dangerous(s.server.as_str()).port(s.port.unwrap_or(25))
            }
            // A mode a newer core offers: refused loudly at load, never sent some other way.
            other => {
                return Err(format!(
                    "smtp tls mode {other:?} is not supported by this host"
                ));
            }
        };
        let builder = match &s.credentials {
            Some(c) => {
                builder.credentials(Credentials::new(c.username.clone(), c.password.clone()))
            }
            None => builder,
        };
        let timeout = if s.timeout.is_zero() {
            Duration::from_secs(10)
        } else {
            s.timeout
        };
        Ok(Mailer {
            transport: builder.timeout(Some(timeout)).build(),
            server: s.server.clone(),
        })
    }

    /// Sends `message` from `from` to `to`. Blocks for at most the configured timeout per
    /// SMTP step.
    pub(crate) fn send(&self, from: &str, to: &[String], message: &str) -> Result<(), MailFailure> {
        if to.is_empty() {
            return Err(MailFailure::Denied("no recipients".into()));
        }
        if to.len() > MAX_RECIPIENTS {
            return Err(MailFailure::Denied(format!(
                "{} recipients; at most {MAX_RECIPIENTS}",
                to.len()
            )));
        }
        if message.len() > MAX_MESSAGE {
            return Err(MailFailure::Denied(format!(
                "message of {} bytes; at most {MAX_MESSAGE}",
                message.len()
            )));
        }
        let addr = |a: &str| {
            a.parse::<Address>()
                .map_err(|e| MailFailure::Permanent(format!("invalid address {a:?}: {e}")))
        };
        let from = addr(from)?;
        let to = to.iter().map(|a| addr(a)).collect::<Result<Vec<_>, _>>()?;
        let envelope =
            Envelope::new(Some(from), to).map_err(|e| MailFailure::Permanent(e.to_string()))?;
        let message = crlf(message);
        self.transport
            .send_raw(&envelope, message.as_bytes())
            .map(|_| ())
            .map_err(|e| {
                let msg = format!("smtp {}: {e}", self.server);
                if e.is_permanent() {
                    MailFailure::Permanent(msg)
                } else {
                    MailFailure::Retryable(msg)
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::crlf;

    #[test]
    fn every_line_ends_in_crlf() {
        assert_eq!(crlf("a\nb\rc\r\nd"), "a\r\nb\r\nc\r\nd");
        assert_eq!(crlf("x\n.\r\nMAIL FROM:<a@b>"), "x\r\n.\r\nMAIL FROM:<a@b>");
        assert_eq!(crlf("é\n"), "é\r\n");
    }
}
