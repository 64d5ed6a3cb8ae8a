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
