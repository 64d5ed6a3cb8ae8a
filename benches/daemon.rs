//! The daemon benchmark: every figure comes from the real `kithd run` as users run it (a
//! generated plan, the bundled `webhook` plugin, the SQLite ledger in a fresh state
//! directory) delivering to a loopback HTTP sink in this process that records each arrival.
//! Not a timed test. Run all with `cargo bench --bench daemon`, or one with
//! `cargo bench --bench daemon -- latency|burst|million`.
//!
//! - latency: 1k, 10k and 100k reminders due within one minute (spread evenly over its 60
//!   seconds): fire latency (arrival at the sink − the instant the reminder was due) p50, p90,
//!   p99, max; lost, doubled; READY time; the daemon's CPU, RSS and peak RSS.
//!   `BENCH_SIZES=1000,10000` picks the sizes; `LATENCY_CONCURRENCY=64` sets the channel's
//!   `concurrency` (kithd's default, 16, otherwise). Each size also prints its floor: one
//!   second's batch sent at once by a plain reqwest loop to the same sink. `BENCH_TRACE=1`
//!   prints the slowest arrival of every second, and the arrivals of two seconds.
//! - burst: 20k due at the same second. Durable deliveries/s: counted until the ledger has
//!   committed the `sent` mark of all of them; then kill -9 and a restart must re-send none.
//!   Beside it, a plain reqwest loop on the same sink with the same concurrency, and Apprise
//!   in-process when `BENCH_APPRISE_PYTHON` names a Python that has it
//!   (`scripts/bench-apprise.sh` sets that up). `BURST_CONCURRENCY` (default 64) sets the
//!   channel's `concurrency` and the plain loop's.
//! - million: a 1,000,000-item plan: `check` time and peak RSS; first start to READY; RSS
//!   settled and peak; a restart with the plan unchanged to READY.

#[path = "common.rs"]
mod common;
#[path = "daemon_parts.rs"]
mod parts;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use common::{cron_at, percentile};
use parts::*;

fn bench_latency(n: usize) {
    let rt = runtime();
    let sink = rt.block_on(Sink::start());
    let dir = tempfile::tempdir().unwrap();
    // Far enough ahead for the daemon to load and be READY before the first is due.
    let lead = 5 + (n / 20_000) as i64;
    let start = (Utc::now() + chrono::Duration::seconds(lead))
        .with_nanosecond(0)
        .unwrap();
    // The channel's `concurrency` (kithd's default, 16, unless LATENCY_CONCURRENCY says).
    let concurrency = std::env::var("LATENCY_CONCURRENCY")
        .ok()
        .and_then(|c| c.parse().ok());
    if let Some(c) = concurrency {
        println!("(channel `concurrency = {c}`)");
    }
    let text = plan(sink.port, concurrency, n, |i| {
        cron_at(start + chrono::Duration::seconds((i % 60) as i64))
    });
    write_plan(dir.path(), &text);
    let load = load_average();
    let daemon = Daemon::start(dir.path(), "state");
    assert!(
        Utc::now() < start,
        "READY came after the first reminder was due; raise the lead"
    );
    let ready_ms = daemon.ready_ms;
    let (_, hwm_ready) = rss_of(daemon.pid());
    let cpu0 = cpu_of(daemon.pid());
    let end = start + chrono::Duration::seconds(60);
    let deadline = Instant::now() + (end - Utc::now()).to_std().unwrap() + Duration::from_secs(60);
    wait_until(deadline, || sink.count() >= n);
    let cpu = cpu_of(daemon.pid()) - cpu0;
    let (rss, hwm) = rss_of(daemon.pid());
    // Anything doubled would come within the lease; the ledger must have all of them sent.
    std::thread::sleep(Duration::from_millis(500));
    let arrivals = sink.take();
    drop(daemon);
    // The floor: one second's batch from a plain reqwest loop (no ledger, no plugin), same
    // sink and concurrency, all due at the instant the loop starts.
    let batch = n / 60;
    let c = concurrency.unwrap_or(16) as usize;
    plain_requests(&rt, sink.port, batch, c, true);
    let mut floor: Vec<f64> = sink.take().iter().map(|a| a.1).collect();
    floor.sort_by(f64::total_cmp);
    let floor_text = format!(
        "a plain reqwest loop sending {batch} due at once (concurrency {c}): p50 {:.1} ms, p99 {:.1} ms",
        percentile(&floor, 0.5),
        percentile(&floor, 0.99)
    );
    if std::env::var("BENCH_TRACE").is_ok() {
        let per = n / 60;
        for sec in [10usize, 30] {
            let w: Vec<String> = arrivals[sec * per..(sec + 1) * per]
                .iter()
                .step_by(8)
                .map(|a| format!("{:.1}", a.1))
                .collect();
            println!("second {sec}: {}", w.join(" "));
        }
        let maxes: Vec<String> = arrivals
            .chunks(per)
            .map(|c| format!("{:.0}", c.iter().map(|a| a.1).fold(0.0, f64::max)))
            .collect();
        println!("max per second: {}", maxes.join(" "));
    }
    report_latency(n, &arrivals);
    println!(
        "  READY after {ready_ms:.0} ms; CPU {:.1} s over the minute ({:.0} % of one core); RSS {rss:.0} MB, peak {hwm:.0} MB (peak at READY {hwm_ready:.0} MB); load average before {load}",
        cpu,
        cpu / 60.0 * 100.0
    );
    println!("  the floor: {floor_text}");
}

fn report_latency(n: usize, arrivals: &[Arrival]) {
    let mut per_id: HashMap<&str, u32> = HashMap::with_capacity(n);
    for (id, _) in arrivals {
        *per_id.entry(id.as_str()).or_default() += 1;
    }
    let mut lat: Vec<f64> = arrivals.iter().map(|a| a.1).collect();
    lat.sort_by(f64::total_cmp);
    println!(
        "{n} due within one minute: fire latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms; lost {}, doubled {}",
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(f64::NAN),
        n.saturating_sub(per_id.len()),
        per_id.values().filter(|c| **c > 1).count()
    );
}

/// Sent marks committed in the daemon's ledger (read-only, beside the running daemon).
fn committed_sent(state: &Path) -> usize {
    let Ok(conn) = rusqlite::Connection::open_with_flags(
        state.join("kithd.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    ) else {
        return 0;
    };
    conn.query_row(
        "SELECT count(*) FROM deliveries WHERE state = 'sent'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .map(|c| c as usize)
    .unwrap_or(0)
}

/// `n` requests to the sink from a plain reqwest loop with `concurrency` in flight: the
/// floor for any sender through HTTP on this machine.
fn plain_loop(rt: &tokio::runtime::Runtime, port: u16, n: usize, concurrency: usize) -> f64 {
    plain_requests(rt, port, n, concurrency, false)
}

/// As `plain_loop`, every request saying it was due at the start: the sink's latencies are
/// then the floor for a batch of `n` reminders due at the same instant.
fn plain_requests(
    rt: &tokio::runtime::Runtime,
    port: u16,
    n: usize,
    concurrency: usize,
    due_at_start: bool,
) -> f64 {
    let due = due_at_start.then(|| Utc::now().to_rfc3339());
    rt.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/plain");
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let client = client.clone();
            let url = url.clone();
            let due = due.clone();
            tasks.spawn(async move {
                let scheduled = due.unwrap_or_else(|| Utc::now().to_rfc3339());
                let body = serde_json::json!({"version": 1, "delivery_id": format!("plain{i}"), "item": "x", "kind": "checkin", "scheduled": scheduled, "text": "How are you doing today?", "title": "Check-in", "recipient": "self", "urgent": false});
                let _ = client.post(&url).header("Idempotency-Key", i.to_string()).json(&body).send().await;
                drop(permit);
            });
        }
        while tasks.join_next().await.is_some() {}
        n as f64 / t.elapsed().as_secs_f64()
    })
}

/// Apprise sending `n` notifications in-process to the sink, one after another (as its
/// Python API does), if `BENCH_APPRISE_PYTHON` names a Python that has it.
fn apprise(port: u16, n: usize) -> Option<f64> {
    let python = std::env::var("BENCH_APPRISE_PYTHON").ok()?;
    let script = format!(
        "import time, apprise\na = apprise.Apprise()\na.add('json://127.0.0.1:{port}/apprise')\nt = time.monotonic()\nok = sum(1 for i in range({n}) if a.notify(title='Check-in', body='How are you doing today?'))\nprint(ok / (time.monotonic() - t))\n"
    );
    let out = Command::new(python).arg("-c").arg(script).output().ok()?;
    if !out.status.success() {
        eprintln!("apprise failed: {}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn bench_burst(n: usize, concurrency: u32) {
    println!("\n## burst: {n} due at the same second, `concurrency = {concurrency}`");
    let rt = runtime();
    let sink = rt.block_on(Sink::start());
    let dir = tempfile::tempdir().unwrap();
    let at = (Utc::now() + chrono::Duration::seconds(6))
        .with_nanosecond(0)
        .unwrap();
    write_plan(
        dir.path(),
        &plan(sink.port, Some(concurrency), n, |_| cron_at(at)),
    );
    let load = load_average();
    let daemon = Daemon::start(dir.path(), "state");
    let state = dir.path().join("state");
    let deadline = Instant::now() + Duration::from_secs(300);
    wait_until(deadline, || Utc::now() >= at);
    let due = Instant::now() - (Utc::now() - at).to_std().unwrap_or_default();
    let cpu0 = cpu_of(daemon.pid());
    let mut arrived = None;
    let all = wait_until(deadline, || {
        if arrived.is_none() && sink.count() >= n {
            arrived = Some(due.elapsed());
        }
        arrived.is_some() && committed_sent(&state) >= n
    });
    let durable = due.elapsed();
    let cpu = cpu_of(daemon.pid()) - cpu0;
    let (rss, hwm) = rss_of(daemon.pid());
    let first_run = sink.take();
    // kill -9 now, then restart: every committed delivery must stay sent.
    daemon.kill9();
    let again = Daemon::start(dir.path(), "state");
    std::thread::sleep(Duration::from_secs(3));
    let resent = sink.take().len();
    drop(again);
    report_latency(n, &first_run);
    let arrived = arrived.unwrap_or(durable);
    println!(
        "  {}: all arrived {:.0} ms after due ({:.0}/s); all `sent` marks committed after {:.0} ms: {:.0} durable deliveries/s; re-sent after kill -9 and restart: {resent}",
        if all { "complete" } else { "INCOMPLETE" },
        arrived.as_secs_f64() * 1e3,
        n as f64 / arrived.as_secs_f64(),
        durable.as_secs_f64() * 1e3,
        n as f64 / durable.as_secs_f64(),
    );
    let durable_rate = n as f64 / durable.as_secs_f64();
    println!(
        "  daemon CPU {cpu:.2} s; RSS {rss:.0} MB, peak {hwm:.0} MB; load average before {load}"
    );
    let plain = plain_loop(&rt, sink.port, n, concurrency as usize);
    println!(
        "  plain reqwest loop, same sink and concurrency: {plain:.0}/s; kithd (durable) / plain = {:.2}",
        durable_rate / plain
    );
    match apprise(sink.port, n.min(2000)) {
        Some(a) => println!(
            "  Apprise in-process (json://, same sink): {a:.0}/s; kithd (durable) / Apprise = {:.1}",
            durable_rate / a
        ),
        None => println!("  Apprise: not run (scripts/bench-apprise.sh runs it)"),
    }
}

/// Peak RSS (MB) and wall time of a command run to its end.
fn measured(cmd: &mut Command) -> (bool, f64, f64) {
    let t = Instant::now();
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        peak = peak.max(rss_of(pid).1);
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.success(), t.elapsed().as_secs_f64(), peak)
}

fn bench_million(n: usize) {
    println!("\n## million: a {n}-item plan");
    let dir = tempfile::tempdir().unwrap();
    // Daily check-ins spread over the day, none due during the run.
    let soon = Utc::now() + chrono::Duration::hours(2);
    let text = plan(9, None, n, |i| {
        let at = soon + chrono::Duration::seconds((i % 3600) as i64);
        format!("{} {} {} * * *", at.second(), at.minute(), at.hour())
    });
    write_plan(dir.path(), &text);
    drop(text);
    let load = load_average();
    let (ok, secs, peak) = measured(
        Command::new(KITHD)
            .args(["check", "plan.toml", "--plugins", &plugins_dir()])
            .current_dir(dir.path()),
    );
    println!(
        "check: {} in {secs:.1} s, peak RSS {peak:.0} MB (sampled every 20 ms); load average before {load}",
        if ok { "ok" } else { "FAILED" }
    );
    let daemon = Daemon::start(dir.path(), "state");
    let (_, hwm_ready) = rss_of(daemon.pid());
    std::thread::sleep(Duration::from_secs(10));
    let (rss, hwm) = rss_of(daemon.pid());
    println!(
        "first start: READY after {:.1} s; RSS settled (10 s after READY) {rss:.0} MB, peak {hwm:.0} MB (peak at READY {hwm_ready:.0} MB)",
        daemon.ready_ms / 1e3
    );
    drop(daemon);
    let again = Daemon::start(dir.path(), "state");
    println!(
        "restart, plan unchanged: READY after {:.1} s",
        again.ready_ms / 1e3
    );
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    if want("latency") {
        let sizes: Vec<usize> = std::env::var("BENCH_SIZES")
            .unwrap_or_else(|_| "1000,10000,100000".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        println!("\n## latency: reminders due within one minute, through `kithd run`");
        for n in sizes {
            bench_latency(n);
        }
    }
    if want("burst") {
        bench_burst(
            20_000,
            std::env::var("BURST_CONCURRENCY")
                .ok()
                .and_then(|c| c.parse().ok())
                .unwrap_or(64),
        );
    }
    if want("million") {
        bench_million(1_000_000);
    }
}
