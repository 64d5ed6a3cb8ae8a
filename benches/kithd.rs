//! kithd's benchmarks (not timed tests). Run all with `cargo bench --bench kithd`, or one
//! with `cargo bench --bench kithd -- plan|plugin|scheduler|ready|dispatch`.
//!
//! - plan: load + validate generated plans of 1k/10k/100k items, and their next 24 h.
//! - plugin: cost of one `webhook` plugin call (compiled once), request building included.
//! - scheduler: 100,000 reminders due within one minute, driven by the heap scheduler and a
//!   sleep loop like the daemon's (2 worker threads; `BENCH_WORKERS` changes it): fire
//!   latency (scheduled instant → plugin call), lost and
//!   doubled fires, resident memory, idle CPU.
//! - ready: time from start to READY=1 of the real `kithd run` on a 10,000-item plan.
//! - dispatch: sustained deliveries/s of the real daemon (ledger on) through the `webhook`
//!   plugin to a local HTTP receiver, beside a plain reqwest loop against the same receiver.

#[path = "common.rs"]
mod common;

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};
use common::percentile;
use kithd::diagnostic::SourceFile;
use kithd::dispatch::channel::prepare;
use kithd::plan::{self, Plan};
use kithd::plugin::{Message, Registry};
use kithd::runtime::due_heap::{HeapScheduler, Scheduler};

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// utime + stime of this process, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

const HEAD: &str = "[person]\nname = \"Alex\"\ntimezone = \"Europe/Berlin\"\nquiet_hours = \"22:00-07:30\"\nreach = [\"console\"]\n\n[contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nreach = [\"console\"]\nconsent = 2026-11-01\n\n[channels.console]\nplugin = \"console\"\n\n";

/// A plan of `n` items, mixing kinds and schedule forms.
fn generated_plan(n: usize) -> String {
    let mut s = String::from(HEAD);
    for i in 0..n {
        let h = i % 24;
        let m = (i * 7) % 60;
        s.push_str(&match i % 4 {
            0 => format!("[[checkin]]\nid = \"c{i}\"\nat = \"{h:02}:{m:02}\"\ndays = \"weekdays\"\nmessage = \"How are you, {{person}}?\"\n\n"),
            1 => format!("[[medication]]\nid = \"m{i}\"\nname = \"med{i}\"\ndose = \"{i} mg\"\ncron = \"{m} {h} * * *\"\nmessage = \"Take {{dose}} of {{name}}.\"\n\n"),
            2 => format!("[[followup]]\nid = \"f{i}\"\nwith = \"sam\"\nat = [\"{h:02}:{m:02}\"]\ndays = [\"sun\"]\nmessage = \"Call {{with}}?\"\n\n"),
            _ => format!("[[checkin]]\nid = \"e{i}\"\nevery = \"{}h\"\nto = [\"self\", \"sam\"]\nmessage = \"Check-in {{time}}.\"\n\n", 1 + i % 12),
        });
    }
    s
}

fn load(text: &str, registry: &Registry) -> Plan {
    plan::load(&SourceFile::new("bench.toml", text), registry)
        .expect("valid plan")
        .plan
}

fn bench_plan(registry: &Registry) {
    println!("## plan: load + validate, and the next 24 h of firings");
    println!("| items | load + validate (median of 5) | per item | next 24 h | firings |");
    println!("|---:|---:|---:|---:|---:|");
    let from: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
    for n in [1_000, 10_000, 100_000] {
        let text = generated_plan(n);
        let mut loads = Vec::new();
        let mut plan = None;
        for _ in 0..5 {
            let t = Instant::now();
            plan = Some(load(&text, registry));
            loads.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        loads.sort_by(f64::total_cmp);
        let plan = plan.unwrap();
        let t = Instant::now();
        let firings =
            kithd::schedule::upcoming(&plan, from, from + chrono::Duration::hours(24), usize::MAX);
        let next = t.elapsed().as_secs_f64() * 1000.0;
        println!(
            "| {n} | {:.1} ms | {:.1} µs | {next:.1} ms | {} |",
            loads[2],
            loads[2] * 1000.0 / n as f64,
            firings.len()
        );
    }
}

fn message() -> Message {
    Message {
        delivery_id: "d_0123456789abcdef01234567".into(),
        item: "morning".into(),
        kind: "checkin".into(),
        scheduled: "2026-12-01T09:00:00+01:00".into(),
        text: "Good morning Alex. How are you feeling today, 1 to 5?".into(),
        title: "Check-in".into(),
        recipient: "self".into(),
        recipient_name: "Alex".into(),
        address: None,
        urgent: false,
        answer_url: None,
        choices: Vec::new(),
    }
}

fn bench_plugin(registry: &Registry) {
    println!("\n## plugin: one `webhook` plugin call (compiled once), request building included");
    let plan = load(
        &format!(
            "{HEAD}[channels.hook]\nplugin = \"webhook\"\nurl = \"https://hooks.example.org/kithd\"\nsigning_secret = {{ secret = \"k\" }}\n\n[[checkin]]\nid = \"c\"\ncron = \"0 8 * * *\"\nmessage = \"x\"\n[[checkin]]\nid = \"d\"\ncron = \"5 30 9 2 12 *\"\nmessage = \"x\"\n"
        ),
        registry,
    );
    let channel = prepare(registry, &plan.channels["hook"]).unwrap();
    let msg = message();
    for _ in 0..2_000 {
        channel
            .plugin
            .send(&registry.sandbox, &msg, &channel.settings)
            .unwrap();
    }
    let n = 100_000;
    let mut samples = Vec::with_capacity(n);
    let total = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        let req = channel
            .plugin
            .send(&registry.sandbox, &msg, &channel.settings)
            .unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(req);
    }
    let mean = total.elapsed().as_secs_f64() * 1e6 / n as f64;
    samples.sort_by(f64::total_cmp);
    println!(
        "{n} calls: mean {mean:.1} µs, p50 {:.1} µs, p99 {:.1} µs",
        percentile(&samples, 0.5),
        percentile(&samples, 0.99)
    );
    let noop = registry.get("noop").unwrap();
    let settings = rhai::Map::new();
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(noop.send(&registry.sandbox, &msg, &settings).unwrap());
    }
    println!(
        "a plugin that returns `()`: mean {:.1} µs per call",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let its: Vec<_> = plan
        .items
        .iter()
        .filter(|i| matches!(i.schedule, kithd::plan::ScheduleSpec::Cron { .. }))
        .cloned()
        .collect();
    let from: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
    let t = Instant::now();
    let mut k = 0;
    for _ in 0..(n / its.len().max(1)) {
        for it in &its {
            std::hint::black_box(kithd::schedule::next_after(it, from));
            k += 1;
        }
    }
    println!(
        "next firing of a cron item: mean {:.1} µs",
        t.elapsed().as_secs_f64() * 1e6 / k.max(1) as f64
    );
}

fn bench_scheduler(registry: &Registry) {
    println!("\n## scheduler: 100,000 reminders due within one minute");
    let n = 100_000;
    let start = (Utc::now() + chrono::Duration::seconds(5))
        .with_nanosecond(0)
        .unwrap();
    let mut text = HEAD.replace("Europe/Berlin", "UTC");
    text.push_str("[channels.noop]\nplugin = \"noop\"\n\n");
    for i in 0..n {
        let at = start + chrono::Duration::seconds((i % 60) as i64);
        let cron = format!(
            "{} {} {} {} {} *",
            at.second(),
            at.minute(),
            at.hour(),
            at.format("%-d"),
            at.format("%-m")
        );
        text.push_str(&format!(
            "[[checkin]]\nid = \"r{i}\"\ncron = \"{cron}\"\nmessage = \"x\"\n\n"
        ));
    }
    let rss_before = rss_mb();
    let plan = load(&text, registry);
    drop(text);
    let rss_plan = rss_mb();
    let channel = prepare(registry, &plan.channels["noop"]).unwrap();
    let channel_sandbox = registry.sandbox.clone();
    let mut sched = HeapScheduler::new();
    let now = Utc::now();
    for item in &plan.items {
        sched.upsert(item, now);
    }
    let rss_loaded = rss_mb();
    // Like the daemon: one loop pops due firings and spawns each delivery as a task on a
    // multi-thread runtime (2 workers on this machine), which calls the plugin.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            std::env::var("BENCH_WORKERS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(2),
        )
        .enable_all()
        .build()
        .unwrap();
    let channel = Arc::new(channel);
    let sink: Arc<std::sync::Mutex<Vec<(String, f64)>>> =
        Arc::new(std::sync::Mutex::new(Vec::with_capacity(n)));
    let until = start + chrono::Duration::seconds(61);
    let sandbox = channel_sandbox.clone();
    let mut wakes: Vec<(f64, usize)> = Vec::new();
    rt.block_on(async {
        loop {
            let now = Utc::now();
            let due = sched.pop_due(now);
            if let Some(first) = due.first() {
                wakes.push((
                    (now - first.at).num_microseconds().unwrap_or(0) as f64 / 1000.0,
                    due.len(),
                ));
            }
            for d in &due {
                let (channel, sink, sandbox) = (channel.clone(), sink.clone(), sandbox.clone());
                let (item, at) = (d.item.clone(), d.at);
                tokio::spawn(async move {
                    // The plugin call is the end of the measured path.
                    let called = Utc::now();
                    let _ = channel.plugin.send(&sandbox, &message(), &channel.settings);
                    let ms = (called - at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
                    sink.lock().unwrap().push((item, ms));
                });
            }
            sched.advance(&due);
            if Utc::now() > until {
                break;
            }
            let wait = match sched.next_due() {
                Some(at) if at > Utc::now() => (at - Utc::now())
                    .to_std()
                    .unwrap_or_default()
                    .min(Duration::from_secs(15)),
                Some(_) => Duration::ZERO,
                None => (until - Utc::now()).to_std().unwrap_or_default(),
            };
            tokio::time::sleep(wait).await;
        }
    });
    let results = std::mem::take(&mut *sink.lock().unwrap());
    let mut latencies: Vec<f64> = results.iter().map(|r| r.1).collect();
    let mut calls: HashMap<String, u32> = HashMap::with_capacity(n);
    for (item, _) in results {
        *calls.entry(item).or_default() += 1;
    }
    latencies.sort_by(f64::total_cmp);
    let mut w: Vec<f64> = wakes.iter().map(|w| w.0).collect();
    w.sort_by(f64::total_cmp);
    println!(
        "timer: {} wake-ups with due firings; lateness of the first due firing p50 {:.2} ms, p99 {:.2} ms; up to {} firings per wake-up",
        w.len(),
        percentile(&w, 0.5),
        percentile(&w, 0.99),
        wakes.iter().map(|w| w.1).max().unwrap_or(0)
    );
    let fired = calls.len();
    let doubled = calls.values().filter(|c| **c > 1).count();
    println!(
        "fire latency: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} fires; lost {}, doubled {}",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len(),
        n - fired,
        doubled
    );
    println!(
        "resident memory with 100,000 items scheduled: {rss_loaded:.0} MB (before the plan {rss_before:.0} MB, after loading it {rss_plan:.0} MB)"
    );
    // Idle: everything left fires tomorrow; the loop sleeps in MAX_SLEEP steps.
    let cpu0 = cpu_seconds();
    let idle = Duration::from_secs(10);
    rt.block_on(async {
        let end = Instant::now() + idle;
        while Instant::now() < end {
            let wait = sched
                .next_due()
                .map(|at| (at - Utc::now()).to_std().unwrap_or_default())
                .unwrap_or(idle)
                .min(Duration::from_secs(15));
            tokio::time::sleep(wait.min(end - Instant::now())).await;
        }
    });
    let cpu = cpu_seconds() - cpu0;
    println!(
        "idle CPU between firings: {:.2} % over {} s",
        cpu / idle.as_secs_f64() * 100.0,
        idle.as_secs()
    );
}

fn bench_ready() {
    println!("\n## ready: start → READY=1 of `kithd run` on a 10,000-item plan");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("plan.toml"), generated_plan(10_000)).unwrap();
    let mut times = Vec::new();
    for run in 0..5 {
        let sock_path = dir.path().join(format!("n{run}.sock"));
        let sock = UnixDatagram::bind(&sock_path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let t = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_kithd"))
            .args([
                "run",
                "plan.toml",
                "--plugins",
                "none",
                "--state-dir",
                &format!("state{run}"),
            ])
            .current_dir(dir.path())
            .env("NOTIFY_SOCKET", &sock_path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut buf = [0u8; 512];
        loop {
            let n = sock.recv(&mut buf).expect("READY");
            if buf[..n].starts_with(b"READY=1") {
                break;
            }
        }
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
    }
    times.sort_by(f64::total_cmp);
    println!(
        "start → READY: median {:.0} ms (min {:.0}, max {:.0}) over 5 runs",
        times[2], times[0], times[4]
    );
}

/// A minimal HTTP/1.1 receiver on 127.0.0.1 that answers 200 to every request.
async fn receiver() -> (u16, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let port = common::http_sink(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    })
    .await;
    (port, count)
}

fn bench_dispatch() {
    println!("\n## dispatch: sustained deliveries through `webhook` with the ledger on");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let n = 20_000;
    let concurrency = 64;
    let (port, count) = rt.block_on(receiver());
    // The daemon: n items due in the same second.
    let dir = tempfile::tempdir().unwrap();
    let at = (Utc::now() + chrono::Duration::seconds(6))
        .with_nanosecond(0)
        .unwrap();
    let cron = format!(
        "{} {} {} {} {} *",
        at.second(),
        at.minute(),
        at.hour(),
        at.format("%-d"),
        at.format("%-m")
    );
    let mut text = format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"hook\"]\n\n[channels.hook]\nplugin = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\nconcurrency = {concurrency}\n\n"
    );
    for i in 0..n {
        text.push_str(&format!("[[checkin]]\nid = \"d{i}\"\ncron = \"{cron}\"\nmessage = \"How are you doing today?\"\n\n"));
    }
    std::fs::write(dir.path().join("plan.toml"), text).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kithd"))
        .args([
            "run",
            "plan.toml",
            "--plugins",
            "none",
            "--state-dir",
            "state",
        ])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (first, last) = rt.block_on(async {
        let mut first = None;
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let c = count.load(Ordering::SeqCst);
            if c > 0 && first.is_none() {
                first = Some(Instant::now());
            }
            if c >= n || Instant::now() > deadline {
                return (first.unwrap_or_else(Instant::now), Instant::now());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    });
    let delivered = count.load(Ordering::SeqCst);
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let daemon_rate = delivered as f64 / (last - first).as_secs_f64();
    // Plain reqwest with the same concurrency and a similar body.
    let before = count.load(Ordering::SeqCst);
    let plain_rate = rt.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/plain");
        let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let t = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..n {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let client = client.clone();
            let url = url.clone();
            tasks.spawn(async move {
                let body = serde_json::json!({"version": 1, "delivery_id": format!("d_{i:024}"), "item": "x", "kind": "checkin", "scheduled": "2026-12-01T09:00:00Z", "text": "How are you doing today?", "title": "Check-in", "recipient": "self", "urgent": false});
                let _ = client.post(&url).header("Idempotency-Key", i.to_string()).json(&body).send().await;
                drop(permit);
            });
        }
        while tasks.join_next().await.is_some() {}
        (count.load(Ordering::SeqCst) - before) as f64 / t.elapsed().as_secs_f64()
    });
    println!(
        "kithd: {delivered} deliveries at {daemon_rate:.0}/s (first to last arrival); plain reqwest loop: {plain_rate:.0}/s; ratio {:.2}",
        daemon_rate / plain_rate
    );
}

fn main() {
    let which: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let want = |name: &str| which.is_empty() || which.iter().any(|w| w == name);
    let registry = {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("noop.rhai"),
            "fn send(message, settings) { () }",
        )
        .unwrap();
        Registry::load(dir.path()).unwrap()
    };
    if want("plan") {
        bench_plan(&registry);
    }
    if want("plugin") {
        bench_plugin(&registry);
    }
    if want("scheduler") {
        bench_scheduler(&registry);
    }
    if want("ready") {
        bench_ready();
    }
    if want("dispatch") {
        bench_dispatch();
    }
}
