//! The SDK README's "Loading a plugin from your own Rust program" (`plugins/guests/sdk/README.md`):
//! loads the first channel of `my-channel.toml` in the current directory and delivers one alert.
//! `plugins/host/tests/host/sdk_readme.rs` checks that the README shows this file and runs it.
//! The README's code starts below this comment.

use vigilo::clock::Timestamp;
use vigilo::{Alert, Channel, Config, Severity};
use vigilo_plugin_host::PluginHost;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_file("my-channel.toml")?;
    let host = PluginHost::new(config.plugins.clone())?;
    let channel = host.load_channel(config.pipeline.channels[0].plugin.clone())?;

    let alert = Alert::builder("cpu-high", Severity::Major)
        .metric("host.cpu.usage")
        .label("host", "web-1")
        .annotation("summary", "CPU at 93.5% on web-1")
        .previous(Severity::Warning)
        .value(93.5)
        .threshold(80.0)
        .since(Timestamp::from_secs(1_700_000_000))
        .at(Timestamp::from_secs(1_700_000_060))
        .idempotency_key("cpu-high/web-1/1700000060/major")
        .incident(1)
        .build();
    channel.deliver(&alert)?;
    println!("delivered");
    Ok(())
}
