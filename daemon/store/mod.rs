//! The delivery ledger: every firing and delivery, durably, behind a narrow trait so that a
//! server database (PostgreSQL, several kithd instances sharing one queue) can be added
//! later. Owns persistence only; it must not decide when to fire, retry or fall back.

mod async_face;
#[cfg(test)]
mod claim_model;
#[cfg(test)]
pub(crate) mod conformance;
mod copy;
mod group;
mod place;
mod postgres;
mod rules;
mod schema;
#[cfg(test)]
mod shared_tests;
mod sqlite;
pub(crate) mod state_dir;

use std::path::PathBuf;

use chrono::{DateTime, Utc};

pub(crate) use async_face::AsyncLedger;
pub(crate) use copy::sqlite_to_postgres;
pub(crate) use group::GroupCommit;
pub(crate) use place::Place;
pub(crate) use postgres::{MAINTAIN_EVERY, PgLedger};
pub(crate) use sqlite::SqliteLedger;
pub(crate) use state_dir::write_file as write_state_file;

/// Makes the state directory (0700) for what the daemon publishes, when the ledger is
/// elsewhere.
pub(crate) fn prepare_state_dir(dir: &std::path::Path) -> Result<(), StoreError> {
    if let Some(warning) = state_dir::prepare(dir)? {
        tracing::warn!("{warning}");
    }
    Ok(())
}

pub(crate) use crate::vocab::{Kind, StepAction};

/// A firing to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewFiring {
    pub item: String,
    pub kind: Kind,
    /// `main`, `reminder:SECONDS` or `followup`.
    pub purpose: String,
    pub scheduled: DateTime<Utc>,
    /// When an answer is due (check-ins and doses that expect one).
    pub deadline: Option<DateTime<Utc>>,
    /// Nag and escalation steps to take unless an answer arrives first.
    pub watches: Vec<NewWatch>,
    /// How long the person may snooze it in all (check-ins and doses that expect an answer).
    pub snooze_cap: Option<chrono::Duration>,
    /// Answers the person wants their contacts told about (`alert_on`).
    pub alert_on: Option<crate::vocab::AlertOn>,
}

impl NewFiring {
    pub(crate) fn new(item: &str, kind: Kind, purpose: String, scheduled: DateTime<Utc>) -> Self {
        Self {
            item: item.to_string(),
            kind,
            purpose,
            scheduled,
            deadline: None,
            watches: Vec::new(),
            snooze_cap: None,
            alert_on: None,
        }
    }
}

impl rusqlite::ToSql for Kind {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for Kind {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        v.as_str()?
            .parse()
            .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

impl rusqlite::ToSql for StepAction {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for StepAction {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        Self::parse(s).ok_or_else(|| {
            rusqlite::types::FromSqlError::Other(format!("unknown step action `{s}`").into())
        })
    }
}

/// A step to take later unless the firing is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewWatch {
    pub action: StepAction,
    pub step: u32,
    pub recipient: String,
    pub due: DateTime<Utc>,
}

/// A due step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Watch {
    pub id: i64,
    pub item: String,
    pub kind: Kind,
    pub scheduled: DateTime<Utc>,
    pub action: StepAction,
    pub step: u32,
    pub recipient: String,
    pub due: DateTime<Utc>,
    /// The firing was answered in a way the person asked their contacts to hear about: an
    /// escalation step is then such an alert (`Purpose::Heard`).
    pub heard: bool,
}

/// A firing that expects (or expected) an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpenFiring {
    pub id: i64,
    pub item: String,
    pub kind: Kind,
    pub scheduled: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    pub answered: bool,
}

/// What recording an answer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AnswerResult {
    /// The firing already had an answer; nothing changed.
    Already,
    /// Recorded; `all_clear_to` lists the contacts who had been alerted and now get an
    /// all-clear. `heard`: an answer the person asked their contacts to be told about
    /// (`alert_on`): the escalation goes ahead at once, and nobody gets an all-clear.
    Recorded {
        late: bool,
        all_clear_to: Vec<String>,
        heard: bool,
    },
}

/// What a snooze did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SnoozeResult {
    /// Snoozed: sent again at `until`; the deadline and any steps moved by `delay` (less
    /// than asked when the cap cut it).
    Snoozed {
        until: DateTime<Utc>,
        delay: chrono::Duration,
        /// What is left of the cap after this one.
        left: chrono::Duration,
    },
    /// The firing's snoozes already add up to its cap (or it can't be snoozed).
    CapReached,
}

/// One journal line: a check-in or dose and its answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct JournalEntry {
    pub item: String,
    pub kind: Kind,
    pub scheduled: DateTime<Utc>,
    /// `dispatched` or `missed` (kithd was down).
    pub outcome: String,
    pub value: Option<String>,
    pub late: bool,
    pub via: Option<String>,
    pub answered: Option<DateTime<Utc>>,
    /// The note given with the answer (`kithd ack --note`).
    pub note: Option<String>,
    /// How many times it was snoozed.
    pub snoozes: u32,
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NewDelivery {
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
pub(crate) enum State {
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
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Sent => "sent",
            State::Failed => "failed",
            State::Dead => "dead",
            State::Cancelled => "cancelled",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
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
pub(crate) struct Delivery {
    pub id: String,
    pub item: String,
    pub kind: Kind,
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
    /// The fencing token of the latest claim: it grows by one with every claim.
    #[serde(skip)]
    pub claim: i64,
    /// Claimed again after a claim that ended without an outcome (its instance stopped, or
    /// its lease ran out mid-send): the first attempt may have reached the gateway, so the
    /// recipient may have it twice.
    pub uncertain: bool,
    /// A message to a contact: the consent it relied on (`in the plan, 2026-11-01`, or
    /// `yes by sms, 2026-12-02`), noted when it was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consent: Option<String>,
}

impl Delivery {
    /// The fence that must still hold for this claim's outcome to be recorded.
    pub(crate) fn fence(&self) -> Fence {
        Fence {
            id: self.id.clone(),
            claim: self.claim,
        }
    }
}

/// Facts from the ledger that make kithd degraded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HealthFacts {
    pub dead_letters: u64,
    /// Channel ids, sorted.
    pub failing_channels: Vec<String>,
}

/// One claim of a delivery: its id and the claim's fencing token. An outcome is recorded
/// only while the delivery is pending under this very claim, so an owner whose lease ran
/// out and was taken over can't complete (or fail) what the new owner now holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Fence {
    pub id: String,
    pub claim: i64,
}

/// A delivery the gateway accepted, to be marked sent under its fence.
#[derive(Debug, Clone)]
pub(crate) struct SentMark {
    pub fence: Fence,
    pub gateway_id: Option<String>,
    pub at: DateTime<Utc>,
}

fn ser_state<S: serde::Serializer>(s: &State, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_str(s.as_str())
}

/// A missed firing (recorded, not delivered).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Missed {
    pub item: String,
    pub kind: Kind,
    pub purpose: String,
    pub scheduled: DateTime<Utc>,
    /// `missed` (kithd was not running) or `paused`.
    pub outcome: String,
}

/// Filters for `history`.
#[derive(Debug, Clone, Default)]
pub(crate) struct HistoryFilter {
    pub since: Option<DateTime<Utc>>,
    pub item: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("can't create the state directory `{path}`: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("another kithd is already running with state directory `{0}`")]
    Locked(PathBuf),
    #[error("`{path}` is not safe to use: {message}")]
    Insecure { path: PathBuf, message: String },
    #[error(
        "`{0}` is read-only: kithd needs to write its ledger there (check the state directory's permissions, or `StateDirectory=` under systemd)"
    )]
    ReadOnly(PathBuf),
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
    #[error("the PostgreSQL ledger failed: {0}")]
    Postgres(String),
    /// The shared database can't be reached now (restarting, a network blip): worth
    /// waiting for, unlike a failure of the ledger itself.
    #[error("the PostgreSQL ledger can't be reached: {0}")]
    Unreachable(String),
    /// A grouped write failed: every delivery in the group gets this.
    #[error("the ledger failed: {0}")]
    Group(String),
    /// A call on the blocking pool panicked or was cancelled.
    #[error("the ledger failed: a call did not finish ({0})")]
    Call(String),
}

impl StoreError {
    /// Whether waiting may help (a shared database restarting), as opposed to a ledger
    /// that is broken or full.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unreachable(_))
    }
}

/// The delivery queue: firings recorded once, deliveries claimed under leases with fencing
/// tokens, and their outcomes. Implementations must make `record_firings` idempotent (a
/// firing or delivery recorded twice is stored once).
pub(crate) trait Queue: Send + Sync {
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
    /// Claims pending deliveries due at or before `now`, oldest first within each channel
    /// (channels have their own slots, so no order across them), but no more per channel
    /// than `room` says it has free slots for (asked once per channel with due
    /// deliveries), so no more wait under a lease than the runtime can hold (the rest of
    /// that channel's deliveries stay unclaimed). Each claimed delivery is leased until
    /// `lease_until` (its due time in the ledger moves there; the `Delivery` returned keeps
    /// the time it was due, which may be a moment after `now`) with a new fencing token;
    /// one whose lease ends without an outcome or a renewal comes back. A shared ledger
    /// reads due times by the database's clock, as far ahead as `now` is of this machine's.
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        room: &mut dyn FnMut(&str) -> usize,
    ) -> Result<Vec<Delivery>, StoreError>;
    /// Extends the leases still held under these fences to `lease_until`; a lease that has
    /// already ended (at `now`) is not renewed, since another claim may take it. Returns
    /// the fences that were not renewed.
    fn renew(
        &self,
        held: &[Fence],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Fence>, StoreError>;
    /// At start: every claim left by a previous run (in flight at a crash) is due now.
    fn release_claims(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;
    /// The earliest due time of any pending delivery, leaving out the channels named
    /// (those with no free slot: their deliveries wait for a slot, not for a time).
    fn next_due(&self, except_channels: &[String]) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// The outcome-recording calls below return `false`, changing nothing, when the fence
    /// no longer holds (the lease was taken over, or the delivery is no longer pending).
    fn mark_sent(
        &self,
        fence: &Fence,
        gateway_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// `mark_sent` for many deliveries in one transaction (group commit), one answer each.
    fn mark_sent_all(&self, marks: &[SentMark]) -> Result<Vec<bool>, StoreError> {
        marks
            .iter()
            .map(|m| self.mark_sent(&m.fence, m.gateway_id.as_deref(), m.at))
            .collect()
    }
    /// Schedules another attempt on the same channel; `maybe_sent` when the attempt may
    /// have reached the gateway (no answer in time), which makes the delivery uncertain.
    fn mark_retry(
        &self,
        fence: &Fence,
        due: DateTime<Utc>,
        error: &str,
        maybe_sent: bool,
    ) -> Result<bool, StoreError>;
    /// Marks the delivery failed on its channel and, in the same transaction, records the
    /// delivery on the next channel, or dead-letters it when there is none.
    fn fail_over(
        &self,
        fence: &Fence,
        error: &str,
        next: Option<&NewDelivery>,
    ) -> Result<bool, StoreError>;
    fn cancel(&self, fence: &Fence, reason: &str) -> Result<bool, StoreError>;
    /// Notes the consent a message to a contact relies on, before it is sent.
    fn note_consent(&self, id: &str, consent: &str) -> Result<(), StoreError>;
    /// The plan left its directory: its pending deliveries (except those another
    /// instance is sending under a live lease) and its pending steps are cancelled, with
    /// `reason` recorded. How many deliveries and steps.
    fn retire(&self, reason: &str) -> Result<(usize, usize), StoreError>;
    /// Shared ledgers: stands for (or keeps) the maintenance leadership for `ttl`; the
    /// term held after, if any. A ledger only one daemon uses has no leader.
    fn elect(&self, _ttl: chrono::Duration) -> Result<Option<Term>, StoreError> {
        Ok(None)
    }
    /// The leader's maintenance, fenced by its `term` (a deposed leader changes nothing).
    fn maintain(&self, _term: &Term) -> Result<Maintenance, StoreError> {
        Ok(Maintenance::default())
    }
}

/// A leader's term: who, and since when. Maintenance checks both, so an instance whose
/// leadership lapsed and was taken over can't act on an old term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Term {
    pub owner: String,
    pub elected_at: DateTime<Utc>,
}

/// What one round of maintenance did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Maintenance {
    /// Claims whose lease ended without an outcome, released (and marked uncertain).
    pub rescued: u64,
    /// Used answer-link and gateway-message nonces older than `NONCES_KEPT`, removed.
    pub pruned: u64,
    /// Deliveries dead-lettered since the last round.
    pub dead_lettered: u64,
}

/// Escalation steps (nags and alerts to contacts), answers, and single-use answer links.
pub(crate) trait Steps: Send + Sync {
    /// Pending nag/escalation steps due at or before `now`.
    fn due_watches(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Watch>, StoreError>;
    fn next_watch_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Takes a due step in one transaction: unless its firing has been answered, records the
    /// step's firing and deliveries; either way the step is closed. Returns whether it went
    /// ahead. A restart neither repeats nor drops a step.
    fn run_watch(&self, id: i64, step: &(NewFiring, Vec<NewDelivery>)) -> Result<bool, StoreError>;
    fn cancel_watch(&self, id: i64) -> Result<(), StoreError>;
    /// The latest dispatched firing (own schedule) of `item` — or, with `None`, of any item
    /// of `kinds` — scheduled at or before `now`, that has no answer yet.
    fn open_firing(
        &self,
        item: Option<&str>,
        kinds: &[Kind],
        now: DateTime<Utc>,
    ) -> Result<Option<OpenFiring>, StoreError>;
    /// The own-schedule firing of `item` at `scheduled`.
    fn find_firing(
        &self,
        item: &str,
        scheduled: DateTime<Utc>,
    ) -> Result<Option<OpenFiring>, StoreError>;
    /// Records an answer in one transaction: cancels pending steps and unsent alerts, and
    /// queues an all-clear (`vocab::all_clear_id`) to every contact who was alerted.
    fn answer(
        &self,
        firing: &OpenFiring,
        value: &str,
        note: Option<&str>,
        via: &str,
        now: DateTime<Utc>,
    ) -> Result<AnswerResult, StoreError>;
    /// Snoozes an open firing in one transaction: journals it, moves its deadline and pending
    /// steps by `delay` (cut to what is left of the firing's cap), and queues the reminder
    /// again to the person on the channel it went by (purpose `Snooze(n)`).
    fn snooze(
        &self,
        firing: &OpenFiring,
        delay: chrono::Duration,
        via: &str,
        now: DateTime<Utc>,
    ) -> Result<SnoozeResult, StoreError>;
    /// Stores a pause from `kithd pause`.
    fn add_pause(&self, pause: &crate::vocab::Pause, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Ends every stored pause now (`kithd resume`); how many were in force or to come.
    fn end_pauses(&self, now: DateTime<Utc>) -> Result<usize, StoreError>;
    /// Stored pauses not over at `now`.
    fn pauses(&self, now: DateTime<Utc>) -> Result<Vec<crate::vocab::Pause>, StoreError>;
    /// Records a firing that a pause held back (no deliveries, no steps).
    fn record_paused(&self, firing: &NewFiring) -> Result<(), StoreError>;
    /// Puts off a step until `until` (its item is paused now).
    fn postpone_watch(&self, id: i64, until: DateTime<Utc>) -> Result<(), StoreError>;
    /// Marks an answer link's nonce used; false when it was used before.
    fn use_token(&self, nonce: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// Forgets a used nonce, when what it was used for could not be recorded (so the
    /// sender's retry is taken, not refused as a repeat).
    fn release_token(&self, nonce: &str) -> Result<(), StoreError>;
}

/// What `status`, `history`, `report` and health read.
pub(crate) trait Reports: Send + Sync {
    /// Deliveries in a state, newest first.
    fn in_state(&self, state: State, limit: usize) -> Result<Vec<Delivery>, StoreError>;
    fn history(&self, filter: &HistoryFilter) -> Result<Vec<Delivery>, StoreError>;
    fn missed(&self, filter: &HistoryFilter) -> Result<Vec<Missed>, StoreError>;
    /// What `health` needs: dead letters since `since`, and the channels whose latest
    /// finished attempt failed permanently.
    fn health(&self, since: DateTime<Utc>) -> Result<HealthFacts, StoreError>;
    /// The most recent error per channel.
    fn last_errors(&self) -> Result<Vec<(String, DateTime<Utc>, String)>, StoreError>;
    /// Check-ins and doses since `since`, with their answers.
    fn journal(&self, since: DateTime<Utc>) -> Result<Vec<JournalEntry>, StoreError>;
    /// (escalation alerts sent, all-clears sent) since `since`.
    fn escalation_counts(&self, since: DateTime<Utc>) -> Result<(u64, u64), StoreError>;
    /// A shared ledger: who leads maintenance, and which instances hold claims now.
    fn shared_state(&self) -> Result<Option<SharedState>, StoreError> {
        Ok(None)
    }
}

/// What `status` says about the instances sharing a ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedState {
    /// The maintenance leader's term, and until when it holds without renewal.
    pub leader: Option<(Term, DateTime<Utc>)>,
    /// Instances holding live claims now, with how many each.
    pub sending: Vec<(String, u64)>,
}

/// What the person controls: how long their history is kept, and erasing it.
pub(crate) trait Keeping: Send + Sync {
    /// Removes firings scheduled before `before` that are finished (nothing pending,
    /// no step waiting) with their deliveries, answers, notes, steps and snoozes, and used
    /// link nonces from before then. Rows of later firings are untouched, so `report` over
    /// the kept period reads the same. How many firings went.
    fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Erases everything about firings scheduled before `before` (all with `None`), pending
    /// ones included, with the pauses and nonces, so that the bytes are gone from the
    /// ledger's storage, and records only that a deletion happened (when, and before what).
    /// How many firings went.
    fn forget(&self, before: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// The deletions recorded.
    fn deletions(&self) -> Result<Vec<Deletion>, StoreError>;
}

/// A deletion the person asked for: when, and everything before what (`None`: all).
pub(crate) type Deletion = (DateTime<Utc>, Option<DateTime<Utc>>);

/// What contacts said about being messaged (a contact's STOP), beside the `consent` the
/// person recorded in the plan.
pub(crate) trait Consents: Send + Sync {
    /// The contact asked to stop: recorded, and in the same transaction their pending
    /// deliveries (except any another instance is sending now) and steps are cancelled.
    /// How many deliveries and steps.
    fn withdraw(
        &self,
        contact: &str,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), StoreError>;
    /// Records that a contact was invited (`invited`) or agreed (`given`), and how.
    fn record_consent(
        &self,
        contact: &str,
        state: &str,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Each contact's latest word, by contact id.
    fn consents(&self) -> Result<Vec<ConsentRecord>, StoreError>;
}

/// A contact's latest word on being messaged: `invited`, `given` or `withdrawn`, how
/// (`sms`, `link`, `cli`) and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConsentRecord {
    pub contact: String,
    pub state: String,
    pub how: String,
    pub at: DateTime<Utc>,
}

/// The person's own access to their pages: the Argon2id hash of the passphrase they set
/// with `kithd passphrase` (kept in the ledger, so every instance of a shared ledger
/// checks the same one). Never the passphrase itself.
pub(crate) trait Access: Send + Sync {
    /// Replaces the hash (a PHC string), or removes it with `None`.
    fn set_passphrase(&self, hash: Option<&str>, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// The hash and when it was set, if the person has set one.
    fn passphrase(&self) -> Result<Option<(String, DateTime<Utc>)>, StoreError>;
}

/// Everything kithd needs of a ledger.
pub(crate) trait Ledger: Queue + Steps + Reports + Keeping + Consents + Access {}

impl<T: Queue + Steps + Reports + Keeping + Consents + Access> Ledger for T {}
