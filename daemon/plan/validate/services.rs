//! Validation of `[heartbeat]`, `[server]` and `crisis_text`.

use super::*;

/// How long history is kept unless the plan says (`history_retention`).
pub(crate) const DEFAULT_RETENTION_DAYS: i64 = 400;

/// The longest `crisis_text` (it goes back as one SMS reply, or a few).
const CRISIS_TEXT_MAX: usize = 480;

impl<'s> Validator<'s> {
    /// `invite_message`: the person's own words opening an invitation (`kithd invite`).
    pub(super) fn invite_message(&mut self, doc: &Table) -> Option<Template> {
        let (text, span) = self.string(doc, "invite_message")?;
        self.template(&text, &span, "invite_message", INVITE_FIELDS)
    }

    /// `history_retention`: how long answers and deliveries are kept (7 days to 10 years).
    pub(super) fn retention(&mut self, doc: &Table) -> PlanDuration {
        let default = PlanDuration::from_secs(DEFAULT_RETENTION_DAYS * 86_400);
        let Some((text, span)) = self.string(doc, "history_retention") else {
            return default;
        };
        match self.duration(&text, &span, "history_retention") {
            Some(d) if (7 * 86_400..=3650 * 86_400).contains(&d.as_secs()) => d,
            Some(_) => {
                self.error(
                    span,
                    format!("`history_retention = \"{text}\"` is outside 7 days to 10 years"),
                    Some("how long kithd keeps answers and deliveries, e.g. `\"400d\"` (the default) or `\"90d\"`".into()),
                );
                default
            }
            None => default,
        }
    }

    /// `crisis_text`: the person's own words and numbers, shown on the answer page and sent
    /// back after an answer they asked their contacts to hear about (`alert_on`).
    pub(super) fn crisis_text(&mut self, doc: &Table) -> Option<String> {
        let (text, span) = self.string(doc, "crisis_text")?;
        let text = text.trim().to_string();
        if text.is_empty() || text.chars().count() > CRISIS_TEXT_MAX {
            self.error(
                span,
                format!("`crisis_text` must be 1 to {CRISIS_TEXT_MAX} characters"),
                Some("your own words and the numbers to call, e.g. `\"Call Sam on +49 151 0000002, or the helpline on 0800 111 0 111.\"`".into()),
            );
            return None;
        }
        Some(text)
    }

    /// `[heartbeat]`: a Healthchecks-style ping URL and how often to ping it.
    pub(super) fn heartbeat(&mut self, doc: &Table) -> Option<crate::plan::Heartbeat> {
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
        Some(crate::plan::Heartbeat {
            url: url.trim_end_matches('/').to_string(),
            every,
        })
    }

    pub(super) fn server(&mut self, doc: &Table) -> Option<crate::plan::ServerConfig> {
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
        Some(crate::plan::ServerConfig {
            span,
            listen,
            public_url: public_url.trim_end_matches('/').to_string(),
            link_ttl,
        })
    }
}
