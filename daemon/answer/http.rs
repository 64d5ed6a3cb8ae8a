//! The answer server (only with `[server]` in the plan): `GET /a/TOKEN` shows the choices,
//! `POST /a/TOKEN` records one (mail scanners open GET links, so GET never answers), and
//! `POST /inbound` takes SMS replies from a gateway webhook, authenticated by a shared
//! secret. Bounded request sizes; pages and errors say nothing about the plan.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::reply::{
    Answer, DEFAULT_SNOOZE, choices_reply, parse_answer, parse_answer_in, parse_snooze_in,
};
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
}

/// What the answer server checks requests against.
pub(crate) struct Keys {
    pub links: LinkSigner,
    /// Shared secret for `/inbound`; the endpoint answers 404 without one.
    pub inbound_token: Option<String>,
    /// Replies through gateways (`/inbound/{channel}`), and the person's addresses and
    /// language the generic `/inbound` reads too.
    pub replies: Arc<super::gateway::Replies>,
    /// The person's time zone, for the times the pages show.
    pub zone: chrono_tz::Tz,
    /// The person's own words and numbers, given back after an answer they asked their
    /// contacts to hear about.
    pub crisis_text: Option<String>,
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

pub(super) fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}}button{{font-size:1.2rem;margin:.3rem;padding:.6rem 1rem}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    );
    let mut r = (status, Html(html)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        "no-store".parse().expect("static header"),
    );
    r.headers_mut().insert(
        "referrer-policy",
        "no-referrer".parse().expect("static header"),
    );
    r
}

pub(super) fn not_found() -> Response {
    page(StatusCode::NOT_FOUND, "Not found", "There is nothing here.")
}

pub(super) fn invalid() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<p>This link is not valid any more.</p>",
    )
}

/// The firing a token names, if the token is genuine, unexpired and its firing exists.
async fn lookup(state: &AnswerState, token: &str) -> Option<(super::token::Claims, OpenFiring)> {
    let claims = state.keys().links.verify(token, state.clock.now()).ok()?;
    let scheduled = chrono::DateTime::from_timestamp_millis(claims.s)?;
    let item = claims.i.clone();
    let firing = state
        .ledger
        .call(move |l| l.find_firing(&item, scheduled))
        .await
        .ok()??;
    Some((claims, firing))
}

pub(super) async fn show(
    State(state): State<Arc<AnswerState>>,
    Path(token): Path<String>,
) -> Response {
    let Some((_, firing)) = lookup(&state, &token).await else {
        return invalid();
    };
    if firing.answered {
        return page(
            StatusCode::GONE,
            "Already answered",
            "<p>Thank you, this one has been answered.</p>",
        );
    }
    let buttons: Vec<(&str, &str)> = if firing.kind == Kind::Medication {
        vec![("taken", "Taken"), ("skipped", "Skipped")]
    } else {
        vec![
            ("ok", "I'm OK"),
            ("1", "1"),
            ("2", "2"),
            ("3", "3"),
            ("4", "4"),
            ("5", "5"),
        ]
    };
    let question = if firing.kind == Kind::Medication {
        "Did you take it?"
    } else {
        "How are you? (1 = low, 5 = good)"
    };
    let mut form: String = buttons
        .iter()
        .map(|(v, label)| format!("<button name=\"value\" value=\"{v}\">{label}</button>"))
        .collect();
    form.push_str("<p><button name=\"value\" value=\"snooze\">Remind me in 30 min</button></p>");
    let crisis = crisis_section(&state, "If things are hard right now");
    page(
        StatusCode::OK,
        "kithd",
        &format!("<p>{question}</p><form method=\"post\">{form}</form>{crisis}"),
    )
}

/// The person's own `crisis_text`, escaped, under `heading`; empty without one.
fn crisis_section(state: &AnswerState, heading: &str) -> String {
    state
        .keys()
        .crisis_text
        .as_deref()
        .map(|t| {
            format!(
                "<section class=\"crisis\"><h2>{heading}</h2><p>{}</p></section>",
                crate::plugin::inbound::xml_escape(t)
            )
        })
        .unwrap_or_default()
}

#[derive(serde::Deserialize)]
pub(super) struct Choice {
    pub(super) value: String,
}

pub(super) async fn record_answer(
    state: &AnswerState,
    firing: OpenFiring,
    answer: &Answer,
    via: &'static str,
) -> Result<AnswerResult, ()> {
    let (value, now) = (answer.as_value(), state.clock.now());
    let recorded = firing.clone();
    let result = state
        .ledger
        .call(move |l| l.answer(&recorded, &value, None, via, now))
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

pub(super) async fn record(
    State(state): State<Arc<AnswerState>>,
    Path(token): Path<String>,
    Form(choice): Form<Choice>,
) -> Response {
    let Some((claims, firing)) = lookup(&state, &token).await else {
        return invalid();
    };
    if choice.value == "snooze" {
        return match use_link(&state, &claims.n).await {
            Some(r) => r,
            None => match snooze(&state, firing, DEFAULT_SNOOZE, "link").await {
                Ok(Some(until)) => page(
                    StatusCode::OK,
                    "Snoozed",
                    &format!("<p>We'll remind you again at {until}.</p>"),
                ),
                Ok(None) => page(
                    StatusCode::OK,
                    "Not snoozed",
                    "<p>This one has been put off as long as your plan allows. Please answer when you can.</p>",
                ),
                Err(()) => try_again(),
            },
        };
    }
    let Some(answer) = parse_answer(&choice.value).filter(|a| a.fits(firing.kind)) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Not understood",
            "<p>Please go back and pick one of the buttons.</p>",
        );
    };
    if let Some(r) = use_link(&state, &claims.n).await {
        return r;
    }
    match record_answer(&state, firing, &answer, "link").await {
        Ok(AnswerResult::Recorded { heard: true, .. }) => {
            let crisis = crisis_section(&state, "For now");
            page(
                StatusCode::OK,
                "Thank you",
                &format!(
                    "<p>Thank you. Your answer is saved, and the people you chose will be told, as you asked.</p>{crisis}"
                ),
            )
        }
        Ok(_) => page(
            StatusCode::OK,
            "Thank you",
            "<p>Thank you. Your answer is saved.</p>",
        ),
        Err(()) => try_again(),
    }
}

/// Uses up an answer link; the page to show instead when it can't be used.
async fn use_link(state: &AnswerState, nonce: &str) -> Option<Response> {
    let (nonce, now) = (nonce.to_string(), state.clock.now());
    match state.ledger.call(move |l| l.use_token(&nonce, now)).await {
        Ok(true) => None,
        Ok(false) => Some(page(
            StatusCode::GONE,
            "Link used",
            "<p>This link has been used already.</p>",
        )),
        Err(e) => {
            warn!(error = %e, "Could not check an answer link.");
            Some(try_again())
        }
    }
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
            let zone = state.keys().zone;
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
        Reply::Answer(answer) => match record_answer(&state, firing, &answer, "sms").await {
            Ok(AnswerResult::Recorded { heard: true, .. }) => json(
                StatusCode::OK,
                serde_json::json!({"ok": true, "heard": true, "reply": keys.crisis_text}),
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

/// The page's answer when the ledger failed.
fn try_again() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "<p>Please try again in a minute.</p>",
    )
}
