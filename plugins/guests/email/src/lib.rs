//! # vigilo-email: email through the host's SMTP relay
//!
//! Composes one RFC 5322 message per alert — `From`, `To`, `Subject` (severity and rule),
//! `Date`, `Message-ID` (derived from the idempotency key), a plain-text body — and hands it
//! to the host through the `mail` import, addressed to the alert's recipients.
//!
//! ## Why the host speaks SMTP, not this plugin
//!
//! The plugin composes; the host (with `lettre`) connects to the SMTP server the operator
//! configured for this plugin and sends. Doing SMTP in the guest would mean
//! - a hand-rolled SMTP client (dialogue, dot-stuffing, error codes) in every guest, where the
//!   host has a maintained one;
//! - TLS (STARTTLS or implicit) and its certificate store inside the sandbox;
//! - the SMTP credentials in the plugin's configuration, readable by the plugin, when the host
//!   can keep them to itself;
//! - raw TCP sockets for the sandbox, which it otherwise never grants: with `mail`, the plugin
//!   can reach only the one relay the operator chose, and only to send mail.
//!
//! The `Message-ID` is the same for every attempt at the same alert (it is derived from the
//! idempotency key), so a retry after a crash shows up as a duplicate that mail systems and
//! clients can recognise.
//!
//! ## Configuration
//!
//! | key | type | default | meaning |
//! |---|---|---|---|
//! | `from` | string | required | the sender, `alerts@example.com` or `vigilo <alerts@example.com>` |
//! | `to` | list of strings | none | addresses used when the alert carries no recipients |
//! | `subject_template` | string | `[{{severity_label}}] {{rule}}: {{summary}}` (`[Resolved] …` when resolved) | the subject, a `{{field}}` template |
//! | `body_template` | string | a text summary of the alert | the body, a `{{field}}` template |
//! | `message_id_domain` | string | the domain of `from` | the right-hand side of `Message-ID` |
//!
//! The subject (and a display name) is encoded as a mail header by the SDK's `encode` module:
//! as it is when printable ASCII, else RFC 2047 encoded words, so a label value with a line
//! break cannot end the `Subject` and add a `Bcc`. The envelope's addresses are checked, the
//! `Message-ID` is a hash, and the host normalises the body's line endings.
//!
//! The SMTP server itself (host, port, TLS, credentials) is part of the host's configuration
//! of this plugin, never of `config`. Server or connection trouble and 4xx replies are retried
//! by the host; 5xx replies and a plugin granted no mail server fail permanently.

use vigilo_plugin_sdk::encode::{Context, base64, encode};
use vigilo_plugin_sdk::template::{self, Vars};
use vigilo_plugin_sdk::{Alert, Channel, Config, DeliveryError, log, mail, time};

struct Email;

impl Channel for Email {
    fn deliver(config: &Config, alert: &Alert) -> Result<(), DeliveryError> {
        let from: String = config.get("from")?;
        let from_addr = address_of(&from).ok_or_else(|| {
            DeliveryError::Permanent(format!("config: `from` ({from}) is not an email address"))
        })?;
        let to: Vec<String> = if alert.recipients.is_empty() {
            config.get_or("to", Vec::new())?
        } else {
            alert.recipients.clone()
        };
        if to.is_empty() {
            return Err(DeliveryError::Permanent(
                "no recipients: the alert has none and `to` is not configured".into(),
            ));
        }
        let mut envelope_to = Vec::with_capacity(to.len());
        for t in &to {
            envelope_to.push(
                address_of(t)
                    .ok_or_else(|| {
                        DeliveryError::Permanent(format!("recipient `{t}` is not an email address"))
                    })?
                    .to_owned(),
            );
        }
        let domain: String = match config.get_opt("message_id_domain")? {
            Some(d) => d,
            None => from_addr
                .rsplit_once('@')
                .map(|(_, d)| d.to_owned())
                .unwrap_or_else(|| "vigilo.invalid".into()),
        };

        let vars = Vars::new(alert);
        let default_subject = if alert.is_resolved() {
            "[Resolved] {{rule}}: {{summary}}"
        } else {
            "[{{severity_label}}] {{rule}}: {{summary}}"
        };
        let subject = template::render(
            &config.get_or("subject_template", default_subject.to_owned())?,
            &vars,
        )?;
        let body = match config.get_opt::<String>("body_template")? {
            Some(tpl) => template::render(&tpl, &vars)?,
            None => default_body(alert),
        };

        let message = compose(&Message {
            from: &from,
            to: &to,
            subject: &subject,
            date_ms: alert.at_ms,
            message_id: &message_id(&alert.idempotency_key, &domain),
            body: &body,
        });
        mail::send(from_addr, &envelope_to, &message)?;
        log::debug!(
            "{} mailed to {} recipient(s)",
            alert.rule,
            envelope_to.len()
        );
        Ok(())
    }
}

/// What goes into one message.
struct Message<'a> {
    from: &'a str,
    to: &'a [String],
    subject: &'a str,
    date_ms: i64,
    message_id: &'a str,
    body: &'a str,
}

/// The RFC 5322 text of `m`, CRLF line ends.
fn compose(m: &Message<'_>) -> String {
    let mut out = String::with_capacity(m.body.len() + 512);
    header(&mut out, "From", &mailbox_list(&[m.from.to_owned()]));
    header(&mut out, "To", &mailbox_list(m.to));
    // The subject holds alert data: encoded as a mail header (RFC 2047 when it is not
    // printable ASCII), so no value can end the header and add another.
    header(&mut out, "Subject", &mail_header(m.subject));
    header(&mut out, "Date", &time::rfc5322(m.date_ms));
    header(&mut out, "Message-ID", m.message_id);
    header(&mut out, "MIME-Version", "1.0");
    header(&mut out, "Content-Type", "text/plain; charset=utf-8");
    header(&mut out, "Auto-Submitted", "auto-generated");
    let body = m.body.replace("\r\n", "\n");
    let plain = body.is_ascii() && body.lines().all(|l| l.len() <= 900);
    if plain {
        header(&mut out, "Content-Transfer-Encoding", "7bit");
        out.push_str("\r\n");
        for line in body.lines() {
            out.push_str(line);
            out.push_str("\r\n");
        }
    } else {
        header(&mut out, "Content-Transfer-Encoding", "base64");
        out.push_str("\r\n");
        // Text is encoded in its canonical form, CRLF line ends (RFC 2045).
        let encoded = base64(body.replace('\n', "\r\n").as_bytes());
        for chunk in encoded.as_bytes().chunks(76) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push_str("\r\n");
        }
    }
    out
}

fn header(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(value);
    out.push_str("\r\n");
}

/// Line breaks and other control characters become spaces (no header injection).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `a@x, "Ops" <b@x>`: each mailbox with a non-ASCII display name encoded (RFC 2047).
fn mailbox_list(list: &[String]) -> String {
    list.iter()
        .map(|m| {
            let m = one_line(m);
            match m.rsplit_once('<') {
                Some((name, addr)) if !name.trim().is_empty() => {
                    format!("{} <{}", mail_header(name.trim()), addr.trim())
                }
                _ => m.trim().to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The bare address of `alerts@example.com` or `Name <alerts@example.com>`.
fn address_of(mailbox: &str) -> Option<&str> {
    let addr = match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(l), Some(r)) if l < r => &mailbox[l + 1..r],
        _ => mailbox,
    }
    .trim();
    let (local, domain) = addr.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !addr.contains(|c: char| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
    ok.then_some(addr)
}

/// `s` as the text of a mail header: the SDK's encoding (itself if printable ASCII, else RFC
/// 2047 encoded words), which never fails.
fn mail_header(s: &str) -> String {
    encode(s, Context::MailHeader).unwrap_or_default()
}

/// `<vigilo.HASH@domain>`: the same for every attempt at the same alert, valid whatever the key
/// holds (labels may contain any character).
fn message_id(key: &str, domain: &str) -> String {
    let domain: String = domain
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    let domain = if domain.is_empty() {
        "vigilo.invalid".to_owned()
    } else {
        domain
    };
    format!(
        "<vigilo.{:016x}{:016x}@{domain}>",
        fnv1a(key.as_bytes(), 0xcbf2_9ce4_8422_2325),
        fnv1a(key.as_bytes(), 0x6c62_272e_07bb_0142)
    )
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    bytes.iter().fold(seed, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The default body: what happened, then every label and annotation.
fn default_body(a: &Alert) -> String {
    let mut b = String::new();
    let headline = if a.is_resolved() {
        format!("[Resolved] {}", a.rule)
    } else {
        format!("[{}] {}", a.severity.label(), a.rule)
    };
    b.push_str(&headline);
    b.push('\n');
    b.push_str(&a.summary());
    b.push_str("\n\n");
    let row = |b: &mut String, name: &str, value: &str| {
        b.push_str(&format!("{name:<11}{value}\n"));
    };
    row(&mut b, "Status:", a.status.name());
    row(
        &mut b,
        "Severity:",
        &format!("{} (was {})", a.severity.name(), a.previous.name()),
    );
    row(&mut b, "Metric:", &a.metric);
    if let Some(v) = a.value {
        row(&mut b, "Value:", &v.to_string());
    }
    if let Some(t) = a.threshold {
        row(&mut b, "Threshold:", &t.to_string());
    }
    row(&mut b, "Since:", &time::rfc3339(a.since_ms));
    row(&mut b, "At:", &time::rfc3339(a.at_ms));
    for (title, pairs) in [("Labels", &a.labels), ("Annotations", &a.annotations)] {
        if !pairs.is_empty() {
            b.push_str(&format!("\n{title}:\n"));
            for (k, v) in pairs {
                b.push_str(&format!("  {k} = {v}\n"));
            }
        }
    }
    b.push_str(&format!(
        "\nIdempotency key: {}\n-- \nSent by vigilo\n",
        a.idempotency_key
    ));
    b
}

vigilo_plugin_sdk::export_channel!(Email);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(mail_header("plain"), "plain");
        assert_eq!(mail_header("치명"), "=?UTF-8?B?7LmY66qF?=");
        assert!(!mail_header("x\r\nBcc: all@example.com").contains("Bcc"));
        assert_eq!(address_of("Ops <ops@x.org>"), Some("ops@x.org"));
        assert_eq!(address_of("ops@x.org"), Some("ops@x.org"));
        assert_eq!(address_of("nope"), None);
        let id = message_id("rule{host=\"a\"}@1:5", "x.org");
        assert!(
            id.starts_with("<vigilo.") && id.ends_with("@x.org>"),
            "{id}"
        );
        assert_eq!(id, message_id("rule{host=\"a\"}@1:5", "x.org"));
        assert_eq!(one_line("a\r\nBcc: x"), "a  Bcc: x");
    }
}
