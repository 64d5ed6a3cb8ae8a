//! Group commit of `sent` marks: deliveries that finish while the ledger is writing wait
//! and are written together in the next transaction, on a thread of their own (never on an
//! async worker). Must not decide outcomes: it only writes what the dispatcher says.

use std::sync::mpsc;
use std::sync::{Arc, Weak};

use tokio::sync::oneshot;

use super::{Ledger, SentMark, StoreError};

/// Most marks written in one transaction.
const MAX_GROUP: usize = 4096;

type Waiter = (SentMark, oneshot::Sender<Result<bool, StoreError>>);

/// The writer's handle; the thread ends when the last handle is dropped. It holds the
/// ledger only while writing, so the ledger closes (and SQLite checkpoints and removes its
/// write-ahead log) when the daemon lets go of it.
#[derive(Clone)]
pub(crate) struct GroupCommit {
    tx: mpsc::Sender<Waiter>,
}

impl GroupCommit {
    pub(crate) fn start(ledger: Arc<dyn Ledger>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        std::thread::Builder::new()
            .name("kithd-ledger".into())
            .spawn({
                let ledger = Arc::downgrade(&ledger);
                move || write_groups(ledger, rx)
            })?;
        Ok(Self { tx })
    }

    /// Marks a delivery sent once the transaction holding it has committed; `false` when
    /// its fence no longer holds (as `Ledger::mark_sent`).
    pub(crate) async fn mark_sent(&self, mark: SentMark) -> Result<bool, StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((mark, done))
            .map_err(|_| StoreError::Group("the ledger writer has stopped".into()))?;
        wait.await
            .unwrap_or_else(|_| Err(StoreError::Group("the ledger writer stopped".into())))
    }
}

fn write_groups(ledger: Weak<dyn Ledger>, rx: mpsc::Receiver<Waiter>) {
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(w) => group.push(w),
                Err(_) => break,
            }
        }
        let (marks, waiters): (Vec<SentMark>, Vec<_>) = group.into_iter().unzip();
        let written = match ledger.upgrade() {
            Some(ledger) => ledger.mark_sent_all(&marks),
            None => Err(StoreError::Group("the ledger is closed".into())),
        };
        match written {
            Ok(done) => {
                for (w, ok) in waiters.into_iter().zip(done) {
                    let _ = w.send(Ok(ok));
                }
            }
            Err(e) => {
                let message = e.to_string();
                for w in waiters {
                    let _ = w.send(Err(StoreError::Group(message.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewDelivery, NewFiring, SqliteLedger, State};
    use chrono::{DateTime, Utc};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_marks_are_all_written_and_answered() {
        let dir = tempfile::tempdir().unwrap();
        let ledger: Arc<dyn Ledger> = Arc::new(SqliteLedger::open(dir.path()).unwrap());
        let at: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        let deliveries: Vec<NewDelivery> = (0..300)
            .map(|i| NewDelivery {
                id: format!("d{i:03}"),
                recipient: "self".into(),
                channel: "hook".into(),
                channel_index: 0,
                due: at,
                late: false,
            })
            .collect();
        let firing = NewFiring::new(
            "mood",
            crate::vocab::Kind::Checkin,
            crate::vocab::MAIN_KEY.into(),
            at,
        );
        ledger.record_firings(&[(firing, deliveries)]).unwrap();
        let claimed = ledger
            .claim_due(at, at + chrono::Duration::minutes(5), &mut |_| 1000)
            .unwrap();
        assert_eq!(claimed.len(), 300);
        let group = GroupCommit::start(ledger.clone()).unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for (i, d) in claimed.iter().enumerate() {
            let group = group.clone();
            // Every tenth with a stale fence: refused, and the rest unaffected.
            let mut fence = d.fence();
            if i % 10 == 0 {
                fence.claim += 7;
            }
            tasks.spawn(async move {
                group
                    .mark_sent(SentMark {
                        fence,
                        gateway_id: None,
                        at,
                    })
                    .await
                    .unwrap()
            });
        }
        let mut written = 0;
        while let Some(ok) = tasks.join_next().await {
            written += usize::from(ok.unwrap());
        }
        assert_eq!(written, 270);
        assert_eq!(ledger.in_state(State::Sent, 1000).unwrap().len(), 270);
        assert_eq!(ledger.in_state(State::Pending, 1000).unwrap().len(), 30);
    }
}
