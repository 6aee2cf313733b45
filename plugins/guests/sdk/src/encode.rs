//! Encoding a value for where it lands: one helper for every place a plugin puts alert data.
//!
//! Label and annotation values come from whatever the monitored service reported, so a plugin
//! must never paste them into a request as they are: `../admin/kill-all` in a URL path walks
//! out of the intended endpoint, a `?` or `#` changes the query, `%2e%2e%2f` is decoded by the
//! server into `../`, a line break in a header value starts a new header, a `<!channel>` in a
//! Slack message pings everyone. [`encode`] turns a value into its safe form for one
//! [`Context`], or refuses it with an [`EncodeError`] when no encoding keeps it in its place
//! (a path segment that would still be read as `..`, a header value with a line break). The
//! template functions ([`render_as`](crate::template::render_as),
//! [`render_url`](crate::template::render_url)) apply it to every `{{field}}` they fill in, and
//! `?` turns a refusal into a permanent delivery error that says which field and why: sending
//! the request anyway, somewhere else, is never the fallback.
//!
//! ```
//! use vigilo_plugin_sdk::encode::{Context, encode};
//!
//! assert_eq!(encode("a b?c#d", Context::PathSegment).unwrap(), "a%20b%3Fc%23d");
//! assert_eq!(encode("%2e%2e%2f", Context::QueryValue).unwrap(), "%252e%252e%252f");
//! assert!(encode("../admin/kill-all", Context::PathSegment).is_err());
//! assert!(encode("x\r\nSet-Cookie: a=b", Context::HeaderValue).is_err());
//! assert_eq!(encode("<!channel> & co", Context::Markup).unwrap(), "&lt;!channel&gt; &amp; co");
//! assert_eq!(encode("say \"hi\"\n", Context::JsonString).unwrap(), r#"say \"hi\"\n"#);
//! ```

use core::fmt;

/// Where a value lands, which decides how it is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Context {
    /// Plain text (a `text/plain` body, a log line): the value as it is.
    Text,
    /// Inside a JSON string literal (`"text": "{{summary}}"`): quotes, backslashes and control
    /// characters escaped, so the document stays valid and the value stays one string.
    JsonString,
    /// One segment of a URL path (`/api/flags/{{labels.feature}}`): everything but the
    /// unreserved characters (`A-Z a-z 0-9 - . _ ~`) percent-encoded (UTF-8), so `?`, `#`,
    /// `%`, spaces and line breaks stay inside the segment. Refused: an empty value (it would
    /// name the collection above), `.` and `..` (dot segments), and any value with `/` or `\`
    /// (servers and proxies that decode `%2F` before routing would split it into segments).
    PathSegment,
    /// A query parameter's value (`?flag={{labels.feature}}`) or a form field's: everything but
    /// the unreserved characters percent-encoded, so `&`, `=`, `+`, `#` and `%` stay inside it.
    QueryValue,
    /// The host of a URL (`https://{{labels.region}}.api.example.com/`): only letters, digits,
    /// `-` and `.` are accepted, anything else is refused (no port, user, path or query can be
    /// smuggled in; the host must still be in the plugin's `allowed_hosts`).
    Host,
    /// An HTTP header value: refused if it holds a control character other than a tab (a line
    /// break would end the header and start another); otherwise as it is.
    HeaderValue,
    /// The whole text of a mail header (`Subject`): as it is when it is printable ASCII, else
    /// RFC 2047 encoded words (`=?UTF-8?B?…?=`, folded), which carry any text, line breaks
    /// included, without ever ending the header.
    MailHeader,
    /// Text in a markup that reads `<…>` and `&…;` as control sequences (Slack's mrkdwn, HTML
    /// text): `&`, `<` and `>` escaped as `&amp;`, `&lt;`, `&gt;`, so a value cannot mention
    /// `@channel`, link elsewhere or add markup.
    Markup,
}

impl Context {
    /// The context of a body with media type `content_type`: JSON (`application/json`,
    /// `…+json`) → [`JsonString`](Context::JsonString), a form
    /// (`application/x-www-form-urlencoded`) → [`QueryValue`](Context::QueryValue), anything
    /// else → [`Text`](Context::Text).
    pub fn for_body(content_type: &str) -> Context {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media == "application/json" || media.ends_with("+json") || media.ends_with("/json") {
            Context::JsonString
        } else if media == "application/x-www-form-urlencoded" {
            Context::QueryValue
        } else {
            Context::Text
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Context::Text => "text",
            Context::JsonString => "a JSON string",
            Context::PathSegment => "a URL path segment",
            Context::QueryValue => "a URL query value",
            Context::Host => "a URL host",
            Context::HeaderValue => "an HTTP header value",
            Context::MailHeader => "a mail header",
            Context::Markup => "markup text",
        }
    }
}

/// A value that cannot be encoded safely for its context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodeError {
    value: String,
    context: Context,
    reason: &'static str,
}

impl EncodeError {
    /// The context that refused the value.
    pub fn context(&self) -> Context {
        self.context
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The value quoted and escaped (it is hostile data), and cut.
        let mut shown: String = self.value.chars().take(80).collect();
        if shown.len() < self.value.len() {
            shown.push('…');
        }
        write!(
            f,
            "value {shown:?} cannot be {}: {}",
            self.context.describe(),
            self.reason
        )
    }
}

impl std::error::Error for EncodeError {}

impl From<EncodeError> for crate::DeliveryError {
    fn from(e: EncodeError) -> Self {
        crate::DeliveryError::Permanent(e.to_string())
    }
}

impl From<EncodeError> for String {
    fn from(e: EncodeError) -> Self {
        e.to_string()
    }
}

/// `value` encoded for `context`, or refused (see [`Context`] for what each one does).
pub fn encode(value: &str, context: Context) -> Result<String, EncodeError> {
    let refuse = |reason| {
        Err(EncodeError {
            value: value.to_owned(),
            context,
            reason,
        })
    };
    match context {
        Context::Text => Ok(value.to_owned()),
        Context::JsonString => {
            let quoted = serde_json::Value::String(value.to_owned()).to_string();
            Ok(quoted[1..quoted.len() - 1].to_owned())
        }
        Context::PathSegment => {
            if value.is_empty() {
                return refuse("it is empty, and would name the path above it");
            }
            if value == "." || value == ".." {
                return refuse("it is a dot segment, which moves along the path");
            }
            if value.contains(['/', '\\']) {
                return refuse("it holds a '/' or '\\', which servers may read as a new segment");
            }
            Ok(percent(value))
        }
        Context::QueryValue => Ok(percent(value)),
        Context::Host => {
            let ok = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if ok {
                Ok(value.to_owned())
            } else {
                refuse("a host holds only letters, digits, '-' and '.'")
            }
        }
        Context::HeaderValue => {
            if value.chars().any(|c| c.is_control() && c != '\t') {
                refuse("it holds a line break or another control character")
            } else {
                Ok(value.to_owned())
            }
        }
        Context::MailHeader => Ok(encoded_words(value)),
        Context::Markup => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                match c {
                    '&' => out.push_str("&amp;"),
                    '<' => out.push_str("&lt;"),
                    '>' => out.push_str("&gt;"),
                    c => out.push(c),
                }
            }
            Ok(out)
        }
    }
}

/// Every byte but the unreserved characters of RFC 3986 as `%XX`.
fn percent(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3 / 2);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `s` itself if printable ASCII, else RFC 2047 encoded words (`=?UTF-8?B?…?=`), folded.
fn encoded_words(s: &str) -> String {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return s.to_owned();
    }
    // At most 45 bytes of text per word keeps each word within 75 characters.
    let mut words = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + 45).min(s.len());
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        words.push(format!("=?UTF-8?B?{}?=", base64(&s.as_bytes()[start..end])));
        start = end;
    }
    words.join("\r\n ")
}

/// Standard base64 with padding (RFC 4648), as MIME bodies and encoded words use it.
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(TABLE[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values that moved the feature-flag plugin's requests before this module existed.
    const HOSTILE: &[&str] = &[
        "../admin/kill-all",
        "checkout/../../../admin/users/1",
        "checkout?admin=1",
        "%2e%2e%2f",
        "x#fragment",
        "a\r\nX-Injected: 1",
        "with space",
        "..",
    ];

    #[test]
    fn path_segments_stay_one_segment_or_are_refused() {
        for v in HOSTILE {
            match encode(v, Context::PathSegment) {
                Ok(e) => {
                    assert!(
                        e.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
                        "{v:?} → {e}"
                    );
                    assert!(e != "." && e != "..", "{v:?}");
                }
                Err(err) => assert!(err.to_string().contains("URL path segment"), "{err}"),
            }
        }
        assert!(encode("../admin/kill-all", Context::PathSegment).is_err());
        assert!(encode("", Context::PathSegment).is_err());
        assert_eq!(
            encode("%2e%2e%2f", Context::PathSegment).unwrap(),
            "%252e%252e%252f"
        );
        assert_eq!(
            encode("치명", Context::PathSegment).unwrap(),
            "%EC%B9%98%EB%AA%85"
        );
    }

    #[test]
    fn query_values_never_fail_and_keep_their_place() {
        for v in HOSTILE {
            let e = encode(v, Context::QueryValue).unwrap();
            assert!(
                !e.contains(['&', '=', '?', '#', '/', ' ', '\r', '\n']),
                "{e}"
            );
        }
    }

    #[test]
    fn headers_hosts_mail_and_markup() {
        assert!(encode("a\nb", Context::HeaderValue).is_err());
        assert_eq!(encode("a\tb", Context::HeaderValue).unwrap(), "a\tb");
        assert!(encode("evil.com:8080", Context::Host).is_err());
        assert!(encode("a@b", Context::Host).is_err());
        assert_eq!(encode("eu-1.api", Context::Host).unwrap(), "eu-1.api");
        assert_eq!(encode("plain", Context::MailHeader).unwrap(), "plain");
        assert_eq!(
            encode("치명", Context::MailHeader).unwrap(),
            "=?UTF-8?B?7LmY66qF?="
        );
        let folded = encode("x\r\nBcc: all@example.com", Context::MailHeader).unwrap();
        assert!(
            !folded.contains("\r\nBcc") && folded.starts_with("=?UTF-8?B?"),
            "{folded}"
        );
        assert_eq!(
            encode("<http://evil|click> &", Context::Markup).unwrap(),
            "&lt;http://evil|click&gt; &amp;"
        );
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"M"), "TQ==");
    }

    #[test]
    fn body_contexts_follow_the_media_type() {
        assert_eq!(Context::for_body("application/json"), Context::JsonString);
        assert_eq!(
            Context::for_body("application/vnd.api+json; charset=utf-8"),
            Context::JsonString
        );
        assert_eq!(
            Context::for_body("application/x-www-form-urlencoded"),
            Context::QueryValue
        );
        assert_eq!(Context::for_body("text/plain"), Context::Text);
        let e = encode("a/b", Context::PathSegment).unwrap_err();
        assert_eq!(e.context(), Context::PathSegment);
        assert!(
            e.to_string()
                .starts_with("value \"a/b\" cannot be a URL path segment"),
            "{e}"
        );
    }
}
