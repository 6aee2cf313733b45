//! Sending email through the SMTP server the operator configured for this plugin (channels
//! only). The host speaks SMTP, TLS and authentication; the plugin composes the message (RFC
//! 5322 headers and body) and never sees a credential or a socket.

use crate::DeliveryError;
use crate::bindings::channel::vigilo::plugin::mail as raw;

/// Why the host could not send: `Denied` (no mail server granted, or the envelope refused by
/// policy), `Retryable` (unreachable, 4xx) or `Permanent` (5xx). Converts into
/// [`DeliveryError`] with `?` (`Denied` is permanent).
pub use raw::MailError;

/// Sends `message` (headers, a blank line, the body; CRLF or LF line ends) from `from` to
/// every address in `to` (the SMTP envelope: it may differ from the `To:` header).
pub fn send(from: &str, to: &[String], message: &str) -> Result<(), MailError> {
    raw::send(
        &raw::Envelope {
            from: from.to_owned(),
            to: to.to_vec(),
        },
        message,
    )
}

impl From<MailError> for DeliveryError {
    fn from(e: MailError) -> Self {
        match e {
            MailError::Retryable(m) => DeliveryError::Retryable(format!("mail: {m}")),
            MailError::Permanent(m) => DeliveryError::Permanent(format!("mail: {m}")),
            MailError::Denied(m) => DeliveryError::Permanent(format!("mail denied: {m}")),
        }
    }
}
