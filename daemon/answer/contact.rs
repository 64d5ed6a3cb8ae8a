//! `/c/TOKEN`: a contact's own page, from the link in an invitation and at the end of
//! every message to them: they say yes to being told (an invitation), or stop kithd's
//! messages. Either is recorded in the ledger at once, with how; a stop cancels what waited
//! for them and the person is told. Must not show anything about the person's health.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tracing::{info, warn};

use super::http::{AnswerState, invalid, page};
use super::link::Choice;
use super::token::CONTACT_ITEM;

/// The contact a link names, if it is genuine, unexpired, a contact's link, and the
/// contact is still in the plan.
fn contact_of(state: &AnswerState, token: &str) -> Option<String> {
    let claims = state.keys().links.verify(token, state.clock.now()).ok()?;
    let known = state
        .keys()
        .replies
        .contacts
        .iter()
        .any(|(id, _)| *id == claims.r);
    (claims.i == CONTACT_ITEM && known).then_some(claims.r)
}

pub(super) async fn show(
    State(state): State<Arc<AnswerState>>,
    Path(token): Path<String>,
) -> Response {
    if contact_of(&state, &token).is_none() {
        return invalid();
    }
    let person = super::page::escape(&state.keys().replies.person_name);
    page(
        StatusCode::OK,
        "A question from kithd",
        &format!(
            "<p>{person} uses kithd, a reminder service, and would like you to be told if they don't answer a check-in in time. \
             You would get a short note only then, never anything about their health.</p>\
             <form method=\"post\"><p><button name=\"value\" value=\"yes\">Yes, that's okay</button></p>\
             <p><button name=\"value\" value=\"stop\">No more messages from kithd</button></p></form>"
        ),
    )
}

pub(super) async fn record(
    State(state): State<Arc<AnswerState>>,
    Path(token): Path<String>,
    Form(choice): Form<Choice>,
) -> Response {
    let Some(contact) = contact_of(&state, &token) else {
        return invalid();
    };
    let now = state.clock.now();
    let c = contact.clone();
    let stop = choice.value == "stop";
    if !stop && choice.value != "yes" {
        return page(
            StatusCode::BAD_REQUEST,
            "Not understood",
            "<p>Please go back and pick one of the buttons.</p>",
        );
    }
    let done = state
        .ledger
        .call(move |l| match stop {
            true => l.withdraw(&c, "link", now).map(|_| ()),
            false => l.record_consent(&c, "given", "link", now),
        })
        .await;
    if let Err(e) = done {
        warn!(contact = %contact, error = %e, "Could not record what a contact said.");
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "<p>Please try again in a minute.</p>",
        );
    }
    let keys = state.keys();
    if stop {
        warn!(contact = %contact, "A contact asked to stop (by link): kithd sends them nothing more.");
        super::gateway::tell_person(
            &state,
            &keys.replies,
            super::gateway::stopped_notice(&contact),
        );
        page(
            StatusCode::OK,
            "Stopped",
            &format!("<p>{}</p>", super::gateway::STOPPED),
        )
    } else {
        info!(contact = %contact, "A contact said yes (by link): alerts go to them from now on.");
        page(
            StatusCode::OK,
            "Thank you",
            &format!("<p>{}</p>", super::gateway::AGREED),
        )
    }
}
