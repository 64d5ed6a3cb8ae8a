//! Starting a daemon: a plan run on its own (loaded, its ledger opened, its own answer
//! server), or one plan of a directory (handed its snapshot, ledger and answer desk by the
//! supervisor). Both then release stale claims, catch up, schedule and report ready the
//! same way. Must not decide what a directory runs (that is `directory`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tracing::{error, info, warn};

use super::answer_server::{self, Slot};
use super::due_heap::HeapScheduler;
use super::ledger::{lease, open_ledger};
use super::notify::Notifier;
use super::{Daemon, Options, catch_up, directory, heartbeat, log_problems, logging, not_starting};
use crate::dispatch::worker::{Dispatcher, Snapshot};
use crate::exit;
use crate::plugin::SecretStore;
use crate::plugin::host::{Host, Timeouts};
use crate::store::{AsyncLedger, Ledger};

/// Runs the daemon until SIGTERM/SIGINT; returns the exit code. `opts.plan` is a plan
/// file, or a directory of plans.
pub fn run(opts: Options) -> u8 {
    logging::init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(source) => {
            let e = exit::Error::Setup {
                what: "could not start the async runtime",
                source,
            };
            return not_starting(e, "Could not start the async runtime.");
        }
    };
    if opts.plan.is_dir() {
        return rt.block_on(directory::run(opts));
    }
    rt.block_on(Daemon::start(opts))
}

/// What a daemon starts from.
pub(super) struct Parts {
    pub opts: Options,
    pub snapshot: Snapshot,
    pub ledger: Arc<dyn Ledger>,
    pub shared: bool,
    pub answer: Slot,
    pub lane: Option<directory::Lane>,
    pub started: Instant,
}

impl Daemon {
    /// A plan run on its own.
    async fn start(opts: Options) -> u8 {
        let started = Instant::now();
        let store = SecretStore::from_env();
        let loaded = match crate::load::load(&crate::load::Options {
            plan: &opts.plan,
            plugin_dir: &opts.plugin_dir,
            secrets: crate::load::Secrets::Check(&store),
            now: opts.clock.now(),
            cache: Some(&opts.state_dir),
        }) {
            Ok(l) => l,
            Err(failure) => {
                log_problems(&failure);
                error!(plan = %opts.plan.display(), "The plan can't be loaded (`kithd check` shows the same problems); not starting.");
                return exit::Error::NotStarting(failure).code();
            }
        };
        // The plan's text is needed only for the warnings' carets: it goes now, not when
        // the daemon stops (a large plan's text is tens of megabytes).
        let crate::load::Loaded {
            snapshot,
            source,
            warnings,
        } = loaded;
        for w in crate::load::one_lines(&source, &warnings) {
            warn!("{w}");
        }
        drop((source, warnings));
        let (ledger, shared) = match open_ledger(&opts).await {
            Ok(opened) => opened,
            Err(e) => {
                let e = exit::Error::StateDir(e);
                return not_starting(e, "The delivery ledger can't be opened; not starting.");
            }
        };
        Daemon::begin(Parts {
            opts,
            snapshot,
            ledger,
            shared,
            answer: Slot::Own(None),
            lane: None,
            started,
        })
        .await
    }

    /// Releases stale claims, catches up, schedules, takes answers, reports ready and runs
    /// the loop until told to stop; the exit code.
    pub(super) async fn begin(parts: Parts) -> u8 {
        let Parts {
            opts,
            snapshot,
            ledger,
            shared,
            mut answer,
            lane,
            started,
        } = parts;
        let ledger = AsyncLedger::new(ledger);
        let clock = opts.clock.clone();
        let now = clock.now();
        let released = match ledger.call(move |l| l.release_claims(now)).await {
            Ok(n) => n,
            Err(e) => {
                let e = exit::Error::StateDir(e);
                return not_starting(e, "The delivery ledger can't be written; not starting.");
            }
        };
        if released > 0 {
            warn!(
                deliveries = released,
                "Deliveries were in flight when kithd last stopped; sending them again."
            );
        }
        let plan = snapshot.plan.clone();
        let caught_up = ledger
            .call(move |l| catch_up::catch_up(&plan, l, now))
            .await;
        if let Err(e) = caught_up {
            let e = exit::Error::StateDir(e);
            return not_starting(e, "The delivery ledger can't be written; not starting.");
        }
        let mut scheduler = HeapScheduler::with_capacity(snapshot.plan.items.len());
        scheduler.fill(&snapshot.plan.items, now);
        let secrets = SecretStore::from_env().for_plan(snapshot.plan.scope.as_deref());
        let host = Host::new(
            secrets,
            Timeouts {
                connect: Duration::from_secs(10),
                total: Duration::from_secs(120),
            },
        )
        .with_clock(clock.clone());
        let items = snapshot.plan.items.len();
        let wake = Arc::new(tokio::sync::Notify::new());
        if let Err(e) = answer_server::reconcile(
            &mut answer,
            &snapshot,
            ledger.clone(),
            clock.clone(),
            wake.clone(),
        )
        .await
        {
            let e = exit::Error::AnswerServer(e);
            return not_starting(e, "The answer server can't start; not starting.");
        }
        let pinger = snapshot.plan.heartbeat.as_ref().map(heartbeat::Pinger::new);
        let dispatcher = match Dispatcher::new(
            ledger.blocking().clone(),
            clock.clone(),
            host,
            Arc::new(snapshot),
        ) {
            Ok(d) => Arc::new(d),
            Err(source) => {
                let e = exit::Error::Setup {
                    what: "could not start a thread",
                    source,
                };
                return not_starting(e, "Could not start the ledger writer thread; not starting.");
            }
        };
        let notifier = match lane {
            Some(_) => Notifier::silent(),
            None => Notifier::from_env(),
        };
        let mut daemon = Daemon {
            maintains: shared && lane.is_none(),
            opts,
            clock,
            ledger,
            dispatcher,
            scheduler,
            tasks: JoinSet::new(),
            notifier,
            last_status: String::new(),
            wake,
            lease: lease(shared),
            term: None,
            reload_refused: None,
            health: Default::default(),
            assessed_at: None,
            health_due: false,
            ledger_next: None,
            pinger,
            answer,
            lane,
        };
        // A previous run's reasons are not this run's.
        let _ = crate::health::publish_own(&daemon.opts.state_dir, &[]);
        if let Err(e) = daemon.assess(true).await {
            let e = exit::Error::StateDir(e);
            return not_starting(e, "The delivery ledger can't be read; not starting.");
        }
        let status = daemon.status_text();
        daemon.notifier.ready(&status);
        daemon.tell_status();
        daemon.last_status = status;
        daemon.publish_next();
        daemon.publish_zone();
        info!(items, startup_ms = started.elapsed().as_millis() as u64, plan = %daemon.opts.plan.display(), "Ready.");
        daemon.main_loop().await
    }
}
