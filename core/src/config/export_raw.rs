//! `[export.remote_write]` and `[export.otlp]` as read, spans kept, and their checks.

use serde::Deserialize;
use toml::Spanned;

use super::fields::{Failure, Problem};
use crate::export::{ExportConfig, OtlpConfig, RemoteWriteConfig};

/// `[export]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawExport {
    remote_write: Option<Spanned<RemoteWriteConfig>>,
    otlp: Option<Spanned<OtlpConfig>>,
}

/// The checked sections; a failure is located at its section, under `export.<name>`.
#[allow(clippy::result_large_err)] // loading a configuration is a cold path
pub(super) fn build(raw: Option<RawExport>) -> Result<ExportConfig, (Failure, String)> {
    let raw = raw.unwrap_or_default();
    let mut out = ExportConfig::default();
    if let Some(rw) = raw.remote_write {
        rw.get_ref()
            .validate()
            .map_err(|m| fail(rw.span(), "export.remote_write", m))?;
        out.remote_write = Some(rw.into_inner());
    }
    if let Some(o) = raw.otlp {
        o.get_ref()
            .validate()
            .map_err(|m| fail(o.span(), "export.otlp", m))?;
        out.otlp = Some(o.into_inner());
    }
    Ok(out)
}

fn fail(span: std::ops::Range<usize>, section: &str, message: String) -> (Failure, String) {
    let (key, message) = match message.split_once(": ") {
        Some((k, m)) if !k.contains(' ') => (Some(k.to_owned()), m.to_owned()),
        _ => (None, message),
    };
    (
        Failure {
            span,
            key,
            problem: Problem::Message(message),
        },
        section.to_owned(),
    )
}
