//! The load step: plan + plugins + credentials → the validated, runnable snapshot, or every
//! problem as a diagnostic. `check`, `run` (start and every reload), `preview` and
//! `send-test` all go through `load`, so nothing `check` accepts is refused later. Must not
//! touch the ledger, and never sends anything: the plugin dry run performs no request.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::answer::LinkSigner;
use crate::diagnostic::{Diagnostic, SourceFile};
use crate::dispatch::ChannelSet;
use crate::dispatch::worker::Snapshot;
use crate::plan::{self, Kind, Plan, Recipient, SELF_ID, ScheduleSpec};
use crate::plugin::contract::Request;
use crate::plugin::{Message, Registry, SecretStore};

/// The secret that keys answer links (systemd credential or `KITHD_SECRET_ANSWER_KEY`).
pub const ANSWER_KEY: &str = "answer_key";
/// An optional previous answer-link key, still accepted (for rotating `answer_key` across a
/// restart).
pub const ANSWER_KEY_PREVIOUS: &str = "answer_key_previous";
/// The shared secret for the inbound-reply endpoint.
pub const INBOUND_TOKEN: &str = "inbound_token";
/// Keys must be at least this long.
pub const MIN_KEY_BYTES: usize = 32;
/// Recipients per channel whose synthetic message the dry run sends to the plugin.
const DRY_RUN_RECIPIENTS: usize = 4;
/// One-line problems logged by the daemon for one load, at most.
const MAX_LOGGED: usize = 50;

/// Whether secrets are checked.
#[derive(Debug, Clone, Copy)]
pub enum Secrets<'a> {
    /// Every secret the plan needs must be available here.
    Check(&'a SecretStore),
    /// Skip only the secrets (checking a plan on another machine, or a preview).
    Offline,
    /// A plan in a directory of plans: it needs `[person] id`, and (when `check`) every
    /// secret it needs, looked up as its own (`ID/NAME`) before the shared one.
    InDirectory { check: bool },
}

/// What to load.
pub struct Options<'a> {
    pub plan: &'a Path,
    pub plugin_dir: &'a Path,
    pub secrets: Secrets<'a>,
    /// For the warnings that depend on the date (an appointment in the past).
    pub now: DateTime<Utc>,
    /// Where a validated copy of a large plan is kept between starts (`run`'s state
    /// directory); `None`: the plan is always read afresh.
    pub cache: Option<&'a Path>,
}

/// A plan ready to run.
pub struct Loaded {
    pub snapshot: Snapshot,
    pub source: SourceFile,
    pub warnings: Vec<Diagnostic>,
}

/// Why a plan can't run.
#[derive(Debug)]
pub enum Failure {
    /// The plan file can't be read.
    Unreadable(String),
    /// A plugin doesn't compile; rendered with its own file and caret.
    Plugins(String),
    /// The plan has errors (and maybe warnings), in source order.
    Invalid {
        source: SourceFile,
        diagnostics: Vec<Diagnostic>,
    },
}

impl Failure {
    /// The long form, with carets, for a terminal.
    pub fn render(&self) -> String {
        match self {
            Failure::Unreadable(m) => format!("error: {m}\n"),
            Failure::Plugins(r) => r.clone(),
            Failure::Invalid {
                source,
                diagnostics,
            } => {
                let errors = diagnostics.iter().filter(|d| d.is_error()).count();
                format!(
                    "{}\nerror: the plan has {errors} problem{}\n",
                    source.render_all(diagnostics),
                    if errors == 1 { "" } else { "s" }
                )
            }
        }
    }

    /// One line per problem (at most `MAX_LOGGED`, then a count), for the log, each
    /// with whether it is an error (else a warning).
    pub fn one_lines(&self) -> Vec<(bool, String)> {
        match self {
            Failure::Unreadable(m) => vec![(true, m.clone())],
            Failure::Plugins(r) => vec![(true, r.lines().collect::<Vec<_>>().join(" "))],
            Failure::Invalid {
                source,
                diagnostics,
            } => {
                let mut lines: Vec<(bool, String)> = diagnostics
                    .iter()
                    .take(MAX_LOGGED)
                    .map(|d| (d.is_error(), one_line(source, d)))
                    .collect();
                if diagnostics.len() > MAX_LOGGED {
                    lines.push((
                        true,
                        format!(
                            "{}: ... and {} more problems",
                            source.name,
                            diagnostics.len() - MAX_LOGGED
                        ),
                    ));
                }
                lines
            }
        }
    }

    /// How many errors (not warnings) there are.
    pub fn errors(&self) -> usize {
        match self {
            Failure::Invalid { diagnostics, .. } => {
                diagnostics.iter().filter(|d| d.is_error()).count()
            }
            _ => 1,
        }
    }
}

/// One line per diagnostic: `file:line:col: error: message (hint: …)`, at most
/// `MAX_LOGGED` of them, then how many more there were.
pub fn one_lines(source: &SourceFile, diagnostics: &[Diagnostic]) -> Vec<String> {
    let mut out: Vec<String> = diagnostics
        .iter()
        .take(MAX_LOGGED)
        .map(|d| one_line(source, d))
        .collect();
    if diagnostics.len() > MAX_LOGGED {
        out.push(format!(
            "{}: ... and {} more problems",
            source.name,
            diagnostics.len() - MAX_LOGGED
        ));
    }
    out
}

fn one_line(source: &SourceFile, d: &Diagnostic) -> String {
    let p = source.position(d.span.start);
    let sev = if d.is_error() { "error" } else { "warning" };
    let hint = d
        .hint
        .as_ref()
        .map(|h| format!(" (hint: {h})"))
        .unwrap_or_default();
    let message: String = d.message.chars().take(300).collect();
    format!(
        "{}:{}:{}: {sev}: {message}{hint}",
        source.name, p.line, p.column
    )
}

/// Reads a plan file as UTF-8.
fn read(path: &Path) -> Result<SourceFile, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::Unreadable(format!("can't read plan `{}`: {e}", path.display())))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Failure::Unreadable(format!(
            "plan `{}` is not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })?;
    Ok(SourceFile::new(path.display().to_string(), text))
}

/// The load step. On success the snapshot is what `run` runs; warnings are for the caller
/// to show.
pub fn load(opts: &Options) -> Result<Loaded, Failure> {
    let source = read(opts.plan)?;
    let registry = Registry::load(opts.plugin_dir).map_err(|e| Failure::Plugins(e.render()))?;
    let readable = readable_by_others(opts.plan);
    match load_cached(source, registry, opts.secrets, opts.now, opts.cache) {
        Ok(mut loaded) => {
            loaded.warnings.extend(readable);
            Ok(loaded)
        }
        Err(Failure::Invalid {
            source,
            mut diagnostics,
        }) => {
            diagnostics.extend(readable);
            Err(Failure::Invalid {
                source,
                diagnostics,
            })
        }
        Err(f) => Err(f),
    }
}

/// A warning when every local user can read the plan: it holds health data.
fn readable_by_others(path: &Path) -> Option<Diagnostic> {
    use std::os::unix::fs::MetadataExt;
    let mode = std::fs::metadata(path).ok()?.mode() & 0o777;
    (mode & 0o004 != 0).then(|| {
        Diagnostic::warning(
            0..0,
            format!(
                "every user on this machine can read the plan (mode {mode:o}), and it holds health data"
            ),
        )
        .with_hint(format!(
            "`chmod o-r {}`; for the system unit: `chown root:kithd` and `chmod 0640`",
            path.display()
        ))
    })
}

/// The load step on a plan already read and plugins already compiled (fuzzing and
/// property tests start here).
pub fn load_source(
    source: SourceFile,
    registry: Registry,
    check_secrets: Secrets,
    now: DateTime<Utc>,
) -> Result<Loaded, Failure> {
    load_cached(source, registry, check_secrets, now, None)
}

/// `load_source`, reading a large plan from its validated copy in `cache` when it is
/// unchanged (and keeping one when it is not).
fn load_cached(
    source: SourceFile,
    registry: Registry,
    check_secrets: Secrets,
    now: DateTime<Utc>,
    cache: Option<&Path>,
) -> Result<Loaded, Failure> {
    let (loaded, keep) = crate::plan_cache::load(cache, &source, &registry);
    let loaded = match loaded {
        Ok(l) => l,
        Err(diagnostics) => {
            return Err(Failure::Invalid {
                source,
                diagnostics,
            });
        }
    };
    let mut plan = loaded.plan;
    let keep = keep.map(|k| (k, loaded.warnings.clone()));
    let mut diags = loaded.warnings;
    let channels = match ChannelSet::prepare(&registry, &plan) {
        Ok(c) => Some(c),
        Err(errors) => {
            for (id, e) in errors {
                diags.push(
                    Diagnostic::error(channel_span(&plan, &id), format!("channel `{id}`: {e}"))
                        .with_hint("the plugin's `validate` rejected these settings"),
                );
            }
            None
        }
    };
    if let Some(channels) = &channels {
        dry_run(&plan, &registry, channels, &mut diags);
        if plan.server.is_some() {
            reply_warnings(&plan, &registry, channels, &mut diags);
        }
    }
    if matches!(check_secrets, Secrets::InDirectory { .. }) {
        plan.scope = plan.id.clone();
    }
    let links = match check_secrets {
        Secrets::Check(store) => secrets(&plan, store, &mut diags),
        Secrets::Offline | Secrets::InDirectory { check: false } => None,
        Secrets::InDirectory { check: true } => {
            let own = SecretStore::from_env().for_plan(plan.id.as_deref());
            secrets(&plan, &own, &mut diags)
        }
    };
    let links = match &plan.scope {
        Some(id) => links.map(|l| l.in_plan(Some(id))),
        None => links,
    };
    if matches!(check_secrets, Secrets::InDirectory { .. }) && plan.id.is_none() {
        diags.push(
            Diagnostic::error(plan.person.span.clone(), "a plan in a directory of plans needs an id")
                .with_hint("add `id = \"…\"` to [person]: the ledger keys everything by it, so renaming the file changes nothing"),
        );
    }
    dated_warnings(&plan, now, &mut diags);
    diags.sort_by_key(|d| (d.span.start, d.severity));
    match channels {
        Some(channels) if !diags.iter().any(Diagnostic::is_error) => {
            let plan = Arc::new(plan);
            if let Some((keep, warnings)) = keep {
                keep.store_later(plan.clone(), warnings);
            }
            Ok(Loaded {
                snapshot: Snapshot {
                    plan,
                    channels,
                    registry: Arc::new(registry),
                    links,
                },
                source,
                warnings: diags,
            })
        }
        _ => Err(Failure::Invalid {
            source,
            diagnostics: diags,
        }),
    }
}

fn channel_span(plan: &Plan, id: &str) -> Range<usize> {
    plan.channels
        .get(id)
        .map(|c| c.span.clone())
        .unwrap_or(0..0)
}

/// The recipients (the person first) whose `reach` names each channel.
fn users<'p>(plan: &'p Plan, channel: &str) -> Vec<&'p Recipient> {
    std::iter::once(&plan.person)
        .chain(plan.contacts.values())
        .filter(|r| r.reach.iter().any(|c| c == channel))
        .collect()
}

/// Calls each used channel's `send` with a made-up message for some of its recipients and
/// checks the request it describes against the contract, without any network.
fn dry_run(plan: &Plan, registry: &Registry, channels: &ChannelSet, diags: &mut Vec<Diagnostic>) {
    for (id, channel) in &channels.channels {
        for r in users(plan, id).into_iter().take(DRY_RUN_RECIPIENTS) {
            let message = synthetic(plan, r, channel.address.as_deref());
            let problem = match channel
                .plugin
                .send(&registry.sandbox, &message, &channel.settings)
            {
                Err(e) => Some(e.to_string()),
                Ok(Request::Http(req)) => channel.grant.destination(&req.url).err().or_else(|| {
                    req.secret_texts()
                        .into_iter()
                        .find_map(|t| channel.grant.check_secrets(t).err())
                }),
                Ok(_) => None,
            };
            if let Some(p) = problem {
                diags.push(
                    Diagnostic::error(
                        channel_span(plan, id),
                        format!("channel `{id}`: the plugin's dry run failed: {p}"),
                    )
                    .with_hint(format!(
                        "kithd called `send` with a made-up message to `{}`; nothing was sent",
                        r.id
                    )),
                );
                break;
            }
        }
    }
}

/// A message like the ones a recipient will get, for the dry run.
fn synthetic(plan: &Plan, r: &Recipient, address_field: Option<&str>) -> Message {
    let is_self = r.id == SELF_ID;
    let answer_url = (is_self && plan.server.is_some()).then(|| {
        format!(
            "{}/a/dry-run",
            plan.server.as_ref().map_or("", |s| &s.public_url)
        )
    });
    Message {
        delivery_id: "d_dry_run".into(),
        item: if is_self {
            "dry-run".into()
        } else {
            String::new()
        },
        kind: if is_self {
            Kind::Checkin.to_string()
        } else {
            "escalate".into()
        },
        scheduled: "2026-01-01T09:00:00+00:00".into(),
        text: "kithd check: a dry run (nothing is sent)".into(),
        title: "Check-in".into(),
        recipient: r.id.clone(),
        recipient_name: r.name.clone(),
        address: address_field.and_then(|f| r.addresses.get(f).cloned()),
        urgent: false,
        choices: if answer_url.is_some() {
            vec!["ok".into(), "1".into(), "5".into()]
        } else {
            Vec::new()
        },
        answer_url,
    }
}

/// Every secret the plan needs must be there; returns the answer-link signer when the plan
/// has `[server]` and its key is good.
fn secrets(plan: &Plan, store: &SecretStore, diags: &mut Vec<Diagnostic>) -> Option<LinkSigner> {
    for (id, channel) in &plan.channels {
        let used = !users(plan, id).is_empty();
        for (key, name) in channel.secrets() {
            let span = channel
                .setting_spans
                .get(key)
                .cloned()
                .unwrap_or(channel.span.clone());
            let problem = match store.get(name) {
                Err(_) => "is not available",
                Ok(v) if v.expose().trim().is_empty() => "is empty",
                Ok(_) => continue,
            };
            let message = format!("secret `{name}` for `{key}` of channel `{id}` {problem}");
            let d = if used {
                Diagnostic::error(span, message)
            } else {
                Diagnostic::warning(
                    span,
                    format!("{message} (no one's `reach` uses the channel)"),
                )
            };
            diags.push(d.with_hint(where_to_put(name)));
        }
    }
    let server = plan.server.as_ref()?;
    for (name, required) in [
        (ANSWER_KEY, true),
        (ANSWER_KEY_PREVIOUS, false),
        (INBOUND_TOKEN, false),
    ] {
        let problem = match store.get(name) {
            Err(_) if required => {
                "is not available: `[server]` signs answer links with it".to_string()
            }
            Err(_) => continue,
            Ok(v) if v.expose().trim().len() < MIN_KEY_BYTES => format!(
                "is {} bytes long; it must be at least {MIN_KEY_BYTES}",
                v.expose().len()
            ),
            Ok(_) => continue,
        };
        diags.push(
            Diagnostic::error(server.span.clone(), format!("secret `{name}` {problem}")).with_hint(
                format!(
                    "make one with `openssl rand -hex 32`; {}",
                    where_to_put(name)
                ),
            ),
        );
    }
    let key = store.get(ANSWER_KEY).ok()?;
    match LinkSigner::new(
        key.expose().as_bytes(),
        &server.public_url,
        server.link_ttl.to_chrono(),
    ) {
        Ok(s) => Some(match store.get(ANSWER_KEY_PREVIOUS) {
            Ok(previous) => s.accepting(previous.expose().as_bytes()),
            Err(_) => s,
        }),
        Err(e) => {
            if !diags.iter().any(|d| d.is_error() && d.span == server.span) {
                diags.push(Diagnostic::error(
                    server.span.clone(),
                    format!("[server]: {e}"),
                ));
            }
            None
        }
    }
}

fn where_to_put(name: &str) -> String {
    format!(
        "put it in the credentials directory as `{name}` (the system unit loads /etc/kithd/credentials) or set `{}`",
        SecretStore::env_name(name)
    )
}

/// Legal but suspicious: an appointment already past, a consent date in the future, a
/// contact who would be messaged inside their quiet hours.
/// What the plugins of channels that take replies (`/inbound/{channel}`) say about their
/// settings (Vonage without a signature secret, say).
fn reply_warnings(
    plan: &Plan,
    registry: &Registry,
    channels: &ChannelSet,
    diags: &mut Vec<Diagnostic>,
) {
    for (id, c) in channels
        .channels
        .iter()
        .filter(|(_, c)| c.plugin.receives())
    {
        let said = c.plugin.inbound_warnings(&registry.sandbox, &c.settings);
        for w in said.unwrap_or_else(|e| vec![e.message]) {
            diags.push(Diagnostic::warning(
                channel_span(plan, id),
                format!("channel `{id}` takes replies at `/inbound/{id}`: {w}"),
            ));
        }
    }
}

fn dated_warnings(plan: &Plan, now: DateTime<Utc>, diags: &mut Vec<Diagnostic>) {
    for item in &plan.items {
        if let ScheduleSpec::When(when) = item.schedule {
            let at = crate::clock::resolve_local(item.timezone, when);
            if at < now {
                diags.push(
                    Diagnostic::warning(
                        item.span.clone(),
                        format!(
                            "appointment `{}` was at {}, in the past",
                            item.id,
                            when.format("%Y-%m-%d %H:%M")
                        ),
                    )
                    .with_hint("update its `when`, or remove the item once its follow-up is done"),
                );
            }
        }
    }
    for c in plan.contacts.values() {
        let today = now.with_timezone(&c.timezone).date_naive();
        if let Some(consent) = c.consent.filter(|d| *d > today) {
            diags.push(
                Diagnostic::warning(
                    c.span.clone(),
                    format!(
                        "`{}` gave consent on {consent}, which is in the future",
                        c.id
                    ),
                )
                .with_hint("`consent` is the date they agreed; kithd messages them from now on"),
            );
        }
    }
    quiet_hour_warnings(plan, now, diags);
}

/// Looks a week ahead for a contact messaged inside their quiet hours.
fn quiet_hour_warnings(plan: &Plan, now: DateTime<Utc>, diags: &mut Vec<Diagnostic>) {
    let week = now + chrono::Duration::days(7);
    for item in &plan.items {
        let quiet_contacts: Vec<&Recipient> = item
            .to
            .iter()
            .filter_map(|id| plan.contacts.get(id))
            .filter(|c| c.quiet_hours.is_some())
            .collect();
        if quiet_contacts.is_empty() {
            continue;
        }
        let items = [item.as_ref()];
        'firings: for f in crate::schedule::upcoming_of(&items, now, week, 64) {
            for dt in crate::schedule::item_delivery_times(plan, item, f.at) {
                let Some(c) = quiet_contacts.iter().find(|c| c.id == dt.recipient) else {
                    continue;
                };
                let Some(q) = c.quiet_hours else { continue };
                if q.defer(dt.at, c.timezone).is_some() {
                    let local = dt.at.with_timezone(&c.timezone);
                    diags.push(
                        Diagnostic::warning(
                            item.span.clone(),
                            format!(
                                "`{}` would message `{}` at {} their time, inside their quiet hours",
                                item.id,
                                c.id,
                                local.format("%H:%M")
                            ),
                        )
                        .with_hint(if item.urgent {
                            "urgent items ignore quiet hours; make it not urgent, or change the time"
                        } else {
                            "set `respect_quiet_hours = true` (it then waits for their morning), or change the time"
                        }),
                    );
                    break 'firings;
                }
            }
        }
    }
}

/// Walks what `run` does with a loaded plan for its first `limit` firings or ten years,
/// whichever comes first: firing times, ledger records (with nag and escalation steps),
/// delivery times, and every message rendered and handed to its plugin's `send` (no
/// request is performed). For fuzzing and property tests: it must never panic or loop.
/// Returns the number of messages rendered.
pub fn rehearse(snapshot: &Snapshot, from: DateTime<Utc>, limit: usize) -> usize {
    use crate::dispatch::{fire, render};
    let plan = &snapshot.plan;
    let until = from + chrono::Duration::days(3660);
    let items: Vec<&plan::Item> = plan.items.iter().map(|i| i.as_ref()).collect();
    let mut messages = 0;
    for f in crate::schedule::Upcoming::new(&items, from).take(limit) {
        if f.at > until {
            break;
        }
        let item = items[f.item];
        let (firing, deliveries) = fire::records(plan, item, f.at, f.purpose, false, from);
        for w in &firing.watches {
            let purpose = match w.action {
                crate::store::StepAction::Nag => crate::schedule::Purpose::Nag(w.step),
                crate::store::StepAction::Escalate => crate::schedule::Purpose::Escalate(w.step),
            };
            let _ = fire::step_records(plan, item, f.at, purpose, &w.recipient, from);
        }
        for d in deliveries {
            let (Some(r), Some(channel)) = (
                plan.recipient(&d.recipient),
                snapshot.channels.channels.get(&d.channel),
            ) else {
                continue;
            };
            let address = channel
                .address
                .as_ref()
                .and_then(|a| r.addresses.get(a).cloned());
            let m = render::message(plan, item, &f, r, &d.id, address, None);
            let _ = channel
                .plugin
                .send(&snapshot.registry.sandbox, &m, &channel.settings);
            messages += 1;
        }
    }
    messages
}
