//! The answer server's lifecycle: started with the plan's `[server]`, and on reload given
//! new keys (old links stay valid until they expire), rebound when `listen` changes, started
//! when `[server]` is added and stopped when it is removed. A change that can't be applied
//! (the port is taken) is reported before anything is swapped, so the caller keeps the old
//! plan and server. Must not handle requests (that is `answer::http`).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tracing::info;

use crate::answer::front::{Front, router};
use crate::answer::http::{AnswerState, Keys};
use crate::answer::{Gateway, Replies};
use crate::clock::Clock;
use crate::dispatch::worker::Snapshot;
use crate::plugin::SecretStore;
use crate::store::AsyncLedger;

pub(crate) struct AnswerServer {
    /// As the plan says (`127.0.0.1:0` asks the system for a free port).
    pub listen: SocketAddr,
    /// Where it listens.
    pub bound: SocketAddr,
    /// Its desks: one (`""`) for a plan run on its own, one per plan of a directory.
    pub front: Arc<Front>,
    task: JoinHandle<()>,
}

/// Where a daemon's answers are taken: a server of its own (a plan run on its own), or a
/// desk at the server every plan of a directory shares.
pub(crate) enum Slot {
    Own(Option<AnswerServer>),
    Shared { front: Arc<Front>, plan: String },
}

/// The keys a snapshot's answer server checks against, if it has `[server]`.
pub(crate) fn keys_for(snapshot: &Snapshot) -> Option<Keys> {
    let plan = &snapshot.plan;
    let replies = Replies {
        registry: snapshot.registry.clone(),
        gateways: snapshot
            .channels
            .channels
            .iter()
            .filter(|(_, c)| c.plugin.receives())
            .map(|(id, c)| {
                let gateway = Gateway {
                    plugin: c.plugin.clone(),
                    settings: c.settings.clone(),
                    grant: c.grant.clone(),
                    address: c.address.clone(),
                };
                (id.clone(), gateway)
            })
            .collect(),
        public_url: plan.server.as_ref()?.public_url.clone(),
        scope: plan.scope.clone(),
        person_channel: plan.person.reach.first().and_then(|id| {
            let c = snapshot.channels.channels.get(id)?;
            let gateway = Gateway {
                plugin: c.plugin.clone(),
                settings: c.settings.clone(),
                grant: c.grant.clone(),
                address: c.address.clone(),
            };
            let address = c
                .address
                .as_ref()
                .and_then(|f| plan.person.addresses.get(f).cloned());
            Some((gateway, address))
        }),
        language: plan.language.clone(),
        person_name: plan.person.name.clone(),
        person: plan.person.addresses.clone(),
        contacts: plan
            .contacts
            .values()
            .map(|c| (c.id.clone(), c.addresses.clone()))
            .collect(),
    };
    Some(Keys {
        links: snapshot.links.clone()?,
        inbound_token: SecretStore::from_env()
            .for_plan(plan.scope.as_deref())
            .get(crate::load::INBOUND_TOKEN)
            .ok()
            .map(|s| s.expose().to_string()),
        replies: Arc::new(replies),
        plan: plan.clone(),
    })
}

impl AnswerServer {
    /// Binds `listen` and serves `front`; fails only when it can't bind.
    pub(crate) async fn start(listen: SocketAddr, front: Arc<Front>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let bound = listener.local_addr()?;
        let app = router(front.clone());
        let limits = crate::answer::serve::Limits::from_environment();
        info!(listen = %bound, max_connections = limits.max_connections, "Answer server listening.");
        let task = tokio::spawn(crate::answer::serve::serve(listener, app, limits));
        Ok(Self {
            listen,
            bound,
            front,
            task,
        })
    }

    pub(crate) fn stop(self) {
        self.task.abort();
        info!(listen = %self.bound, "Answer server stopped.");
    }
}

/// Applies a (re)loaded snapshot's `[server]` to `slot`. On error nothing changed.
pub(crate) async fn reconcile(
    slot: &mut Slot,
    snapshot: &Snapshot,
    ledger: AsyncLedger,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
) -> Result<(), String> {
    let now = clock.now();
    let keys = keys_for(snapshot);
    let current = match slot {
        Slot::Own(current) => current,
        Slot::Shared { front, plan } => {
            // The shared server follows the directory, not one plan's `[server]`.
            set_desk(front, plan, keys, ledger, clock, wake, now);
            return Ok(());
        }
    };
    let wanted = snapshot.plan.server.as_ref().map(|s| s.listen);
    match (current.as_ref(), wanted, keys) {
        (Some(server), Some(listen), Some(keys)) if server.listen == listen => {
            set_desk(&server.front, "", Some(keys), ledger, clock, wake, now);
            Ok(())
        }
        (_, Some(listen), Some(keys)) => {
            let front = Arc::new(Front::default());
            if let Some(old) = current.as_ref() {
                front.set("", old.front.desk(""));
            }
            set_desk(&front, "", Some(keys), ledger, clock, wake, now);
            let server = AnswerServer::start(listen, front)
                .await
                .map_err(|e| format!("the answer server can't listen on {listen}: {e}"))?;
            if let Some(old) = current.replace(server) {
                old.stop();
            }
            Ok(())
        }
        (_, None, _) | (_, _, None) => {
            if let Some(old) = current.take() {
                old.stop();
            }
            Ok(())
        }
    }
}

/// Gives `plan` its desk with `keys` (links signed with a replaced key stay valid until
/// they expire), or closes it when the plan has no `[server]`.
fn set_desk(
    front: &Front,
    plan: &str,
    keys: Option<Keys>,
    ledger: AsyncLedger,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    now: chrono::DateTime<chrono::Utc>,
) {
    match (front.desk(plan), keys) {
        (Some(desk), Some(keys)) => desk.replace_keys(keys, now),
        (None, Some(keys)) => {
            let desk = AnswerState::new(ledger, clock, keys, wake);
            front.set(plan, Some(Arc::new(desk)));
        }
        (_, None) => front.set(plan, None),
    }
}
