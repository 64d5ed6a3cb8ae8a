//! The delivery ledger: every firing and delivery, durably, behind a narrow trait so that a
//! server database (PostgreSQL, several kithd instances sharing one queue) can be added
//! later. Owns persistence only; it must not decide when to fire, retry or fall back.

mod schema;
mod sqlite;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

pub use sqlite::SqliteLedger;

/// A firing to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFiring {
    pub item: String,
    pub kind: String,
    /// `main`, `reminder:SECONDS` or `followup`.
    pub purpose: String,
    pub scheduled: DateTime<Utc>,
}

/// A delivery to record with its firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub id: String,
    pub recipient: String,
    pub channel: String,
    /// Position of `channel` in the recipient's `reach` list.
    pub channel_index: u32,
    /// When it is due (after quiet hours).
    pub due: DateTime<Utc>,
    /// Delivered as a catch-up after downtime.
    pub late: bool,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pending,
    Sent,
    /// Failed permanently on this channel; a later channel may have taken over.
    Failed,
    /// Every channel failed.
    Dead,
    /// No longer wanted (its item left the plan, or it came too late to be useful).
    Cancelled,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Dead => "dead",
            State::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => State::Pending,
            "sent" => State::Sent,
            "failed" => State::Failed,
            "dead" => State::Dead,
            "cancelled" => State::Cancelled,
            _ => return None,
        })
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Delivery {
    pub id: String,
    pub item: String,
    pub kind: String,
    pub purpose: String,
    pub scheduled: DateTime<Utc>,
    pub recipient: String,
    pub channel: String,
    pub channel_index: u32,
    #[serde(serialize_with = "ser_state")]
    pub state: State,
    pub due: DateTime<Utc>,
    pub attempts: u32,
    pub late: bool,
    pub last_error: Option<String>,
    pub gateway_id: Option<String>,
    pub updated: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

fn ser_state<S: serde::Serializer>(s: &State, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

/// A missed firing (recorded, not delivered).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Missed {
    pub item: String,
    pub kind: String,
    pub purpose: String,
    pub scheduled: DateTime<Utc>,
}

/// Filters for `history`.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub since: Option<DateTime<Utc>>,
    pub item: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("can't create the state directory `{path}`: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another kithd is already running with state directory `{0}`")]
    Locked(PathBuf),
    #[error("the ledger `{path}` can't be opened: {message}")]
    Open { path: PathBuf, message: String },
    #[error(
        "the ledger `{path}` is damaged ({message}); move it aside to start a new one, history in it will not be used"
    )]
    Corrupt { path: PathBuf, message: String },
    #[error(
        "the ledger `{path}` was written by a newer kithd (schema {found}, this kithd knows {known})"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("the ledger failed: {0}")]
    Sql(#[from] rusqlite::Error),
}

/// The ledger operations kithd needs. Implementations must make `record_firing`
/// idempotent (a firing or delivery recorded twice is stored once).
pub trait Ledger: Send + Sync {
    /// Records firings and their deliveries in one transaction. Returns the ids of
    /// deliveries that were new (already-recorded ones are not returned).
    fn record_firings(
        &self,
        firings: &[(NewFiring, Vec<NewDelivery>)],
    ) -> Result<Vec<String>, StoreError>;
    /// Records a firing that was missed (not delivered) during downtime.
    fn record_missed(&self, firing: &NewFiring) -> Result<(), StoreError>;
    /// The latest recorded firing instant per item (the catch-up cursor).
    fn last_scheduled(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError>;
    /// Claims pending deliveries due at or before `now`, oldest first: each is leased until
    /// `lease_until` (its due time moves there), so it is not handed out twice. A
    /// delivery whose outcome is never recorded comes back when the lease ends.
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// At start: every claim left by a previous run (in flight at a crash) is due now.
    fn release_claims(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;
    /// The earliest due time of any pending delivery.
    fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    fn mark_sent(
        &self,
        id: &str,
        gateway_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Schedules another attempt on the same channel.
    fn mark_retry(&self, id: &str, due: DateTime<Utc>, error: &str) -> Result<(), StoreError>;
    /// Marks the delivery failed on its channel and, in the same transaction, records the
    /// delivery on the next channel, or dead-letters it when there is none.
    fn fail_over(
        &self,
        id: &str,
        error: &str,
        next: Option<&NewDelivery>,
    ) -> Result<(), StoreError>;
    fn cancel(&self, id: &str, reason: &str) -> Result<(), StoreError>;
    /// Deliveries in a state, newest first.
    fn in_state(&self, state: State, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    fn history(&self, filter: &HistoryFilter) -> Result<Vec<Delivery>, StoreError>;
    fn missed(&self, filter: &HistoryFilter) -> Result<Vec<Missed>, StoreError>;
    /// The most recent error per channel.
    fn last_errors(&self) -> Result<Vec<(String, DateTime<Utc>, String)>, StoreError>;
}
