//! Serving the answer server's connections so that it holds under abuse: a header read
//! timeout, a whole-request timeout (body included), an idle keep-alive timeout, and a cap
//! on open connections derived from the file-descriptor limit. At the cap, the oldest idle
//! connection (else the oldest) is shed, so a real answer gets through while a flood of
//! idle, half-header or slow-body connections is held open. Must not handle requests
//! (that is the router in `http`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::IntoResponse;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::AbortHandle;
use tracing::{debug, warn};

/// The server's bounds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// From accepting a connection (or finishing a request) to a complete request head.
    pub header_read: Duration,
    /// For one request, reading its body included.
    pub request: Duration,
    /// A keep-alive connection with no request in flight is closed after this long.
    pub idle: Duration,
    pub max_connections: usize,
}

impl Limits {
    /// The defaults, with the connection cap derived from the descriptor limit (raised to
    /// its hard limit first, where the process may).
    pub(crate) fn from_environment() -> Self {
        let soft = rlimit::increase_nofile_limit(u64::MAX)
            .or_else(|_| rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(s, _)| s))
            .unwrap_or(1024);
        Self {
            header_read: Duration::from_secs(10),
            request: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            max_connections: cap_for(soft),
        }
    }
}

/// Half the descriptors left after a reserve for the ledger, outgoing requests and logs.
pub(crate) fn cap_for(nofile: u64) -> usize {
    (nofile.saturating_sub(64) / 2).clamp(8, 4096) as usize
}

struct Conn {
    /// Requests in flight on it.
    busy: Arc<AtomicUsize>,
    abort: AbortHandle,
}

/// Serves `app` on `listener` until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, app: Router, limits: Limits) {
    let started = Instant::now();
    let conns: Arc<std::sync::Mutex<BTreeMap<u64, Conn>>> = Arc::default();
    let app = app.layer(axum::middleware::from_fn(
        move |req: Request<Body>, next: axum::middleware::Next| async move {
            match tokio::time::timeout(limits.request, next.run(req)).await {
                Ok(r) => r,
                Err(_) => (StatusCode::REQUEST_TIMEOUT, "request timed out").into_response(),
            }
        },
    ));
    let mut seq = 0u64;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors or a transient network error: wait, don't spin.
                warn!(error = %e, "The answer server could not accept a connection.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        seq += 1;
        let id = seq;
        {
            let mut open = conns.lock().unwrap_or_else(|p| p.into_inner());
            if open.len() >= limits.max_connections {
                let victim = open
                    .iter()
                    .find(|(_, c)| c.busy.load(Ordering::Relaxed) == 0)
                    .or_else(|| open.iter().next())
                    .map(|(k, _)| *k);
                if let Some(k) = victim.and_then(|k| open.remove(&k)) {
                    k.abort.abort();
                    debug!("Answer server at its connection cap; closed the oldest idle one.");
                }
            }
        }
        let busy = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(AtomicU64::new(started.elapsed().as_millis() as u64));
        let service = {
            let (busy, last) = (busy.clone(), last.clone());
            let inner = hyper_util::service::TowerToHyperService::new(app.clone());
            hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let (busy, last) = (busy.clone(), last.clone());
                busy.fetch_add(1, Ordering::Relaxed);
                let call = hyper::service::Service::call(&inner, req);
                async move {
                    let r = call.await;
                    busy.fetch_sub(1, Ordering::Relaxed);
                    last.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                    r
                }
            })
        };
        let conns_for_task = conns.clone();
        let busy_watch = busy.clone();
        // Held while the task is spawned and registered, so that a connection ending at
        // once can't remove itself before it is registered.
        let mut open = conns.lock().unwrap_or_else(|p| p.into_inner());
        let task = tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            let idle = async {
                loop {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let quiet = started.elapsed().as_millis() as u64 - last.load(Ordering::Relaxed);
                    if busy_watch.load(Ordering::Relaxed) == 0
                        && Duration::from_millis(quiet) >= limits.idle
                    {
                        return;
                    }
                }
            };
            tokio::select! {
                r = conn => {
                    if let Err(e) = r {
                        debug!(error = %e, "An answer-server connection ended with an error.");
                    }
                }
                _ = idle => debug!("Closed an idle answer-server connection."),
            }
            conns_for_task
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
        open.insert(
            id,
            Conn {
                busy,
                abort: task.abort_handle(),
            },
        );
    }
}
