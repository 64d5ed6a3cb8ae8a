//! `/inbound/{channel}`: replies through a real SMS gateway. The raw request goes to the
//! channel's plugin (`fn inbound`), which verifies the gateway's signature with host
//! helpers and reads the sender and text. Then, in order: a repeated gateway message id is
//! acknowledged and records nothing; a sender who isn't the person (a contact, a stranger)
//! is ignored; the text is read in the plan's language; the answer goes to a check-in or
//! dose that was open when the gateway received the text. A text that isn't understood
//! gets a short list of the choices back (at most once in ten minutes per sender and
//! channel),
//! inline where the gateway allows it, else through the channel's `send`. Must not log
//! message text or full phone numbers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::body::Bytes;

use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use rhai::Map;
use tracing::{info, warn};

use super::http::{AnswerState, record_answer, snooze};
use super::reply::{choices_reply, is_stop, is_yes, parse_answer_in, parse_snooze_in};
use crate::plugin::inbound::{GatewayReply, Inbound, InboundRequest};
use crate::plugin::{Grant, Message, Plugin, Registry, SecretStore};
use crate::vocab::Kind;

/// A channel whose plugin takes replies.
#[derive(Clone)]
pub(crate) struct Gateway {
    pub plugin: Arc<Plugin>,
    pub settings: Map,
    pub grant: Grant,
    /// The recipient address field the channel sends to (`phone`): a reply's sender is
    /// matched through it.
    pub address: Option<String>,
}

/// What replies are checked against, from the plan.
pub(crate) struct Replies {
    pub registry: Arc<Registry>,
    pub gateways: BTreeMap<String, Gateway>,
    /// `[server] public_url`: gateways sign the URL they called.
    pub public_url: String,
    pub language: String,
    /// The person's name (contacts' pages say who asks).
    pub person_name: String,
    /// The person's address fields.
    pub person: BTreeMap<String, String>,
    /// Each contact's id and address fields.
    pub contacts: Vec<(String, BTreeMap<String, String>)>,
    /// The plan's id when it is one of a directory of plans: its secrets are its own first.
    pub scope: Option<String>,
    /// The person's first channel and their address on it: how kithd tells them what a
    /// contact said.
    pub person_channel: Option<(Gateway, Option<String>)>,
}

/// How often one sender is told the choices.
const CHOICES_EVERY: chrono::Duration = chrono::Duration::minutes(10);

/// Whether two addresses of `field` are the same: phone numbers by their digits.
pub(crate) fn same_address(field: &str, a: &str, b: &str) -> bool {
    if field == "phone" {
        let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
        let (a, b) = (digits(a), digits(b));
        !a.is_empty() && a == b
    } else {
        !a.trim().is_empty() && a.trim().eq_ignore_ascii_case(b.trim())
    }
}

/// A phone number as logs may show it: its last two digits.
pub(crate) fn redacted(from: &str) -> String {
    let digits: Vec<char> = from.chars().filter(char::is_ascii_digit).collect();
    let tail: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    format!("…{tail}")
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], body).into_response()
}

fn answer_gateway(r: GatewayReply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::OK);
    (
        status,
        [
            (header::CONTENT_TYPE, r.content_type),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        r.body,
    )
        .into_response()
}

/// The raw request as the channel's plugin reads it.
pub(super) fn request(
    replies: &Replies,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> InboundRequest {
    InboundRequest::new(
        method.as_str(),
        &replies.public_url,
        uri.path(),
        uri.query().unwrap_or(""),
        headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        String::from_utf8_lossy(body).into_owned(),
    )
}

/// The channel's plugin reads (and verifies) the request, off the async workers, with the
/// channel's own secrets; a failure is the response to give.
pub(super) async fn read(
    replies: &Replies,
    gw: &Gateway,
    channel: &str,
    request: InboundRequest,
) -> Result<Inbound, Response> {
    let read = {
        let (registry, gw) = (replies.registry.clone(), gw.clone());
        let scope = replies.scope.clone();
        tokio::task::spawn_blocking(move || {
            let secrets = own_secrets(&gw.grant, scope.as_deref());
            let read = gw
                .plugin
                .inbound(&registry.sandbox, &request, &gw.settings, secrets);
            read.map_err(|e| crate::plugin::contract::scrub_reason(&e.message, &request.body))
        })
        .await
    };
    let failed = || {
        plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the channel's plugin failed",
        )
    };
    match read {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => {
            warn!(channel = %channel, error = %e, "The channel's `inbound` failed.");
            Err(failed())
        }
        Err(_) => Err(failed()),
    }
}

/// Whether `from` is the person's address on `gw`'s channel.
pub(super) fn is_person(replies: &Replies, gw: &Gateway, from: &str) -> bool {
    let field = gw.address.clone().unwrap_or_else(|| "phone".into());
    replies
        .person
        .get(&field)
        .is_some_and(|p| same_address(&field, p, from))
}

/// What an inbound request read by the channel's plugin leads to, in one plan.
pub(super) async fn take(
    state: &AnswerState,
    replies: &Replies,
    gw: &Gateway,
    channel: &str,
    read: Inbound,
) -> Response {
    let (from, text, id, received) = match read {
        Inbound::Nothing => return respond(replies, gw, None).await,
        Inbound::Reject { reason, status } => {
            warn!(channel = %channel, reason = %reason, "Refused an inbound request.");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
            return plain(status, "refused");
        }
        Inbound::Message {
            from,
            text,
            id,
            received,
        } => (from, text, id, received),
    };
    let field = gw.address.clone().unwrap_or_else(|| "phone".into());
    if !is_person(replies, gw, &from)
        && is_stop(&text)
        && withdraw_contact(state, replies, &field, &from, "sms")
            .await
            .is_some()
    {
        return respond(replies, gw, Some(STOPPED.into())).await;
    }
    if !is_person(replies, gw, &from)
        && is_yes(&text)
        && contact_agrees(state, replies, &field, &from, "sms")
            .await
            .is_some()
    {
        return respond(replies, gw, Some(AGREED.into())).await;
    }
    if !is_person(replies, gw, &from) {
        match replies.contacts.iter().find(|(_, a)| {
            a.get(&field)
                .is_some_and(|c| same_address(&field, c, &from))
        }) {
            Some((contact, _)) => {
                info!(channel = %channel, contact = %contact, "A contact's reply was not taken as the person's answer.")
            }
            None => {
                info!(channel = %channel, from = %redacted(&from), "A reply from an unknown sender was ignored.")
            }
        }
        return respond(replies, gw, None).await;
    }
    // A gateway resends when it got no answer, and a captured request can be replayed: a
    // message id is taken once.
    let nonce = id.map(|id| format!("inbound:{channel}:{id}"));
    if let Some(n) = nonce.clone() {
        let now = state.clock.now();
        match state.ledger.call(move |l| l.use_token(&n, now)).await {
            Ok(true) => {}
            Ok(false) => {
                info!(channel = %channel, "A repeated gateway message was acknowledged and not recorded.");
                return respond(replies, gw, None).await;
            }
            Err(e) => {
                warn!(channel = %channel, error = %e, "Could not check a gateway message id.");
                return plain(StatusCode::SERVICE_UNAVAILABLE, "try again");
            }
        }
    }
    let now = state.clock.now();
    let at = received.map_or(now, |r| r.min(now));
    let recorded = take_reply(state, replies, channel, &text, at).await;
    match recorded {
        Taken::Done => respond(replies, gw, None).await,
        // The person's own words and numbers, back by the way the answer came.
        Taken::Heard => {
            let crisis = state.keys().plan.crisis_text.clone();
            respond_or_send(state, replies, gw, channel, crisis, &from).await
        }
        Taken::NotUnderstood => {
            let reply = tell_choices(state, channel, &from, now).then(|| choices_reply(&[]));
            if reply.is_none() {
                info!(channel = %channel, "A reply was not understood; the choices were sent lately.");
            }
            respond_or_send(state, replies, gw, channel, reply, &from).await
        }
        Taken::Failed => {
            if let Some(n) = nonce {
                let _ = state.ledger.call(move |l| l.release_token(&n)).await;
            }
            plain(StatusCode::SERVICE_UNAVAILABLE, "try again")
        }
    }
}

/// The id of the plan's contact whose `field` address `from` is.
fn contact_by<'r>(replies: &'r Replies, field: &str, from: &str) -> Option<&'r String> {
    replies
        .contacts
        .iter()
        .find(|(_, a)| a.get(field).is_some_and(|c| same_address(field, c, from)))
        .map(|(id, _)| id)
}

/// What a contact who asked to stop is answered.
pub(super) const STOPPED: &str =
    "You will get no more messages from kithd. Thank you for having been there.";

/// A contact's STOP: withdrawn in this plan, their pending alerts cancelled, and the person
/// can see it in `kithd status`. The contact's id, when `from` is one of the plan's
/// contacts on `field` and it was recorded.
pub(super) async fn withdraw_contact(
    state: &AnswerState,
    replies: &Replies,
    field: &str,
    from: &str,
    how: &'static str,
) -> Option<String> {
    let contact = contact_by(replies, field, from)?;
    let (c, now) = (contact.clone(), state.clock.now());
    match state.ledger.call(move |l| l.withdraw(&c, how, now)).await {
        Ok((deliveries, steps)) => {
            warn!(contact = %contact, deliveries, steps, "A contact asked to stop: kithd sends them nothing more (see `kithd status`).");
            tell_person(state, replies, stopped_notice(contact));
            Some(contact.clone())
        }
        Err(e) => {
            warn!(contact = %contact, error = %e, "Could not record a contact's STOP.");
            None
        }
    }
}

/// What the person is told when a contact asked to stop.
pub(super) fn stopped_notice(contact: &str) -> String {
    format!(
        "{contact} asked kithd not to send them messages any more. That's okay: \
         you can still reach them yourself, and kithd won't alert them from now on. \
         When you feel ready, you could choose someone else to be told."
    )
}

/// Sends `text` to the person through their first channel, in the background (logged,
/// never retried: `kithd status` says the same).
pub(super) fn tell_person(state: &AnswerState, replies: &Replies, text: String) {
    let Some((gw, address)) = replies.person_channel.clone() else {
        return;
    };
    let now = state.clock.now();
    let id = format!("notice-{}", now.timestamp_millis());
    let message = note(id, "notice", "A note from kithd", text, address, now);
    send_in_background(
        state,
        replies,
        gw,
        message,
        "Told the person what a contact said.",
    );
}

/// A short message of kithd's own (not an item's), to `address`.
fn note(
    delivery_id: String,
    kind: &str,
    title: &str,
    text: String,
    address: Option<String>,
    now: DateTime<Utc>,
) -> Message {
    Message {
        delivery_id,
        item: String::new(),
        kind: kind.into(),
        scheduled: now.to_rfc3339(),
        text,
        title: title.into(),
        recipient: crate::vocab::SELF_ID.into(),
        recipient_name: String::new(),
        address,
        urgent: false,
        answer_url: None,
        choices: Vec::new(),
    }
}

/// Sends `message` through `gw`'s plugin off the request, logging `done` with the outcome
/// (never retried: what it says is in the ledger or `status` too).
fn send_in_background(
    state: &AnswerState,
    replies: &Replies,
    gw: Gateway,
    message: Message,
    done: &'static str,
) {
    let (host, registry) = (state.host.clone(), replies.registry.clone());
    tokio::spawn(async move {
        let lane = crate::plugin::lane::ScriptLane::new(1);
        let via = crate::plugin::host::Via {
            sandbox: &registry.sandbox,
            plugin: &gw.plugin,
            settings: &gw.settings,
            lane: &lane,
            grant: &gw.grant,
        };
        let outcome = host.deliver(&via, &message).await;
        info!(outcome = ?outcome, "{done}");
    });
}

/// What a contact who said YES to an invitation is answered.
pub(super) const AGREED: &str =
    "Thank you. You will be told only when it matters, and can reply STOP at any time.";

/// A contact's YES to an invitation (`kithd invite`): recorded in this plan, so alerts go
/// to them from now on. The contact's id, when `from` is a contact of the plan who was
/// invited (a YES from anyone else changes nothing).
pub(super) async fn contact_agrees(
    state: &AnswerState,
    replies: &Replies,
    field: &str,
    from: &str,
    how: &'static str,
) -> Option<String> {
    let contact = contact_by(replies, field, from)?;
    let (c, now) = (contact.clone(), state.clock.now());
    let recorded = state
        .ledger
        .call(move |l| {
            let invited = l
                .consents()?
                .iter()
                .any(|r| r.contact == c && r.state == "invited");
            if invited {
                l.record_consent(&c, "given", how, now)?;
            }
            Ok(invited)
        })
        .await;
    match recorded {
        Ok(true) => {
            info!(contact = %contact, "An invited contact said yes: alerts go to them from now on.");
            Some(contact.clone())
        }
        Ok(false) => None,
        Err(e) => {
            warn!(contact = %contact, error = %e, "Could not record a contact's yes.");
            None
        }
    }
}

enum Taken {
    /// Recorded, or nothing was open to take it.
    Done,
    /// Recorded, an answer the person asked their contacts to hear about.
    Heard,
    NotUnderstood,
    /// The ledger failed: the gateway should try again.
    Failed,
}

/// Reads `text` as a snooze or an answer and applies it to the check-in or dose open at
/// `at`.
async fn take_reply(
    state: &AnswerState,
    replies: &Replies,
    channel: &str,
    text: &str,
    at: DateTime<Utc>,
) -> Taken {
    let snooze_for = parse_snooze_in(text, &replies.language);
    let answer = parse_answer_in(text, &replies.language);
    let kinds = match (&snooze_for, &answer) {
        (Some(_), _) => vec![Kind::Checkin, Kind::Medication],
        (None, Some(a)) => vec![a.kind()],
        (None, None) => return Taken::NotUnderstood,
    };
    let firing = match state
        .ledger
        .call(move |l| l.open_firing(None, &kinds, at))
        .await
    {
        Ok(Some(f)) => f,
        Ok(None) => {
            info!(channel = %channel, "A reply came with nothing open to answer.");
            return Taken::Done;
        }
        Err(e) => {
            warn!(error = %e, "Could not look up an open item.");
            return Taken::Failed;
        }
    };
    let done = match (snooze_for, answer) {
        (Some(delay), _) => snooze(state, firing, delay, "sms").await.map(|_| ()),
        (None, Some(a)) => match record_answer(state, firing, &a, None, "sms").await {
            Ok(crate::store::AnswerResult::Recorded { heard: true, .. }) => return Taken::Heard,
            other => other.map(|_| ()),
        },
        (None, None) => return Taken::NotUnderstood,
    };
    match done {
        Ok(()) => Taken::Done,
        Err(()) => Taken::Failed,
    }
}

/// Whether `from` may be told the choices through `channel` now (and notes that it was).
fn tell_choices(state: &AnswerState, channel: &str, from: &str, now: DateTime<Utc>) -> bool {
    let sender: String = from.chars().filter(char::is_ascii_alphanumeric).collect();
    let key = format!("{channel}/{sender}");
    let mut told = state.told.lock().unwrap_or_else(|p| p.into_inner());
    told.retain(|_, at| now - *at < CHOICES_EVERY);
    if told.contains_key(&key) {
        return false;
    }
    told.insert(key, now);
    true
}

/// The channel's own secrets, resolved for `verify_signature`; unset ones are left out
/// (verifying with them then fails, naming the secret).
pub(crate) fn own_secrets(grant: &Grant, plan: Option<&str>) -> HashMap<String, String> {
    let store = SecretStore::from_env().for_plan(plan);
    grant
        .secrets
        .iter()
        .filter_map(|n| Some((n.clone(), store.get(n).ok()?.expose().to_string())))
        .collect()
}

/// What the plugin answers the gateway (an empty 200 when it says nothing).
async fn respond(replies: &Replies, gw: &Gateway, reply: Option<String>) -> Response {
    answer_gateway(
        plugin_answer(replies, gw, reply)
            .await
            .unwrap_or_else(GatewayReply::empty),
    )
}

/// The plugin's `inbound_response` (off the async workers): `None` when it has none, says
/// `()` or fails (logged).
async fn plugin_answer(
    replies: &Replies,
    gw: &Gateway,
    reply: Option<String>,
) -> Option<GatewayReply> {
    let (registry, gw) = (replies.registry.clone(), gw.clone());
    let r = tokio::task::spawn_blocking(move || {
        gw.plugin
            .inbound_response(&registry.sandbox, reply.as_deref(), &gw.settings)
    })
    .await
    .ok()?;
    r.unwrap_or_else(|e| {
        warn!(plugin = %e.file, error = %e.message, "The channel's `inbound_response` failed.");
        None
    })
}

/// Answers the gateway with `reply` inline when the plugin can; otherwise answers an
/// empty 200 and sends `reply` to `to` through the channel's `send`.
async fn respond_or_send(
    state: &AnswerState,
    replies: &Replies,
    gw: &Gateway,
    channel: &str,
    reply: Option<String>,
    to: &str,
) -> Response {
    let Some(text) = reply else {
        return respond(replies, gw, None).await;
    };
    if let Some(r) = plugin_answer(replies, gw, Some(text.clone())).await {
        return answer_gateway(r);
    }
    let now = state.clock.now();
    let id = format!("reply-{}-{}", channel, now.timestamp_millis());
    let message = note(id, "reply", "kithd", text, Some(to.to_string()), now);
    send_in_background(
        state,
        replies,
        gw.clone(),
        message,
        "Sent a reply back through the channel.",
    );
    answer_gateway(GatewayReply::empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_match_by_the_channel_field() {
        assert!(same_address("phone", "+49 151 0000001", "+491510000001"));
        assert!(!same_address("phone", "+491510000001", "+491510000002"));
        assert!(!same_address("phone", "", ""));
        assert!(same_address("email", "A@b.org ", "a@B.org"));
        assert_eq!(redacted("+4915100000001"), "…01");
    }
}
