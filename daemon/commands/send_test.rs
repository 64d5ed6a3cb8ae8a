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

/// The plan, loaded as `run` loads it (secrets checked), for a channel of it.
pub(super) fn load(args: &Args, err: &mut dyn Write) -> Result<crate::load::Loaded, exit::Error> {
    let store = SecretStore::from_env();
    super::load(
        args.plan,
        args.plugin_dir,
        crate::load::Secrets::Check(&store),
        false,
        args.now,
        err,
    )
}

/// The error for a channel the plan doesn't have.
pub(super) fn no_channel(args: &Args, plan: &crate::plan::Plan) -> exit::Error {
    exit::Error::NoChannel {
        channel: args.channel.to_string(),
        known: plan.channels.keys().cloned().collect(),
    }
}

/// Sends `text` to `recipient` through the plan's channel `channel` now, through the
/// plugin host as the daemon would (its own runtime; nothing is recorded).
pub(super) fn send_now(
    snap: &crate::dispatch::worker::Snapshot,
    channel: &str,
    recipient: &crate::plan::Recipient,
    text: &str,
    kind: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, exit::Error> {
    let no_channel = || exit::Error::NoChannel {
        channel: channel.to_string(),
        known: snap.plan.channels.keys().cloned().collect(),
    };
    // Every channel in a loaded plan is prepared; a missing one is the plan's absence.
    let prepared = snap.channels.channels.get(channel).ok_or_else(no_channel)?;
    let address =
        match &prepared.address {
            Some(field) => Some(recipient.addresses.get(field).cloned().ok_or_else(|| {
                exit::Error::NoAddress {
                    recipient: recipient.id.clone(),
                    field: field.clone(),
                    channel: channel.to_string(),
                }
            })?),
            None => None,
        };
    let message = Message {
        delivery_id: format!("{kind}_{}", now.timestamp_millis()),
        item: if kind == "test" {
            "send-test".into()
        } else {
            kind.into()
        },
        kind: kind.into(),
        scheduled: now.with_timezone(&recipient.timezone).to_rfc3339(),
        text: text.to_string(),
        title: if kind == "test" {
            "Test".into()
        } else {
            "A note from kithd".into()
        },
        recipient: recipient.id.clone(),
        recipient_name: recipient.name.clone(),
        address,
        urgent: false,
        answer_url: None,
        choices: Vec::new(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| exit::Error::Setup {
            what: "can't start the async runtime",
            source,
        })?;
    let secrets = SecretStore::from_env().for_plan(snap.plan.scope.as_deref());
    let host = Host::new(secrets, Timeouts::default());
    let via = crate::plugin::host::Via {
        sandbox: &snap.registry.sandbox,
        plugin: &prepared.plugin,
        settings: &prepared.settings,
        lane: &crate::plugin::lane::ScriptLane::new(1),
        grant: &prepared.grant,
    };
    Ok(runtime.block_on(host.deliver(&via, &message)))
}

pub(crate) fn run(args: Args, out: &mut dyn Write, err: &mut dyn Write) -> exit::Outcome {
    let loaded = load(&args, err)?;
    let snap = &loaded.snapshot;
    let plan = &snap.plan;
    let no_channel = || no_channel(&args, plan);
    let channel = plan.channels.get(args.channel).ok_or_else(no_channel)?;
    let recipient = plan
        .recipient(args.to)
        .ok_or_else(|| exit::Error::NoRecipient(args.to.to_string()))?;
    if recipient.id != SELF_ID && recipient.consent.is_none() {
        return Err(exit::Error::NoConsent(recipient.id.clone()));
    }
    let text = args.message.unwrap_or("This is a test message from kithd.");
    let outcome = send_now(snap, &channel.id, recipient, text, "test", args.now)?;
    let _ = out.flush();
    Ok(match outcome {
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
    })
}
