//! The answer server (only with `[server]` in the plan): `GET /a/TOKEN` shows the choices,
//! `POST /a/TOKEN` records one (mail scanners open GET links, so GET never answers), and
//! `POST /inbound` takes SMS replies from a gateway webhook, authenticated by a shared
//! secret. Bounded request sizes; pages and errors say nothing about the plan.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::reply::{Answer, choices_reply, parse_answer_in, parse_snooze_in};
use super::token::LinkSigner;
use crate::clock::Clock;
use crate::store::{AnswerResult, AsyncLedger, OpenFiring, SnoozeResult};
use crate::vocab::Kind;

/// Largest request body accepted.
pub(crate) const MAX_BODY: usize = 4096;

pub(crate) struct AnswerState {
    pub ledger: AsyncLedger,
    pub clock: Arc<dyn Clock>,
    /// Swapped whole when a reload changes the plan or its keys.
    pub keys: std::sync::RwLock<Arc<Keys>>,
    /// Woken after an answer so the daemon sends any all-clear at once.
    pub wake: Arc<Notify>,
    /// Sends the choices back to a gateway reply that wasn't understood, when the
    /// gateway can't take them inline.
    pub host: crate::plugin::host::Host,
    /// When each sender was last told the choices.
    pub told: std::sync::Mutex<std::collections::HashMap<String, chrono::DateTime<Utc>>>,
    /// Wrong passphrases given for the person's page, when (the recent ones).
    pub tries: std::sync::Mutex<Vec<chrono::DateTime<Utc>>>,
}

/// What the answer server checks requests against.
pub(crate) struct Keys {
    pub links: LinkSigner,
    /// Shared secret for `/inbound`; the endpoint answers 404 without one.
    pub inbound_token: Option<String>,
    /// Replies through gateways (`/inbound/{channel}`), and the person's addresses and
    /// language the generic `/inbound` reads too.
    pub replies: Arc<super::gateway::Replies>,
    /// The plan the pages describe (titles, the person's zone and crisis text, who an
    /// answer spares an alert).
    pub plan: Arc<crate::plan::Plan>,
}

impl AnswerState {
    /// One plan's answers: its ledger, keys, and the daemon to wake after an answer.
    pub(crate) fn new(
        ledger: AsyncLedger,
        clock: Arc<dyn Clock>,
        keys: Keys,
        wake: Arc<Notify>,
    ) -> Self {
        let secrets =
            crate::plugin::SecretStore::from_env().for_plan(keys.replies.scope.as_deref());
        Self {
            host: crate::plugin::host::Host::new(secrets, Default::default())
                .with_clock(clock.clone()),
            ledger,
            clock,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            wake,
            told: Default::default(),
            tries: Default::default(),
        }
    }

    pub(crate) fn keys(&self) -> Arc<Keys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Takes new keys from a reload: links signed with a replaced key stay valid until
    /// they expire.
    pub(crate) fn replace_keys(&self, mut keys: Keys, now: chrono::DateTime<Utc>) {
        let mut current = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.links = keys.links.succeeding(&current.links, now);
        *current = Arc::new(keys);
    }
}

/// A page in English (kithd's own pages for strangers: not found, contacts' pages).
pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    super::page::page_in("en", status, title, body)
}

pub(super) fn not_found() -> Response {
    page(StatusCode::NOT_FOUND, "Not found", "There is nothing here.")
}

pub(super) fn invalid() -> Response {
    super::link::unusable("en")
}

/// Records an answer (with its note) and wakes the daemon to send any all-clear at once.
pub(super) async fn record_answer(
    state: &AnswerState,
    firing: OpenFiring,
    answer: &Answer,
    note: Option<&str>,
    via: &'static str,
) -> Result<AnswerResult, ()> {
    let (value, now) = (answer.as_value(), state.clock.now());
    let recorded = firing.clone();
    let note = note.map(str::to_string);
    let result = state
        .ledger
        .call(move |l| l.answer(&recorded, &value, note.as_deref(), via, now))
        .await
        .map_err(|e| warn!(error = %e, "Could not record an answer."))?;
    if let AnswerResult::Recorded {
        late,
        all_clear_to,
        heard,
    } = &result
    {
        info!(item = %firing.item, via, late, heard, all_clears = all_clear_to.len(), "Answer recorded.");
        state.wake.notify_one();
    }
    Ok(result)
}

/// Snoozes `firing` by `delay`: the local time it comes again, or `None` at its cap.
pub(super) async fn snooze(
    state: &AnswerState,
    firing: OpenFiring,
    delay: chrono::Duration,
    via: &'static str,
) -> Result<Option<String>, ()> {
    let now = state.clock.now();
    let item = firing.item.clone();
    let result = state
        .ledger
        .call(move |l| l.snooze(&firing, delay, via, now))
        .await
        .map_err(|e| warn!(error = %e, "Could not record a snooze."))?;
    match result {
        SnoozeResult::Snoozed { until, .. } => {
            info!(item = %item, via, "Snoozed.");
            state.wake.notify_one();
            let zone = state.keys().plan.person.timezone;
            Ok(Some(until.with_timezone(&zone).format("%H:%M").to_string()))
        }
        SnoozeResult::CapReached => Ok(None),
    }
}

#[derive(serde::Deserialize)]
pub(super) struct Inbound {
    pub(super) from: String,
    pub(super) text: String,
}

fn same_secret(given: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq;
    // Compare MACs of both in constant time, so timing reveals nothing about the secret
    // (not even its length).
    let mac = |s: &str| {
        let mut m = Hmac::<Sha256>::new_from_slice(b"kithd inbound").expect("any key length");
        m.update(s.as_bytes());
        m.finalize().into_bytes()
    };
    bool::from(mac(given).ct_eq(&mac(expected)))
}

pub(super) async fn inbound(
    State(state): State<Arc<AnswerState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let keys = state.keys();
    let Some(expected) = &keys.inbound_token else {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "not found"}),
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same_secret(given, expected) {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({"error": "unauthorized"}),
        );
    }
    let Ok(msg) = serde_json::from_str::<Inbound>(&body) else {
        return json(
            StatusCode::BAD_REQUEST,
            serde_json::json!({"error": "expected {\"from\": …, \"text\": …}"}),
        );
    };
    let known = keys
        .replies
        .person
        .get("phone")
        .is_some_and(|p| super::gateway::same_address("phone", p, &msg.from));
    if !known
        && super::reply::is_stop(&msg.text)
        && super::gateway::withdraw_contact(&state, &keys.replies, "phone", &msg.from, "sms")
            .await
            .is_some()
    {
        return json(
            StatusCode::OK,
            serde_json::json!({"ok": true, "stopped": true, "reply": super::gateway::STOPPED}),
        );
    }
    if !known
        && super::reply::is_yes(&msg.text)
        && super::gateway::contact_agrees(&state, &keys.replies, "phone", &msg.from, "sms")
            .await
            .is_some()
    {
        return json(
            StatusCode::OK,
            serde_json::json!({"ok": true, "agreed": true, "reply": super::gateway::AGREED}),
        );
    }
    if !known {
        return json(
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "nothing to answer"}),
        );
    }
    // A snooze puts off the latest open check-in or dose; an answer goes to the latest open
    // one of its kind.
    enum Reply {
        Snooze(chrono::Duration),
        Answer(Answer),
    }
    let language = &keys.replies.language;
    let reply = match parse_snooze_in(&msg.text, language) {
        Some(delay) => Reply::Snooze(delay),
        None => match parse_answer_in(&msg.text, language) {
            Some(answer) => Reply::Answer(answer),
            None => {
                return json(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    serde_json::json!({"error": "not understood", "reply": choices_reply(&[])}),
                );
            }
        },
    };
    let kinds = match &reply {
        Reply::Answer(a) => vec![a.kind()],
        Reply::Snooze(_) => vec![Kind::Checkin, Kind::Medication],
    };
    let now = state.clock.now();
    let firing = match state
        .ledger
        .call(move |l| l.open_firing(None, &kinds, now))
        .await
    {
        Ok(Some(f)) => f,
        Ok(None) => {
            return json(
                StatusCode::NOT_FOUND,
                serde_json::json!({"error": "nothing to answer"}),
            );
        }
        Err(e) => {
            warn!(error = %e, "Could not look up an open item.");
            return json_try_again();
        }
    };
    match reply {
        Reply::Snooze(delay) => match snooze(&state, firing, delay, "sms").await {
            Ok(Some(until)) => json(
                StatusCode::OK,
                serde_json::json!({"ok": true, "snoozed_until": until}),
            ),
            Ok(None) => json(
                StatusCode::CONFLICT,
                serde_json::json!({"error": "snoozed as long as the plan allows"}),
            ),
            Err(()) => json_try_again(),
        },
        Reply::Answer(answer) => match record_answer(&state, firing, &answer, None, "sms").await {
            Ok(AnswerResult::Recorded { heard: true, .. }) => json(
                StatusCode::OK,
                serde_json::json!({"ok": true, "heard": true, "reply": keys.plan.crisis_text}),
            ),
            Ok(_) => json(StatusCode::OK, serde_json::json!({"ok": true})),
            Err(()) => json_try_again(),
        },
    }
}

fn json(status: StatusCode, v: serde_json::Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// `/inbound`'s answer when the ledger failed: the gateway may try again.
fn json_try_again() -> Response {
    json(
        StatusCode::SERVICE_UNAVAILABLE,
        serde_json::json!({"error": "try again"}),
    )
}
