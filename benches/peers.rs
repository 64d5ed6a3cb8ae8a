//! Side by side with the scheduler the README explains kithd does without:
//! tokio-cron-scheduler, in one run. `cargo bench --bench peers` (or `-- load|dst`).
//!
//! - load: 100,000 jobs due within one minute (`BENCH_JOBS` changes it), the workload of
//!   `cargo bench --bench daemon -- latency`: each job's callback records how late it ran
//!   (callback start − due instant), and whether it ran twice or not at all. The callback
//!   sends nothing, so these figures are a lower bound for a sender built on it; kithd's
//!   figures for the same workload are arrivals at an HTTP sink after plugin and ledger.
//! - dst: a daily 08:00 Europe/Berlin job created the day before the spring change, run
//!   under libfaketime at 2027-03-27 07:59:58 local: its next tick after the 27th's run,
//!   beside the instant `kithd preview` gives for a daily 08:00 item in the same zone.
//!   Needs libfaketime (`apt-get install faketime`; `scripts/test.sh` installs it).

#[path = "common.rs"]
mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use common::{cron_at, percentile};
use tokio_cron_scheduler::{Job, JobScheduler};

const FAKETIME_LIB: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
/// 08:00 Europe/Berlin on the day of the 2027 spring change is 06:00 UTC (CEST, +02:00).
const DST_START: &str = "@2027-03-27 06:59:58";

fn bench_load(n: usize) {
    println!("\n## tokio-cron-scheduler: {n} jobs due within one minute");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let sched = JobScheduler::new().await.unwrap();
        let runs: Arc<Mutex<Vec<(usize, f64)>>> = Arc::new(Mutex::new(Vec::with_capacity(n)));
        let lead = 10 + (n / 10_000) as i64;
        let start = (Utc::now() + chrono::Duration::seconds(lead))
            .with_nanosecond(0)
            .unwrap();
        for i in 0..n {
            let at = start + chrono::Duration::seconds((i % 60) as i64);
            let runs = runs.clone();
            let job = Job::new_async(cron_at(at).as_str(), move |_, _| {
                let runs = runs.clone();
                Box::pin(async move {
                    let late = (Utc::now() - at).num_microseconds().unwrap_or(0) as f64 / 1e3;
                    runs.lock().unwrap().push((i, late));
                })
            })
            .unwrap();
            sched.add(job).await.unwrap();
        }
        let added = Utc::now();
        assert!(
            added < start,
            "adding the jobs took past the first due instant; raise the lead"
        );
        sched.start().await.unwrap();
        let end = start + chrono::Duration::seconds(60 + 20);
        tokio::time::sleep((end - Utc::now()).to_std().unwrap_or_default()).await;
        let runs = std::mem::take(&mut *runs.lock().unwrap());
        let mut per_job: HashMap<usize, u32> = HashMap::with_capacity(n);
        for (i, _) in &runs {
            *per_job.entry(*i).or_default() += 1;
        }
        let mut late: Vec<f64> = runs.iter().map(|r| r.1).collect();
        late.sort_by(f64::total_cmp);
        println!(
            "callback lateness p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {} runs; lost {} ({:.1} %), doubled {} ({:.1} %)",
            percentile(&late, 0.5),
            percentile(&late, 0.9),
            percentile(&late, 0.99),
            late.last().copied().unwrap_or(f64::NAN),
            runs.len(),
            n - per_job.len(),
            (n - per_job.len()) as f64 / n as f64 * 100.0,
            per_job.values().filter(|c| **c > 1).count(),
            per_job.values().filter(|c| **c > 1).count() as f64 / n as f64 * 100.0,
        );
    });
}

/// Runs under libfaketime: one daily 08:00 Europe/Berlin job; prints the next tick after
/// its first run as RFC 3339.
fn dst_child() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut sched = JobScheduler::new().await.unwrap();
        let (ran, mut wait) = tokio::sync::mpsc::unbounded_channel();
        let job = Job::new_async_tz("0 0 8 * * *", chrono_tz::Europe::Berlin, move |_, _| {
            let ran = ran.clone();
            Box::pin(async move {
                let _ = ran.send(Utc::now());
            })
        })
        .unwrap();
        let id = sched.add(job).await.unwrap();
        sched.start().await.unwrap();
        let first = tokio::time::timeout(Duration::from_secs(10), wait.recv())
            .await
            .ok()
            .flatten();
        // The scheduler sets the next tick right after the run.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let next = sched.next_tick_for_job(id).await.ok().flatten();
        println!(
            "{} {}",
            first.map(|t| t.to_rfc3339()).unwrap_or_default(),
            next.map(|t| t.to_rfc3339()).unwrap_or_default()
        );
    });
}

fn bench_dst() {
    println!("\n## a daily 08:00 Europe/Berlin job across the spring change (2027-03-28)");
    if !std::path::Path::new(FAKETIME_LIB).exists() {
        println!("not run: libfaketime is not installed ({FAKETIME_LIB})");
        return;
    }
    let me = std::env::current_exe().unwrap();
    let out = Command::new(me)
        .env("BENCH_DST_CHILD", "1")
        .env("LD_PRELOAD", FAKETIME_LIB)
        .env("FAKETIME", DST_START)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut f = text.split_whitespace();
    let (first, next) = (f.next().unwrap_or("?"), f.next().unwrap_or("?"));
    // kithd: the same schedule as a plan item, through `kithd preview`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("plan.toml"),
        "[person]\nname = \"Alex\"\ntimezone = \"Europe/Berlin\"\nreach = [\"console\"]\n\n[channels.console]\nplugin = \"console\"\n\n[[checkin]]\nid = \"morning\"\ncron = \"0 8 * * *\"\nmessage = \"Good morning\"\n",
    )
    .unwrap();
    let preview = Command::new(env!("CARGO_BIN_EXE_kithd"))
        .args([
            "preview",
            "plan.toml",
            "--from",
            "2027-03-27T07:00:01Z",
            "--count",
            "1",
            "--format",
            "json",
            "--plugins",
            concat!(env!("CARGO_MANIFEST_DIR"), "/plugins"),
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    // One JSON object per line; `at` is local time with its offset.
    let first_line = String::from_utf8_lossy(&preview.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string();
    let json: serde_json::Value = serde_json::from_str(&first_line).unwrap_or_default();
    let kithd_next = json["at"]
        .as_str()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&Utc).to_rfc3339())
        .unwrap_or_else(|| "?".into());
    println!(
        "tokio-cron-scheduler: ran {first}; next tick {next} (the right instant is 2027-03-28T06:00:00+00:00, 08:00 CEST)"
    );
    println!("kithd preview: next firing {kithd_next}");
}

fn main() {
    if std::env::var_os("BENCH_DST_CHILD").is_some() {
        dst_child();
        return;
    }
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if want("dst") {
        bench_dst();
    }
    if want("load") {
        let n = std::env::var("BENCH_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000);
        bench_load(n);
    }
}
