//! A complete, minimal vigilo **channel** plugin: it POSTs each alert as JSON to the `url` in
//! its configuration. Copy this crate to write your own channel (see the SDK's README, "your
//! first channel in 10 minutes").
//!
//! Build it with
//!
//! ```sh
//! cargo build --release --target wasm32-wasip2
//! ```
//!
//! and load `target/wasm32-wasip2/release/<crate_name>.wasm` into the host
//! (`vigilo_plugin_host::PluginHost::load_channel`) with settings such as
//!
//! ```toml
//! name = "my-channel"
//! path = "target/wasm32-wasip2/release/my_channel.wasm"
//! allowed_hosts = ["hooks.example.com"]     # the only hosts this plugin may reach
//!
//! [config]                                   # passed to `deliver` as `config`
//! url = "https://hooks.example.com/vigilo"  # may hold {{field}}s: each value is URL-encoded
//! token = "s3cret"                           # optional: sent as `Authorization: Bearer …`
//! ```

// Everything a plugin needs comes from the SDK:
// - `Channel`: the trait a channel implements (one function, `deliver`);
// - `Alert`: what to deliver (rule, metric, severity, labels, annotations, recipients …);
// - `Config`: the operator's settings for this plugin, read with `config.get("key")`;
// - `DeliveryError`: `Retryable` (the host tries again later) or `Permanent` (it does not);
// - `http`: outgoing HTTP to the hosts the operator allowed, `log`: the host's log.
use vigilo_plugin_sdk::template::{self, Vars};
use vigilo_plugin_sdk::{Alert, Channel, Config, DeliveryError, http, log};

/// The plugin. It holds no state: each delivery runs in a fresh sandbox, so keep nothing
/// between calls (the host may also run deliveries in parallel).
struct TemplateChannel;

impl Channel for TemplateChannel {
    fn deliver(config: &Config, alert: &Alert) -> Result<(), DeliveryError> {
        // 1. Read the settings. `get` fails with a clear `Permanent` error ("config: missing
        //    required setting `url`") when the operator forgot one: `?` passes it to the host.
        //    The URL is a `{{field}}` template too: `render_url` encodes each value for the
        //    part of the URL where it lands (a label value with `/`, `?` or `..` can never move
        //    the request elsewhere: it is encoded, or the delivery fails permanently). Alert
        //    data is never pasted into a URL, a header or a body as it is: see the SDK's
        //    `encode` module for the other places (JSON string, form field, header, markup).
        let url = template::render_url(&config.get::<String>("url")?, &Vars::new(alert))?;
        // An optional setting: `None` when absent.
        let token: Option<String> = config.get_opt("token")?;

        // 2. Build the body. `to_json` gives the whole alert as a JSON object; build your own
        //    with `vigilo_plugin_sdk::json::json!({...})`, or render a text with
        //    `alert.render("[{{severity}}] {{summary}}")?` (see the SDK's `template` module).
        let body = alert.to_json();

        // 3. Send it. Headers are (name, value) pairs. The idempotency key lets a receiver that
        //    deduplicates drop the copy the host may send again after a crash.
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Idempotency-Key", alert.idempotency_key.as_str())];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        // `post_json` checks the status by the contract's retry policy (the table in the SDK's
        // `http` module): 2xx is Ok, 408/425/429/5xx become `Retryable` and other
        // 4xx `Permanent`, so `?` is all the error handling a simple channel needs.
        let response = http::post_json(&url, &headers, &body)?;

        // 4. Say what happened: the host's log tags this line with the plugin's name.
        log::debug!(
            "delivered {} to {url}: HTTP {}",
            alert.rule,
            response.status
        );
        Ok(())
    }
}

// Export the plugin: this generates the component's `vigilo:plugin/channel` export.
vigilo_plugin_sdk::export_channel!(TemplateChannel);
