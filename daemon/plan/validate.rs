//! Plan validation: walks the spanned TOML document and builds a `Plan`, collecting every
//! problem (with its byte span) instead of stopping at the first. Pure: no files, no network,
//! no clock. It must not compute firings.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::duration::{DURATION_HINT, PlanDuration};
use super::quiet::QuietHours;
use super::schedule_spec::{self, DaySet, ScheduleSpec};
use super::template::Template;
use super::{
    CatchUp, Channel, ChannelLimits, Item, Kind, Loaded, Plan, PluginCatalog, Recipient, Relation,
    SELF_ID, Setting,
};
use crate::diagnostic::{Diagnostic, did_you_mean};

type Span = Range<usize>;
type Table<'a> = DeTable<'a>;

const TOP_KEYS: &[&str] = &[
    "version",
    "person",
    "contacts",
    "channels",
    "checkin",
    "medication",
    "followup",
    "appointment",
    "never_contact",
    "server",
    "heartbeat",
];
const SERVER_KEYS: &[&str] = &["listen", "public_url", "link_ttl"];
const HEARTBEAT_KEYS: &[&str] = &["url", "every"];
/// Channel settings the host itself reads (besides `plugin` and `address`).
pub(crate) const HOST_CHANNEL_KEYS: &[&str] = &[
    "timeout",
    "max_attempts",
    "give_up_after",
    "retry_base",
    "concurrency",
    "tls_sha256",
];
const ANSWER_KEYS: &[&str] = &[
    "nag",
    "escalate",
    "escalate_every",
    "escalate_message",
    "all_clear_message",
];
/// Placeholders an escalation or all-clear message may use: nothing about health.
const ESCALATION_FIELDS: &[&str] = &["person", "recipient", "time", "date"];
const PERSON_KEYS: &[&str] = &["name", "timezone", "quiet_hours", "email", "phone", "reach"];
const CONTACT_KEYS: &[&str] = &[
    "name",
    "relation",
    "timezone",
    "quiet_hours",
    "email",
    "phone",
    "reach",
    "consent",
];
const ITEM_KEYS: &[&str] = &[
    "id",
    "message",
    "to",
    "timezone",
    "urgent",
    "respect_quiet_hours",
    "at",
    "days",
    "cron",
    "every",
    "start",
    "when",
    "catch_up",
];
const SCHEDULE_KEYS: &[&str] = &["at", "cron", "every", "when"];
const COMMON_FIELDS: &[&str] = &["person", "recipient", "item", "kind", "time", "date"];

fn kind_keys(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Checkin => &[
            "expect_reply_within",
            "nag",
            "escalate",
            "escalate_every",
            "escalate_message",
            "all_clear_message",
        ],
        Kind::Medication => &[
            "name",
            "dose",
            "confirm_within",
            "nag",
            "escalate",
            "escalate_every",
            "escalate_message",
            "all_clear_message",
        ],
        Kind::Followup => &["with"],
        Kind::Appointment => &[
            "remind_before",
            "followup_after",
            "followup_message",
            "title",
            "location",
            "with",
        ],
    }
}

/// Placeholders a message of this kind may use.
pub(crate) fn kind_fields(kind: Kind) -> Vec<&'static str> {
    let extra: &[&str] = match kind {
        Kind::Checkin => &["answer_url"],
        Kind::Medication => &["name", "dose", "answer_url"],
        Kind::Followup => &["with", "contact", "relation"],
        Kind::Appointment => &["title", "when", "in", "location", "with"],
    };
    COMMON_FIELDS.iter().chain(extra).copied().collect()
}

fn looks_secret(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "token",
        "password",
        "secret",
        "api_key",
        "apikey",
        "auth",
        "passwd",
        "private_key",
    ]
    .iter()
    .any(|w| k.contains(w))
        || k.ends_with("_key")
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

struct Validator<'s> {
    src: &'s str,
    diags: Vec<Diagnostic>,
    never_contact: BTreeSet<String>,
    has_server: bool,
    /// Parsed cron expressions, shared between items that use the same one.
    crons: HashMap<String, Arc<croner::Cron>>,
}

pub(super) fn validate(src: &str, catalog: &dyn PluginCatalog) -> Result<Loaded, Vec<Diagnostic>> {
    let mut v = Validator {
        src,
        diags: Vec::new(),
        never_contact: BTreeSet::new(),
        has_server: false,
        crons: HashMap::new(),
    };
    let (doc, syntax) = DeTable::parse_recoverable(src);
    if !syntax.is_empty() {
        // A syntax error makes later structure unreliable: report the syntax errors only,
        // one per line (the parser's recovery produces follow-on noise on the same line).
        let mut seen_lines = BTreeSet::new();
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            let line = src[..span.start.min(src.len())].matches('\n').count();
            if seen_lines.insert(line) {
                v.diags.push(
                    Diagnostic::error(span, format!("invalid TOML: {}", e.message().trim_end()))
                        .with_hint("see config/README.md for the plan syntax"),
                );
            }
        }
        return Err(v.finish_errors());
    }
    let mut doc = doc.into_inner();
    let plan = v.plan(&mut doc, catalog);
    let has_error = v.diags.iter().any(Diagnostic::is_error);
    match plan {
        Some(plan) if !has_error => {
            v.sort();
            Ok(Loaded {
                plan,
                warnings: v.diags,
            })
        }
        _ => Err(v.finish_errors()),
    }
}

impl<'s> Validator<'s> {
    fn sort(&mut self) {
        self.diags.sort_by(|a, b| {
            (a.span.start, a.severity, &a.message).cmp(&(b.span.start, b.severity, &b.message))
        });
        self.diags.dedup();
    }

    fn finish_errors(mut self) -> Vec<Diagnostic> {
        self.sort();
        self.diags
    }

    fn error(&mut self, span: Span, message: impl Into<String>, hint: Option<String>) {
        let mut d = Diagnostic::error(span, message);
        d.hint = hint;
        self.diags.push(d);
    }

    fn warn(&mut self, span: Span, message: impl Into<String>, hint: Option<String>) {
        let mut d = Diagnostic::warning(span, message);
        d.hint = hint;
        self.diags.push(d);
    }

    /// The span of the text inside a string value's quotes, when it maps one-to-one onto the
    /// source (no escapes); otherwise `None`.
    fn string_body(&self, value_span: &Span) -> Option<usize> {
        let raw = self.src.get(value_span.clone())?;
        let (open, basic) = if raw.starts_with("\"\"\"") {
            (3, true)
        } else if raw.starts_with("'''") {
            (3, false)
        } else if raw.starts_with('"') {
            (1, true)
        } else if raw.starts_with('\'') {
            (1, false)
        } else {
            return None;
        };
        if basic && raw.contains('\\') {
            return None;
        }
        Some(value_span.start + open)
    }

    /// A span inside a string value, or the whole value when it can't be mapped exactly.
    fn inner_span(&self, value_span: &Span, start: usize, end: usize) -> Span {
        match self.string_body(value_span) {
            Some(base) => base + start..base + end,
            None => value_span.clone(),
        }
    }

    fn check_keys(
        &mut self,
        table: &Table,
        section: &str,
        allowed: &[&str],
        extra: &dyn Fn(&str) -> bool,
    ) {
        for (k, _) in table.iter() {
            let name = k.get_ref().as_ref();
            if allowed.contains(&name) || extra(name) {
                continue;
            }
            let hint = match did_you_mean(name, allowed.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("allowed keys here: {}", list(allowed)),
            };
            self.error(
                k.span(),
                format!("unknown key `{name}` in {section}"),
                Some(hint),
            );
        }
    }

    fn get<'t, 'a>(
        &self,
        table: &'t Table<'a>,
        key: &str,
    ) -> Option<(&'t Spanned<DeValue<'a>>, Span)> {
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(_, v)| (v, v.span()))
    }

    fn key_span(&self, table: &Table, key: &str) -> Option<Span> {
        table
            .iter()
            .find(|(k, _)| k.get_ref().as_ref() == key)
            .map(|(k, _)| k.span())
    }

    fn type_error(&mut self, span: Span, key: &str, expected: &str, found: &DeValue) {
        self.error(
            span,
            format!("`{key}` must be {expected}, found {}", found.type_str()),
            None,
        );
    }

    fn string(&mut self, table: &Table, key: &str) -> Option<(String, Span)> {
        let (v, span) = self.get(table, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), span)),
            other => {
                self.type_error(span, key, "a string", other);
                None
            }
        }
    }

    fn required_string(
        &mut self,
        table: &Table,
        key: &str,
        section: &str,
        at: &Span,
    ) -> Option<(String, Span)> {
        if self.get(table, key).is_none() {
            self.error(at.clone(), format!("missing `{key}` in {section}"), None);
            return None;
        }
        self.string(table, key)
    }

    fn boolean(&mut self, table: &Table, key: &str) -> Option<bool> {
        let (v, span) = self.get(table, key)?;
        match v.get_ref() {
            DeValue::Boolean(b) => Some(*b),
            other => {
                self.type_error(span, key, "`true` or `false`", other);
                None
            }
        }
    }

    /// A string or a list of strings.
    fn strings(&mut self, table: &Table, key: &str) -> Option<Vec<(String, Span)>> {
        let (v, span) = self.get(table, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some(vec![(s.to_string(), span)]),
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for e in a.iter() {
                    match e.get_ref() {
                        DeValue::String(s) => out.push((s.to_string(), e.span())),
                        other => self.type_error(e.span(), key, "a list of strings", other),
                    }
                }
                Some(out)
            }
            other => {
                self.type_error(span, key, "a string or a list of strings", other);
                None
            }
        }
    }

    /// A string or a TOML date/datetime value, as text.
    fn textual(&mut self, table: &Table, key: &str) -> Option<(String, Span)> {
        let (v, span) = self.get(table, key)?;
        match v.get_ref() {
            DeValue::String(s) => Some((s.to_string(), span)),
            DeValue::Datetime(d) => Some((d.to_string(), span)),
            other => {
                self.type_error(span, key, "a date", other);
                None
            }
        }
    }

    fn timezone(&mut self, table: &Table) -> Option<Tz> {
        let (name, span) = self.string(table, "timezone")?;
        match name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                let names = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name());
                let hint = match did_you_mean(&name, names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "use an IANA time zone name such as `Europe/Berlin` or `America/New_York`"
                            .into()
                    }
                };
                self.error(span, format!("unknown time zone `{name}`"), Some(hint));
                None
            }
        }
    }

    fn duration(&mut self, text: &str, span: &Span, key: &str) -> Option<PlanDuration> {
        match PlanDuration::parse(text) {
            Ok(d) if d.as_secs() > 0 => Some(d),
            Ok(_) => {
                self.error(
                    span.clone(),
                    format!("`{key}` must be longer than zero"),
                    None,
                );
                None
            }
            Err(e) => {
                let at = self.inner_span(span, e.offset, e.offset + 1);
                self.error(
                    at,
                    format!("bad duration in `{key}`: {}", e.message),
                    Some(DURATION_HINT.into()),
                );
                None
            }
        }
    }

    fn template(
        &mut self,
        text: &str,
        span: &Span,
        key: &str,
        allowed: &[&str],
    ) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => {
                let mut ok = true;
                for (name, offset) in t.fields() {
                    if allowed.contains(&name) {
                        continue;
                    }
                    ok = false;
                    let at = self.inner_span(span, offset, offset + name.len() + 2);
                    let hint = match did_you_mean(name, allowed.iter().copied()) {
                        Some(s) => format!("did you mean `{{{s}}}`?"),
                        None => format!(
                            "placeholders here: {}",
                            allowed
                                .iter()
                                .map(|a| format!("`{{{a}}}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    self.error(
                        at,
                        format!("unknown placeholder `{{{name}}}` in `{key}`"),
                        Some(hint),
                    );
                }
                ok.then_some(t)
            }
            Err(e) => {
                let at = self.inner_span(span, e.offset, e.offset + 1);
                self.error(
                    at,
                    format!("{} (`{key}`)", e.message),
                    Some("write `{{` or `}}` for a literal brace".into()),
                );
                None
            }
        }
    }

    fn quiet_hours(&mut self, table: &Table) -> Option<QuietHours> {
        let (text, span) = self.string(table, "quiet_hours")?;
        let q = QuietHours::parse(&text);
        if q.is_none() {
            self.error(
                span,
                format!("bad `quiet_hours` value `{text}`"),
                Some("write a daily window as `\"HH:MM-HH:MM\"`, e.g. `\"22:00-07:30\"`".into()),
            );
        }
        q
    }

    fn plan(&mut self, doc: &mut Table, catalog: &dyn PluginCatalog) -> Option<Plan> {
        self.check_keys(doc, "the plan", TOP_KEYS, &|_| false);
        if let Some((v, span)) = self.get(doc, "version") {
            let ok = v
                .get_ref()
                .as_integer()
                .map(|i| i.as_str() == "1")
                .unwrap_or(false);
            if !ok {
                self.error(
                    span,
                    "unsupported plan `version`",
                    Some("this kithd reads plan version 1".into()),
                );
            }
        }
        let channels = self.channels(doc, catalog);
        let person = self.person(doc, &channels);
        let person_tz = person.as_ref().map(|p| p.timezone).unwrap_or(Tz::UTC);
        let contacts = self.contacts(doc, &channels, person_tz);
        let server = self.server(doc);
        self.has_server = server.is_some();
        let heartbeat = self.heartbeat(doc);
        let never_contact = self.never_contact(doc, &contacts);
        self.never_contact = never_contact.iter().cloned().collect();
        let items = self.items(doc, person.as_ref(), &contacts, person_tz);
        Some(Plan::new(
            person?,
            contacts,
            channels,
            items,
            never_contact,
            server,
            heartbeat,
        ))
    }

    /// `[heartbeat]`: a Healthchecks-style ping URL and how often to ping it.
    fn heartbeat(&mut self, doc: &Table) -> Option<super::Heartbeat> {
        let (v, span) = self.get(doc, "heartbeat")?;
        let Some(t) = v.get_ref().as_table() else {
            self.type_error(span, "heartbeat", "a table", v.get_ref());
            return None;
        };
        self.check_keys(t, "[heartbeat]", HEARTBEAT_KEYS, &|_| false);
        let (url, uspan) = self.required_string(t, "url", "[heartbeat]", &span)?;
        let parsed = url::Url::parse(&url).ok().filter(|u| {
            let host = u.host_str().unwrap_or_default();
            u.scheme() == "https"
                || (u.scheme() == "http"
                    && (host == "localhost"
                        || host
                            .trim_matches(['[', ']'])
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())))
        });
        if parsed.is_none() || !url.is_ascii() {
            self.error(
                uspan,
                format!("`url` `{url}` is not an https URL"),
                Some(
                    "the ping URL your monitor gave you, e.g. `\"https://hc-ping.com/<uuid>\"` (plain http only to loopback)"
                        .into(),
                ),
            );
            return None;
        }
        let every = match self.string(t, "every") {
            None => PlanDuration::from_secs(300),
            Some((s, sspan)) => {
                let d = self.duration(&s, &sspan, "every")?;
                if d.as_secs() < 60 {
                    self.error(sspan, "`every` must be at least one minute", None);
                    return None;
                }
                d
            }
        };
        Some(super::Heartbeat {
            url: url.trim_end_matches('/').to_string(),
            every,
        })
    }

    /// Reads `reach`: each entry must name a channel, once, whose address field the
    /// recipient has. Returns the channel ids.
    fn check_reach(
        &mut self,
        table: &Table,
        addresses: &BTreeMap<String, String>,
        section: &str,
        channels: &BTreeMap<String, Channel>,
    ) -> Vec<String> {
        let Some(entries) = self.strings(table, "reach") else {
            return Vec::new();
        };
        let reach = entries.iter().map(|(c, _)| c.clone()).collect();
        let mut seen = BTreeSet::new();
        for (ch, span) in entries {
            if !seen.insert(ch.clone()) {
                self.error(
                    span,
                    format!("channel `{ch}` is listed twice in `reach`"),
                    None,
                );
                continue;
            }
            match channels.get(&ch) {
                None => {
                    let hint = match did_you_mean(&ch, channels.keys().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if channels.is_empty() => {
                            "define it as a `[channels.NAME]` table".into()
                        }
                        None => format!("channels in this plan: {}", list_owned(channels.keys())),
                    };
                    self.error(
                        span,
                        format!("unknown channel `{ch}` in {section} `reach`"),
                        Some(hint),
                    );
                }
                Some(c) => {
                    if let Some(field) = &c.address
                        && !addresses.contains_key(field)
                    {
                        self.error(
                            span,
                            format!("{section} has no `{field}` address, which channel `{ch}` ({}) delivers to", c.plugin),
                            Some(format!("add `{field} = \"…\"` to {section}, or reach them through another channel")),
                        );
                    }
                }
            }
        }
        reach
    }

    fn channels(&mut self, doc: &Table, catalog: &dyn PluginCatalog) -> BTreeMap<String, Channel> {
        let mut out = BTreeMap::new();
        let Some((v, span)) = self.get(doc, "channels") else {
            return out;
        };
        let Some(table) = v.get_ref().as_table() else {
            self.type_error(
                span,
                "channels",
                "a table of `[channels.NAME]` tables",
                v.get_ref(),
            );
            return out;
        };
        for (k, v) in table.iter() {
            let id = k.get_ref().to_string();
            let section = format!("[channels.{id}]");
            if !valid_id(&id) {
                self.error(
                    k.span(),
                    format!("channel id `{id}` may use only letters, digits, `_`, `-` and `.`"),
                    None,
                );
            }
            let Some(ct) = v.get_ref().as_table() else {
                self.type_error(v.span(), &id, "a table", v.get_ref());
                continue;
            };
            let header = v.span();
            let Some((plugin, pspan)) = self.required_string(ct, "plugin", &section, &header)
            else {
                continue;
            };
            let info = catalog.lookup(&plugin);
            if info.is_none() {
                let names = catalog.names();
                let hint = match did_you_mean(&plugin, names.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!(
                        "known plugins: {}; or put `{}.rhai` in the plugin directory",
                        list_owned(names.iter()),
                        plugin.trim_end_matches(".rhai")
                    ),
                };
                self.error(
                    pspan.clone(),
                    format!("unknown plugin `{plugin}` for channel `{id}`"),
                    Some(hint),
                );
            }
            let declared = info.as_ref().and_then(|i| i.settings.clone());
            let mut address = info.and_then(|i| i.address);
            let mut settings = BTreeMap::new();
            let mut setting_spans = BTreeMap::new();
            let mut limits = ChannelLimits::default();
            for (sk, sv) in ct.iter() {
                let key = sk.get_ref().to_string();
                if key == "plugin" {
                    continue;
                }
                if key == "address" {
                    match sv.get_ref() {
                        DeValue::String(s) if valid_id(s) => address = Some(s.to_string()),
                        DeValue::String(s) => self.error(
                            sv.span(),
                            format!("`address` must name an address field, not `{s}`"),
                            None,
                        ),
                        other => self.type_error(sv.span(), "address", "a string", other),
                    }
                    continue;
                }
                if HOST_CHANNEL_KEYS.contains(&key.as_str()) {
                    self.channel_limit(&key, sv, &mut limits);
                } else {
                    self.undeclared_setting(&key, sk.span(), &plugin, declared.as_deref());
                }
                if let Some(s) = self.setting(&key, sv) {
                    if looks_secret(&key) && matches!(s, Setting::String(_)) {
                        let name = format!("{id}_{key}");
                        self.warn(
                            sv.span(),
                            format!("`{key}` in {section} holds a literal value that looks secret"),
                            Some(format!(
                                "write `{key} = {{ secret = \"{name}\" }}` and provide it as systemd credential `{name}` or environment variable `KITHD_SECRET_{}`",
                                name.to_ascii_uppercase()
                            )),
                        );
                    }
                    setting_spans.insert(key.clone(), sv.span());
                    settings.insert(key, s);
                }
            }
            out.insert(
                id.clone(),
                Channel {
                    id,
                    plugin,
                    address,
                    settings,
                    limits,
                    span: pspan,
                    setting_spans,
                },
            );
        }
        out
    }

    /// A key of a channel that neither the host nor its plugin reads: an error when the
    /// plugin declares its settings, a warning when it doesn't say.
    fn undeclared_setting(
        &mut self,
        key: &str,
        span: Span,
        plugin: &str,
        declared: Option<&[String]>,
    ) {
        // The host also reads the setting that names where requests may go.
        let known: Vec<&str> = HOST_CHANNEL_KEYS
            .iter()
            .copied()
            .chain(["plugin", "address", "url", "api_base", "server", "host"])
            .chain(declared.unwrap_or_default().iter().map(String::as_str))
            .collect();
        if known.contains(&key) {
            return;
        }
        let hint = did_you_mean(key, known.iter().copied()).map(|s| format!("did you mean `{s}`?"));
        match declared {
            Some(d) => {
                let hint = hint.unwrap_or_else(|| {
                    format!(
                        "the host reads {}; plugin `{plugin}` reads {}",
                        list(HOST_CHANNEL_KEYS),
                        if d.is_empty() {
                            "nothing else".to_string()
                        } else {
                            list_owned(d.iter())
                        }
                    )
                });
                self.error(
                    span,
                    format!("unknown setting `{key}` for plugin `{plugin}`"),
                    Some(hint),
                );
            }
            None => self.warn(
                span,
                format!(
                    "plugin `{plugin}` does not declare its settings, so `{key}` can't be checked"
                ),
                Some(hint.unwrap_or_else(|| {
                    "a plugin can list the settings it reads with `fn settings() { [\"key\", …] }`"
                        .into()
                })),
            ),
        }
    }

    /// One of the host's channel settings, parsed into its typed value.
    fn channel_limit(&mut self, key: &str, v: &Spanned<DeValue>, limits: &mut ChannelLimits) {
        let span = v.span();
        match key {
            "tls_sha256" => {
                let ok = matches!(v.get_ref(), DeValue::String(t)
                    if t.chars().filter(|c| *c != ':').count() == 64
                        && t.chars().all(|c| c.is_ascii_hexdigit() || c == ':'));
                if !ok {
                    self.error(
                        span,
                        "`tls_sha256` must be the certificate's SHA-256: 64 hex digits, colons allowed",
                        Some("`openssl x509 -noout -fingerprint -sha256 -in server.pem`".into()),
                    );
                }
            }
            "timeout" | "give_up_after" | "retry_base" => {
                let DeValue::String(text) = v.get_ref() else {
                    self.type_error(span, key, "a duration such as \"30s\"", v.get_ref());
                    return;
                };
                let Some(d) = self.duration(text, &span, key) else {
                    return;
                };
                let (lo, hi, range) = match key {
                    "timeout" => (1, 600, "between 1s and 10m"),
                    "retry_base" => (1, 86_400, "between 1s and 1d"),
                    _ => (60, 10 * 366 * 86_400, "at least 1m"),
                };
                if !(lo..=hi).contains(&d.as_secs()) {
                    self.error(span, format!("`{key}` must be {range}"), None);
                    return;
                }
                match key {
                    "timeout" => limits.timeout = Some(d),
                    "retry_base" => limits.retry_base = Some(d),
                    _ => limits.give_up_after = Some(d),
                }
            }
            _ => {
                let (lo, hi) = if key == "concurrency" {
                    (1, 256)
                } else {
                    (1, 100)
                };
                let n = match v.get_ref() {
                    DeValue::Integer(i) => {
                        i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()).ok()
                    }
                    other => {
                        self.type_error(span, key, "a whole number", other);
                        return;
                    }
                };
                match n.filter(|n| (lo..=hi).contains(n)) {
                    Some(n) if key == "concurrency" => limits.concurrency = Some(n as u32),
                    Some(n) => limits.max_attempts = Some(n as u32),
                    None => {
                        self.error(span, format!("`{key}` must be between {lo} and {hi}"), None)
                    }
                }
            }
        }
    }

    fn setting(&mut self, key: &str, v: &Spanned<DeValue>) -> Option<Setting> {
        Some(match v.get_ref() {
            DeValue::String(s) => Setting::String(s.to_string()),
            DeValue::Integer(i) => {
                match i64::from_str_radix(&i.as_str().replace('_', ""), i.radix()) {
                    Ok(n) => Setting::Integer(n),
                    Err(_) => {
                        self.error(v.span(), format!("`{key}` is not a valid integer"), None);
                        return None;
                    }
                }
            }
            DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
                Ok(x) => Setting::Float(x),
                Err(_) => {
                    self.error(v.span(), format!("`{key}` is not a valid number"), None);
                    return None;
                }
            },
            DeValue::Boolean(b) => Setting::Bool(*b),
            DeValue::Datetime(d) => Setting::String(d.to_string()),
            DeValue::Array(a) => {
                let mut out = Vec::new();
                for e in a.iter() {
                    out.push(self.setting(key, e)?);
                }
                Setting::List(out)
            }
            DeValue::Table(t) => {
                let is_secret = t.iter().any(|(k, _)| k.get_ref().as_ref() == "secret");
                if is_secret {
                    if t.len() != 1 {
                        self.error(
                            v.span(),
                            format!("`{key}`: a secret reference has only the `secret` key"),
                            None,
                        );
                        return None;
                    }
                    let (name, span) = self.string(t, "secret")?;
                    if !valid_id(&name) || name.contains('.') {
                        self.error(
                            span,
                            format!(
                                "secret name `{name}` may use only letters, digits, `_` and `-`"
                            ),
                            None,
                        );
                        return None;
                    }
                    // kithd's own keys (`plugin::grant::RESERVED_SECRETS`): no script may
                    // reach them, so no channel may name them.
                    if ["answer_key", "inbound_token"].contains(&name.as_str()) {
                        self.error(
                            span,
                            format!("`{name}` is kithd's own secret; a channel can't use it"),
                            Some("give the channel a secret of its own".into()),
                        );
                        return None;
                    }
                    Setting::Secret(name)
                } else {
                    let mut out = BTreeMap::new();
                    for (k, e) in t.iter() {
                        out.insert(k.get_ref().to_string(), self.setting(k.get_ref(), e)?);
                    }
                    Setting::Table(out)
                }
            }
        })
    }

    fn recipient_common(
        &mut self,
        table: &Table,
        id: &str,
        section: &str,
        header: &Span,
        channels: &BTreeMap<String, Channel>,
        default_tz: Option<Tz>,
    ) -> Option<Recipient> {
        let address_keys = &address_fields(channels);
        let name = self.required_string(table, "name", section, header);
        let timezone = if default_tz.is_none() && self.get(table, "timezone").is_none() {
            self.error(
                header.clone(),
                format!("missing `timezone` in {section}"),
                Some(
                    "add e.g. `timezone = \"Europe/Berlin\"`: every time in the plan is read in it"
                        .into(),
                ),
            );
            None
        } else if self.get(table, "timezone").is_some() {
            self.timezone(table)
        } else {
            default_tz
        };
        let quiet_hours = self.quiet_hours(table);
        let mut addresses = BTreeMap::new();
        for (k, v) in table.iter() {
            let key = k.get_ref().as_ref();
            let free = !CONTACT_KEYS.contains(&key) && is_free_address(key, v.get_ref());
            if key == "email" || key == "phone" || address_keys.contains(key) || free {
                match v.get_ref() {
                    DeValue::String(s) if !s.trim().is_empty() => {
                        if key == "email" && !s.contains('@') {
                            self.error(v.span(), format!("`{s}` is not an email address"), None);
                        }
                        if key == "phone"
                            && !(s.starts_with('+')
                                && s[1..].chars().all(|c| c.is_ascii_digit() || c == ' ')
                                && s.len() > 4)
                        {
                            self.error(
                                v.span(),
                                format!("`{s}` is not a phone number in international form"),
                                Some(
                                    "write it with the country code, e.g. `\"+4915112345678\"`"
                                        .into(),
                                ),
                            );
                        }
                        addresses.insert(key.to_string(), s.to_string());
                    }
                    DeValue::String(_) => self.error(v.span(), format!("`{key}` is empty"), None),
                    other => self.type_error(v.span(), key, "a string", other),
                }
            }
        }
        let reach = self.check_reach(table, &addresses, section, channels);
        // Keep going with placeholders when name or zone failed (their errors are already
        // recorded, so the plan won't load), so later checks still see this recipient.
        Some(Recipient {
            id: id.to_string(),
            name: name.map(|n| n.0).unwrap_or_default(),
            timezone: timezone.unwrap_or(Tz::UTC),
            quiet_hours,
            addresses,
            reach,
            relation: None,
            consent: None,
            span: header.clone(),
        })
    }

    /// Keys that are free-form addresses (`ntfy_topic`, `signal_number`): string values whose
    /// name is not a near-miss of a known key. One no channel delivers to gets a warning.
    fn free_addresses(
        &mut self,
        table: &Table,
        section: &str,
        known: &[&str],
        used: &BTreeSet<String>,
    ) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for (k, v) in table.iter() {
            let key = k.get_ref().as_ref();
            if known.contains(&key) || used.contains(key) || !is_free_address(key, v.get_ref()) {
                continue;
            }
            if did_you_mean(key, known.iter().copied()).is_some() {
                continue; // a likely typo: `check_keys` reports it with a suggestion
            }
            self.warn(
                k.span(),
                format!("`{key}` in {section} is not a known key, so it is read as an address, but no channel delivers to it"),
                Some(format!("known keys: {}; a channel uses an address through its plugin or `address = \"{key}\"`", list(known))),
            );
            out.insert(key.to_string());
        }
        out
    }

    fn person(&mut self, doc: &Table, channels: &BTreeMap<String, Channel>) -> Option<Recipient> {
        let address_keys = &address_fields(channels);
        let Some((v, span)) = self.get(doc, "person") else {
            self.error(
                0..0,
                "missing `[person]` table",
                Some(
                    "every plan starts with `[person]`, giving at least `name` and `timezone`"
                        .into(),
                ),
            );
            return None;
        };
        let Some(table) = v.get_ref().as_table() else {
            self.type_error(span, "person", "a table", v.get_ref());
            return None;
        };
        let extra = self.free_addresses(table, "[person]", PERSON_KEYS, address_keys);
        self.check_keys(table, "[person]", PERSON_KEYS, &|k| {
            address_keys.contains(k) || extra.contains(k)
        });
        self.recipient_common(table, SELF_ID, "[person]", &span, channels, None)
    }

    fn contacts(
        &mut self,
        doc: &Table,
        channels: &BTreeMap<String, Channel>,
        default_tz: Tz,
    ) -> BTreeMap<String, Recipient> {
        let address_keys = &address_fields(channels);
        let mut out = BTreeMap::new();
        let Some((v, span)) = self.get(doc, "contacts") else {
            return out;
        };
        let Some(table) = v.get_ref().as_table() else {
            self.type_error(
                span,
                "contacts",
                "a table of `[contacts.ID]` tables",
                v.get_ref(),
            );
            return out;
        };
        for (k, v) in table.iter() {
            let id = k.get_ref().to_string();
            let section = format!("[contacts.{id}]");
            if id == SELF_ID {
                self.error(
                    k.span(),
                    "`self` is reserved for the person and can't be a contact id",
                    None,
                );
                continue;
            }
            if !valid_id(&id) {
                self.error(
                    k.span(),
                    format!("contact id `{id}` may use only letters, digits, `_`, `-` and `.`"),
                    None,
                );
            }
            let Some(ct) = v.get_ref().as_table() else {
                self.type_error(v.span(), &id, "a table", v.get_ref());
                continue;
            };
            let header = v.span();
            let extra = self.free_addresses(ct, &section, CONTACT_KEYS, address_keys);
            self.check_keys(ct, &section, CONTACT_KEYS, &|k| {
                address_keys.contains(k) || extra.contains(k)
            });
            let relation = self.string(ct, "relation").and_then(|(r, rspan)| {
                let rel = Relation::parse(&r);
                if rel.is_none() {
                    let hint = match did_you_mean(&r, Relation::NAMES) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("one of {}", list(&Relation::NAMES)),
                    };
                    self.error(rspan, format!("unknown relation `{r}`"), Some(hint));
                }
                rel
            });
            let consent = self.textual(ct, "consent").and_then(|(c, cspan)| {
                let d: Option<NaiveDate> = schedule_spec::parse_date(&c);
                if d.is_none() {
                    self.error(
                        cspan,
                        format!("`consent` must be the date the contact agreed, found `{c}`"),
                        Some(format!(
                            "write it as a date, e.g. `consent = 2026-11-02`; {}",
                            schedule_spec::YEAR_RANGE
                        )),
                    );
                }
                d
            });
            if let Some(mut r) =
                self.recipient_common(ct, &id, &section, &header, channels, Some(default_tz))
            {
                r.relation = relation;
                r.consent = consent;
                out.insert(id, r);
            }
        }
        out
    }

    /// Items are taken out of the document one by one and each table is dropped once read,
    /// so a large plan's parse tree is freed while its items are built.
    fn items(
        &mut self,
        doc: &mut Table,
        person: Option<&Recipient>,
        contacts: &BTreeMap<String, Recipient>,
        person_tz: Tz,
    ) -> Vec<Arc<Item>> {
        let mut out = Vec::new();
        let mut ids: HashMap<String, Span> = HashMap::new();
        for kind in Kind::ALL {
            let Some(key) = doc
                .keys()
                .find(|k| k.get_ref().as_ref() == kind.as_str())
                .cloned()
            else {
                continue;
            };
            let Some(v) = doc.remove(&key) else { continue };
            let span = v.span();
            let DeValue::Array(arr) = v.into_inner() else {
                self.error(
                    span,
                    format!("`{kind}` must be a list of items"),
                    Some(format!("write each item under its own `[[{kind}]]` header")),
                );
                continue;
            };
            for e in arr {
                let Some(t) = e.get_ref().as_table() else {
                    self.type_error(e.span(), kind.as_str(), "a table", e.get_ref());
                    continue;
                };
                if let Some(item) =
                    self.item(kind, t, &e.span(), person, contacts, person_tz, &mut ids)
                {
                    out.push(Arc::new(item));
                }
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn item(
        &mut self,
        kind: Kind,
        t: &Table,
        header: &Span,
        person: Option<&Recipient>,
        contacts: &BTreeMap<String, Recipient>,
        person_tz: Tz,
        ids: &mut HashMap<String, Span>,
    ) -> Option<Item> {
        let specific = kind_keys(kind);
        let all_keys: Vec<&str> = ITEM_KEYS.iter().chain(specific).copied().collect();
        let section = format!("[[{kind}]]");
        self.check_keys(t, &section, &all_keys, &|_| false);
        let id = self.required_string(t, "id", &section, header);
        if let Some((id, span)) = &id {
            if !valid_id(id) {
                self.error(
                    span.clone(),
                    format!("item id `{id}` may use only letters, digits, `_`, `-` and `.`"),
                    None,
                );
            } else if let Some(first) = ids.get(id) {
                let line = self.src[..first.start].matches('\n').count() + 1;
                self.error(
                    span.clone(),
                    format!("duplicate item id `{id}`"),
                    Some(format!("item ids must be unique across the plan; `{id}` is first used on line {line}")),
                );
            } else {
                ids.insert(id.clone(), span.clone());
            }
        }
        let section = match &id {
            Some((id, _)) => format!("[[{kind}]] `{id}`"),
            None => section,
        };
        let timezone = if self.get(t, "timezone").is_some() {
            self.timezone(t)
        } else {
            Some(person_tz)
        };
        let urgent = self.boolean(t, "urgent").unwrap_or(false);
        let catch_up = match self.string(t, "catch_up") {
            None => CatchUp::default_for(kind),
            Some((text, span)) => match text.as_str() {
                "always" => CatchUp::Always,
                "skip" => CatchUp::Skip,
                _ => match PlanDuration::parse(&text) {
                    Ok(d) if d.as_secs() > 0 => CatchUp::Within(d),
                    _ => {
                        self.error(
                            span,
                            format!("bad `catch_up` value `{text}`"),
                            Some("use `\"always\"`, `\"skip\"` or a duration such as `\"2h\"` (deliver if missed by less than that)".into()),
                        );
                        CatchUp::Skip
                    }
                },
            },
        };
        let respect_quiet_hours = self
            .boolean(t, "respect_quiet_hours")
            .unwrap_or(kind.respects_quiet_hours_by_default());

        // Kind-specific fields.
        let mut fields = BTreeMap::new();
        let mut ok = true;
        for key in ["name", "dose", "title", "location"] {
            if specific.contains(&key)
                && let Some((v, _)) = self.string(t, key)
            {
                fields.insert(key.to_string(), v);
            }
        }
        if kind == Kind::Medication && !fields.contains_key("name") {
            self.error(
                header.clone(),
                format!("missing `name` in {section}"),
                Some("the medication's name, e.g. `name = \"sertraline\"`".into()),
            );
            ok = false;
        }
        let with = if specific.contains(&"with") {
            match self.string(t, "with") {
                Some((w, wspan)) => {
                    if let Some(c) = contacts.get(&w) {
                        fields.insert("with".into(), c.name.clone());
                        fields.insert("contact".into(), c.name.clone());
                        if let Some(r) = c.relation {
                            fields.insert("relation".into(), r.as_str().into());
                        }
                        Some(w)
                    } else {
                        self.unknown_contact(&w, wspan, contacts, "with");
                        ok = false;
                        None
                    }
                }
                None if kind == Kind::Followup => {
                    self.error(
                        header.clone(),
                        format!("missing `with` in {section}"),
                        Some("name the contact to reach out to, e.g. `with = \"sam\"`".into()),
                    );
                    ok = false;
                    None
                }
                None => None,
            }
        } else {
            None
        };

        let schedule = self.schedule(kind, t, header, &section);
        let allowed = kind_fields(kind);
        let message = match self.string(t, "message") {
            Some((m, mspan)) => self.template(&m, &mspan, "message", &allowed),
            None => {
                if self.get(t, "message").is_none() {
                    self.error(
                        header.clone(),
                        format!("missing `message` in {section}"),
                        Some(
                            "add the text to send, e.g. `message = \"How are you, {person}?\"`"
                                .into(),
                        ),
                    );
                }
                None
            }
        };
        let followup_message = match self.string(t, "followup_message") {
            Some((m, mspan)) => {
                let r = self.template(&m, &mspan, "followup_message", &allowed);
                if r.is_none() {
                    ok = false;
                }
                r
            }
            None => None,
        };
        let mut remind_before = Vec::new();
        if kind == Kind::Appointment {
            match self.strings(t, "remind_before") {
                Some(list) => {
                    for (s, span) in list {
                        match self.duration(&s, &span, "remind_before") {
                            Some(d) => remind_before.push(d),
                            None => ok = false,
                        }
                    }
                }
                None => {
                    remind_before = vec![
                        PlanDuration::parse("1d").ok()?,
                        PlanDuration::parse("2h").ok()?,
                    ];
                }
            }
            remind_before.sort();
            remind_before.dedup();
            remind_before.reverse();
        }
        let followup_after = match self.string(t, "followup_after") {
            Some((s, span)) => {
                let d = self.duration(&s, &span, "followup_after");
                ok &= d.is_some();
                d
            }
            None => None,
        };

        // Recipients: `self` or consenting contacts, each with somewhere to reach them.
        let to = match self.strings(t, "to") {
            Some(list) => {
                if list.is_empty() {
                    let span = self.get(t, "to").map(|(_, s)| s).unwrap_or(header.clone());
                    self.error(
                        span,
                        format!("`to` in {section} is empty"),
                        Some("leave `to` out to message only the person".into()),
                    );
                    ok = false;
                }
                let mut seen = BTreeSet::new();
                let mut out = Vec::new();
                for (r, span) in list {
                    if !seen.insert(r.clone()) {
                        self.error(
                            span,
                            format!("recipient `{r}` is listed twice in `to`"),
                            None,
                        );
                        ok = false;
                        continue;
                    }
                    if !self.check_recipient(&r, &span, person, contacts, &section) {
                        ok = false;
                    }
                    out.push(r);
                }
                out
            }
            None => {
                if let Some(p) = person
                    && p.reach.is_empty()
                {
                    self.error(
                        header.clone(),
                        format!(
                            "{section} messages the person, but `[person]` has no `reach` channels"
                        ),
                        Some("add e.g. `reach = [\"console\"]` to `[person]`".into()),
                    );
                    ok = false;
                }
                vec![SELF_ID.to_string()]
            }
        };
        if kind == Kind::Followup && to.iter().any(|r| r != SELF_ID) {
            let span = self.get(t, "to").map(|(_, s)| s).unwrap_or(header.clone());
            self.warn(
                span,
                format!("{section} nudges the person to reach out; it usually goes only to `self`"),
                None,
            );
        }

        let answer = if matches!(kind, Kind::Checkin | Kind::Medication) {
            match self.answer_policy(kind, t, header, &section, contacts) {
                Ok(a) => a,
                Err(()) => {
                    ok = false;
                    None
                }
            }
        } else {
            None
        };
        if let Some(m) = &message
            && m.fields().any(|(f, _)| f == "answer_url")
            && !self.has_server
        {
            let span = self
                .get(t, "message")
                .map(|(_, s)| s)
                .unwrap_or(header.clone());
            self.error(
                span,
                "`{answer_url}` needs a `[server]` table to answer through",
                Some("add `[server]` with `public_url`, or drop the placeholder".into()),
            );
            ok = false;
        }
        if !ok {
            return None;
        }
        let (id, span) = id?;
        Some(Item {
            answer: answer.map(Box::new),
            id,
            span,
            kind,
            schedule: schedule?,
            timezone: timezone?,
            message: message?,
            to,
            urgent,
            respect_quiet_hours,
            catch_up,
            fields,
            with,
            remind_before,
            followup_after,
            followup_message,
        })
    }

    fn server(&mut self, doc: &Table) -> Option<super::ServerConfig> {
        let (v, span) = self.get(doc, "server")?;
        let Some(t) = v.get_ref().as_table() else {
            self.type_error(span, "server", "a table", v.get_ref());
            return None;
        };
        self.check_keys(t, "[server]", SERVER_KEYS, &|_| false);
        let listen = match self.string(t, "listen") {
            None => std::net::SocketAddr::from(([127, 0, 0, 1], 8750)),
            Some((l, lspan)) => match l.parse() {
                Ok(a) => a,
                Err(_) => {
                    self.error(
                        lspan,
                        format!("bad `listen` address `{l}`"),
                        Some("write `\"127.0.0.1:8750\"`".into()),
                    );
                    return None;
                }
            },
        };
        let (public_url, uspan) = self.required_string(t, "public_url", "[server]", &span)?;
        let parsed = url::Url::parse(&public_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if parsed.is_none() {
            self.error(
                uspan,
                format!("`public_url` `{public_url}` is not an http(s) URL"),
                Some(
                    "the address people open links at, e.g. `\"https://kithd.example.org\"`".into(),
                ),
            );
            return None;
        }
        let link_ttl = match self.string(t, "link_ttl") {
            None => PlanDuration::parse("24h").ok()?,
            Some((s, sspan)) => self.duration(&s, &sspan, "link_ttl")?,
        };
        Some(super::ServerConfig {
            span,
            listen,
            public_url: public_url.trim_end_matches('/').to_string(),
            link_ttl,
        })
    }

    fn never_contact(
        &mut self,
        doc: &Table,
        contacts: &BTreeMap<String, Recipient>,
    ) -> Vec<String> {
        let Some(list) = self.strings(doc, "never_contact") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (id, span) in list {
            if !contacts.contains_key(&id) {
                self.unknown_contact(&id, span, contacts, "never_contact");
                continue;
            }
            out.push(id);
        }
        out
    }

    /// `expect_reply_within`/`confirm_within`, `nag`, `escalate` and their messages.
    fn answer_policy(
        &mut self,
        kind: Kind,
        t: &Table,
        header: &Span,
        section: &str,
        contacts: &BTreeMap<String, Recipient>,
    ) -> Result<Option<super::AnswerPolicy>, ()> {
        let within_key = if kind == Kind::Checkin {
            "expect_reply_within"
        } else {
            "confirm_within"
        };
        let mut ok = true;
        let within = match self.string(t, within_key) {
            Some((s, span)) => {
                let d = self.duration(&s, &span, within_key);
                ok &= d.is_some();
                d
            }
            None => None,
        };
        let Some(within) = within else {
            if ok {
                for key in ANSWER_KEYS {
                    if let Some(span) = self.key_span(t, key) {
                        self.error(
                            span,
                            format!("`{key}` needs `{within_key}` in {section}"),
                            Some(format!(
                                "say how long to wait for an answer, e.g. `{within_key} = \"3h\"`"
                            )),
                        );
                        ok = false;
                    }
                }
            }
            return if ok { Ok(None) } else { Err(()) };
        };
        let nag = match self.string(t, "nag") {
            None => None,
            Some((s, span)) => {
                let parsed = s.split_once('x').and_then(|(d, n)| {
                    let d = PlanDuration::parse(d.trim())
                        .ok()
                        .filter(|d| d.as_secs() >= 1)?;
                    let n: u32 = n.trim().parse().ok().filter(|n| (1..=10).contains(n))?;
                    Some((d, n))
                });
                match parsed {
                    None => {
                        self.error(span, format!("bad `nag` value `{s}`"), Some("write an interval and a count, e.g. `\"15m x3\"` (at most 10 times)".into()));
                        ok = false;
                    }
                    Some((d, _)) if d.as_secs() < 300 => self.warn(
                        span,
                        format!("`nag` re-nudges every {d}: more often than every 5 minutes can feel like pressure"),
                        None,
                    ),
                    Some(_) => {}
                }
                parsed
            }
        };
        let mut escalate = Vec::new();
        for (c, span) in self.strings(t, "escalate").unwrap_or_default() {
            match contacts.get(&c) {
                None => {
                    self.unknown_contact(&c, span, contacts, "escalate");
                    ok = false;
                }
                Some(contact) if contact.consent.is_none() => {
                    self.error(
                        span,
                        format!("{section} would alert contact `{c}`, who has not consented"),
                        Some(format!("kithd never messages a contact without consent: once {} has agreed, add `consent = YYYY-MM-DD` to [contacts.{c}]", contact.name)),
                    );
                    ok = false;
                }
                Some(_) if self.never_contact.contains(&c) => {
                    self.error(
                        span,
                        format!("contact `{c}` is on the plan's `never_contact` list"),
                        None,
                    );
                    ok = false;
                }
                Some(contact) if contact.reach.is_empty() => {
                    self.error(span, format!("contact `{c}` has no `reach` channels"), None);
                    ok = false;
                }
                Some(_) if escalate.contains(&c) => {
                    self.error(
                        span,
                        format!("contact `{c}` is listed twice in `escalate`"),
                        None,
                    );
                    ok = false;
                }
                Some(_) => escalate.push(c),
            }
        }
        let escalate_every = match self.string(t, "escalate_every") {
            None => PlanDuration::from_secs(0),
            Some((s, span)) => match self.duration(&s, &span, "escalate_every") {
                Some(d) => d,
                None => {
                    ok = false;
                    PlanDuration::from_secs(0)
                }
            },
        };
        let default_escalate = if kind == Kind::Checkin {
            "{person} hasn't answered a check-in from kithd since {time}. You agreed to be told: maybe reach out to them?"
        } else {
            "{person} hasn't confirmed a reminder from kithd since {time}. You agreed to be told: maybe check in with them?"
        };
        let mut template = |key: &str, default: &str| -> Option<Template> {
            match self.string(t, key) {
                Some((m, span)) => self.template(&m, &span, key, ESCALATION_FIELDS),
                None => Template::parse(default).ok(),
            }
        };
        let escalate_message = template("escalate_message", default_escalate);
        let all_clear_message = template(
            "all_clear_message",
            "All clear: {person} has answered now. Thank you for being there.",
        );
        let _ = header;
        match (ok, escalate_message, all_clear_message) {
            (true, Some(escalate_message), Some(all_clear_message)) => {
                Ok(Some(super::AnswerPolicy {
                    within,
                    nag,
                    escalate,
                    escalate_every,
                    escalate_message,
                    all_clear_message,
                }))
            }
            _ => Err(()),
        }
    }

    fn unknown_contact(
        &mut self,
        id: &str,
        span: Span,
        contacts: &BTreeMap<String, Recipient>,
        key: &str,
    ) {
        let hint = match did_you_mean(id, contacts.keys().map(String::as_str)) {
            Some(s) => format!("did you mean `{s}`?"),
            None if contacts.is_empty() => "define the contact as a `[contacts.ID]` table".into(),
            None => format!("contacts in this plan: {}", list_owned(contacts.keys())),
        };
        self.error(
            span,
            format!("unknown contact `{id}` in `{key}`"),
            Some(hint),
        );
    }

    fn check_recipient(
        &mut self,
        r: &str,
        span: &Span,
        person: Option<&Recipient>,
        contacts: &BTreeMap<String, Recipient>,
        section: &str,
    ) -> bool {
        if self.never_contact.contains(r) {
            self.error(
                span.clone(),
                format!("{section} would message contact `{r}`, who is on the plan's `never_contact` list"),
                None,
            );
            return false;
        }
        let recipient = if r == SELF_ID {
            person
        } else {
            match contacts.get(r) {
                Some(c) => {
                    if c.consent.is_none() {
                        self.error(
                            span.clone(),
                            format!("{section} would message contact `{r}`, who has not consented"),
                            Some(format!(
                                "kithd never messages a contact without consent: once {} has agreed, add `consent = YYYY-MM-DD` to [contacts.{r}]",
                                c.name
                            )),
                        );
                        return false;
                    }
                    Some(c)
                }
                None => {
                    if !contacts.contains_key(r) {
                        let mut names: Vec<&str> = contacts.keys().map(String::as_str).collect();
                        names.push(SELF_ID);
                        let hint = match did_you_mean(r, names) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => {
                                "use `self` for the person or a contact id from `[contacts.ID]`"
                                    .into()
                            }
                        };
                        self.error(
                            span.clone(),
                            format!("unknown recipient `{r}` in `to`"),
                            Some(hint),
                        );
                    }
                    return false;
                }
            }
        };
        if let Some(rec) = recipient
            && rec.reach.is_empty()
        {
            let where_ = if r == SELF_ID {
                "[person]".to_string()
            } else {
                format!("[contacts.{r}]")
            };
            self.error(
                span.clone(),
                format!("recipient `{r}` has no `reach` channels"),
                Some(format!("add e.g. `reach = [\"console\"]` to {where_}")),
            );
            return false;
        }
        true
    }

    fn schedule(
        &mut self,
        kind: Kind,
        t: &Table,
        header: &Span,
        section: &str,
    ) -> Option<ScheduleSpec> {
        let present: Vec<&str> = SCHEDULE_KEYS
            .iter()
            .copied()
            .filter(|k| self.get(t, k).is_some())
            .collect();
        if kind == Kind::Appointment {
            if let Some(other) = present.iter().find(|k| **k != "when") {
                let span = self.key_span(t, other).unwrap_or(header.clone());
                self.error(
                    span,
                    format!("appointments are scheduled with `when`, not `{other}`"),
                    Some(
                        "write the local date and time, e.g. `when = \"2026-12-03T15:00\"`".into(),
                    ),
                );
                return None;
            }
        } else if present.contains(&"when") {
            let span = self.key_span(t, "when").unwrap_or(header.clone());
            self.error(
                span,
                "`when` schedules appointments only",
                Some("for a repeating item use `at`, `cron` or `every`".into()),
            );
            return None;
        }
        if present.is_empty() {
            let hint = if kind == Kind::Appointment {
                "add `when = \"2026-12-03T15:00\"`"
            } else {
                "add exactly one of `at = \"08:00\"`, `cron = \"0 8 * * *\"` or `every = \"8h\"`"
            };
            self.error(
                header.clone(),
                format!("{section} has no schedule"),
                Some(hint.into()),
            );
            return None;
        }
        if present.len() > 1 {
            let span = self.key_span(t, present[1]).unwrap_or(header.clone());
            self.error(
                span,
                format!("{section} has more than one schedule ({})", list(&present)),
                Some("keep exactly one of `at`, `cron` or `every`".into()),
            );
            return None;
        }
        if present[0] != "at"
            && let Some(span) = self.key_span(t, "days")
        {
            self.error(
                span,
                "`days` goes only with `at`",
                Some("a cron expression names its own days".into()),
            );
        }
        if present[0] != "every"
            && let Some(span) = self.key_span(t, "start")
        {
            self.error(span, "`start` goes only with `every`", None);
        }
        match present[0] {
            "at" => self.at_schedule(t),
            "cron" => {
                let (expr, span) = self.string(t, "cron")?;
                if let Some(cron) = self.crons.get(&expr) {
                    return Some(ScheduleSpec::Cron { cron: cron.clone() });
                }
                match schedule_spec::parse_cron(&expr) {
                    Ok(cron) => {
                        let cron = Arc::new(cron);
                        self.crons.insert(expr, cron.clone());
                        Some(ScheduleSpec::Cron { cron })
                    }
                    Err(p) => {
                        let at = self.inner_span(&span, p.start, p.end);
                        self.error(at, format!("bad `cron`: {}", p.message), p.hint);
                        None
                    }
                }
            }
            "every" => {
                let (text, span) = self.string(t, "every")?;
                let period = self.duration(&text, &span, "every")?;
                if period.as_secs() < 60 {
                    self.error(
                        span,
                        "`every` must be at least one minute",
                        Some("kithd won't message anyone more than once a minute".into()),
                    );
                    return None;
                }
                let start = match self.textual(t, "start") {
                    Some((s, sspan)) => match schedule_spec::parse_local_datetime(&s) {
                        Some(d) => d,
                        None => {
                            self.error(
                                sspan,
                                format!("bad `start` `{s}`"),
                                Some(format!(
                                    "write a local date-time, e.g. `\"2026-12-01T08:00\"`; {}",
                                    schedule_spec::YEAR_RANGE
                                )),
                            );
                            return None;
                        }
                    },
                    None => NaiveDateTime::default(),
                };
                Some(ScheduleSpec::Every { period, start })
            }
            _ => {
                let (text, span) = self.textual(t, "when")?;
                match schedule_spec::parse_local_datetime(&text) {
                    Some(d) => Some(ScheduleSpec::When(d)),
                    None => {
                        self.error(
                            span,
                            format!("bad `when` `{text}`"),
                            Some(format!(
                                "write the local date and time, e.g. `\"2026-12-03T15:00\"`; {}",
                                schedule_spec::YEAR_RANGE
                            )),
                        );
                        None
                    }
                }
            }
        }
    }

    fn at_schedule(&mut self, t: &Table) -> Option<ScheduleSpec> {
        let list = self.strings(t, "at")?;
        let mut times = Vec::new();
        let mut ok = true;
        if list.is_empty() {
            let span = self.get(t, "at").map(|(_, s)| s).unwrap_or(0..0);
            self.error(
                span,
                "`at` is empty",
                Some("give at least one time, e.g. `at = [\"08:00\", \"20:00\"]`".into()),
            );
            return None;
        }
        for (s, span) in list {
            match schedule_spec::parse_clock(&s) {
                Some(c) => times.push(c),
                None => {
                    ok = false;
                    self.error(
                        span,
                        format!("bad time `{s}` in `at`"),
                        Some("write a 24-hour local time, e.g. `\"08:00\"` or `\"21:30\"`".into()),
                    );
                }
            }
        }
        times.sort();
        times.dedup();
        let days = match self.get(t, "days") {
            None => DaySet::DAILY,
            Some((v, span)) => match v.get_ref() {
                DeValue::String(s) => match s.as_ref() {
                    "daily" => DaySet::DAILY,
                    "weekdays" => DaySet::WEEKDAYS,
                    "weekends" => DaySet::WEEKENDS,
                    other => {
                        let hint = match did_you_mean(other, ["daily", "weekdays", "weekends"]) {
                            Some(s) => format!("did you mean `{s}`?"),
                            None => "use `daily`, `weekdays`, `weekends` or a list like `[\"mon\", \"thu\"]`".into(),
                        };
                        self.error(span, format!("unknown `days` value `{other}`"), Some(hint));
                        return None;
                    }
                },
                DeValue::Array(_) => {
                    let mut set = DaySet::empty();
                    for (d, dspan) in self.strings(t, "days")? {
                        match schedule_spec::parse_weekday(&d) {
                            Some(w) => set.insert(w),
                            None => {
                                ok = false;
                                self.error(
                                    dspan,
                                    format!("unknown day `{d}`"),
                                    Some(
                                        "use `mon`, `tue`, `wed`, `thu`, `fri`, `sat` or `sun`"
                                            .into(),
                                    ),
                                );
                            }
                        }
                    }
                    if set.is_empty() && ok {
                        self.error(span, "`days` is empty", None);
                        return None;
                    }
                    set
                }
                other => {
                    self.type_error(
                        span,
                        "days",
                        "`daily`, `weekdays`, `weekends` or a list of days",
                        other,
                    );
                    return None;
                }
            },
        };
        ok.then_some(ScheduleSpec::At { times, days })
    }
}

/// The recipient address fields the plan's channels deliver to.
fn address_fields(channels: &BTreeMap<String, Channel>) -> BTreeSet<String> {
    channels
        .values()
        .filter_map(|c| c.address.clone())
        .collect()
}

fn is_free_address(key: &str, v: &DeValue) -> bool {
    matches!(v, DeValue::String(_)) && valid_id(key) && !key.contains('.')
}

fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn list_owned<'a>(items: impl Iterator<Item = &'a String>) -> String {
    items
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
