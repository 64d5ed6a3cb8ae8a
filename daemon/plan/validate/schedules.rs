//! Validation of an item's schedule: `at`, `cron`, `every` or `when`, and `except`.

use super::*;

impl<'s> Validator<'s> {
    pub(super) fn schedule(
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
        // Appointments take `when` (one) or a repeating schedule (each occurrence an
        // appointment with its own reminders); other items repeat.
        if kind != Kind::Appointment && present.contains(&"when") {
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
                "add `when = \"2026-12-03T15:00\"` for one appointment, or `at` with `days`, `cron` or `every` with `start` for a recurring one"
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
                Some(
                    if kind == Kind::Appointment {
                        "keep exactly one of `when`, `at`, `cron` or `every`"
                    } else {
                        "keep exactly one of `at`, `cron` or `every`"
                    }
                    .into(),
                ),
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
                    // A day or more from 1970-01-01 lands at an odd hour on an odd
                    // weekday: such periods need to say where they start.
                    None if period.as_secs() >= 86_400 => {
                        self.error(
                            span,
                            format!("`every = \"{text}\"` needs a `start`"),
                            Some(format!(
                                "say when the first one is, e.g. `start = \"2026-12-07T18:00\"`: every {text} is counted from it (without it, from 1970-01-01 00:00)"
                            )),
                        );
                        return None;
                    }
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

    pub(super) fn at_schedule(&mut self, t: &Table) -> Option<ScheduleSpec> {
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

    /// `except`: local dates the item skips, as `"2026-12-25"` strings or TOML dates;
    /// sorted, at most `MAX_EXCEPT`.
    pub(super) fn except(&mut self, t: &Table) -> Vec<chrono::NaiveDate> {
        const MAX_EXCEPT: usize = 1000;
        let Some((v, span)) = self.get(t, "except") else {
            return Vec::new();
        };
        let Some(list) = v.get_ref().as_array() else {
            self.type_error(span, "except", "a list of dates", v.get_ref());
            return Vec::new();
        };
        if list.len() > MAX_EXCEPT {
            self.error(
                span,
                format!("`except` lists {} dates; at most {MAX_EXCEPT}", list.len()),
                Some("a pause is the better tool for long stretches".into()),
            );
            return Vec::new();
        }
        let mut out = Vec::new();
        for e in list.iter() {
            let text = match e.get_ref() {
                DeValue::String(s) => s.to_string(),
                DeValue::Datetime(d) => d.to_string(),
                other => {
                    self.type_error(e.span(), "except", "a list of dates", other);
                    continue;
                }
            };
            match schedule_spec::parse_date(&text) {
                Some(d) => out.push(d),
                None => self.error(
                    e.span(),
                    format!("bad date `{text}` in `except`"),
                    Some(format!(
                        "write a local date, e.g. `\"2026-12-25\"`; {}",
                        schedule_spec::YEAR_RANGE
                    )),
                ),
            }
        }
        out.sort();
        out.dedup();
        out
    }
}
