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

use crate::answer::http::{AnswerState, Keys, router};
use crate::answer::{Gateway, Replies};
use crate::clock::Clock;
use crate::dispatch::worker::Snapshot;
use crate::plugin::SecretStore;
use crate::plugin::host::{Host, Timeouts};
use crate::store::AsyncLedger;

pub(crate) struct AnswerServer {
    /// As the plan says (`127.0.0.1:0` asks the system for a free port).
    pub listen: SocketAddr,
    /// Where it listens.
    pub bound: SocketAddr,
    state: Arc<AnswerState>,
    task: JoinHandle<()>,
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
        language: plan.language.clone(),
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
            .get(crate::load::INBOUND_TOKEN)
            .ok()
            .map(|s| s.expose().to_string()),
        replies: Arc::new(replies),
        zone: plan.person.timezone,
    })
}

impl AnswerServer {
    /// Binds `listen` and serves; fails only when it can't bind.
    pub(crate) async fn start(
        listen: SocketAddr,
        keys: Keys,
        ledger: AsyncLedger,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let bound = listener.local_addr()?;
        let clock_for_host = clock.clone();
        let state = Arc::new(AnswerState {
            ledger,
            clock,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            wake,
            host: Host::new(SecretStore::from_env(), Timeouts::default())
                .with_clock(clock_for_host),
            told: Default::default(),
        });
        let app = router(state.clone());
        let limits = crate::answer::serve::Limits::from_environment();
        info!(listen = %bound, max_connections = limits.max_connections, "Answer server listening.");
        let task = tokio::spawn(crate::answer::serve::serve(listener, app, limits));
        Ok(Self {
            listen,
            bound,
            state,
            task,
        })
    }

    pub(crate) fn stop(self) {
        self.task.abort();
        info!(listen = %self.bound, "Answer server stopped.");
    }
}

/// Applies a reloaded snapshot's `[server]` to `current`. On error nothing changed.
pub(crate) async fn reconcile(
    current: &mut Option<AnswerServer>,
    snapshot: &Snapshot,
    ledger: AsyncLedger,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
) -> Result<(), String> {
    let now = clock.now();
    let wanted = snapshot.plan.server.as_ref().map(|s| s.listen);
    match (current.as_ref(), wanted, keys_for(snapshot)) {
        (Some(server), Some(listen), Some(keys)) if server.listen == listen => {
            server.state.replace_keys(keys, now);
            Ok(())
        }
        (_, Some(listen), Some(mut keys)) => {
            if let Some(old) = current.as_ref() {
                keys.links = keys.links.succeeding(&old.state.keys().links, now);
            }
            let server = AnswerServer::start(listen, keys, ledger, clock, wake)
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
