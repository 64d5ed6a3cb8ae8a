//! Validation of `[[away]]`: windows in the person's zone in which items don't fire.

use super::*;
use chrono::{DateTime, Utc};

use crate::vocab::Pause;

const AWAY_KEYS: &[&str] = &["from", "until", "items", "kinds", "note"];
/// At most this many windows (a plan is not a calendar).
const MAX_AWAY: usize = 1000;

impl<'s> Validator<'s> {
    /// `[[away]]` tables: `from` and `until` as local date-times (`until` exclusive) or dates
    /// (whole days, `until` inclusive), optional `items`, `kinds` and `note`.
    pub(super) fn away(&mut self, doc: &Table, tz: Tz, items: &[Arc<Item>]) -> Vec<Pause> {
        let Some((v, span)) = self.get(doc, "away") else {
            return Vec::new();
        };
        let Some(list) = v.get_ref().as_array() else {
            self.type_error(span, "away", "a list of `[[away]]` tables", v.get_ref());
            return Vec::new();
        };
        if list.len() > MAX_AWAY {
            self.error(
                span,
                format!("{} `[[away]]` windows; at most {MAX_AWAY}", list.len()),
                None,
            );
            return Vec::new();
        }
        let mut out = Vec::new();
        for e in list.iter() {
            let Some(t) = e.get_ref().as_table() else {
                self.type_error(e.span(), "away", "a table", e.get_ref());
                continue;
            };
            self.check_keys(t, "[[away]]", AWAY_KEYS, &|_| false);
            let bound = |this: &mut Self, key: &str, end: bool| -> Option<DateTime<Utc>> {
                let Some((text, span)) = this.textual(t, key) else {
                    this.error(
                        e.span(),
                        format!("missing `{key}` in [[away]]"),
                        Some(
                            "e.g. `from = \"2026-12-20T18:00\"` and `until = \"2027-01-02\"`"
                                .into(),
                        ),
                    );
                    return None;
                };
                if let Some(local) = schedule_spec::parse_local_datetime(&text) {
                    return Some(crate::clock::resolve_local(tz, local));
                }
                // A date is the whole day: `from` its start, `until` its end.
                if let Some(d) = schedule_spec::parse_date(&text) {
                    let day = if end { d.succ_opt()? } else { d };
                    return Some(crate::clock::resolve_local(tz, day.and_hms_opt(0, 0, 0)?));
                }
                this.error(
                    span,
                    format!("bad `{key}` `{text}` in [[away]]"),
                    Some(format!(
                        "a local date-time (`\"2026-12-20T18:00\"`) or a date (`\"2026-12-24\"`, the whole day); {}",
                        schedule_spec::YEAR_RANGE
                    )),
                );
                None
            };
            let from = bound(self, "from", false);
            let until = bound(self, "until", true);
            let mut pause_items = Vec::new();
            for (id, ispan) in self.strings(t, "items").unwrap_or_default() {
                if items.iter().any(|i| i.id == id) {
                    pause_items.push(id);
                } else {
                    let hint = did_you_mean(&id, items.iter().map(|i| i.id.as_str()))
                        .map(|s| format!("did you mean `{s}`?"));
                    self.error(ispan, format!("no item `{id}` in the plan"), hint);
                }
            }
            let mut kinds = Vec::new();
            for (k, kspan) in self.strings(t, "kinds").unwrap_or_default() {
                match k.parse::<Kind>() {
                    Ok(kind) => kinds.push(kind),
                    Err(_) => self.error(
                        kspan,
                        format!("unknown kind `{k}`"),
                        Some("one of `checkin`, `medication`, `followup`, `appointment`".into()),
                    ),
                }
            }
            let note = self.string(t, "note").map(|(n, _)| n);
            if let (Some(from), Some(until)) = (from, until) {
                if until <= from {
                    let span = self.key_span(t, "until").unwrap_or(e.span());
                    self.error(span, "`until` is not after `from`", None);
                    continue;
                }
                out.push(Pause {
                    from,
                    until,
                    items: pause_items,
                    kinds,
                    note,
                });
            }
        }
        out
    }
}
