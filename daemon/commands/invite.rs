//! `kithd invite PLAN CONTACT`: asks a contact (with `invite = true`) whether they agree to
//! be told when the person doesn't answer in time. The message says who asks, what they may
//! receive and how to stop; it goes now through the contact's first channel, and the
//! invitation is recorded in the ledger. Alerts go to the contact only after their `YES`
//! (by SMS reply or `/inbound`). Must not record consent itself.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::StateDir;
use crate::exit;
use crate::plugin::{Outcome, SecretStore};

/// The invitation: who asks (in the person's own words when the plan has
/// `invite_message`), what the contact may get, and how to answer (a reply, their own link
/// with `[server]`, or through the person).
fn invitation(
    plan: &crate::plan::Plan,
    contact: &str,
    replies: bool,
    link: Option<&str>,
) -> String {
    let person = &plan.person.name;
    let answer = match (replies, link) {
        (true, Some(link)) => format!(
            "Reply YES if that's okay with you, or STOP and kithd won't message you again; or answer here: {link}"
        ),
        (true, None) => {
            "Reply YES if that's okay with you. Reply STOP and kithd won't message you again."
                .to_string()
        }
        (false, Some(link)) => format!("Please answer here: {link}"),
        (false, None) => format!(
            "If that's okay with you, tell {person}: they will note it in their plan. If not, nothing more happens."
        ),
    };
    let what = format!(
        "You would get a short note from kithd only if {person} doesn't answer a check-in in time, never anything about their health."
    );
    match &plan.invite_message {
        Some(own) => {
            let mut v = std::collections::BTreeMap::new();
            v.insert("person", person.clone());
            v.insert("recipient", contact.to_string());
            format!("{} {what} {answer}", own.render(&v))
        }
        None => format!(
            "Hi {contact}, {person} uses kithd, a reminder service, and would like you to be told if they don't answer a check-in in time. {what} {answer}"
        ),
    }
}

pub(crate) fn run(
    plan: &Path,
    plugin_dir: &Path,
    contact: &str,
    state: &StateDir,
    now: DateTime<Utc>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> exit::Outcome {
    let store = SecretStore::from_env();
    let secrets = crate::load::Secrets::Check(&store);
    let loaded = super::load(plan, plugin_dir, secrets, false, now, err)?;
    let snap = &loaded.snapshot;
    let c = snap
        .plan
        .contacts
        .get(contact)
        .ok_or_else(|| exit::Error::NoRecipient(contact.to_string()))?;
    let ledger = state.client()?;
    let said = ledger.consents()?.into_iter().find(|r| r.contact == c.id);
    let said_state = said.as_ref().map(|r| r.state.as_str());
    if let Some(r) = said.as_ref().filter(|r| r.state == "given") {
        let _ = writeln!(
            out,
            "{} said yes on {} (by {})",
            c.name,
            r.at.to_rfc3339(),
            r.how
        );
        return Ok(exit::OK);
    }
    // After a STOP, only a new YES counts, whatever the plan says.
    let stopped = said_state == Some("withdrawn");
    if let (Some(date), false) = (c.consent, stopped) {
        let _ = writeln!(
            out,
            "{} agreed in person (`consent = {date}` in the plan): no invitation needed",
            c.name
        );
        return Ok(exit::OK);
    }
    if !c.invite && !stopped {
        return Err(exit::Error::NoConsent(c.id.clone()));
    }
    let Some(channel) = c.reach.first() else {
        return Err(exit::Error::NoRecipient(contact.to_string()));
    };
    let replies = snap
        .channels
        .channels
        .get(channel)
        .is_some_and(|ch| ch.plugin.receives());
    let link = snap
        .links
        .as_ref()
        .map(|l| l.contact_url(&l.contact_token(&c.id, now)));
    let text = invitation(&snap.plan, &c.name, replies, link.as_deref());
    match super::send_test::send_now(snap, channel, c, &text, "invite", now)? {
        Outcome::Sent { .. } => {
            ledger.record_consent(&c.id, "invited", "cli", now)?;
            let _ = writeln!(
                out,
                "invited {} through `{channel}`; alerts go to them once they reply YES (`kithd status` shows who is still asked)",
                c.name
            );
            Ok(exit::OK)
        }
        Outcome::Skipped => {
            let _ = writeln!(out, "not sent: the plugin chose not to send");
            Ok(exit::FAILURE)
        }
        Outcome::Retry { reason, .. } => {
            let _ = writeln!(out, "not sent, retryable: {reason}");
            Ok(exit::UNAVAILABLE)
        }
        Outcome::Permanent { reason } => {
            let _ = writeln!(out, "not sent, permanent failure: {reason}");
            Ok(exit::FAILURE)
        }
    }
}
