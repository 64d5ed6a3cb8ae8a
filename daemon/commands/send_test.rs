//! `kithd send-test PLAN --channel ID --to RECIPIENT [--message TEXT]`: sends one
//! notification now through the real path (plan, plugin, host, gateway) and prints the
//! outcome. Exit 0 only when sent. Must not write state.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::exit;
use crate::plan::SELF_ID;
use crate::plugin::host::{Host, Timeouts};

use crate::plugin::{Message, Outcome, SecretStore};

pub(crate) struct Args<'a> {
    pub plan: &'a Path,
    pub plugin_dir: &'a Path,
    pub channel: &'a str,
    pub to: &'a str,
    pub message: Option<&'a str>,
    pub now: DateTime<Utc>,
}

pub(crate) fn run(args: Args, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let store = SecretStore::from_env();
    let loaded = match super::load(
        args.plan,
        args.plugin_dir,
        crate::load::Secrets::Check(&store),
        false,
        args.now,
        err,
    ) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let snap = &loaded.snapshot;
    let plan = &snap.plan;
    let Some(channel) = plan.channels.get(args.channel) else {
        let _ = writeln!(
            err,
            "error: no channel `{}` in the plan (channels: {})",
            args.channel,
            plan.channels.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        return exit::USAGE;
    };
    let Some(recipient) = plan.recipient(args.to) else {
        let _ = writeln!(
            err,
            "error: no recipient `{}`: use `self` or a contact id",
            args.to
        );
        return exit::USAGE;
    };
    if recipient.id != SELF_ID && recipient.consent.is_none() {
        let _ = writeln!(
            err,
            "error: contact `{}` has not consented; kithd never messages a contact without `consent`",
            recipient.id
        );
        return exit::USAGE;
    }
    let Some(prepared) = snap.channels.channels.get(&channel.id) else {
        return exit::SOFTWARE;
    };
    let address = match &prepared.address {
        Some(field) => match recipient.addresses.get(field) {
            Some(a) => Some(a.clone()),
            None => {
                let _ = writeln!(
                    err,
                    "error: `{}` has no `{field}` address for channel `{}`",
                    recipient.id, channel.id
                );
                return exit::USAGE;
            }
        },
        None => None,
    };
    let now = args.now;
    let message = Message {
        delivery_id: format!("test_{}", now.timestamp_millis()),
        item: "send-test".into(),
        kind: "test".into(),
        scheduled: now.with_timezone(&recipient.timezone).to_rfc3339(),
        text: args
            .message
            .unwrap_or("This is a test message from kithd.")
            .to_string(),
        title: "Test".into(),
        recipient: recipient.id.clone(),
        recipient_name: recipient.name.clone(),
        address,
        urgent: false,
        answer_url: None,
        choices: Vec::new(),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            let _ = writeln!(err, "error: can't start the async runtime: {e}");
            return exit::SOFTWARE;
        }
    };
    let host = Host::new(SecretStore::from_env(), Timeouts::default());
    let outcome = runtime.block_on(host.deliver(
        &snap.registry.sandbox,
        &prepared.plugin,
        &message,
        &prepared.settings,
        &tokio::sync::Semaphore::new(1),
        &prepared.grant,
    ));
    let _ = out.flush();
    match outcome {
        Outcome::Sent { gateway_id } => {
            let _ = match gateway_id {
                Some(id) => writeln!(out, "sent through `{}` (gateway id {id})", channel.id),
                None => writeln!(out, "sent through `{}`", channel.id),
            };
            exit::OK
        }
        Outcome::Skipped => {
            let _ = writeln!(out, "skipped: the plugin chose not to send");
            exit::FAILURE
        }
        Outcome::Retry { after, reason } => {
            let when = after
                .map(|a| format!(" (gateway asks to wait {}s)", a.as_secs()))
                .unwrap_or_default();
            let _ = writeln!(out, "not sent, retryable: {reason}{when}");
            exit::UNAVAILABLE
        }
        Outcome::Permanent { reason } => {
            let _ = writeln!(out, "not sent, permanent failure: {reason}");
            exit::FAILURE
        }
    }
}
