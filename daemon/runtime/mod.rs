//! The runtime: the one `select!` loop that owns timers, signals (SIGHUP reload,
//! SIGTERM/SIGINT shutdown), the systemd notify protocol and the in-flight delivery tasks.
//! It must not render, send or validate itself: it calls `plan`, `dispatch` and `store`.

mod answer_server;
mod assess;
mod catch_up;
mod directory;
pub mod due_heap;
mod heartbeat;
mod keeping;
mod ledger;
pub(crate) mod logging;
mod notify;
mod reload;
mod start;
mod steps;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;
use tracing::{error, info, warn};

use crate::clock::Clock;
use crate::dispatch::fire::records;
use crate::dispatch::worker::{CLAIM_AHEAD, Dispatcher};
use crate::exit;
use crate::plan::Item;
use crate::store::{AsyncLedger, StoreError};
use crate::vocab::paused;
use due_heap::{HeapScheduler, Scheduler};
use notify::Notifier;

/// The longest single sleep: the loop re-reads the wall clock at least this often, so a
/// The ledger's next delivery time (on channels with a free slot) and next step time.
type LedgerNext = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// Firings are recorded in the ledger this long before they are due (their deliveries are
/// claimed just before due), so that a second with thousands due is not written at that
/// second, nor at the previous whole second (when that second's reminders go out). A pause
/// set within this last moment before a firing does not hold it.
const RECORD_AHEAD: chrono::Duration = chrono::Duration::milliseconds(1500);
/// How long a finished delivery waits for others to finish before the loop claims more.
const GATHER: Duration = Duration::from_millis(1);
/// Finished deliveries gathered into one pass at most.
const GATHER_COUNT: usize = 16;

/// suspend/resume or an NTP step can't make it oversleep a firing by more than this.
const MAX_SLEEP: Duration = Duration::from_secs(15);
/// Health is judged again at most this often after deliveries finish.
const ASSESS_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Options {
    pub plan: PathBuf,
    pub plugin_dir: PathBuf,
    pub state_dir: PathBuf,
    /// `--ledger`/`KITHD_LEDGER`: the state directory's SQLite file when not given.
    pub ledger: Option<String>,
    /// How long in-flight deliveries may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Where the daemon reads the time (the system clock outside tests).
    pub clock: Arc<dyn Clock>,
}

struct Daemon {
    opts: Options,
    clock: Arc<dyn Clock>,
    ledger: AsyncLedger,
    dispatcher: Arc<Dispatcher>,
    scheduler: HeapScheduler,
    tasks: JoinSet<Result<(), StoreError>>,
    notifier: Notifier,
    last_status: String,
    /// Woken by the answer server after an answer (an all-clear may be due now).
    wake: Arc<tokio::sync::Notify>,
    lease: chrono::Duration,
    /// The maintenance leadership this instance holds on a shared ledger.
    term: Option<crate::store::Term>,
    /// Problems of the last refused reload, until a reload succeeds.
    reload_refused: Option<usize>,
    /// The latest judgement, and when it was made.
    health: crate::health::Health,
    assessed_at: Option<std::time::Instant>,
    /// Deliveries finished since the last judgement.
    health_due: bool,
    /// The ledger's next delivery and step times, asked by the last pass's claim.
    ledger_next: Option<LedgerNext>,
    pinger: Option<heartbeat::Pinger>,
    answer: answer_server::Slot,
    /// A plan of a directory: the supervisor's orders (instead of signals), and where its
    /// status goes (instead of systemd).
    lane: Option<directory::Lane>,
    /// Whether this daemon stands for the maintenance leadership of a shared ledger (in a
    /// directory, the supervisor does, once for every plan).
    maintains: bool,
}

pub use start::run;

/// Logs a load failure's problems, one line each, at their own level.
fn log_problems(failure: &crate::load::Failure) {
    for (is_error, line) in failure.one_lines() {
        if is_error {
            error!("{line}");
        } else {
            warn!("{line}");
        }
    }
}

type Signal = tokio::signal::unix::Signal;

/// SIGHUP, SIGTERM and SIGINT; `None` (logged) when they can't be installed.
fn signals() -> Option<(Signal, Signal, Signal)> {
    match (
        signal(SignalKind::hangup()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(h), Ok(t), Ok(i)) => Some((h, t, i)),
        (Err(source), _, _) | (_, Err(source), _) | (_, _, Err(source)) => {
            let e = exit::Error::Setup {
                what: "could not install signal handlers",
                source,
            };
            not_starting(e, "Could not install signal handlers.");
            None
        }
    }
}

/// How often systemd's watchdog is pinged (if at all), and its timer.
fn watchdog(notifier: &Notifier) -> (Option<Duration>, tokio::time::Interval) {
    let every = notifier.watchdog_interval();
    (
        every,
        tokio::time::interval(every.unwrap_or(Duration::from_secs(3600))),
    )
}

/// Logs why the daemon does not start (or stops), and returns the exit code for it.
fn not_starting(e: exit::Error, why: &str) -> u8 {
    error!(error = %e, "{why}");
    e.code()
}

impl Daemon {
    fn status_text(&mut self) -> String {
        let next = self.next_text();
        if self.health.is_degraded() {
            format!("{}. {next}", self.health.summary())
        } else {
            next
        }
    }

    fn next_text(&mut self) -> String {
        match self.scheduler.next_due() {
            Some(at) => {
                let tz = self.dispatcher.snapshot().plan.person.timezone;
                format!(
                    "Next reminder at {}.",
                    at.with_timezone(&tz).format("%Y-%m-%d %H:%M %:z")
                )
            }
            None => "No reminders scheduled.".into(),
        }
    }

    /// Writes the next firings (time, item, kind; never text) for `kithd status`.
    fn publish_next(&self) {
        // Seeded from the scheduler's ten earliest items rather than the whole plan: this
        // runs after every firing.
        let seeds = self.scheduler.earliest(10);
        let items: Vec<&Item> = seeds.iter().map(|i| i.as_ref()).collect();
        let next = crate::published::next_firings(&items, self.clock.now());
        if let Err(e) = crate::published::write(&self.opts.state_dir, &next) {
            warn!(error = %e, "Could not publish the next firings for `kithd status`.");
        }
    }

    /// Publishes the person's zone for `status` and `history`, and their language for
    /// `report --format html` (at start and on reload: both change only with the plan).
    fn publish_zone(&self) {
        let plan = self.dispatcher.snapshot().plan.clone();
        let written = crate::published::write_zone(&self.opts.state_dir, plan.person.timezone)
            .and_then(|()| crate::published::write_language(&self.opts.state_dir, &plan.language));
        if let Err(e) = written {
            warn!(error = %e, "Could not publish the time zone for `kithd status`.");
        }
    }

    /// Records due firings, then claims and dispatches due deliveries. The ledger work of
    /// one pass is one call on the blocking pool.
    async fn tick(&mut self) -> Result<(), StoreError> {
        let now = self.clock.now();
        // Recorded a moment ahead: at the due instant only the claim is left to do.
        let due = self.scheduler.pop_due(now + RECORD_AHEAD);
        let snap = self.dispatcher.snapshot();
        let batch: Vec<_> = due
            .iter()
            .filter_map(|d| {
                snap.plan
                    .item(&d.item)
                    .map(|item| records(&snap.plan, item, d.at, d.purpose, false, now))
            })
            .collect();
        let dispatcher = self.dispatcher.clone();
        let lease_until = now + self.lease;
        self.ledger_next = None;
        let (claimed, mut slots, next) = self
            .ledger
            .call(move |l| {
                let mut pauses = steps::Pauses::new(&snap.plan, now);
                if !batch.is_empty() {
                    let in_force = pauses.get(l)?;
                    let (held, go): (Vec<_>, Vec<_>) = batch.into_iter().partition(|(f, _)| {
                        paused(in_force, &f.item, f.kind, f.scheduled).is_some()
                    });
                    for (f, _) in &held {
                        info!(item = %f.item, "Paused: not sent.");
                        l.record_paused(f)?;
                    }
                    if !go.is_empty() {
                        l.record_firings(&go)?;
                    }
                }
                // Nag and escalation steps whose time has come (an answer cancels them).
                steps::take_due(l, &snap.plan, now, &mut pauses)?;
                // Claim only what is due by a moment from now, and no more than each
                // channel has claim slots for (a bounded queue before its send slots).
                let mut slots = std::collections::HashMap::new();
                let started = std::time::Instant::now();
                let claimed = l.claim_due(now + CLAIM_AHEAD, lease_until, &mut |channel| {
                    let free = dispatcher.reserve_free(channel);
                    let n = free.len();
                    slots.insert(channel.to_string(), free);
                    n
                })?;
                // The benchmark reads this line (debug level) for the claim latency.
                let claim_us = started.elapsed().as_micros() as u64;
                tracing::debug!(claimed = claimed.len(), claim_us, "Claimed.");
                // When the loop next has work here, asked now rather than in a call of its
                // own: a channel whose every free slot was just taken waits for a
                // delivery to finish, not for a time.
                let full: Vec<String> = slots
                    .iter()
                    .filter(|(ch, free)| {
                        claimed.iter().filter(|d| &d.channel == *ch).count() >= free.len()
                    })
                    .map(|(ch, _)| ch.clone())
                    .collect();
                let next = (l.next_due(&full)?, l.next_watch_due()?);
                Ok((claimed, slots, next))
            })
            .await?;
        self.ledger_next = Some(next);
        if !due.is_empty() {
            self.scheduler.advance(&due);
        }
        for d in claimed {
            // The ledger claims no more per channel than the slots reserved here; the
            // unused ones go back when `slots` is dropped.
            let Some(slot) = slots.get_mut(&d.channel).and_then(Vec::pop) else {
                continue;
            };
            let dispatcher = self.dispatcher.clone();
            self.tasks
                .spawn(async move { dispatcher.deliver(d, slot, lease_until).await });
        }
        Ok(())
    }

    /// Extends the leases of the deliveries in flight.
    async fn renew_leases(&self) -> Result<(), StoreError> {
        let held = self.dispatcher.held();
        if held.is_empty() {
            return Ok(());
        }
        let now = self.clock.now();
        let until = now + self.lease;
        let (lost, held) = self
            .ledger
            .call(move |l| Ok((l.renew(&held, now, until)?, held)))
            .await?;
        self.dispatcher.renewed(&held, &lost, until);
        if !lost.is_empty() {
            warn!(
                deliveries = lost.len(),
                "Leases ended before they could be renewed (was kithd stalled?); those deliveries are claimed again."
            );
        }
        Ok(())
    }

    async fn wake_in(&mut self) -> Duration {
        let now = self.clock.now();
        // A channel with no free slot waits for a delivery to finish, not for a time.
        let full = self.dispatcher.full_channels();
        let (deliveries, steps) = match self.ledger_next.take() {
            Some(next) => next,
            None => self
                .ledger
                .call(move |l| {
                    Ok((
                        l.next_due(&full).ok().flatten(),
                        l.next_watch_due().ok().flatten(),
                    ))
                })
                .await
                .unwrap_or((None, None)),
        };
        let next = [
            self.scheduler.next_due().map(|t| t - RECORD_AHEAD),
            deliveries.map(|t| t - CLAIM_AHEAD),
            steps,
        ]
        .into_iter()
        .flatten()
        .min();
        let sleep = match next {
            Some(at) if at <= now => Duration::ZERO,
            Some(at) => (at - now).to_std().unwrap_or(MAX_SLEEP).min(MAX_SLEEP),
            None => MAX_SLEEP,
        };
        match self.health_due {
            true => sleep.min(self.assess_wait().unwrap_or(Duration::ZERO)),
            false => sleep,
        }
    }

    /// Besides systemd: a plan of a directory tells the supervisor whether it is degraded.
    fn tell_status(&self) {
        if let Some(lane) = &self.lane {
            lane.board.set(&lane.id, self.health.is_degraded());
        }
    }

    async fn main_loop(&mut self) -> u8 {
        let Some((mut hup, mut term, mut int)) = signals() else {
            return exit::SOFTWARE;
        };
        let (watchdog_every, mut watchdog) = watchdog(&self.notifier);
        let beat_every = self
            .pinger
            .as_ref()
            .map(|p| p.every)
            .unwrap_or(Duration::from_secs(3600));
        let mut beat_period = beat_every;
        let mut beat = tokio::time::interval(beat_every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let renew_every = (self.lease / 3)
            .to_std()
            .unwrap_or(Duration::from_secs(100));
        let mut renew = tokio::time::interval(renew_every.max(Duration::from_millis(200)));
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut maintain = tokio::time::interval(
            crate::store::MAINTAIN_EVERY
                .to_std()
                .unwrap_or(Duration::from_secs(5)),
        );
        maintain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once: history past its retention goes at start.
        let mut prune = tokio::time::interval(keeping::PRUNE_EVERY);
        prune.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Nothing is lost on a failure: catching up (after a shared ledger comes back,
            // or at the next start) records from the last recorded firing.
            if let Err(e) = self.tick().await
                && let Some(code) = self.survive(e).await
            {
                return code;
            }
            if let Err(e) = self.assess(false).await
                && let Some(code) = self.survive(e).await
            {
                return code;
            }
            let status = self.status_text();
            if status != self.last_status {
                self.notifier.status(&status);
                self.tell_status();
                self.last_status = status;
                self.publish_next();
            }
            // A reload may have changed `[heartbeat] every`.
            let period = self.pinger.as_ref().map(|p| p.every);
            if let Some(p) = period.filter(|p| *p != beat_period) {
                beat_period = p;
                beat = tokio::time::interval_at(tokio::time::Instant::now() + p, p);
                beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            let sleep = self.wake_in().await;
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {}
                _ = hup.recv(), if self.lane.is_none() => self.reload().await,
                _ = term.recv(), if self.lane.is_none() => break,
                _ = int.recv(), if self.lane.is_none() => break,
                order = directory::next_order(&mut self.lane) => match order {
                    directory::Order::Reload(snapshot) => self.apply_reload(*snapshot).await,
                    directory::Order::Refused(problems) => self.refuse_reload(problems).await,
                    directory::Order::Stop => break,
                    directory::Order::Retire => {
                        self.shutdown().await;
                        return self.retire().await;
                    }
                },
                _ = watchdog.tick(), if watchdog_every.is_some() => self.notifier.watchdog(),
                // The first tick is at once: a ping at start.
                _ = beat.tick(), if self.pinger.is_some() => {
                    if let Err(e) = self.assess(true).await
                && let Some(code) = self.survive(e).await
            {
                return code;
            }
                    if let Some(p) = &self.pinger {
                        p.ping(self.health.is_degraded().then(|| self.health.summary()));
                    }
                }
                _ = maintain.tick(), if self.maintains => self.maintain().await,
                _ = prune.tick() => self.prune().await,
                _ = renew.tick() => {
                    if let Err(e) = self.renew_leases().await
                && let Some(code) = self.survive(e).await
            {
                return code;
            }
                }
                Some(done) = self.tasks.join_next(), if !self.tasks.is_empty() => {
                    if let Some(code) = self.gather(done).await {
                        return code;
                    }
                }
            }
        }
        self.shutdown().await;
        exit::OK
    }

    /// Collects the delivery that finished and every other that has, so a burst of
    /// completions costs one pass of the loop (and its ledger queries), not one each; while
    /// others are still in flight, waits a moment for a few more, so a backlog is claimed
    /// in batches rather than one freed slot at a time. The exit code if a failure ends
    /// the daemon.
    async fn gather(
        &mut self,
        first: Result<Result<(), StoreError>, tokio::task::JoinError>,
    ) -> Option<u8> {
        self.health_due = true;
        let until = tokio::time::Instant::now() + GATHER;
        let mut next = Some(first);
        let mut gathered = 0;
        while let Some(result) = next.take() {
            gathered += 1;
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    if let Some(code) = self.survive(e).await {
                        return Some(code);
                    }
                }
                Err(e) => {
                    error!(error = %e, "A delivery task failed; the delivery will be retried when its claim ends.")
                }
            }
            next = match self.tasks.try_join_next() {
                Some(r) => Some(r),
                None if gathered < GATHER_COUNT && !self.tasks.is_empty() => {
                    tokio::time::timeout_at(until, self.tasks.join_next())
                        .await
                        .ok()
                        .flatten()
                }
                None => None,
            };
        }
        None
    }

    /// The ledger failed while running: stop (a restart's catch-up recovers what is lost).
    async fn ledger_failed(&mut self, e: StoreError) -> u8 {
        error!(error = %e, "The delivery ledger failed; stopping so that a restart can recover.");
        self.shutdown().await;
        exit::Error::Ledger(e).code()
    }

    async fn shutdown(&mut self) {
        self.notifier.stopping();
        self.scheduler.shutdown();
        let in_flight = self.tasks.len();
        info!(in_flight, "Stopping.");
        let grace = self.opts.shutdown_grace;
        let drained = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            warn!(
                unfinished = self.tasks.len(),
                "Deliveries still in flight at shutdown; they will be sent again on the next start."
            );
            self.tasks.abort_all();
        }
        info!("Stopped.");
    }
}
