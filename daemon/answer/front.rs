//! The answer server's front door: one server for every plan the daemon runs. Each plan
//! has a desk (its ledger, keys and daemon); a request goes to the desk it belongs to: an
//! answer link by the plan it names (checked with that plan's key), a reply by the person
//! whose number sent it. A single plan has one desk, under `""`. Must not read answers or
//! touch the ledger itself (that is `http` and `gateway`).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Form, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::gateway;
use super::http::{AnswerState, MAX_BODY, invalid};
use super::link::Choice;

/// The desks, by plan id (`""` for a plan run on its own); swapped whole on change.
#[derive(Default)]
pub(crate) struct Front {
    desks: RwLock<Arc<BTreeMap<String, Arc<AnswerState>>>>,
}

impl Front {
    pub(crate) fn desks(&self) -> Arc<BTreeMap<String, Arc<AnswerState>>> {
        self.desks.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn desk(&self, plan: &str) -> Option<Arc<AnswerState>> {
        self.desks().get(plan).cloned()
    }

    /// The desk of the plan a sealed token (a link, a session) is meant for, by its routing
    /// tag; that plan's key then opens it.
    pub(crate) fn desk_for(&self, token: &str) -> Option<Arc<AnswerState>> {
        self.desks()
            .values()
            .find(|desk| desk.keys().links.routes(token))
            .cloned()
    }

    /// Opens (or replaces) a plan's desk, or closes it with `None`.
    pub(crate) fn set(&self, plan: &str, desk: Option<Arc<AnswerState>>) {
        let mut desks = self.desks.write().unwrap_or_else(|p| p.into_inner());
        let mut next = (**desks).clone();
        match desk {
            Some(d) => next.insert(plan.to_string(), d),
            None => next.remove(plan),
        };
        *desks = Arc::new(next);
    }
}

pub(crate) fn router(front: Arc<Front>) -> Router {
    Router::new()
        .route("/a/{token}", get(show).post(record))
        .route("/c/{token}", get(contact_show).post(contact_record))
        .route("/inbound", post(inbound))
        .route(
            "/inbound/{channel}",
            get(inbound_channel)
                .post(inbound_channel)
                .layer(DefaultBodyLimit::max(
                    crate::plugin::inbound::MAX_INBOUND_BODY,
                )),
        )
        .merge(super::me::routes())
        .fallback(|| async { super::http::not_found() })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(front)
}

async fn show(State(front): State<Arc<Front>>, Path(token): Path<String>) -> Response {
    match front.desk_for(&token) {
        Some(desk) => super::link::show(State(desk), Path(token)).await,
        None => invalid(),
    }
}

async fn record(
    State(front): State<Arc<Front>>,
    Path(token): Path<String>,
    form: Form<Choice>,
) -> Response {
    match front.desk_for(&token) {
        Some(desk) => super::link::record(State(desk), Path(token), form).await,
        None => invalid(),
    }
}

/// Whether `from` is one of a desk's contacts, by `field`.
fn is_contact(desk: &AnswerState, field: &str, from: &str) -> bool {
    desk.keys().replies.contacts.iter().any(|(_, a)| {
        a.get(field)
            .is_some_and(|c| gateway::same_address(field, c, from))
    })
}

async fn contact_show(State(front): State<Arc<Front>>, Path(token): Path<String>) -> Response {
    match front.desk_for(&token) {
        Some(desk) => super::contact::show(State(desk), Path(token)).await,
        None => invalid(),
    }
}

async fn contact_record(
    State(front): State<Arc<Front>>,
    Path(token): Path<String>,
    form: Form<Choice>,
) -> Response {
    match front.desk_for(&token) {
        Some(desk) => super::contact::record(State(desk), Path(token), form).await,
        None => invalid(),
    }
}

/// `/inbound`: the desk whose person has the sender's number; a contact's STOP or YES
/// goes to every plan they are a contact in; otherwise the first desk answers (after checking the
/// bearer token, so nobody learns who is known without it).
async fn inbound(State(front): State<Arc<Front>>, headers: HeaderMap, body: String) -> Response {
    let desks = front.desks();
    let msg = serde_json::from_str::<super::http::Inbound>(&body).ok();
    let from = msg.as_ref().map(|m| m.from.clone());
    let mine = from.as_ref().and_then(|from| {
        desks.values().find(|d| {
            d.keys()
                .replies
                .person
                .get("phone")
                .is_some_and(|p| gateway::same_address("phone", p, from))
        })
    });
    if let (None, Some(m)) = (mine, &msg)
        && (super::reply::is_stop(&m.text) || super::reply::is_yes(&m.text))
    {
        let theirs: Vec<&Arc<AnswerState>> = desks
            .values()
            .filter(|d| is_contact(d, "phone", &m.from))
            .collect();
        let mut last = None;
        for desk in theirs {
            last = Some(
                super::http::inbound(State(desk.clone()), headers.clone(), body.clone()).await,
            );
        }
        if let Some(response) = last {
            return response;
        }
    }
    match mine.or_else(|| desks.values().next()) {
        Some(desk) => super::http::inbound(State(desk.clone()), headers, body).await,
        None => super::http::not_found(),
    }
}

/// Desks tried in turn to read a gateway's request, when plans differ in the gateway's
/// secrets; plans sharing one account (the usual case) are read by the first.
const READ_TRIES: usize = 8;

/// `/inbound/{channel}`: the request is read (and its signature checked) by a plan with
/// that channel, then taken by the plan whose person sent it.
async fn inbound_channel(
    State(front): State<Arc<Front>>,
    Path(channel): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let desks = front.desks();
    let with_channel: Vec<(Arc<AnswerState>, Arc<gateway::Replies>, gateway::Gateway)> = desks
        .values()
        .filter_map(|d| {
            let replies = d.keys().replies.clone();
            let gw = replies.gateways.get(&channel)?.clone();
            Some((d.clone(), replies, gw))
        })
        .collect();
    let mut refused = None;
    for (desk, replies, gw) in with_channel.iter().take(READ_TRIES) {
        let request = gateway::request(replies, &method, &uri, &headers, &body);
        let read = match gateway::read(replies, gw, &channel, request).await {
            Ok(r) => r,
            Err(response) => return response,
        };
        let from = match &read {
            crate::plugin::inbound::Inbound::Reject { .. } => {
                refused = Some((desk, replies, gw, read));
                continue;
            }
            crate::plugin::inbound::Inbound::Message { from, .. } => from.clone(),
            crate::plugin::inbound::Inbound::Nothing => {
                return gateway::take(desk, replies, gw, &channel, read).await;
            }
        };
        // Taken by the plan whose person sent it, else by the first plan that lists the
        // sender as a contact (a contact's STOP is recorded in every such plan), else the
        // reading plan logs that it came from a stranger.
        let field = |g: &gateway::Gateway| g.address.clone().unwrap_or_else(|| "phone".into());
        let person = with_channel
            .iter()
            .find(|(_, r, g)| gateway::is_person(r, g, &from));
        let contacts: Vec<_> = with_channel
            .iter()
            .filter(|(d, _, g)| is_contact(d, &field(g), &from))
            .collect();
        let (desk, replies, gw) = person
            .or(contacts.first().copied())
            .map(|(d, r, g)| (d, r, g))
            .unwrap_or((desk, replies, gw));
        if person.is_none()
            && let crate::plugin::inbound::Inbound::Message { text, .. } = &read
        {
            for (other, r, g) in contacts.iter().skip(1) {
                if super::reply::is_stop(text) {
                    gateway::withdraw_contact(other, r, &field(g), &from, "sms").await;
                } else if super::reply::is_yes(text) {
                    gateway::contact_agrees(other, r, &field(g), &from, "sms").await;
                }
            }
        }
        return gateway::take(desk, replies, gw, &channel, read).await;
    }
    match refused {
        Some((desk, replies, gw, read)) => gateway::take(desk, replies, gw, &channel, read).await,
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
