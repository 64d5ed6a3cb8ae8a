//! "How it has gone": mood over the days as a line chart, adherence per medication as a
//! calendar heat-map, the check-in answer rate, and alerts and all-clears, drawn as inline
//! SVG on the server (no script, no outside resource; colours carry a text label and a
//! `<title>` too). The person's `/me/report` and `kithd report --format html` show the same.
//! Pure: journal entries in, HTML out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;

use super::page::escape;
use super::words::{Words, fill};
use crate::store::JournalEntry;
use crate::vocab::Kind;

/// What the charts are drawn from.
pub(crate) struct Journal<'a> {
    pub entries: &'a [JournalEntry],
    /// Alerts and all-clears sent to contacts in the period.
    pub alerts: u64,
    pub all_clears: u64,
    pub days: u32,
    pub now: DateTime<Utc>,
    pub zone: Tz,
    /// What an item is called (its title or id).
    pub label: &'a dyn Fn(&str) -> String,
}

/// How a day of one medication went, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Day {
    NoAnswer,
    Skipped,
    Taken,
}

impl Day {
    fn colour(self) -> &'static str {
        match self {
            Day::Taken => "#1b7f3b",
            Day::Skipped => "#c77700",
            Day::NoAnswer => "#b3261e",
        }
    }
}

/// The charts as HTML sections (headings at level 2).
pub(crate) fn render(j: &Journal, w: &Words) -> String {
    let mut out = String::new();
    let first = (j.now - Duration::days(i64::from(j.days) - 1))
        .with_timezone(&j.zone)
        .date_naive();
    let day_of = |t: DateTime<Utc>| t.with_timezone(&j.zone).date_naive();
    let counted = |e: &&JournalEntry| e.outcome != "paused" && day_of(e.scheduled) >= first;
    if !j.entries.iter().filter(counted).any(|e| e.value.is_some()) {
        let _ = write!(out, "<p class=\"muted\">{}</p>", escape(w.no_answers));
    }

    // Mood: the average of the day's numbered check-in answers.
    let mut moods: BTreeMap<NaiveDate, Vec<f64>> = BTreeMap::new();
    for e in j.entries.iter().filter(counted) {
        if e.kind == Kind::Checkin
            && let Some(m) = e.value.as_deref().and_then(|v| v.parse::<f64>().ok())
        {
            moods.entry(day_of(e.scheduled)).or_default().push(m);
        }
    }
    let by_day: Vec<(NaiveDate, f64)> = moods
        .iter()
        .map(|(d, v)| (*d, v.iter().sum::<f64>() / v.len() as f64))
        .collect();
    let _ = write!(out, "<section><h2>{}</h2>", escape(w.mood));
    out.push_str(&mood_chart(&by_day, first, j.days, w));
    if !by_day.is_empty() {
        let all: Vec<f64> = moods.values().flatten().copied().collect();
        let avg = all.iter().sum::<f64>() / all.len() as f64;
        let _ = write!(
            out,
            "<p>{}</p>",
            escape(&fill(w.average, &[("n", &format!("{avg:.1}"))]))
        );
    }
    out.push_str("</section>");

    // Doses: one heat-map per medication.
    let mut meds: BTreeMap<&str, BTreeMap<NaiveDate, Day>> = BTreeMap::new();
    let mut med_counts: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for e in j.entries.iter().filter(counted) {
        if e.kind != Kind::Medication {
            continue;
        }
        let d = match e.value.as_deref() {
            Some("taken") => Day::Taken,
            Some("skipped") => Day::Skipped,
            _ => Day::NoAnswer,
        };
        let slot = meds
            .entry(&e.item)
            .or_default()
            .entry(day_of(e.scheduled))
            .or_insert(d);
        *slot = (*slot).min(d);
        let c = med_counts.entry(&e.item).or_default();
        c.1 += 1;
        if d == Day::Taken {
            c.0 += 1;
        }
    }
    let _ = write!(out, "<section><h2>{}</h2>", escape(w.doses));
    for (item, days) in &meds {
        let (taken, total) = med_counts[item];
        let _ = write!(
            out,
            "<h3>{}</h3>{}<p>{} {taken}/{total} ({:.0} %)</p>",
            escape(&(j.label)(item)),
            heat_map(&(j.label)(item), days, first, j.days, w),
            escape(w.taken),
            100.0 * f64::from(taken) / f64::from(total.max(1)),
        );
    }
    if meds.is_empty() {
        out.push_str(&heat_map("", &BTreeMap::new(), first, j.days.min(28), w));
    }
    let _ = write!(
        out,
        "<p class=\"legend\"><span><span class=\"swatch s-taken\"></span>{}</span><span><span class=\"swatch s-skipped\"></span>{}</span><span><span class=\"swatch s-none\"></span>{}</span><span><span class=\"swatch s-empty\"></span>{}</span></p></section>",
        escape(w.taken),
        escape(w.skipped),
        escape(w.st_unanswered),
        escape(w.no_dose)
    );

    // Check-ins answered, per check-in.
    let mut rates: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    for e in j.entries.iter().filter(counted) {
        if e.kind == Kind::Checkin {
            let r = rates.entry(&e.item).or_default();
            r.1 += 1;
            if e.value.is_some() {
                r.0 += 1;
            }
        }
    }
    let _ = write!(out, "<section><h2>{}</h2>", escape(w.answered_rate));
    for (item, (answered, total)) in &rates {
        let pct = 100.0 * f64::from(*answered) / f64::from((*total).max(1));
        let label = escape(&(j.label)(item));
        let _ = write!(
            out,
            "<p>{label}: {answered}/{total} ({pct:.0} %)</p>\
             <svg viewBox=\"0 0 300 16\" width=\"300\" height=\"16\" role=\"img\" aria-label=\"{label}: {pct:.0} %\">\
             <rect width=\"300\" height=\"16\" fill=\"#eeeeee\"/><rect width=\"{:.1}\" height=\"16\" fill=\"#0b4f8a\"/></svg>",
            3.0 * pct
        );
    }
    out.push_str("</section>");

    let _ = write!(
        out,
        "<section><h2>{}</h2><p>{}</p><h2>{}</h2><p>{}</p></section>",
        escape(w.alerts),
        j.alerts,
        escape(w.all_clears),
        j.all_clears
    );
    out
}

/// Mood per day, 1 to 5, as a line broken where a day has no answer.
fn mood_chart(by_day: &[(NaiveDate, f64)], first: NaiveDate, days: u32, w: &Words) -> String {
    let (width, height, left, top, bottom) = (600.0, 220.0, 30.0, 12.0, 32.0);
    let plot_h = height - top - bottom;
    let step = (width - left - 10.0) / f64::from(days.max(2) - 1);
    let x = |d: NaiveDate| left + step * (d - first).num_days() as f64;
    let y = |m: f64| top + plot_h * (5.0 - m) / 4.0;
    let summary = fill(w.last_days, &[("n", &days.to_string())]);
    let mut svg = format!(
        "<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{}: {}\">",
        escape(w.mood),
        escape(&summary)
    );
    for m in 1..=5 {
        let _ = write!(
            svg,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#cccccc\"/><text x=\"4\" y=\"{:.1}\" font-size=\"18\" fill=\"#444444\">{m}</text>",
            width - 10.0,
            y(f64::from(m)) + 4.0,
            y = y(f64::from(m)),
        );
    }
    let last = first + Duration::days(i64::from(days) - 1);
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{}\" font-size=\"18\" fill=\"#444444\">{first}</text><text x=\"{}\" y=\"{}\" font-size=\"18\" fill=\"#444444\" text-anchor=\"end\">{last}</text>",
        height - 6.0,
        width - 10.0,
        height - 6.0
    );
    let mut runs: Vec<Vec<(NaiveDate, f64)>> = Vec::new();
    for &(d, m) in by_day {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|(p, _)| (d - *p).num_days() == 1) => {
                run.push((d, m))
            }
            _ => runs.push(vec![(d, m)]),
        }
    }
    for run in &runs {
        let points: Vec<String> = run
            .iter()
            .map(|&(d, m)| format!("{:.1},{:.1}", x(d), y(m)))
            .collect();
        let _ = write!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#0b4f8a\" stroke-width=\"2\"/>",
            points.join(" ")
        );
    }
    for &(d, m) in by_day {
        let _ = write!(
            svg,
            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"4\" fill=\"#0b4f8a\"><title>{d}: {m:.1}</title></circle>",
            x(d),
            y(m)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A calendar heat-map: a column per week, a row per weekday (Monday on top).
fn heat_map(
    label: &str,
    days: &BTreeMap<NaiveDate, Day>,
    first: NaiveDate,
    count: u32,
    w: &Words,
) -> String {
    use chrono::Datelike;
    let (cell, gap) = (14.0, 3.0);
    let offset = first.weekday().num_days_from_monday();
    let weeks = (offset + count).div_ceil(7);
    let (width, height) = (
        f64::from(weeks) * (cell + gap) + gap,
        7.0 * (cell + gap) + gap,
    );
    let mut svg = format!(
        "<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{} {}\">",
        escape(w.doses),
        escape(label)
    );
    for i in 0..count {
        let d = first + Duration::days(i64::from(i));
        let slot = offset + i;
        let (col, row) = (f64::from(slot / 7), f64::from(slot % 7));
        let (fill_colour, state) = match days.get(&d) {
            Some(s) => (
                s.colour(),
                match s {
                    Day::Taken => w.taken,
                    Day::Skipped => w.skipped,
                    Day::NoAnswer => w.st_unanswered,
                },
            ),
            None => ("#eeeeee", w.no_dose),
        };
        let _ = write!(
            svg,
            "<rect x=\"{:.0}\" y=\"{:.0}\" width=\"{cell}\" height=\"{cell}\" rx=\"2\" fill=\"{fill_colour}\"><title>{d}: {}</title></rect>",
            gap + col * (cell + gap),
            gap + row * (cell + gap),
            escape(state)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(item: &str, kind: Kind, at: &str, value: Option<&str>) -> JournalEntry {
        JournalEntry {
            item: item.into(),
            kind,
            scheduled: at.parse().unwrap(),
            outcome: "dispatched".into(),
            value: value.map(str::to_string),
            late: false,
            via: None,
            answered: None,
            note: None,
            snoozes: 0,
        }
    }

    #[test]
    fn charts_show_what_the_journal_holds() {
        let entries = vec![
            entry("mood", Kind::Checkin, "2026-11-28T18:00:00Z", Some("2")),
            entry("mood", Kind::Checkin, "2026-11-29T18:00:00Z", Some("4")),
            entry("mood", Kind::Checkin, "2026-11-30T18:00:00Z", None),
            entry(
                "meds",
                Kind::Medication,
                "2026-11-29T20:00:00Z",
                Some("taken"),
            ),
            entry(
                "meds",
                Kind::Medication,
                "2026-11-30T20:00:00Z",
                Some("skipped"),
            ),
        ];
        let label = |i: &str| format!("<{i}>");
        let j = Journal {
            entries: &entries,
            alerts: 1,
            all_clears: 1,
            days: 30,
            now: "2026-11-30T21:00:00Z".parse().unwrap(),
            zone: chrono_tz::Europe::Berlin,
            label: &label,
        };
        let html = render(&j, super::super::words::words("en"));
        assert!(html.contains("<title>2026-11-28: 2.0</title>"), "{html}");
        assert!(html.contains("<polyline points="));
        assert!(html.contains("Average 3.0"));
        assert!(html.contains("<title>2026-11-30: Skipped</title>"));
        assert!(html.contains("&lt;meds&gt;") && !html.contains("<meds>"));
        assert!(html.contains("&lt;mood&gt;: 2/3 (67 %)"));
        assert!(!html.contains("No answers yet"));
        let empty = render(
            &Journal { entries: &[], ..j },
            super::super::words::words("en"),
        );
        assert!(empty.contains("No answers yet") && empty.contains("<svg"));
    }
}
