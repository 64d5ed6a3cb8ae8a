//! `kithd send-test PLAN --channel ID --inbound FILE`: replays a captured gateway request
//! against the channel's `fn inbound`, offline, so a plugin author can test their parser
//! and signature check: prints what it read, whose number it is, how kithd reads the text,
//! and what the gateway would be answered. Must not write state or send anything.

use std::io::Write;
use std::path::Path;

use crate::answer::{own_secrets, parse_answer_in, parse_snooze_in, same_address};
use crate::exit;
use crate::plugin::inbound::{Inbound, InboundRequest, MAX_INBOUND_BODY};

use super::send_test::Args;

pub(crate) fn run(
    args: Args,
    capture: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> exit::Outcome {
    let loaded = super::send_test::load(&args, err)?;
    let snap = &loaded.snapshot;
    let plan = &snap.plan;
    let channel = snap
        .channels
        .channels
        .get(args.channel)
        .ok_or_else(|| super::send_test::no_channel(&args, plan))?;
    if !channel.plugin.receives() {
        return Err(exit::Error::Replay(format!(
            "channel `{}` uses plugin `{}`, which takes no replies (it has no `fn inbound(request, settings)`)",
            channel.id, channel.plugin.name
        )));
    }
    let Some(server) = &plan.server else {
        return Err(exit::Error::Replay(
            "replies come through the answer server: the plan needs `[server]` with `public_url`"
                .into(),
        ));
    };
    let raw = std::fs::read(capture)
        .map_err(|e| exit::Error::Replay(format!("can't read `{}`: {e}", capture.display())))?;
    if raw.len() > MAX_INBOUND_BODY + 8192 {
        return Err(exit::Error::Replay(format!(
            "`{}` is larger than a gateway request may be ({} KiB)",
            capture.display(),
            MAX_INBOUND_BODY / 1024
        )));
    }
    let request = InboundRequest::parse_raw(&String::from_utf8_lossy(&raw), &server.public_url)
        .map_err(|e| exit::Error::Replay(format!("`{}`: {e}", capture.display())))?;
    let _ = writeln!(out, "{} {}", request.method, request.url);
    let sandbox = &snap.registry.sandbox;
    let read = channel
        .plugin
        .inbound(
            sandbox,
            &request,
            &channel.settings,
            own_secrets(&channel.grant, None),
        )
        .map_err(|e| exit::Error::Replay(format!("`inbound` failed: {e}")))?;
    let reply = match read {
        Inbound::Reject { reason, status } => {
            let _ = writeln!(
                out,
                "refused ({status}): {reason}\nkithd would record nothing."
            );
            return Ok(exit::FAILURE);
        }
        Inbound::Nothing => {
            let _ = writeln!(
                out,
                "not a message (`inbound` returned ()): nothing to record"
            );
            None
        }
        Inbound::Message {
            from,
            text,
            id,
            received,
        } => {
            let field = channel.address.as_deref().unwrap_or("phone");
            let sender = if plan
                .person
                .addresses
                .get(field)
                .is_some_and(|p| same_address(field, p, &from))
            {
                "the person".to_string()
            } else if let Some(c) = plan.contacts.values().find(|c| {
                c.addresses
                    .get(field)
                    .is_some_and(|a| same_address(field, a, &from))
            }) {
                format!("contact `{}`: not taken as the person's answer", c.id)
            } else {
                format!("no one in the plan (no `{field}` matches): ignored")
            };
            let _ = writeln!(out, "a message from {from} ({sender})\ntext: {text:?}");
            let _ = writeln!(
                out,
                "gateway message id: {}",
                id.as_deref()
                    .unwrap_or("none (repeats can't be recognised)")
            );
            if let Some(r) = received {
                let _ = writeln!(out, "received by the gateway: {}", r.to_rfc3339());
            }
            let reading = match (
                parse_snooze_in(&text, &plan.language),
                parse_answer_in(&text, &plan.language),
            ) {
                (Some(d), _) => Some(format!("snooze for {} min", d.num_minutes())),
                (None, Some(a)) => Some(format!("the answer `{}`", a.as_value())),
                (None, None) => None,
            };
            let _ = writeln!(
                out,
                "read as: {}",
                reading
                    .as_deref()
                    .unwrap_or("not understood: the choices are sent back")
            );
            reading.is_none().then(crate::answer::choices_reply_text)
        }
    };
    match channel
        .plugin
        .inbound_response(sandbox, reply.as_deref(), &channel.settings)
    {
        Ok(Some(r)) => {
            let _ = writeln!(
                out,
                "the gateway is answered: {} {}\n{}",
                r.status, r.content_type, r.body
            );
        }
        Ok(None) => {
            let _ = writeln!(out, "the gateway is answered: 200, empty");
            if reply.is_some() {
                let _ = writeln!(
                    out,
                    "(the choices would go back through the channel's `send`)"
                );
            }
        }
        Err(e) => {
            let _ = writeln!(out, "`inbound_response` failed: {e}");
            return Ok(exit::FAILURE);
        }
    }
    Ok(exit::OK)
}
