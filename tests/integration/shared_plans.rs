//! A directory of 100 plans run by three instances on one PostgreSQL ledger, with the real
//! binary: 3,100 reminders due within 20 seconds, one instance killed mid-storm, another
//! stalled past its lease, the database restarted. Every reminder arrives; a reminder
//! arrives twice only when it is marked uncertain; half the plans answer their check-in
//! (`kithd ack --plan`) and their contact is never alerted, while the other half's is.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::DurationRound;

use crate::builder::Project;
use crate::daemon::{Daemon, cron_at, signal};
use crate::shared_ledger::{Cluster, arrivals, wait_arrivals};
use crate::support::text;

const PLANS: usize = 100;
const REMINDERS: usize = 30;

fn plan(id: &str, sink: &str, start: chrono::DateTime<chrono::Utc>, k: usize) -> String {
    let reminders: String = (0..REMINDERS)
        .map(|j| {
            let at = start + chrono::Duration::seconds(((k * REMINDERS + j) % 20) as i64);
            format!(
                "[[checkin]]\nid = \"c{j:02}\"\ncron = \"{}\"\nmessage = \"Hi\"\n\n",
                cron_at(at)
            )
        })
        .collect();
    format!(
        "[person]\nid = \"{id}\"\nname = \"P\"\ntimezone = \"UTC\"\nreach = [\"me\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nreach = [\"sam\"]\nconsent = 2026-11-01\n\n\
         [channels.me]\nplugin = \"webhook\"\nurl = \"{sink}/{id}\"\ntimeout = \"5s\"\nconcurrency = 2\n\n\
         [channels.sam]\nplugin = \"webhook\"\nurl = \"{sink}/sam-{id}\"\ntimeout = \"5s\"\n\n\
         [[checkin]]\nid = \"mood\"\ncron = \"{}\"\nexpect_reply_within = \"40s\"\nescalate = [\"sam\"]\nmessage = \"How are you?\"\n\n{reminders}",
        cron_at(start)
    )
}

/// Distinct deliveries that arrived at each path.
async fn by_path(
    sink: &wiremock::MockServer,
) -> HashMap<String, std::collections::HashSet<String>> {
    let mut seen: HashMap<String, std::collections::HashSet<String>> = HashMap::new();
    for r in sink.received_requests().await.unwrap() {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        seen.entry(r.url.path().trim_start_matches('/').to_string())
            .or_default()
            .insert(body["delivery_id"].as_str().unwrap().to_string());
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_run_a_directory_of_plans_through_chaos() {
    use wiremock::{Mock, ResponseTemplate, matchers::method};
    let cluster = Cluster::start("plans");
    let url = cluster.database("kithd");
    let sink = wiremock::MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(100)))
        .mount(&sink)
        .await;
    let start = (chrono::Utc::now() + chrono::Duration::seconds(15))
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap();
    let p = Project::empty();
    let ids: Vec<String> = (0..PLANS).map(|k| format!("p{k:03}")).collect();
    for (k, id) in ids.iter().enumerate() {
        p.file(
            &format!("plans/{id}.toml"),
            &plan(id, &sink.uri(), start, k),
        );
    }
    let env = [
        ("KITHD_LEDGER", url.as_str()),
        ("KITHD_TEST_LEASE_SECS", "6"),
    ];
    let instances: Vec<Daemon> = (0..3)
        .map(|_| Daemon::start_plan(p.path(), "plans", &env))
        .collect();
    for d in &instances {
        d.wait_log("Ready.", Duration::from_secs(60));
    }
    let mut instances = instances.into_iter();
    let (mut killed, stalled, steady) = (
        instances.next(),
        instances.next().unwrap(),
        instances.next().unwrap(),
    );
    let total = PLANS * (REMINDERS + 1);
    // Half the plans answer their check-in as soon as it has arrived.
    let mut answered = Vec::new();
    let t = Instant::now();
    while answered.len() < PLANS / 2 {
        let seen = by_path(&sink).await;
        for id in ids.iter().step_by(2) {
            let arrived = seen.get(id.as_str()).is_some_and(|d| !d.is_empty());
            if arrived && !answered.contains(id) {
                // The check-in is due with the first reminders: once any of the plan's
                // messages arrived, it has been recorded.
                let out = p
                    .kithd(&[
                        "ack",
                        "mood",
                        "--value",
                        "4",
                        "--plan",
                        id,
                        "--state-dir",
                        "state",
                        "--ledger",
                        &url,
                    ])
                    .run();
                assert!(out.status.success(), "{}", text(&out.stderr));
                answered.push(id.clone());
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "answered {}",
            answered.len()
        );
        // Mid-storm, one instance is killed.
        if answered.len() >= 10
            && let Some(k) = killed.take()
        {
            k.kill9();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_arrivals(&sink, total / 2, Duration::from_secs(60)).await;
    signal(stalled.pid(), "STOP");
    tokio::time::sleep(Duration::from_secs(8)).await;
    signal(stalled.pid(), "CONT");
    wait_arrivals(&sink, total * 3 / 4, Duration::from_secs(60)).await;
    cluster.restart();
    // Every reminder, and an alert for each plan that didn't answer (40 s after its
    // check-in).
    wait_arrivals(&sink, total + PLANS / 2, Duration::from_secs(120)).await;
    let history = |id: &str| p.plan_json("history", id, &["--ledger", &url]);
    let seen = by_path(&sink).await;
    let twice: Vec<String> = arrivals(&sink)
        .await
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(id, _)| id)
        .collect();
    let mut uncertain = std::collections::HashSet::new();
    for (k, id) in ids.iter().enumerate() {
        assert_eq!(
            seen.get(id.as_str()).map(|d| d.len()),
            Some(REMINDERS + 1),
            "every reminder of {id} arrived"
        );
        let alerts = seen.get(&format!("sam-{id}")).map_or(0, |d| d.len());
        if k % 2 == 0 {
            assert_eq!(alerts, 0, "{id} answered: nobody is alerted");
        } else {
            assert_eq!(alerts, 1, "{id} did not answer: Sam is alerted once");
        }
        for d in history(id) {
            if d["uncertain"] == true {
                uncertain.insert(d["id"].as_str().unwrap().to_string());
            }
        }
    }
    for id in &twice {
        assert!(
            uncertain.contains(id),
            "{id} arrived twice but is not marked uncertain"
        );
    }
    let (code, _, logs) = stalled.stop();
    assert_eq!(code, Some(0), "{logs}");
    let (code, _, logs) = steady.stop();
    assert_eq!(code, Some(0), "{logs}");
    println!(
        "{PLANS} plans, {} deliveries, {} arrived twice, {} marked uncertain",
        arrivals(&sink).await.len(),
        twice.len(),
        uncertain.len()
    );
}

/// A directory's one-machine ledgers (one per plan) move to PostgreSQL whole, each plan's
/// rows keyed by its id: history and reports read the same before and after.
#[tokio::test(flavor = "multi_thread")]
async fn a_directory_of_plans_moves_to_postgresql_whole() {
    let cluster = Cluster::start("plans-copy");
    let url = cluster.database("moved");
    let sink = crate::daemon::receiver().await;
    let (_, cron) = crate::daemon::cron_in(2);
    let p = Project::empty();
    for id in ["lee", "robin"] {
        p.file(
            &format!("plans/{id}.toml"),
            &format!(
                "[person]\nid = \"{id}\"\nname = \"P\"\ntimezone = \"UTC\"\nreach = [\"me\"]\n\n\
                 [channels.me]\nplugin = \"webhook\"\nurl = \"{}/{id}\"\n\n\
                 [[checkin]]\nid = \"mood\"\ncron = \"{cron}\"\nexpect_reply_within = \"1h\"\nmessage = \"How are you?\"\n",
                sink.uri()
            ),
        );
    }
    let d = Daemon::start_plan(p.path(), "plans", &[]);
    crate::daemon::wait_for(&sink, "/lee", 1, Duration::from_secs(15)).await;
    crate::daemon::wait_for(&sink, "/robin", 1, Duration::from_secs(15)).await;
    p.kithd(&[
        "ack",
        "mood",
        "--value",
        "2",
        "--plan",
        "robin",
        "--state-dir",
        "state",
    ])
    .run();
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    let read = |args: &[&str]| text(&p.kithd(args).run().stdout);
    let views = |ledger: &[&str]| -> Vec<String> {
        ["lee", "robin"]
            .iter()
            .flat_map(|id| {
                let base = ["--state-dir", "state", "--plan", id];
                ["history", "report"].map(|cmd| {
                    let args = [&[cmd, "--format", "json"][..], &base, ledger].concat();
                    read(&args)
                })
            })
            .collect()
    };
    let before = views(&[]);
    p.kithd(&["ledger", "copy", "--from", "sqlite:state", "--to", &url])
        .stdout_has("copied 2 firings, 2 deliveries, 1 answers")
        .stdout_has("(2 plans)")
        .run();
    let after = views(&["--ledger", &url]);
    assert_eq!(before, after);
    assert!(before[3].contains("\"answered\":1"), "{}", before[3]);
}
