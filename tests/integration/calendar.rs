//! `kithd calendar` through the real binary, read back by a real iCalendar parser
//! (Python's icalendar and recurring_ical_events): its occurrences are `preview`'s firings
//! across the Berlin spring change (02:30 on the gap day is kithd's 03:00, not RFC 5545's
//! 03:30), `except` dates are left out, appointment reminders are alarms, titles are
//! generic unless `--details`, and UIDs are stable and name nothing.

use std::process::Command;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::builder::Project;
use crate::support::{root, text};

const PLAN: &str = "[person]\nname = \"Alex\"\ntimezone = \"Europe/Berlin\"\nreach = [\"c\"]\n\n\
[contacts.sam]\nname = \"Sam\"\n\n[channels.c]\nplugin = \"console\"\n\n\
[[checkin]]\nid = \"night\"\nat = \"02:30\"\nmessage = \"Hi\"\n\n\
[[medication]]\nid = \"lithium-dose\"\nname = \"lithium\"\nat = [\"08:00\", \"20:00\"]\ndays = \"weekdays\"\nexcept = [\"2027-03-29\"]\nmessage = \"Dose\"\n\n\
[[checkin]]\nid = \"thrice\"\nevery = \"8h\"\nstart = \"2027-03-20T07:00\"\nmessage = \"x\"\n\n\
[[followup]]\nid = \"call\"\nwith = \"sam\"\ncron = \"0 18 * * sun\"\nmessage = \"Call {with}\"\n\n\
[[appointment]]\nid = \"therapy\"\ntitle = \"therapy\"\nat = \"17:00\"\ndays = [\"tue\"]\nremind_before = [\"1d\", \"2h\"]\nmessage = \"m\"\n";

fn calendar(p: &Project, extra: &[&str]) -> String {
    let mut args = vec![
        "calendar",
        "plan.toml",
        "--plugins",
        "plugins",
        "--from",
        "2027-03-20T00:00",
        "--days",
        "20",
    ];
    args.extend_from_slice(extra);
    let out = p.kithd(&args).status(0).stderr("").run();
    text(&out.stdout)
}

#[test]
fn the_calendar_is_what_kithd_will_do() {
    let p = Project::new(PLAN);
    let ics = calendar(&p, &[]);
    p.file("plan.ics", &ics);
    // Occurrences as a real parser expands them, to just past the window's end.
    let out = Command::new("/usr/bin/python3")
        .arg(root().join("tests/peers/ics_occurrences.py"))
        .arg(p.path().join("plan.ics"))
        .args(["2027-03-20T00:00:00+01:00", "2027-04-09T00:00:01+02:00"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let parsed = text(&out.stdout);
    let mut lines: Vec<&str> = parsed.lines().collect();
    assert_eq!(
        lines.pop(),
        Some("alarms 2"),
        "the appointment's two reminders"
    );
    let sessions: Vec<&str> = lines
        .iter()
        .filter(|l| l.ends_with(" Appointment"))
        .copied()
        .collect();
    assert_eq!(
        sessions,
        [
            "2027-03-23T16:00:00Z Appointment",
            "2027-03-30T15:00:00Z Appointment",
            "2027-04-06T15:00:00Z Appointment"
        ]
    );
    let from_calendar: Vec<String> = lines
        .iter()
        .filter(|l| !l.ends_with(" Appointment"))
        .map(|l| l.to_string())
        .collect();
    // What preview says kithd will fire.
    let out = p
        .kithd(&[
            "preview",
            "plan.toml",
            "--from",
            "2027-03-20T00:00",
            "--days",
            "20",
            "--format",
            "json",
        ])
        .status(0)
        .run();
    let title = |kind: &str| match kind {
        "checkin" => "Check-in",
        "medication" => "Medication",
        _ => "Follow-up",
    };
    let mut from_preview: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|j| j["purpose"] == "main" && j["kind"] != "appointment")
        .map(|j| {
            let at: DateTime<Utc> = j["at"].as_str().unwrap().parse().unwrap();
            format!(
                "{} {}",
                at.format("%Y-%m-%dT%H:%M:%SZ"),
                title(j["kind"].as_str().unwrap())
            )
        })
        .collect();
    from_preview.sort();
    assert_eq!(from_calendar, from_preview);
    // The gap day: kithd's 03:00 CEST (01:00Z), where RFC 5545 alone would say 03:30.
    assert!(from_calendar.contains(&"2027-03-28T01:00:00Z Check-in".to_string()));
    // The except date: no dose on Monday 29 March.
    assert!(
        !from_calendar
            .iter()
            .any(|l| l.starts_with("2027-03-29") && l.ends_with("Medication"))
    );
    assert_eq!(from_calendar.len(), 109, "{from_calendar:#?}");
}

#[test]
fn titles_say_nothing_unless_asked_and_uids_are_stable() {
    let p = Project::new(PLAN);
    let plain = calendar(&p, &[]);
    assert!(
        !plain.contains("lithium") && !plain.contains("therapy"),
        "{plain}"
    );
    assert!(plain.contains("SUMMARY:Medication\r\n"));
    let uids = |ics: &str| -> Vec<String> {
        ics.lines()
            .filter(|l| l.starts_with("UID:"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        uids(&plain),
        uids(&calendar(&p, &[])),
        "UIDs are stable across runs"
    );
    assert!(plain.contains("BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"));
    assert!(plain.contains("TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"));
    let detailed = calendar(&p, &["--details"]);
    assert!(
        detailed.contains("SUMMARY:Medication: lithium\r\n"),
        "{detailed}"
    );
    assert!(detailed.contains("SUMMARY:Appointment: therapy\r\n"));
}
