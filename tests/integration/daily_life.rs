//! Living with it (issue 15), through the real binary: a weekly appointment is one item with
//! reminders for each session, `except` dates are skipped (an appointment's with all its
//! reminders), and `every` of a day or more must say where it starts.

use crate::builder::{Cmd, Project};
use crate::support::root;

#[test]
fn a_weekly_appointment_reminds_before_each_session_except_the_skipped_one() {
    // config/examples/weekly-therapy.toml: Tuesdays 17:00 New York, reminders 1d and 2h
    // before, a follow-up 3h after, and no session on 2026-12-29.
    let dir = root().join("config/examples");
    let args = [
        "preview",
        "weekly-therapy.toml",
        "--plugins",
        "no-plugins-here",
        "--from",
        "2026-12-20T00:00",
        "--days",
        "17",
    ];
    Cmd::new(&dir, &args)
        .status(0)
        .stderr("")
        .stdout(
            "Mon 2026-12-21 17:00 -05:00  appointment therapy (reminder, 1d before)  → self via mail\n\
             Tue 2026-12-22 15:00 -05:00  appointment therapy (reminder, 2h before)  → self via mail\n\
             Tue 2026-12-22 20:00 -05:00  appointment therapy (follow-up)  → self via mail\n\
             Mon 2027-01-04 17:00 -05:00  appointment therapy (reminder, 1d before)  → self via mail\n\
             Tue 2027-01-05 15:00 -05:00  appointment therapy (reminder, 2h before)  → self via mail\n\
             Tue 2027-01-05 20:00 -05:00  appointment therapy (follow-up)  → self via mail\n",
        )
        .run();
}

#[test]
fn except_dates_are_skipped() {
    let p = Project::new(
        "[person]\nname = \"Alex\"\ntimezone = \"Europe/Lisbon\"\nreach = [\"c\"]\n\n[channels.c]\nplugin = \"console\"\n\n\
         [[checkin]]\nid = \"morning\"\nat = \"09:00\"\nexcept = [\"2026-12-25\", 2027-01-01]\nmessage = \"Hi\"\n",
    );
    let out = p
        .kithd(&[
            "preview",
            "plan.toml",
            "--from",
            "2026-12-24T00:00",
            "--days",
            "10",
        ])
        .status(0)
        .run();
    let days: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l[4..14].to_string())
        .collect();
    assert_eq!(
        days,
        [
            "2026-12-24",
            "2026-12-26",
            "2026-12-27",
            "2026-12-28",
            "2026-12-29",
            "2026-12-30",
            "2026-12-31",
            "2027-01-02"
        ]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_holds_check_ins_while_medication_keeps_running() {
    use crate::daemon::{Daemon, bodies, cron_at, cron_in, plan, receiver, wait_for, webhook};
    use std::time::Duration;
    let server = receiver().await;
    let (at, cron) = cron_in(3);
    let dose = cron_at(at + chrono::Duration::seconds(2));
    let p = Project::new(&plan(
        &["hook"],
        &webhook("hook", &format!("{}/me", server.uri()), ""),
        &format!(
            "[[checkin]]\nid = \"c\"\ncron = \"{cron}\"\nmessage = \"How are you?\"\n\n\
             [[medication]]\nid = \"m\"\nname = \"x\"\ncron = \"{dose}\"\nmessage = \"Dose\"\n"
        ),
    ));
    let d = Daemon::start(p.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(10));
    p.kithd(&[
        "pause",
        "--until",
        "1h",
        "--kinds",
        "checkin",
        "--reason",
        "in hospital",
        "--state-dir",
        "state",
    ])
    .status(0)
    .stdout_has("paused every checkin until ")
    .run();
    p.kithd(&["status", "--state-dir", "state"])
        .status(0)
        .stdout_has("Paused: every checkin until ")
        .stdout_has(" (in hospital)\n")
        .run();
    // The dose, due two seconds after the check-in, shows the loop got past it.
    let got = wait_for(&server, "/me", 1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "{}", d.logs());
    assert_eq!(got[0]["item"], "m");
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0));
    let items: Vec<_> = bodies(&server, "/me")
        .await
        .iter()
        .map(|b| b["item"].clone())
        .collect();
    assert_eq!(items, ["m"], "the paused check-in was sent: {logs}");
    p.kithd(&["history", "--state-dir", "state"])
        .status(0)
        .stdout_has(" checkin     c                paused (not sent)\n")
        .run();
    p.kithd(&["report", "--state-dir", "state"])
        .status(0)
        .stdout_has("answered 0/0 (0 %)  missed 0  paused 1 (not counted)")
        .run();
    p.kithd(&["resume", "--state-dir", "state"])
        .status(0)
        .stdout("resumed: the pause is over\n")
        .run();
}

#[test]
fn away_windows_show_in_preview() {
    let p = Project::new(
        "[person]\nname = \"Alex\"\ntimezone = \"Europe/Lisbon\"\nreach = [\"c\"]\n\n[channels.c]\nplugin = \"console\"\n\n\
         [[checkin]]\nid = \"morning\"\nat = \"09:00\"\nmessage = \"Hi\"\n\n\
         [[medication]]\nid = \"meds\"\nname = \"x\"\nat = \"20:00\"\nmessage = \"Dose\"\n\n\
         [[away]]\nfrom = \"2026-12-24\"\nuntil = \"2026-12-25\"\nkinds = [\"checkin\"]\nnote = \"with family\"\n",
    );
    p.kithd(&["preview", "plan.toml", "--from", "2026-12-23T12:00", "--days", "3"])
        .status(0)
        .stdout(
            "Wed 2026-12-23 20:00 +00:00  medication  meds  → self via c\n\
             Thu 2026-12-24 09:00 +00:00  checkin     morning  → self via c  [paused: with family]\n\
             Thu 2026-12-24 20:00 +00:00  medication  meds  → self via c\n\
             Fri 2026-12-25 09:00 +00:00  checkin     morning  → self via c  [paused: with family]\n\
             Fri 2026-12-25 20:00 +00:00  medication  meds  → self via c\n\
             Sat 2026-12-26 09:00 +00:00  checkin     morning  → self via c\n",
        )
        .run();
}

#[test]
fn a_contact_keeps_the_persons_nights_unless_they_say_otherwise() {
    // The person sleeps 22:00–08:00. Sam says nothing about nights, Kim says "none".
    let p = Project::new(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nquiet_hours = \"22:00-08:00\"\nreach = [\"c\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nreach = [\"c\"]\nconsent = 2026-11-01\n\n\
         [contacts.kim]\nname = \"Kim\"\nquiet_hours = \"none\"\nreach = [\"c\"]\nconsent = 2026-11-01\n\n\
         [channels.c]\nplugin = \"console\"\n\n\
         [[checkin]]\nid = \"evening\"\nat = \"21:00\"\nexpect_reply_within = \"2h\"\nescalate = [\"sam\", \"kim\"]\nmessage = \"Hi\"\n",
    );
    p.kithd(&["preview", "plan.toml", "--from", "2026-12-01T12:00", "--count", "1"])
        .status(0)
        .stdout(
            "Tue 2026-12-01 21:00 +00:00  checkin     evening  → self via c\n    \
             if no answer: Tue 2026-12-01 23:00 UTC  alert to Kim via c\n    \
             if no answer: Wed 2026-12-02 08:00 UTC  alert to Sam via c  [quiet hours: moved from 23:00]\n    \
             after an alert, a late answer sends an all-clear to Sam via c\n    \
             after an alert, a late answer sends an all-clear to Kim via c\n",
        )
        .run();
}
