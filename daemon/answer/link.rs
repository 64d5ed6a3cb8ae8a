//! `GET /a/TOKEN` shows what is being answered and the choices (with a note and "remind me
//! in 30 min"); `POST /a/TOKEN` records one (mail scanners open GET links, so GET never
//! answers) and says what happens next. Pages are in the person's language; a dose shows
//! its name or message only when the item sets `show_on_page`. A link that is used,
//! expired or not genuine gets one friendly page and records nothing.

use std::sync::Arc;

use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use tracing::warn;

use super::http::{AnswerState, Keys, record_answer, snooze};
use super::page::{escape, page_in};
use super::reply::{DEFAULT_SNOOZE, parse_answer};
use super::words::{Words, fill, words};
use crate::plan::{Item, Plan};
use crate::store::{AnswerResult, OpenFiring};
use crate::vocab::Kind;

/// The longest note kept with an answer, in characters.
pub(crate) const MAX_NOTE: usize = 500;

/// The page for a link that can't be used: old, used, or not genuine (they look alike).
pub(super) fn unusable(lang: &str) -> Response {
    let w = words(lang);
    page_in(
        w.lang,
        StatusCode::NOT_FOUND,
        w.unusable,
        &format!(
            "<p>{}</p><p><a href=\"/me\">{}</a></p>",
            escape(w.unusable_body),
            escape(w.see_today)
        ),
    )
}

/// The firing a token names, if the token is genuine, unexpired and its firing exists.
async fn lookup(state: &AnswerState, token: &str) -> Option<(super::token::Claims, OpenFiring)> {
    let claims = state.keys().links.verify(token, state.clock.now()).ok()?;
    let scheduled = DateTime::from_timestamp_millis(claims.s)?;
    let item = claims.i.clone();
    let firing = state
        .ledger
        .call(move |l| l.find_firing(&item, scheduled))
        .await
        .ok()??;
    Some((claims, firing))
}

/// What a page calls a firing: a check-in's `title` or its message (without the link); a
/// dose's `title`, or its message with `show_on_page`, else "Your 21:00 dose".
pub(crate) fn label(plan: &Plan, item: Option<&Item>, at: DateTime<Utc>, w: &Words) -> String {
    let time = at
        .with_timezone(&plan.person.timezone)
        .format("%H:%M")
        .to_string();
    let Some(item) = item else {
        return w.checkin.to_string();
    };
    if let Some(title) = item.fields.get("title") {
        return title.clone();
    }
    let message = || {
        let mut v: std::collections::BTreeMap<&str, String> = item
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        v.insert("person", plan.person.name.clone());
        v.insert("recipient", plan.person.name.clone());
        v.insert("time", time.clone());
        v.insert("item", item.id.clone());
        v.insert("kind", item.kind.to_string());
        v.insert("answer_url", String::new());
        let text = item.message.render(&v);
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        text.trim_end_matches([':', '-', '–', ' ']).to_string()
    };
    match item.kind {
        Kind::Medication if !item.show_on_page => fill(w.your_dose, &[("time", &time)]),
        _ => message(),
    }
}

/// "Due at 21:00, Mon 30 Nov" in the person's zone.
pub(crate) fn due_line(zone: chrono_tz::Tz, at: DateTime<Utc>, w: &Words) -> String {
    let local = at.with_timezone(&zone);
    fill(
        w.due,
        &[
            ("time", &local.format("%H:%M").to_string()),
            ("date", &local.format(date_format(w.lang)).to_string()),
        ],
    )
}

/// A date as people of the language write it (numbers only outside English, so no month
/// name needs translating).
pub(crate) fn date_format(lang: &str) -> &'static str {
    match lang {
        "en" => "%a %-d %b",
        "de" | "nl" => "%-d.%-m.%Y",
        _ => "%d/%m/%Y",
    }
}

/// The choices for a firing, as one form posting to `action` (empty: this page), with
/// `hidden` fields first.
pub(crate) fn choices_form(kind: Kind, w: &Words, action: &str, hidden: &str, id: &str) -> String {
    let (legend, buttons): (String, Vec<(&str, &str)>) = if kind == Kind::Medication {
        (
            escape(w.did_you_take),
            vec![("taken", w.taken), ("skipped", w.skipped)],
        )
    } else {
        (
            format!(
                "{} <span class=\"muted\">({})</span>",
                escape(w.how_are_you),
                escape(w.scale)
            ),
            vec![
                ("ok", w.im_ok),
                ("1", "1"),
                ("2", "2"),
                ("3", "3"),
                ("4", "4"),
                ("5", "5"),
            ],
        )
    };
    let buttons: String = buttons
        .iter()
        .map(|(v, label)| {
            format!(
                "<button class=\"primary\" name=\"value\" value=\"{v}\">{}</button>",
                escape(label)
            )
        })
        .collect();
    let action = if action.is_empty() {
        String::new()
    } else {
        format!(" action=\"{}\"", escape(action))
    };
    format!(
        "<form method=\"post\"{action}>{hidden}\
         <label for=\"note-{id}\">{}</label><textarea id=\"note-{id}\" name=\"note\" rows=\"2\" maxlength=\"{MAX_NOTE}\"></textarea>\
         <fieldset class=\"choices\"><legend>{legend}</legend>{buttons}</fieldset>\
         <p><button name=\"value\" value=\"snooze\">{}</button></p></form>",
        escape(w.note),
        escape(w.snooze),
    )
}

pub(super) async fn show(
    State(state): State<Arc<AnswerState>>,
    Path(token): Path<String>,
) -> Response {
    let keys = state.keys();
    let w = words(&keys.plan.language);
    let Some((_, firing)) = lookup(&state, &token).await else {
        return unusable(w.lang);
    };
    if firing.answered {
        return page_in(
            w.lang,
            StatusCode::GONE,
            w.thanks,
            &format!(
                "<p>{}</p><p><a href=\"/me\">{}</a></p>",
                escape(w.answered_already),
                escape(w.see_today)
            ),
        );
    }
    let title = label(
        &keys.plan,
        keys.plan.item(&firing.item),
        firing.scheduled,
        w,
    );
    let form = choices_form(firing.kind, w, "", "", "a");
    let crisis = crisis_section(&keys, w.hard_now);
    page_in(
        w.lang,
        StatusCode::OK,
        &title,
        &format!(
            "<p class=\"when\">{}</p>{form}{crisis}",
            escape(&due_line(keys.plan.person.timezone, firing.scheduled, w))
        ),
    )
}

/// The person's own `crisis_text`, escaped, under `heading`; empty without one.
pub(crate) fn crisis_section(keys: &Keys, heading: &str) -> String {
    keys.plan
        .crisis_text
        .as_deref()
        .map(|t| {
            format!(
                "<section class=\"crisis\"><h2>{}</h2><p>{}</p></section>",
                escape(heading),
                escape(t)
            )
        })
        .unwrap_or_default()
}

#[derive(serde::Deserialize)]
pub(crate) struct Choice {
    pub(crate) value: String,
    #[serde(default)]
    pub(crate) note: Option<String>,
}

impl Choice {
    /// The note, trimmed; `Err` when it is longer than `MAX_NOTE`.
    pub(crate) fn note(&self) -> Result<Option<String>, ()> {
        match self.note.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(n) if n.chars().count() > MAX_NOTE => Err(()),
            Some(n) => Ok(Some(n.to_string())),
        }
    }
}

/// What a page says after a choice on `firing`, answering with its HTTP status.
pub(crate) async fn take_choice(
    state: &AnswerState,
    firing: OpenFiring,
    choice: &Choice,
    via: &'static str,
    nonce: Option<&str>,
) -> (StatusCode, String, String) {
    let keys = state.keys();
    let w = words(&keys.plan.language);
    let today = format!("<p><a href=\"/me\">{}</a></p>", escape(w.see_today));
    let not_understood = || {
        (
            StatusCode::BAD_REQUEST,
            w.not_understood.to_string(),
            String::new(),
        )
    };
    let try_again = || {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            w.try_again.to_string(),
            String::new(),
        )
    };
    let Ok(note) = choice.note() else {
        return not_understood();
    };
    let answer = if choice.value == "snooze" {
        None
    } else {
        match parse_answer(&choice.value).filter(|a| a.fits(firing.kind)) {
            Some(a) => Some(a),
            None => return not_understood(),
        }
    };
    if let Some(nonce) = nonce {
        match use_link(state, nonce).await {
            Ok(true) => {}
            Ok(false) => {
                return (
                    StatusCode::GONE,
                    w.unusable.to_string(),
                    format!("<p>{}</p>{today}", escape(w.unusable_body)),
                );
            }
            Err(()) => return try_again(),
        }
    }
    let Some(answer) = answer else {
        return match snooze(state, firing, DEFAULT_SNOOZE, via).await {
            Ok(Some(until)) => (
                StatusCode::OK,
                w.st_snoozed.to_string(),
                format!(
                    "<p>{}</p>{today}",
                    escape(&fill(w.snoozed, &[("time", &until)]))
                ),
            ),
            Ok(None) => (
                StatusCode::OK,
                w.thanks.to_string(),
                format!("<p>{}</p>{today}", escape(w.snooze_cap)),
            ),
            Err(()) => try_again(),
        };
    };
    let names = escalation_names(&keys.plan, &firing.item);
    match record_answer(state, firing, &answer, note.as_deref(), via).await {
        Ok(AnswerResult::Recorded { heard: true, .. }) => (
            StatusCode::OK,
            w.thanks.to_string(),
            format!(
                "<p>{}</p><p>{}</p>{}{today}",
                escape(w.saved),
                escape(&fill(w.will_be_told, &[("names", &names)])),
                crisis_section(&keys, w.for_now)
            ),
        ),
        Ok(AnswerResult::Already) => (
            StatusCode::OK,
            w.thanks.to_string(),
            format!("<p>{}</p>{today}", escape(w.answered_already)),
        ),
        Ok(AnswerResult::Recorded { all_clear_to, .. }) if !all_clear_to.is_empty() => {
            // Late: they were alerted already, and now get an all-clear.
            let told = names_of(&keys.plan, all_clear_to.iter().map(String::as_str));
            (
                StatusCode::OK,
                w.thanks.to_string(),
                format!(
                    "<p>{}</p><p>{}</p>{today}",
                    escape(w.saved),
                    escape(&fill(w.all_clear_next, &[("names", &told)]))
                ),
            )
        }
        Ok(_) => {
            let next = if names.is_empty() {
                String::new()
            } else {
                format!(
                    "<p>{}</p>",
                    escape(&fill(w.not_alerted, &[("names", &names)]))
                )
            };
            (
                StatusCode::OK,
                w.thanks.to_string(),
                format!("<p>{}</p>{next}{today}", escape(w.saved)),
            )
        }
        Err(()) => try_again(),
    }
}

/// The names of the contacts an item's silence would alert ("Sam & Lee").
fn escalation_names(plan: &Plan, item: &str) -> String {
    let ids = plan.item(item).and_then(|i| i.answer.as_ref());
    names_of(
        plan,
        ids.iter()
            .flat_map(|a| a.escalate.iter().map(String::as_str)),
    )
}

/// Contacts' names, joined ("Sam", "Sam & Lee", "Sam, Lee & Kim").
fn names_of<'a>(plan: &Plan, ids: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = ids
        .filter_map(|c| plan.contacts.get(c).map(|c| c.name.as_str()))
        .collect();
    match names.as_slice() {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} & {last}", rest.join(", ")),
    }
}

pub(super) async fn record(
    State(state): State<Arc<AnswerState>>,
    Path(token): Path<String>,
    Form(choice): Form<Choice>,
) -> Response {
    let lang = words(&state.keys().plan.language).lang;
    let Some((claims, firing)) = lookup(&state, &token).await else {
        return unusable(lang);
    };
    let (status, title, body) = take_choice(&state, firing, &choice, "link", Some(&claims.n)).await;
    page_in(lang, status, &title, &body)
}

/// Uses up an answer link: `Ok(false)` when it was used already.
async fn use_link(state: &AnswerState, nonce: &str) -> Result<bool, ()> {
    let (nonce, now) = (nonce.to_string(), state.clock.now());
    state
        .ledger
        .call(move |l| l.use_token(&nonce, now))
        .await
        .map_err(|e| warn!(error = %e, "Could not check an answer link."))
}
