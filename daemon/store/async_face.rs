//! The ledger's async face: every call runs on tokio's blocking pool, so a slow disk or a
//! busy database holds a blocking thread, never an async worker (the runtime loop, the
//! dispatcher's tasks, the answer server's handlers). Owns nothing but the hop.

use std::sync::Arc;

use super::{Ledger, StoreError};

/// A ledger for async code. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AsyncLedger {
    inner: Arc<dyn Ledger>,
}

impl AsyncLedger {
    pub(crate) fn new(inner: Arc<dyn Ledger>) -> Self {
        Self { inner }
    }

    /// The ledger itself, for threads of their own (the group commit) and start-up checks.
    pub(crate) fn blocking(&self) -> &Arc<dyn Ledger> {
        &self.inner
    }

    /// Runs `f` against the ledger on the blocking pool. A panic in `f` comes back as an
    /// error instead of unwinding into the caller.
    pub(crate) async fn call<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&dyn Ledger) -> Result<R, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(inner.as_ref()))
            .await
            .map_err(|e| StoreError::Call(e.to_string()))?
    }
}
