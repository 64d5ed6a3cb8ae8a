//! A directory of plans in one process (`kithd run DIR`): each valid plan runs as a lane, a
//! daemon of its own with its own ledger handle (its own SQLite file under
//! `STATE/plans/ID/`, or its rows of the shared PostgreSQL database), all behind one answer
//! server. The supervisor owns the signals, systemd's protocol and maintenance: SIGHUP loads
//! the directory again, reloads the plans that changed, starts new ones, leaves a plan
//! that no longer loads running as it was, and retires a plan whose file is gone
//! (cancelling its pending deliveries and steps). A plan with problems never stops the
//! others. Must not schedule or send itself.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tracing::{Instrument, error, info, warn};

use super::answer_server::{AnswerServer, Slot};
use super::ledger::maintain_round;
use super::notify::Notifier;
use super::start::Parts;
use super::{Daemon, Options, log_problems, not_starting, signals, watchdog};
use crate::answer::front::Front;
use crate::dispatch::worker::Snapshot;
use crate::exit;
use crate::store::{AsyncLedger, Ledger, PgLedger, Place, SqliteLedger, StoreError};

/// What the supervisor tells a lane.
pub(crate) enum Order {
    /// The plan's new version, loaded.
    Reload(Box<Snapshot>),
    /// The plan's new version has this many problems: the old one keeps running.
    Refused(usize),
    Stop,
    /// The plan left the directory: stop, then cancel what it still had pending.
    Retire,
}

/// A plan of a directory, as its daemon sees it.
pub(crate) struct Lane {
    pub id: String,
    pub orders: mpsc::UnboundedReceiver<Order>,
    pub board: Arc<Board>,
}

/// The lane's next order; never, for a plan run on its own.
pub(super) async fn next_order(lane: &mut Option<Lane>) -> Order {
    match lane {
        Some(l) => l.orders.recv().await.unwrap_or(Order::Stop),
        None => std::future::pending().await,
    }
}

/// Whether each running plan is degraded, for the supervisor's STATUS=.
#[derive(Default)]
pub(crate) struct Board {
    degraded: Mutex<BTreeMap<String, bool>>,
    changed: Notify,
}

impl Board {
    pub(super) fn set(&self, id: &str, degraded: bool) {
        let mut lanes = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        lanes.insert(id.to_string(), degraded);
        self.changed.notify_one();
    }

    fn remove(&self, id: &str) {
        let mut lanes = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        lanes.remove(id);
    }

    /// How many plans are degraded.
    fn degraded(&self) -> usize {
        let lanes = self.degraded.lock().unwrap_or_else(|p| p.into_inner());
        lanes.values().filter(|d| **d).count()
    }
}

/// A running lane.
struct Running {
    path: PathBuf,
    /// The plan file's bytes when it was loaded, hashed: an unchanged plan is not reloaded.
    fingerprint: u64,
    orders: mpsc::UnboundedSender<Order>,
}

struct Supervisor {
    opts: Options,
    pg: Option<PgLedger>,
    front: Arc<Front>,
    server: Option<AnswerServer>,
    lanes: BTreeMap<String, Running>,
    tasks: JoinSet<(String, u8)>,
    /// Plan files that can't be run now, with their problem counts.
    problems: BTreeMap<PathBuf, usize>,
    /// Plugins' and credentials' fingerprint at the last load: when it changes, every plan
    /// is reloaded.
    surroundings: u64,
    board: Arc<Board>,
    notifier: Notifier,
    term: Option<crate::store::Term>,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn hash_file(path: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(path).unwrap_or_default().hash(&mut h);
    h.finish()
}

/// Names, sizes and change times of the files in the plugin and credentials directories.
fn surroundings(plugin_dir: &Path) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
    for dir in std::iter::once(plugin_dir.to_path_buf()).chain(creds) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut seen: Vec<(PathBuf, u64, i128)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                let t = m
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?;
                Some((e.path(), m.len(), t.as_nanos() as i128))
            })
            .collect();
        seen.sort();
        seen.hash(&mut h);
    }
    h.finish()
}

/// Runs every valid plan of `opts.plan` (a directory) until SIGTERM/SIGINT.
pub(super) async fn run(opts: Options) -> u8 {
    let started = Instant::now();
    let pg = match Place::parse(opts.ledger.as_deref(), &opts.state_dir) {
        Ok(Place::Postgres(url)) => {
            match tokio::task::spawn_blocking(move || PgLedger::open(&url)).await {
                Ok(Ok(l)) => {
                    info!("Using the shared PostgreSQL ledger.");
                    Some(l)
                }
                Ok(Err(e)) => {
                    let e = exit::Error::StateDir(e);
                    return not_starting(e, "The delivery ledger can't be opened; not starting.");
                }
                Err(e) => {
                    let e = exit::Error::StateDir(StoreError::Call(e.to_string()));
                    return not_starting(e, "The delivery ledger can't be opened; not starting.");
                }
            }
        }
        Ok(Place::Sqlite(_)) => None,
        Err(e) => {
            return not_starting(
                exit::Error::StateDir(e),
                "The ledger can't be used; not starting.",
            );
        }
    };
    if let Err(e) = crate::store::prepare_state_dir(&opts.state_dir.join("plans")) {
        return not_starting(
            exit::Error::StateDir(e),
            "The state directory can't be used; not starting.",
        );
    }
    let mut sup = Supervisor {
        surroundings: surroundings(&opts.plugin_dir),
        opts,
        pg,
        front: Arc::new(Front::default()),
        server: None,
        lanes: BTreeMap::new(),
        tasks: JoinSet::new(),
        problems: BTreeMap::new(),
        board: Arc::new(Board::default()),
        notifier: Notifier::from_env(),
        term: None,
    };
    if let Err(e) = sup.scan(true).await {
        return not_starting(e, "The plan directory can't be run; not starting.");
    }
    let status = sup.status();
    sup.notifier.ready(&status);
    info!(plans = sup.lanes.len(), with_problems = sup.problems.len(), startup_ms = started.elapsed().as_millis() as u64, plan = %sup.opts.plan.display(), "Ready.");
    sup.run().await
}

impl Supervisor {
    /// Loads the directory and brings the lanes in line with it. Only a directory that
    /// can't be read at all is an error (and only at start).
    async fn scan(&mut self, first: bool) -> Result<(), exit::Error> {
        let (dir, plugin_dir, now) = (
            self.opts.plan.clone(),
            self.opts.plugin_dir.clone(),
            self.opts.clock.now(),
        );
        let plans = tokio::task::spawn_blocking(move || {
            crate::plan_dir::load_dir(&dir, &plugin_dir, false, false, now, &mut std::io::sink())
        })
        .await
        .map_err(|e| exit::Error::StateDir(StoreError::Call(e.to_string())))?;
        let plans = match plans {
            Ok(p) => p,
            Err(e) if first => return Err(e),
            Err(e) => {
                error!(error = %e.render().trim_end(), "The plan directory can't be read; every plan keeps running as it was.");
                return Ok(());
            }
        };
        let around = surroundings(&self.opts.plugin_dir);
        let everything = std::mem::replace(&mut self.surroundings, around) != around;
        self.problems.clear();
        let mut seen = BTreeSet::new();
        let mut listen = None;
        for p in plans {
            let loaded = match p.loaded {
                Ok(l) => l,
                Err(e) => {
                    let problems = match &e {
                        exit::Error::Plan(f) => {
                            log_problems(f);
                            f.errors().max(1)
                        }
                        other => {
                            error!(error = %other.render().trim_end(), "A plan can't be loaded.");
                            1
                        }
                    };
                    error!(plan = %p.path.display(), problems, "This plan has problems and is not run (`kithd check` shows them); the other plans run.");
                    self.problems.insert(p.path.clone(), problems);
                    // A running plan whose new version has problems keeps its old version.
                    if let Some((id, lane)) = self.lanes.iter().find(|(_, l)| l.path == p.path) {
                        let _ = lane.orders.send(Order::Refused(problems));
                        seen.insert(id.clone());
                    }
                    continue;
                }
            };
            for w in crate::load::one_lines(&loaded.source, &loaded.warnings) {
                warn!(plan = %p.path.display(), "{w}");
            }
            let snapshot = loaded.snapshot;
            let id = snapshot.plan.id.clone().unwrap_or_default();
            if listen.is_none() {
                listen = snapshot.plan.server.as_ref().map(|s| s.listen);
            }
            seen.insert(id.clone());
            let fingerprint = hash_file(&p.path);
            match self.lanes.get_mut(&id) {
                Some(lane) if lane.fingerprint == fingerprint && !everything => {
                    lane.path = p.path;
                }
                Some(lane) => {
                    lane.path = p.path;
                    lane.fingerprint = fingerprint;
                    let _ = lane.orders.send(Order::Reload(Box::new(snapshot)));
                }
                None => {
                    if let Err(e) = self
                        .start_lane(&id, p.path.clone(), fingerprint, snapshot)
                        .await
                    {
                        error!(plan = %p.path.display(), error = %e, "This plan's ledger can't be opened; the other plans run.");
                        self.problems.insert(p.path, 1);
                    }
                }
            }
        }
        let gone: Vec<String> = self
            .lanes
            .keys()
            .filter(|id| !seen.contains(*id))
            .cloned()
            .collect();
        for id in gone {
            if let Some(lane) = self.lanes.remove(&id) {
                info!(plan = %lane.path.display(), id = %id, "This plan left the directory: stopping it and cancelling what it had pending.");
                let _ = lane.orders.send(Order::Retire);
                self.board.remove(&id);
            }
        }
        self.serve(listen).await;
        self.publish();
        Ok(())
    }

    /// Which plans run and which files can't, for `kithd status`.
    fn publish(&self) {
        let plans = crate::published::Plans {
            running: self.lanes.keys().cloned().collect(),
            problems: self
                .problems
                .iter()
                .map(|(path, n)| (file_name(path), *n))
                .collect(),
        };
        if let Err(e) = crate::published::write_plans(&self.opts.state_dir, &plans) {
            warn!(error = %e, "Could not publish the directory's plans for `kithd status`.");
        }
    }

    /// Starts the shared answer server where the plans' `[server]` says (rebinding when
    /// that changed), or stops it when no plan has one.
    async fn serve(&mut self, listen: Option<std::net::SocketAddr>) {
        if self.server.as_ref().map(|s| s.listen) == listen {
            return;
        }
        let Some(listen) = listen else {
            if let Some(old) = self.server.take() {
                old.stop();
            }
            return;
        };
        match AnswerServer::start(listen, self.front.clone()).await {
            Ok(server) => {
                if let Some(old) = self.server.replace(server) {
                    old.stop();
                }
            }
            Err(e) => {
                error!(listen = %listen, error = %e, "The answer server can't listen; answers by link and replies are not taken until it can.")
            }
        }
    }

    /// Opens the plan's ledger and starts its daemon.
    async fn start_lane(
        &mut self,
        id: &str,
        path: PathBuf,
        fingerprint: u64,
        snapshot: Snapshot,
    ) -> Result<(), StoreError> {
        let state_dir = self.opts.state_dir.join("plans").join(id);
        let (ledger, shared): (Arc<dyn Ledger>, bool) = match &self.pg {
            Some(pg) => {
                crate::store::prepare_state_dir(&state_dir)?;
                (Arc::new(pg.for_plan(Some(id))), true)
            }
            None => {
                let (dir, clock, scope) =
                    (state_dir.clone(), self.opts.clock.clone(), id.to_string());
                let l = tokio::task::spawn_blocking(move || {
                    SqliteLedger::open(&dir).map(|l| l.with_clock(clock).for_plan(Some(&scope)))
                })
                .await
                .map_err(|e| StoreError::Call(e.to_string()))??;
                (Arc::new(l), false)
            }
        };
        let (orders, rx) = mpsc::unbounded_channel();
        let opts = Options {
            plan: path.clone(),
            state_dir,
            ..self.opts.clone()
        };
        let parts = Parts {
            opts,
            snapshot,
            ledger,
            shared,
            answer: Slot::Shared {
                front: self.front.clone(),
                plan: id.to_string(),
            },
            lane: Some(Lane {
                id: id.to_string(),
                orders: rx,
                board: self.board.clone(),
            }),
            started: Instant::now(),
        };
        let span = tracing::info_span!("plan", id = %id);
        let owned = id.to_string();
        self.tasks
            .spawn(async move { (owned, Daemon::begin(parts).await) }.instrument(span));
        self.lanes.insert(
            id.to_string(),
            Running {
                path,
                fingerprint,
                orders,
            },
        );
        Ok(())
    }

    /// STATUS=: how many plans run, how many are degraded, which files have problems.
    fn status(&self) -> String {
        let mut s = format!(
            "{} plan{} running",
            self.lanes.len(),
            if self.lanes.len() == 1 { "" } else { "s" }
        );
        let degraded = self.board.degraded();
        if degraded > 0 {
            s.push_str(&format!(", {degraded} degraded"));
        }
        if !self.problems.is_empty() {
            let files: Vec<String> = self.problems.keys().map(|p| file_name(p)).collect();
            s.push_str(&format!("; not running (problems): {}", files.join(", ")));
        }
        s.push('.');
        s
    }

    async fn run(&mut self) -> u8 {
        let Some((mut hup, mut term, mut int)) = signals() else {
            return exit::SOFTWARE;
        };
        let (watchdog_every, mut watchdog) = watchdog(&self.notifier);
        let mut maintain = tokio::time::interval(
            crate::store::MAINTAIN_EVERY
                .to_std()
                .unwrap_or(Duration::from_secs(5)),
        );
        maintain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = self.status();
        let board = self.board.clone();
        let mut code = exit::OK;
        loop {
            tokio::select! {
                _ = hup.recv() => {
                    self.notifier.reloading();
                    info!(plan = %self.opts.plan.display(), "Reloading the plan directory.");
                    let _ = self.scan(false).await;
                    last = self.status();
                    self.notifier.ready(&last);
                }
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = board.changed.notified() => {}
                _ = watchdog.tick(), if watchdog_every.is_some() => self.notifier.watchdog(),
                _ = maintain.tick(), if self.pg.is_some() => {
                    if let Some(pg) = &self.pg {
                        let ledger = AsyncLedger::new(Arc::new(pg.clone()));
                        maintain_round(&ledger, &mut self.term).await;
                    }
                }
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    match done {
                        // Stopped or retired by order.
                        Ok((id, c)) if !self.lanes.contains_key(&id) => {
                            if c != exit::OK {
                                warn!(id = %id, code = c, "A removed plan did not stop cleanly.");
                            }
                        }
                        // A lane stopped by itself: its ledger failed. Stop, so that a
                        // restart recovers (as a plan run on its own would).
                        Ok((id, c)) => {
                            error!(id = %id, code = c, "A plan's daemon stopped; stopping every plan so that a restart can recover.");
                            self.lanes.remove(&id);
                            code = if c == exit::OK { exit::SOFTWARE } else { c };
                            break;
                        }
                        Err(e) => {
                            error!(error = %e, "A plan's daemon failed; stopping every plan so that a restart can recover.");
                            code = exit::SOFTWARE;
                            break;
                        }
                    }
                }
            }
            let status = self.status();
            if status != last {
                self.notifier.status(&status);
                last = status;
            }
        }
        self.notifier.stopping();
        for lane in self.lanes.values() {
            let _ = lane.orders.send(Order::Stop);
        }
        self.lanes.clear();
        while let Some(done) = self.tasks.join_next().await {
            if let Ok((_, c)) = done
                && c != exit::OK
                && code == exit::OK
            {
                code = c;
            }
        }
        if let Some(server) = self.server.take() {
            server.stop();
        }
        info!("Stopped.");
        code
    }
}

impl Daemon {
    /// After a retired plan's daemon stopped: cancels what the plan still had pending,
    /// recorded as such.
    pub(super) async fn retire(&mut self) -> u8 {
        let reason = "its plan was removed from the directory";
        match self.ledger.call(move |l| l.retire(reason)).await {
            Ok((deliveries, steps)) => {
                info!(
                    deliveries,
                    steps, "Plan removed: its pending deliveries and steps are cancelled."
                );
                exit::OK
            }
            Err(e) => {
                error!(error = %e, "Could not cancel a removed plan's pending deliveries.");
                exit::Error::Ledger(e).code()
            }
        }
    }
}
