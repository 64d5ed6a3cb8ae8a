//! The person's own pages, behind the passphrase they set with `kithd passphrase`:
//! `/me` (today's check-ins and doses with their state, the open ones answerable in place,
//! and the next 7 days) and `/me/report` ("How it has gone"). A session is a sealed,
//! HttpOnly, SameSite=Strict cookie (Secure over https) that ends after 12 h idle, after
//! 7 days, or when the passphrase changes; failed tries are limited per plan. Must not
//! show anything without a session, nor say whether a plan exists.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Duration, Utc};
use tracing::{info, warn};

use super::front::Front;
use super::http::AnswerState;
use super::link::{Choice, choices_form, crisis_section, due_line, label, take_choice};
use super::page::{escape, page_in};
use super::words::{Words, fill, words};
use crate::vocab::Kind;

const COOKIE: &str = "kithd_me";
/// Failed tries allowed per plan in `TRY_WINDOW_MIN` minutes.
const MAX_TRIES: usize = 5;
const TRY_WINDOW_MIN: i64 = 15;
/// Passphrases checked at once (Argon2id takes 19 MiB and tens of milliseconds each).
static CHECKING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
/// The most firings the next 7 days list.
const MAX_AHEAD: usize = 200;

pub(super) fn routes() -> Router<Arc<Front>> {
    Router::new()
        .route("/me", get(show))
        .route("/me/login", post(login))
        .route("/me/logout", post(logout))
        .route("/me/answer", post(answer))
        .route("/me/report", get(report))
}

/// The session cookie's value, if the request has one.
fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
}

/// A live session: when it started, and when the passphrase it was opened with was set.
#[derive(Debug, Clone, Copy)]
struct Live {
    since: DateTime<Utc>,
    set: DateTime<Utc>,
}

/// The desk whose live session the request carries, with the session.
async fn session(front: &Front, headers: &HeaderMap) -> Option<(Arc<AnswerState>, Live)> {
    let token = cookie(headers)?;
    let desk = front.desk_for(&token)?;
    let set = desk.ledger.call(|l| l.passphrase()).await.ok()??.1;
    let since = desk.keys().links.session(&token, set, desk.clock.now())?;
    Some((desk, Live { since, set }))
}

/// Sets (or, with `None`, clears) the session cookie on `r`.
fn set_cookie(r: &mut Response, desk: &AnswerState, value: Option<&str>) {
    let secure = if desk.keys().replies.public_url.starts_with("https:") {
        "; Secure"
    } else {
        ""
    };
    let v = match value {
        Some(v) => format!(
            "{COOKIE}={v}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
            super::token::SESSION_IDLE_HOURS * 3600
        ),
        None => format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// A page for a live session: renews its cookie (12 h from now).
fn session_page(
    desk: &AnswerState,
    live: Live,
    status: StatusCode,
    title: &str,
    body: &str,
) -> Response {
    let w = words(&desk.keys().plan.language);
    let mut r = page_in(w.lang, status, title, &format!("{}{body}", nav(w)));
    let renewed = desk
        .keys()
        .links
        .session_token(live.set, live.since, desk.clock.now());
    set_cookie(&mut r, desk, Some(&renewed));
    r
}

fn nav(w: &Words) -> String {
    format!(
        "<nav><a href=\"/me\">{}</a><a href=\"/me/report\">{}</a><form method=\"post\" action=\"/me/logout\"><button>{}</button></form></nav>",
        escape(w.today),
        escape(w.gone),
        escape(w.sign_out)
    )
}

/// The words of the sign-in page: in the first plan's language (before sign-in, which plan
/// is asking is not known).
fn front_words(front: &Front) -> &'static Words {
    let lang = front
        .desks()
        .values()
        .next()
        .map(|d| d.keys().plan.language.clone())
        .unwrap_or_default();
    words(&lang)
}

/// The sign-in page; it asks for the plan's name when the server has several.
fn login_page(front: &Front, status: StatusCode, message: Option<&str>) -> Response {
    let desks = front.desks();
    let w = front_words(front);
    let plan_field = if desks.len() > 1 {
        format!(
            "<label for=\"plan\">{}</label><input id=\"plan\" name=\"plan\" type=\"text\" autocomplete=\"username\" required>",
            escape(w.plan)
        )
    } else {
        String::new()
    };
    let message = message
        .map(|m| format!("<p role=\"alert\">{}</p>", escape(m)))
        .unwrap_or_default();
    page_in(
        w.lang,
        status,
        w.your_page,
        &format!(
            "{message}<form method=\"post\" action=\"/me/login\">{plan_field}\
             <label for=\"passphrase\">{}</label><input id=\"passphrase\" name=\"passphrase\" type=\"password\" autocomplete=\"current-password\" required>\
             <p><button class=\"primary\">{}</button></p></form>",
            escape(w.passphrase),
            escape(w.open)
        ),
    )
}

async fn show(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    match session(&front, &headers).await {
        Some((desk, live)) => today(&desk, live).await,
        None => login_page(&front, StatusCode::OK, None),
    }
}

#[derive(serde::Deserialize)]
struct Login {
    passphrase: String,
    #[serde(default)]
    plan: Option<String>,
}

async fn login(State(front): State<Arc<Front>>, Form(form): Form<Login>) -> Response {
    let desks = front.desks();
    let desk = match (desks.len(), form.plan.as_deref().map(str::trim)) {
        (1, _) => desks.values().next().cloned(),
        (_, Some(p)) => desks.get(p).cloned(),
        _ => None,
    };
    let w = front_words(&front);
    let Some(desk) = desk else {
        return login_page(&front, StatusCode::UNAUTHORIZED, Some(w.wrong));
    };
    let now = desk.clock.now();
    {
        let mut tries = desk.tries.lock().unwrap_or_else(|p| p.into_inner());
        tries.retain(|t| now - *t < Duration::minutes(TRY_WINDOW_MIN));
        if tries.len() >= MAX_TRIES {
            return login_page(&front, StatusCode::TOO_MANY_REQUESTS, Some(w.too_many));
        }
    }
    let stored = match desk.ledger.call(|l| l.passphrase()).await {
        Ok(Some(s)) => s,
        // A plan of several without a passphrase looks like a wrong one.
        Ok(None) if desks.len() > 1 => {
            return login_page(&front, StatusCode::UNAUTHORIZED, Some(w.wrong));
        }
        Ok(None) => return login_page(&front, StatusCode::NOT_FOUND, Some(w.no_passphrase)),
        Err(e) => {
            warn!(error = %e, "Could not read the passphrase hash.");
            return login_page(&front, StatusCode::SERVICE_UNAVAILABLE, Some(w.try_again));
        }
    };
    if form.passphrase.len() > crate::commands::passphrase::MAX_BYTES {
        return login_page(&front, StatusCode::UNAUTHORIZED, Some(w.wrong));
    }
    let matches = {
        let _permit = CHECKING.acquire().await;
        let (hash, given) = (stored.0.clone(), form.passphrase);
        tokio::task::spawn_blocking(move || verify(&hash, &given))
            .await
            .unwrap_or(false)
    };
    if !matches {
        desk.tries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(now);
        warn!("A wrong passphrase was given for the person's page.");
        return login_page(&front, StatusCode::UNAUTHORIZED, Some(w.wrong));
    }
    info!("The person opened their page.");
    let mut r = redirect("/me");
    set_cookie(
        &mut r,
        &desk,
        Some(&desk.keys().links.session_token(stored.1, now, now)),
    );
    r
}

/// Whether `given` is the passphrase `hash` (an Argon2id PHC string) was made from.
fn verify(hash: &str, given: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(given.as_bytes(), &h)
            .is_ok()
    })
}

fn redirect(to: &'static str) -> Response {
    let mut r = page_in("en", StatusCode::SEE_OTHER, "kithd", "");
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

async fn logout(State(front): State<Arc<Front>>, headers: HeaderMap) -> Response {
    let mut r = redirect("/me");
    if let Some((desk, _)) = session(&front, &headers).await {
        set_cookie(&mut r, &desk, None);
    }
    r
}

#[derive(serde::Deserialize)]
struct PageAnswer {
    item: String,
    /// The firing's scheduled instant, ms since the epoch.
    at: i64,
    #[serde(flatten)]
    choice: Choice,
}

async fn answer(
    State(front): State<Arc<Front>>,
    headers: HeaderMap,
    Form(form): Form<PageAnswer>,
) -> Response {
    let Some((desk, live)) = session(&front, &headers).await else {
        return login_page(&front, StatusCode::UNAUTHORIZED, None);
    };
    let w = words(&desk.keys().plan.language);
    let firing = match DateTime::from_timestamp_millis(form.at) {
        Some(at) => {
            let item = form.item.clone();
            desk.ledger
                .call(move |l| l.find_firing(&item, at))
                .await
                .ok()
                .flatten()
        }
        None => None,
    };
    let Some(firing) = firing.filter(|f| !f.answered) else {
        return session_page(
            &desk,
            live,
            StatusCode::GONE,
            w.thanks,
            &format!("<p>{}</p>", escape(w.answered_already)),
        );
    };
    let (status, title, body) = take_choice(&desk, firing, &form.choice, "page", None).await;
    session_page(&desk, live, status, &title, &body)
}

/// Today's check-ins and doses with their state, the open ones answerable here, and the
/// next 7 days.
async fn today(desk: &AnswerState, live: Live) -> Response {
    let keys = desk.keys();
    let plan = keys.plan.clone();
    let w = words(&plan.language);
    let zone = plan.person.timezone;
    let now = desk.clock.now();
    let local_today = now.with_timezone(&zone).date_naive();
    let midnight = |d: chrono::NaiveDate| {
        crate::clock::resolve_local(zone, d.and_hms_opt(0, 0, 0).unwrap_or_default())
    };
    let (start, end) = (
        midnight(local_today),
        midnight(local_today + Duration::days(1)),
    );
    let loaded = desk
        .ledger
        .call(move |l| Ok((l.journal(start - Duration::days(1))?, l.pauses(now)?)))
        .await;
    let Ok((entries, mut pauses)) = loaded else {
        return session_page(desk, live, StatusCode::SERVICE_UNAVAILABLE, w.try_again, "");
    };
    pauses.extend(plan.away.iter().cloned());
    let mut body = format!("<h2>{}</h2><ul class=\"plain\">", escape(w.today));
    let mut any = false;
    // Today's, and yesterday's still waiting for an answer (a check-in at 23:50 is still
    // open at 00:10).
    let open_until = |e: &crate::store::JournalEntry| {
        plan.item(&e.item)
            .and_then(|i| i.answer.as_ref())
            .map(|a| e.scheduled + a.within.to_chrono())
    };
    let shown = entries.iter().filter(|e| {
        e.scheduled < end
            && (e.scheduled >= start
                || (e.value.is_none()
                    && e.outcome == "dispatched"
                    && open_until(e).is_some_and(|u| now < u)))
    });
    for (n, e) in shown.enumerate() {
        any = true;
        let item = plan.item(&e.item);
        let title = label(&plan, item, e.scheduled, w);
        let open_by = open_until(e);
        let (class, state) = match (e.outcome.as_str(), &e.value) {
            ("paused", _) => ("paused", w.st_paused.to_string()),
            ("missed", _) => ("missed", w.st_missed.to_string()),
            (_, Some(v)) => (
                "answered",
                format!("{} ({})", w.st_answered, answer_text(v, w)),
            ),
            _ if e.snoozes > 0 => ("snoozed", w.st_snoozed.to_string()),
            _ if open_by.is_some_and(|u| now < u) => ("open", w.st_open.to_string()),
            _ => ("open", w.st_unanswered.to_string()),
        };
        let _ = write!(
            body,
            "<li class=\"card\"><h3>{}</h3><p class=\"when\">{}</p><p class=\"state {class}\">{}</p>",
            escape(&title),
            escape(&due_line(zone, e.scheduled, w)),
            escape(&state)
        );
        if e.value.is_none() && e.outcome == "dispatched" {
            let hidden = format!(
                "<input type=\"hidden\" name=\"item\" value=\"{}\"><input type=\"hidden\" name=\"at\" value=\"{}\">",
                escape(&e.item),
                e.scheduled.timestamp_millis()
            );
            body.push_str(&choices_form(
                e.kind,
                w,
                "/me/answer",
                &hidden,
                &n.to_string(),
            ));
        }
        body.push_str("</li>");
    }
    let ahead = crate::schedule::upcoming(&plan, now, start + Duration::days(8), MAX_AHEAD);
    for f in ahead
        .iter()
        .filter(|f| f.at < end && f.purpose == crate::vocab::Purpose::Main)
    {
        any = true;
        let item = &plan.items[f.item];
        let paused = pauses.iter().any(|p| p.covers(&item.id, item.kind, f.at));
        let _ = write!(
            body,
            "<li class=\"card\"><h3>{}</h3><p class=\"when\">{}</p><p class=\"state {}\">{}</p></li>",
            escape(&label(&plan, Some(item), f.at, w)),
            escape(&due_line(zone, f.at, w)),
            if paused { "paused" } else { "later" },
            escape(if paused { w.st_paused } else { w.st_later })
        );
    }
    if !any {
        let _ = write!(body, "<li>{}</li>", escape(w.nothing));
    }
    let _ = write!(
        body,
        "</ul><h2>{}</h2><ul class=\"plain\">",
        escape(w.next_days)
    );
    let later: Vec<_> = ahead
        .iter()
        .filter(|f| f.at >= end && f.purpose == crate::vocab::Purpose::Main)
        .collect();
    if later.is_empty() {
        let _ = write!(body, "<li>{}</li>", escape(w.nothing_ahead));
    }
    for f in later {
        let item = &plan.items[f.item];
        let paused = pauses.iter().any(|p| p.covers(&item.id, item.kind, f.at));
        let _ = write!(
            body,
            "<li>{} — {}{}</li>",
            escape(&due_line(zone, f.at, w)),
            escape(&label(&plan, Some(item), f.at, w)),
            if paused {
                format!(" ({})", escape(w.st_paused))
            } else {
                String::new()
            }
        );
    }
    body.push_str("</ul>");
    body.push_str(&crisis_section(&keys, w.hard_now));
    session_page(desk, live, StatusCode::OK, w.your_page, &body)
}

/// An answer as the page says it.
fn answer_text(value: &str, w: &Words) -> String {
    match value {
        "taken" => w.taken.to_string(),
        "skipped" => w.skipped.to_string(),
        "ok" => w.im_ok.to_string(),
        v => v.to_string(),
    }
}

async fn report(State(front): State<Arc<Front>>, headers: HeaderMap, uri: Uri) -> Response {
    let Some((desk, live)) = session(&front, &headers).await else {
        return login_page(&front, StatusCode::UNAUTHORIZED, None);
    };
    let asked = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "days")
        .map(|(_, v)| v.into_owned());
    let days: u32 = if asked.as_deref() == Some("90") {
        90
    } else {
        30
    };
    let keys = desk.keys();
    let plan = keys.plan.clone();
    let w = words(&plan.language);
    let now = desk.clock.now();
    let from = now - Duration::days(i64::from(days));
    let loaded = desk
        .ledger
        .call(move |l| Ok((l.journal(from)?, l.escalation_counts(from)?)))
        .await;
    let Ok((entries, (alerts, all_clears))) = loaded else {
        return session_page(
            &desk,
            live,
            StatusCode::SERVICE_UNAVAILABLE,
            w.try_again,
            "",
        );
    };
    let charts = {
        let labels = |id: &str| item_name(&plan, id, now);
        let journal = super::charts::Journal {
            entries: &entries,
            alerts,
            all_clears,
            days,
            now,
            zone: plan.person.timezone,
            label: &labels,
        };
        super::charts::render(&journal, w)
    };
    let switch = [30, 90]
        .iter()
        .map(|d| {
            let text = escape(&fill(w.last_days, &[("n", &d.to_string())]));
            if *d == days {
                format!("<strong>{text}</strong>")
            } else {
                format!("<a href=\"/me/report?days={d}\">{text}</a>")
            }
        })
        .collect::<Vec<_>>()
        .join(" · ");
    let body = format!("<p>{switch}</p>{charts}");
    session_page(&desk, live, StatusCode::OK, w.gone, &body)
}

/// What the charts call an item: its `title`, else a check-in's id, else (a dose) its name
/// with `show_on_page` or "Your 21:00 dose" by its next time.
pub(crate) fn item_name(plan: &crate::plan::Plan, id: &str, now: DateTime<Utc>) -> String {
    match plan.item(id) {
        Some(i) if i.fields.contains_key("title") => i.fields["title"].clone(),
        Some(i) if i.kind == Kind::Medication => {
            let at = crate::schedule::next_after(i, now).map_or(now, |(at, _)| at);
            label(plan, Some(i), at, words(&plan.language))
        }
        _ => id.to_string(),
    }
}
