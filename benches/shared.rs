//! The shared-ledger benchmark, through the real `kithd run` (not a timed test): durable
//! deliveries per second to a loopback sink for one instance on SQLite, one on PostgreSQL
//! and three on one PostgreSQL ledger (all due at the same second), with doubles counted at
//! the sink; and the claim latency (one claim statement as the daemon runs it, read from
//! its debug log) with 1,000,000 pending rows not yet due. PostgreSQL is a private cluster
//! started here on 127.0.0.1 (`scripts/pg-cluster.sh`). `cargo bench --bench shared`.

#[path = "common.rs"]
mod common;
#[path = "daemon_parts.rs"]
mod parts;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use common::{cron_at, percentile};
use parts::*;

struct Cluster {
    dir: String,
}

impl Cluster {
    fn script(args: &[&str]) -> String {
        let root = env!("CARGO_MANIFEST_DIR");
        let out = Command::new(format!("{root}/scripts/pg-cluster.sh"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn start() -> Self {
        let dir = format!("/tmp/kithd-pg-bench-{}", std::process::id());
        Self::script(&["start", &dir, &std::process::id().to_string()]);
        Self { dir }
    }

    fn sql(&self, db: &str, sql: &str) -> String {
        Self::script(&["sql", &self.dir, db, sql])
    }

    fn database(&self, name: &str) -> String {
        Self::script(&["createdb", &self.dir, name])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let root = env!("CARGO_MANIFEST_DIR");
        let _ = Command::new(format!("{root}/scripts/pg-cluster.sh"))
            .args(["stop", &self.dir])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `sent` marks committed: in the SQLite file, or in the shared database.
fn committed(state: &Path, pg: Option<(&Cluster, &str)>) -> usize {
    match pg {
        Some((c, db)) => c
            .sql(db, "SELECT count(*) FROM deliveries WHERE state = 'sent'")
            .parse()
            .unwrap_or(0),
        None => rusqlite::Connection::open_with_flags(
            state.join("kithd.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .and_then(|c| {
            c.query_row(
                "SELECT count(*) FROM deliveries WHERE state = 'sent'",
                [],
                |r| r.get::<_, i64>(0),
            )
        })
        .map(|n| n as usize)
        .unwrap_or(0),
    }
}

fn throughput(cluster: &Cluster, n: usize, instances: usize, pg: bool, db: &str) {
    let rt = runtime();
    let sink = rt.block_on(Sink::start());
    let dir = tempfile::tempdir().unwrap();
    let at = (Utc::now() + chrono::Duration::seconds(10))
        .with_nanosecond(0)
        .unwrap();
    write_plan(dir.path(), &plan(sink.port, Some(64), n, |_| cron_at(at)));
    let url = pg.then(|| cluster.database(db));
    let env: Vec<(&str, &str)> = url.iter().map(|u| ("KITHD_LEDGER", u.as_str())).collect();
    let load = load_average();
    let daemons: Vec<Daemon> = (0..instances)
        .map(|i| Daemon::start_with(dir.path(), &format!("state{i}"), &env, Stdio::inherit()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    wait_until(deadline, || Utc::now() >= at);
    let due = Instant::now() - (Utc::now() - at).to_std().unwrap_or_default();
    let state = dir.path().join("state0");
    let pg_db = url.as_ref().map(|_| (cluster, db));
    let mut check = Instant::now();
    let all = wait_until(deadline, || {
        if sink.count() < n {
            return false;
        }
        // Poll the ledger at most every 50 ms (a psql process each time).
        if check.elapsed() < Duration::from_millis(50) {
            return false;
        }
        check = Instant::now();
        committed(&state, pg_db) >= n
    });
    let durable = due.elapsed();
    let cpu: f64 = daemons.iter().map(|d| cpu_of(d.pid())).sum();
    drop(daemons);
    let arrivals = sink.take();
    let unique: HashSet<&str> = arrivals.iter().map(|(id, _)| id.as_str()).collect();
    println!(
        "  {} on {}: {} {:.0} durable deliveries/s (all {n} `sent` marks committed {:.0} ms after due); {} arrived, {} doubled; CPU {cpu:.1} s; load before {load}",
        instances,
        if pg { "PostgreSQL" } else { "SQLite" },
        if all { "complete," } else { "INCOMPLETE," },
        n as f64 / durable.as_secs_f64(),
        durable.as_secs_f64() * 1e3,
        unique.len(),
        arrivals.len() - unique.len(),
    );
}

/// Claim latency with `backlog` pending rows not yet due: the daemon's own claim statement,
/// timed inside the ledger call and read from its debug log, while it sends `n` reminders
/// due over 20 seconds.
fn claim_latency(cluster: &Cluster, backlog: usize, n: usize) {
    let url = cluster.database("claims");
    let dir = tempfile::tempdir().unwrap();
    // Any command that opens the ledger creates its schema.
    let migrated = Command::new(KITHD)
        .args(["history", "--state-dir", "s", "--ledger", &url])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let t = Instant::now();
    cluster.sql(
        "claims",
        &format!(
            "INSERT INTO firings (id, item, kind, purpose, scheduled, recorded, outcome) VALUES (1000000000, 'backlog', 'checkin', 'main', now(), now(), 'dispatched');
             INSERT INTO deliveries (id, firing, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, created, updated)
               SELECT 'b' || g, 1000000000, 'backlog', 'checkin', 'main', now(), 'self', 'hook', 0, 'pending',
                      now() + interval '30 days' + g * interval '1 second', now(), now()
               FROM generate_series(1, {backlog}) g;
             ANALYZE deliveries;"
        ),
    );
    println!(
        "  {backlog} pending rows inserted in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let rt = runtime();
    let sink = rt.block_on(Sink::start());
    let start = (Utc::now() + chrono::Duration::seconds(8))
        .with_nanosecond(0)
        .unwrap();
    write_plan(
        dir.path(),
        &plan(sink.port, Some(64), n, |i| {
            cron_at(start + chrono::Duration::seconds((i * 20 / n) as i64))
        }),
    );
    let log = dir.path().join("claims.log");
    let load = load_average();
    let daemon = Daemon::start_with(
        dir.path(),
        "state",
        &[
            ("KITHD_LEDGER", url.as_str()),
            ("RUST_LOG", "warn,kithd::runtime=debug"),
        ],
        Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    wait_until(deadline, || sink.count() >= n);
    drop(daemon);
    let text = std::fs::read_to_string(&log).unwrap();
    let mut with: Vec<f64> = Vec::new();
    let mut all: Vec<f64> = Vec::new();
    for line in text.lines().filter(|l| l.contains("Claimed.")) {
        let field = |name: &str| {
            line.split(&format!("{name}="))
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let (Some(us), Some(claimed)) = (field("claim_us"), field("claimed")) {
            all.push(us / 1e3);
            if claimed > 0.0 {
                with.push(us / 1e3);
            }
        }
    }
    with.sort_by(f64::total_cmp);
    all.sort_by(f64::total_cmp);
    println!(
        "  claim with {backlog} pending: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} claims that took deliveries (every pass: p50 {:.2}, p99 {:.2} over {}); {} of {n} arrived; load before {load}",
        percentile(&with, 0.5),
        percentile(&with, 0.99),
        with.last().copied().unwrap_or(f64::NAN),
        with.len(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.len(),
        sink.count(),
    );
}

fn main() {
    let n: usize = std::env::var("BENCH_SHARED_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let backlog: usize = std::env::var("BENCH_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let cluster = Cluster::start();
    println!("\n## shared: {n} due at the same second, `concurrency = 64`, through `kithd run`");
    throughput(&cluster, n, 1, false, "");
    throughput(&cluster, n, 1, true, "one");
    throughput(&cluster, n, 3, true, "three");
    println!("\n## claims on a shared ledger with a backlog");
    claim_latency(&cluster, backlog, 2000);
}
