//! Validation of an item's answer policy: `expect_reply_within`/`confirm_within`, `nag`,
//! `escalate` and their messages.

use super::*;

impl<'s> Validator<'s> {
    /// `expect_reply_within`/`confirm_within`, `nag`, `escalate` and their messages.
    pub(super) fn answer_policy(
        &mut self,
        kind: Kind,
        t: &Table,
        header: &Span,
        section: &str,
        contacts: &BTreeMap<String, Recipient>,
    ) -> Result<Option<crate::plan::AnswerPolicy>, ()> {
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
                Some(contact) if contact.consent.is_none() && !contact.invite => {
                    self.error(
                        span,
                        format!("{section} would alert contact `{c}`, who has not consented"),
                        Some(format!("kithd never messages a contact without consent: once {} has agreed, add `consent = YYYY-MM-DD` to [contacts.{c}], or set `invite = true` there and ask them with `kithd invite`", contact.name)),
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
        let heard_default = if kind == Kind::Checkin {
            "{person} asked kithd to tell you when a check-in goes less well, and the one at {time} did. You agreed to be told: maybe reach out to them?"
        } else {
            "{person} asked kithd to tell you when they skip a dose, and they skipped the one at {time}. You agreed to be told: maybe check in with them?"
        };
        let heard_message = template("low_message", heard_default);
        let alert_on = match self.string(t, "alert_on") {
            None => None,
            Some((s, span)) => {
                match crate::vocab::AlertOn::parse(&s, kind) {
                    Some(_) if escalate.is_empty() => {
                        self.error(
                        span,
                        "`alert_on` needs `escalate`: who should be told",
                        Some("add the contacts who agreed to be told, e.g. `escalate = [\"sam\"]`".into()),
                    );
                        ok = false;
                        None
                    }
                    Some(a) => Some(a),
                    None => {
                        let hint = if kind == Kind::Checkin {
                            "write `\"mood <= 2\"` (or `\"mood < 3\"`): a mood from 1 to 4 at most"
                        } else {
                            "write `\"skipped\"`: a dose answered as skipped"
                        };
                        self.error(
                            span,
                            format!("bad `alert_on` value `{s}`"),
                            Some(hint.into()),
                        );
                        ok = false;
                        None
                    }
                }
            }
        };
        let _ = header;
        let max_snooze = self.max_snooze(t).unwrap_or(self.max_snooze);
        match (ok, escalate_message, all_clear_message, heard_message) {
            (true, Some(escalate_message), Some(all_clear_message), Some(heard_message)) => {
                Ok(Some(crate::plan::AnswerPolicy {
                    within,
                    max_snooze,
                    nag,
                    escalate,
                    escalate_every,
                    escalate_message,
                    all_clear_message,
                    alert_on,
                    heard_message,
                }))
            }
            _ => Err(()),
        }
    }
}
