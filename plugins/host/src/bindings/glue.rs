//! What every version's bindings share, as a macro expanded in each version's module (the
//! generated types differ by version, the code that moves them does not).

/// A version's bindings: the generated worlds for the WIT folder `$wit`, linking its imports,
/// calling its exports, the host side of the imports (log, clock, mail, exec), and `to_wit`,
/// the alert in that version's shape. The fields a version added to the alert are given as
/// `name: expression` over the alert `$a`.
macro_rules! version_glue {
    (wit: $wit:literal, alert: $a:ident, added: { $($field:ident: $value:expr),* $(,)? }) => {
        mod channel_world {
            wasmtime::component::bindgen!({
                path: $wit,
                world: "channel-plugin",
                imports: { default: async },
                exports: { default: async },
            });
        }

        mod action_world {
            wasmtime::component::bindgen!({
                path: $wit,
                world: "action-plugin",
                imports: { default: async },
                exports: { default: async },
                with: {
                    "vigilo:plugin/types": super::channel_world::vigilo::plugin::types,
                    "vigilo:plugin/log": super::channel_world::vigilo::plugin::log,
                    "vigilo:plugin/clock": super::channel_world::vigilo::plugin::clock,
                },
            });
        }

        pub(crate) use action_world::ActionPluginPre;
        pub(crate) use channel_world::ChannelPluginPre;

        use action_world::vigilo::plugin::exec;
        use channel_world::vigilo::plugin::{clock, log as wit_log, mail, types};

        fn to_wit($a: &Alert) -> types::Alert {
            let pairs = |m: &std::collections::BTreeMap<String, String>| {
                m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
            };
            types::Alert {
                rule: $a.rule.clone(),
                metric: $a.metric.clone(),
                labels: pairs(&$a.labels),
                annotations: pairs(&$a.annotations),
                severity: severity($a.severity),
                previous: severity($a.previous),
                status: match $a.status {
                    core::AlertStatus::Firing => types::AlertStatus::Firing,
                    core::AlertStatus::Resolved => types::AlertStatus::Resolved,
                },
                value: $a.value,
                threshold: $a.threshold,
                since_ms: $a.since.as_millis(),
                at_ms: $a.at.as_millis(),
                idempotency_key: $a.idempotency_key.clone(),
                recipients: $a.recipients.clone(),
                $($field: $value,)*
            }
        }

        pub(crate) fn add_channel_imports(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
            channel_world::ChannelPlugin::add_to_linker::<HostState, HasSelf<HostState>>(
                linker,
                |s| s,
            )
        }

        pub(crate) fn add_action_imports(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
            action_world::ActionPlugin::add_to_linker::<HostState, HasSelf<HostState>>(
                linker,
                |s| s,
            )
        }

        pub(crate) async fn deliver(
            pre: &ChannelPluginPre<HostState>,
            store: &mut Store<HostState>,
            alert: &Alert,
        ) -> Result<Result<(), core::DeliveryError>, CallError> {
            let policy = store.data().policy();
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(CallError::instantiating)?;
            let answer = instance
                .vigilo_plugin_channel()
                .call_deliver(&mut *store, &policy.config_json, &to_wit(alert))
                .await
                .map_err(CallError::calling)?;
            Ok(answer.map_err(|e| match e {
                types::DeliveryError::Retryable(m) => core::DeliveryError::Retryable(guest_text(m)),
                types::DeliveryError::Permanent(m) => core::DeliveryError::Permanent(guest_text(m)),
            }))
        }

        pub(crate) async fn run(
            pre: &ActionPluginPre<HostState>,
            store: &mut Store<HostState>,
            alert: &Alert,
            started: std::time::Instant,
        ) -> Result<Result<core::ActionOutcome, String>, CallError> {
            let policy = store.data().policy();
            let instance = pre
                .instantiate_async(&mut *store)
                .await
                .map_err(CallError::instantiating)?;
            let answer = instance
                .vigilo_plugin_action()
                .call_run(&mut *store, &policy.config_json, &to_wit(alert))
                .await
                .map_err(CallError::calling)?;
            let elapsed: Duration = started.elapsed();
            Ok(answer
                .map(|o| core::ActionOutcome {
                    success: o.success,
                    message: guest_text(o.message),
                    exit_code: o.exit_code,
                    output_tail: crate::limits::tail(o.output_tail),
                    elapsed,
                })
                .map_err(guest_text))
        }

        /// A string from the guest, cut to the host's limit.
        fn guest_text(s: String) -> String {
            crate::limits::head(s)
        }

        impl types::Host for HostState {}

        impl wit_log::Host for HostState {
            async fn log(&mut self, level: wit_log::Level, message: String) {
                let level = match level {
                    wit_log::Level::Trace => log::Level::Trace,
                    wit_log::Level::Debug => log::Level::Debug,
                    wit_log::Level::Info => log::Level::Info,
                    wit_log::Level::Warn => log::Level::Warn,
                    wit_log::Level::Error => log::Level::Error,
                };
                self.guest_log(level, &message);
            }
        }

        impl clock::Host for HostState {
            async fn now_ms(&mut self) -> i64 {
                self.policy().clock.now().as_millis()
            }
        }

        impl mail::Host for HostState {
            async fn send(
                &mut self,
                envelope: mail::Envelope,
                message: String,
            ) -> Result<(), mail::MailError> {
                self.mail(envelope.from, envelope.to, message)
                    .await
                    .map_err(|e| match e {
                        MailFailure::Denied(m) => mail::MailError::Denied(m),
                        MailFailure::Retryable(m) => mail::MailError::Retryable(m),
                        MailFailure::Permanent(m) => mail::MailError::Permanent(m),
                    })
            }
        }

        impl exec::Host for HostState {
            async fn run(
                &mut self,
                command: String,
                args: Vec<String>,
            ) -> Result<exec::Output, exec::ExecError> {
                match self.exec(command, args).await {
                    Ok(o) => Ok(exec::Output {
                        exit_code: o.exit_code,
                        stdout_tail: o.stdout_tail,
                        stderr_tail: o.stderr_tail,
                        timed_out: o.timed_out,
                    }),
                    Err(ExecFailure::Denied(m)) => Err(exec::ExecError::Denied(m)),
                    Err(ExecFailure::Failed(m)) => Err(exec::ExecError::Failed(m)),
                }
            }
        }

        fn severity(s: vigilo::Severity) -> types::Severity {
            match s {
                vigilo::Severity::Normal => types::Severity::Normal,
                vigilo::Severity::Info => types::Severity::Info,
                vigilo::Severity::Warning => types::Severity::Warning,
                vigilo::Severity::Minor => types::Severity::Minor,
                vigilo::Severity::Major => types::Severity::Major,
                vigilo::Severity::Critical => types::Severity::Critical,
            }
        }
    };
}

pub(crate) use version_glue;
