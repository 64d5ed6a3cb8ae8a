//! The dispatcher: performs one claimed delivery against the current plan — render, send
//! through the plugin host with a per-channel concurrency limit, then record the outcome
//! (sent, retry later, fall back to the next channel, dead letter). It must not own timers
//! or signals; the runtime hands it deliveries and reads the ledger.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{error, info, warn};

use super::channel::ChannelSet;
use super::render;
use super::retry::RetryPolicy;
use crate::answer::LinkSigner;
use crate::clock::Clock;
use crate::plan::{Kind, Plan, SELF_ID};
use crate::plugin::host::Host;
use crate::plugin::{Outcome, Registry};
use crate::schedule::{Firing, Purpose, item_delivery_times};
use crate::store::{
    AsyncLedger, Delivery, Fence, GroupCommit, Ledger, NewDelivery, SentMark, StoreError,
};
use crate::vocab::delivery_id;

/// Deliveries more than this late (after quiet hours) say so in their text.
const LATE_AFTER: Duration = Duration::minutes(10);
/// Concurrent requests per channel unless the channel sets `concurrency`.
const DEFAULT_CONCURRENCY: usize = 16;
/// Script calls of one channel running at once on the blocking pool.
const SCRIPT_SLOTS: usize = 2;
/// Deliveries of one channel claimed at once, as a multiple of its concurrency: those
/// beyond its send slots wait in memory (under a lease the runtime renews) for a slot, so
/// the slots stay busy while the runtime claims the next batch.
const CLAIMS_PER_SLOT: usize = 8;

/// What the dispatcher works from; swapped whole on reload.
pub struct Snapshot {
    pub plan: Arc<Plan>,
    pub channels: ChannelSet,
    pub registry: Arc<Registry>,
    /// Signs answer links when the plan has `[server]`.
    pub links: Option<LinkSigner>,
}

/// Deliveries are claimed (by the runtime) this long before they are due and wait for
/// their instant in memory, their request already made: at the due instant the first of
/// them go out without a ledger call or a script call before them. No delivery waits longer
/// than this, whatever the clock says.
pub(crate) const CLAIM_AHEAD: Duration = Duration::milliseconds(50);

/// How long a `sent` mark is retried while the ledger can't be written (well inside a
/// lease, so the delivery is not claimed again meanwhile).
const MARK_PERSISTENCE: std::time::Duration = std::time::Duration::from_secs(20);

pub(crate) struct Dispatcher {
    ledger: AsyncLedger,
    clock: Arc<dyn Clock>,
    /// `sent` marks, written in groups off the async workers.
    sent: GroupCommit,
    host: Host,
    snapshot: RwLock<Arc<Snapshot>>,
    limits: Mutex<HashMap<String, Limits>>,
    /// Claims being worked on now, whose leases the runtime renews, with when each lease
    /// ends as far as this instance knows.
    in_flight: Arc<Mutex<HashMap<Fence, DateTime<Utc>>>>,
}

/// One channel's slots: deliveries claimed, deliveries being sent, and script calls at once.
#[derive(Clone)]
struct Limits {
    claims: Arc<Semaphore>,
    sends: Arc<Semaphore>,
    scripts: Arc<crate::plugin::lane::ScriptLane>,
}

/// Removes a claim from the in-flight set however its task ends.
/// Keyed by the claim, not the delivery: a newer claim of the same delivery (after a
/// takeover) stays held when the older one's task ends.
struct Held {
    in_flight: Arc<Mutex<HashMap<Fence, DateTime<Utc>>>>,
    fence: Fence,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.fence);
    }
}

impl Dispatcher {
    /// Marks a delivery sent, trying again for a while when the ledger can't be written
    /// (a database restarting): the gateway has it, and a mark that is never written would
    /// have it sent again once the lease ends.
    async fn mark_sent(&self, mark: SentMark) -> Result<bool, StoreError> {
        let started = std::time::Instant::now();
        loop {
            match self.sent.mark_sent(mark.clone()).await {
                Ok(done) => return Ok(done),
                Err(e) if started.elapsed() < MARK_PERSISTENCE => {
                    warn!(delivery = %mark.fence.id, error = %e, "Could not record a delivery as sent; trying again.");
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) fn new(
        ledger: Arc<dyn Ledger>,
        clock: Arc<dyn Clock>,
        host: Host,
        snapshot: Arc<Snapshot>,
    ) -> std::io::Result<Self> {
        Ok(Self {
            sent: GroupCommit::start(ledger.clone())?,
            ledger: AsyncLedger::new(ledger),
            clock,
            host,
            snapshot: RwLock::new(snapshot),
            limits: Mutex::new(HashMap::new()),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Swaps in a reloaded plan. Channels keep their slots (deliveries in flight hold
    /// them); a changed `concurrency` applies to channels first used after the reload.
    pub(crate) fn replace(&self, snapshot: Arc<Snapshot>) {
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = snapshot;
    }

    fn limits(&self, channel: &str) -> Limits {
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        limits
            .entry(channel.to_string())
            .or_insert_with(|| {
                let n = self
                    .snapshot()
                    .channels
                    .channels
                    .get(channel)
                    .and_then(|c| c.limits.concurrency)
                    .map(|n| n as usize)
                    .unwrap_or(DEFAULT_CONCURRENCY);
                Limits {
                    claims: Arc::new(Semaphore::new(n * CLAIMS_PER_SLOT)),
                    sends: Arc::new(Semaphore::new(n)),
                    scripts: crate::plugin::lane::ScriptLane::new(SCRIPT_SLOTS),
                }
            })
            .clone()
    }

    /// Every free claim slot on this channel: a delivery is claimed only with one in
    /// hand, so at most `CLAIMS_PER_SLOT` times the channel's concurrency are held.
    pub(crate) fn reserve_free(&self, channel: &str) -> Vec<OwnedSemaphorePermit> {
        let claims = self.limits(channel).claims;
        std::iter::from_fn(|| claims.clone().try_acquire_owned().ok()).collect()
    }

    /// Channels with no free claim slot now.
    pub(crate) fn full_channels(&self) -> Vec<String> {
        self.limits
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, l)| l.claims.available_permits() == 0)
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// The claims being worked on now.
    pub(crate) fn held(&self) -> Vec<Fence> {
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// After a renewal: the leases renewed now end at `until`; the `lost` ones have ended
    /// (another claim may hold them), so what they wait to send is not sent.
    pub(crate) fn renewed(&self, held: &[Fence], lost: &[Fence], until: DateTime<Utc>) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        for f in held {
            if let Some(end) = in_flight.get_mut(f) {
                *end = if lost.contains(f) {
                    DateTime::<Utc>::MIN_UTC
                } else {
                    until
                };
            }
        }
    }

    /// Whether this claim's lease still holds now, as far as this instance knows.
    fn still_held(&self, fence: &Fence) -> bool {
        let now = self.clock.now();
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(fence)
            .is_some_and(|end| now < *end)
    }

    /// Records an outcome under the delivery's fence; a fence that no longer holds means
    /// the lease was taken over, and the outcome is left to the claim that holds it now.
    fn fenced(&self, d: &Delivery, recorded: Result<bool, StoreError>) -> Result<(), StoreError> {
        if !recorded? {
            warn!(delivery = %d.id, item = %d.item, channel = %d.channel, "This claim's lease was taken over; its outcome is not recorded (the delivery is handled under its newer claim).");
        }
        Ok(())
    }

    /// Records that a delivery will not be sent, for `reason`.
    async fn cancel(&self, d: &Delivery, reason: &'static str) -> Result<(), StoreError> {
        let fence = d.fence();
        let recorded = self.ledger.call(move |l| l.cancel(&fence, reason)).await;
        self.fenced(d, recorded)
    }

    /// Performs one claimed delivery and records its outcome: at its due time (it may be
    /// claimed a moment ahead) and once its channel has a send slot. Ledger failures are
    /// returned (the runtime treats them as fatal: a restart's catch-up recovers).
    pub(crate) async fn deliver(
        &self,
        d: Delivery,
        claimed: OwnedSemaphorePermit,
        lease_until: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let fence = d.fence();
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(fence.clone(), lease_until);
        let _held = Held {
            in_flight: self.in_flight.clone(),
            fence: fence.clone(),
        };
        let result = self.perform(&d, &fence).await;
        drop(claimed);
        result
    }

    async fn perform(&self, d: &Delivery, fence: &Fence) -> Result<(), StoreError> {
        let d = d.clone();
        let snap = self.snapshot();
        let plan = &snap.plan;
        let Some(item) = plan.item(&d.item) else {
            info!(delivery = %d.id, item = %d.item, "Delivery cancelled: its item is no longer in the plan.");
            return self.cancel(&d, "item no longer in the plan").await;
        };
        let Some(recipient) = plan.recipient(&d.recipient) else {
            info!(delivery = %d.id, item = %d.item, "Delivery cancelled: its recipient is no longer in the plan.");
            return self.cancel(&d, "recipient no longer in the plan").await;
        };
        if plan.never_contact.contains(&recipient.id) {
            warn!(delivery = %d.id, item = %d.item, recipient = %d.recipient, "Delivery cancelled: the contact is on `never_contact`.");
            return self.cancel(&d, "contact is on never_contact").await;
        }
        if recipient.id != SELF_ID && recipient.consent.is_none() && !recipient.invite {
            warn!(delivery = %d.id, item = %d.item, recipient = %d.recipient, "Delivery cancelled: the contact has no consent in the plan.");
            return self.cancel(&d, "contact has not consented").await;
        }
        // What the contact said themselves: a STOP ends their messages; an invited
        // contact gets them only after their YES.
        if recipient.id != SELF_ID {
            let id = recipient.id.clone();
            let said = self.ledger.call(|l| l.consents()).await?;
            let said = said.into_iter().find(|c| c.contact == id);
            // What this message relies on, kept with it for `history` and `report`.
            let basis = match (&said, recipient.consent) {
                (Some(c), _) if c.state == "given" => {
                    Some(format!("yes by {}, {}", c.how, c.at.format("%Y-%m-%d")))
                }
                (_, Some(date)) => Some(format!("in the plan, {date}")),
                _ => None,
            };
            let said = said.map(|c| c.state);
            if said.as_deref() == Some("withdrawn") {
                info!(delivery = %d.id, item = %d.item, recipient = %d.recipient, "Delivery cancelled: the contact asked to stop.");
                return self.cancel(&d, "the contact asked to stop").await;
            }
            // Invited (again, after a STOP), or never agreed in person: only a YES counts.
            let asked = said.as_deref() == Some("invited");
            if (asked || recipient.consent.is_none()) && said.as_deref() != Some("given") {
                warn!(delivery = %d.id, item = %d.item, recipient = %d.recipient, "Delivery cancelled: the contact was invited and has not said yes (yet).");
                return self.cancel(&d, "the contact has not agreed yet").await;
            }
            if let Some(basis) = basis {
                let id = d.id.clone();
                self.ledger
                    .call(move |l| l.note_consent(&id, &basis))
                    .await?;
            }
        }
        let Some(purpose) = Purpose::from_ledger_key(&d.purpose, item.remind_before()) else {
            return self.cancel(&d, "unknown purpose").await;
        };
        let now = self.clock.now();
        let Some(channel) = snap.channels.channels.get(&d.channel) else {
            return self
                .fail_over(plan, &d, "channel no longer in the plan", now)
                .await;
        };
        let address = match &channel.address {
            Some(field) => match recipient.addresses.get(field) {
                Some(a) => Some(a.clone()),
                None => {
                    let reason = format!("no `{field}` address");
                    return self.fail_over(plan, &d, &reason, now).await;
                }
            },
            None => None,
        };
        let firing = Firing {
            at: d.scheduled,
            item: 0,
            purpose,
        };
        let wants_answer = matches!(item.kind, Kind::Checkin | Kind::Medication)
            && matches!(
                purpose,
                Purpose::Main | Purpose::Nag(_) | Purpose::Snooze(_)
            )
            && recipient.id == SELF_ID;
        let answer_url = match (&snap.links, wants_answer) {
            (Some(links), true) => {
                Some(links.url(&links.token(&item.id, d.scheduled, &recipient.id, now)))
            }
            _ => None,
        };
        let mut message =
            render::message(plan, item, &firing, recipient, &d.id, address, answer_url);
        // Every message to a contact ends with how to stop them.
        if recipient.id != SELF_ID {
            let link = snap
                .links
                .as_ref()
                .map(|l| l.contact_url(&l.contact_token(&recipient.id, now)));
            message.text.push_str("\n\n");
            message.text.push_str(&render::how_to_stop(
                plan,
                channel.plugin.receives(),
                link.as_deref(),
            ));
        }
        let planned = item_delivery_times(plan, item, d.scheduled)
            .into_iter()
            .find(|t| t.recipient == recipient.id)
            .map(|t| t.at)
            .unwrap_or(d.scheduled);
        let own_schedule = matches!(
            purpose,
            Purpose::Main | Purpose::Reminder(_) | Purpose::FollowUp
        );
        if own_schedule && (d.late || now - planned > LATE_AFTER) {
            let local = d.scheduled.with_timezone(&item.timezone);
            message.text = format!(
                "(Late: this was due at {}.) {}",
                local.format("%H:%M"),
                message.text
            );
        }
        let Limits {
            scripts: lane,
            sends: lane_sends,
            ..
        } = self.limits(&channel.id);
        let via = crate::plugin::host::Via {
            sandbox: &snap.registry.sandbox,
            plugin: &channel.plugin,
            settings: &channel.settings,
            lane: &lane,
            grant: &channel.grant,
        };
        let outcome = self
            .host
            .deliver_when(
                &via,
                &message,
                // Claimed ahead: the request is ready before the due instant and goes out
                // at it (waited once: a clock that does not move waits no longer than this),
                // once the channel has a send slot, which it holds until the gateway
                // answers (not while the outcome is recorded); and only while the claim's
                // lease holds: one that ended while it waited (kithd stalled past it) may
                // be someone else's now.
                async {
                    if let Ok(early) = (d.due - self.clock.now()).to_std() {
                        tokio::time::sleep(early.min(CLAIM_AHEAD.to_std().unwrap_or_default()))
                            .await;
                    }
                    let slot = lane_sends.acquire_owned().await.ok()?;
                    self.still_held(fence).then_some(slot)
                },
            )
            .await;
        let Some(outcome) = outcome else {
            warn!(delivery = %d.id, item = %d.item, channel = %d.channel, "This claim's lease ended before the delivery could be sent (was kithd stalled?); it is left to its next claim.");
            return Ok(());
        };
        let now = self.clock.now();
        match outcome {
            Outcome::Sent { gateway_id } => {
                let mark = SentMark {
                    fence: fence.clone(),
                    gateway_id,
                    at: now,
                };
                if !self.mark_sent(mark).await? {
                    return self.fenced(&d, Ok(false));
                }
                let latency_ms = (now - planned).num_milliseconds();
                info!(delivery = %d.id, item = %d.item, channel = %d.channel, recipient = %d.recipient, latency_ms, "Delivered.");
                Ok(())
            }
            Outcome::Skipped => {
                info!(delivery = %d.id, item = %d.item, channel = %d.channel, "The plugin skipped this delivery.");
                self.cancel(&d, "skipped by the plugin").await
            }
            Outcome::Retry { after, reason } => {
                let policy = RetryPolicy::for_limits(&channel.limits);
                let attempts = d.attempts + 1;
                if let Some(ra) = after.filter(|ra| policy.waits_too_long(*ra)) {
                    let reason = format!(
                        "{reason}: the gateway asked to wait {}s, longer than this channel's give_up_after",
                        ra.as_secs()
                    );
                    return self.fail_over(plan, &d, &reason, now).await;
                }
                match policy.next_attempt(attempts, now, d.scheduled, after, rand::random::<f64>())
                {
                    Some(at) => {
                        warn!(delivery = %d.id, item = %d.item, channel = %d.channel, attempt = attempts, next_attempt = %at.to_rfc3339(), error = %reason, "Delivery failed; will retry.");
                        let fence = fence.clone();
                        // No answer in time: the gateway may have taken it all the same.
                        let maybe_sent = reason.contains(crate::plugin::host::NO_ANSWER);
                        let recorded = self
                            .ledger
                            .call(move |l| l.mark_retry(&fence, at, &reason, maybe_sent))
                            .await;
                        self.fenced(&d, recorded)
                    }
                    None => {
                        let reason = format!("gave up after {attempts} attempts: {reason}");
                        self.fail_over(plan, &d, &reason, now).await
                    }
                }
            }
            Outcome::Permanent { reason } => self.fail_over(plan, &d, &reason, now).await,
        }
    }

    /// Moves a delivery to the recipient's next channel, or dead-letters it.
    async fn fail_over(
        &self,
        plan: &Plan,
        d: &Delivery,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let recipient = plan.recipient(&d.recipient);
        let next_index = d.channel_index as usize + 1;
        let next = recipient.and_then(|r| r.reach.get(next_index).map(|c| (r, c)));
        match next {
            Some((r, channel)) => {
                let remind_before = plan
                    .item(&d.item)
                    .map(|i| i.remind_before())
                    .unwrap_or_default();
                let purpose =
                    Purpose::from_ledger_key(&d.purpose, remind_before).unwrap_or(Purpose::Main);
                let nd = NewDelivery {
                    id: delivery_id(
                        plan.scope.as_deref(),
                        &d.item,
                        d.scheduled,
                        purpose,
                        &r.id,
                        channel,
                    ),
                    recipient: r.id.clone(),
                    channel: channel.clone(),
                    channel_index: next_index as u32,
                    due: now,
                    late: d.late,
                };
                warn!(delivery = %d.id, item = %d.item, channel = %d.channel, next_channel = %channel, error = %reason, "Delivery failed on this channel; trying the next one.");
                let (fence, reason) = (d.fence(), reason.to_string());
                let recorded = self
                    .ledger
                    .call(move |l| l.fail_over(&fence, &reason, Some(&nd)))
                    .await;
                self.fenced(d, recorded)
            }
            None => {
                error!(delivery = %d.id, item = %d.item, channel = %d.channel, recipient = %d.recipient, error = %reason, "Delivery failed on every channel; dead-lettered.");
                let (fence, reason) = (d.fence(), reason.to_string());
                let recorded = self
                    .ledger
                    .call(move |l| l.fail_over(&fence, &reason, None))
                    .await;
                self.fenced(d, recorded)
            }
        }
    }
}
