//! The case webhook's courier: queued case events posted oldest first, each signed with HMAC-SHA256 and claimed by lease while it is posted; a failed post tried again after a pause that doubles, for a day; nothing lost across a restart.
//!
//! It runs on a task of its own, so a slow or unreachable receiver never
//! holds up a conversation (which only queues, `events::emit`) or the
//! scheduler. A post is one `POST` of the event's body with its signature
//! (`X-Signature-256: sha256=<hex>`, as GitHub signs its webhooks), its id
//! and its type; a 2xx answer delivers it, anything else — a refused
//! connection, a timeout, a redirect, a 4xx, a 5xx — is a failed try.
//! After one, the event is due again after its own pause (5 s, doubling to
//! 10 minutes) and the courier posts nothing for as long, so a receiver
//! that is down gets one try per pause, and the oldest event goes first
//! when it is back; only an answer that refuses one event alone (a 400, a
//! 422…) lets the others go on meanwhile. An event still failing a day after it was queued is
//! given up, with an error in the log and a count in /metrics. Delivery is
//! at least once: an event whose post was cut short (the process killed)
//! is posted again once its claim lapses, and receivers dedupe by its id.

pub(crate) mod queue;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::{App, CaseWebhook};
use crate::clock::Instant;
use crate::store::StoreError;
use queue::Queued;

/// The pause before the first try again, in seconds: it doubles with
/// each failed try, up to `MAX_RETRY_SECS`.
pub(crate) const FIRST_RETRY_SECS: i64 = 5;

/// The longest pause between tries: 10 minutes.
pub(crate) const MAX_RETRY_SECS: i64 = 600;

/// How long an event is tried before it is given up: a day after it was
/// queued.
pub(crate) const GIVE_UP_SECS: i64 = 24 * 3600;

/// How long a claim on an event lasts: far longer than a post may take,
/// so only a process that died leaves one to lapse.
pub(crate) const LEASE_SECS: i64 = 60;

/// The header with the body's signature.
pub(crate) const SIGNATURE_HEADER: &str = "X-Signature-256";

/// The header with the event's id.
pub(crate) const ID_HEADER: &str = "X-Event-Id";

/// The header with the event's type.
pub(crate) const TYPE_HEADER: &str = "X-Event-Type";

/// The answers that refuse one event and not the receiver's every one:
/// a bad request, a conflict, a body too large, one it cannot process.
/// The event is tried again on its own while the others go on; any other
/// failure (a 401, 404 or 5xx, a timeout) would meet every event alike,
/// and holds the queue.
pub(crate) const REFUSALS: [u16; 4] = [400, 409, 413, 422];

/// Why a post failed.
#[derive(Debug)]
struct Failure {
    why: String,
    /// The receiver answered and refused this event alone (`REFUSALS`).
    refused: bool,
}

/// At most this many events are read per look at the queue; with more
/// due, the next look follows at once.
const BATCH: usize = 50;

/// With nothing due, the queue is looked at again this often: for events
/// another process sharing the store queued, and claims that lapsed.
const SWEEP_SECS: i64 = 60;

/// After the store failed, the next look.
const STORE_RETRY_SECS: i64 = 30;

/// The pause after `tries` failed tries in a row: 5 s, doubling, at most
/// 10 minutes.
pub(crate) fn retry_after(tries: u32) -> i64 {
    let doublings = tries.saturating_sub(1).min(16);
    (FIRST_RETRY_SECS << doublings).min(MAX_RETRY_SECS)
}

/// The signature of `body` with `secret`: the hex of its HMAC-SHA256, as
/// `X-Signature-256` carries it after `sha256=`.
pub(crate) fn sign(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The running courier.
pub(crate) struct Handle {
    stop: watch::Sender<bool>,
    settled: watch::Receiver<Instant>,
    task: JoinHandle<()>,
}

impl Handle {
    /// The time of the courier's latest completed look at the queue:
    /// events due then have been tried.
    pub(crate) fn settled(&self) -> watch::Receiver<Instant> {
        self.settled.clone()
    }

    /// Lets the post under way finish, within `grace`, then ends; one
    /// still under way then is posted again after the restart.
    pub(crate) async fn stop(mut self, grace: Duration) {
        self.stop.send_replace(true);
        match tokio::time::timeout(grace, &mut self.task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::error!("the case webhook's task failed: {e}"),
            Err(_) => self.task.abort(),
        }
    }

    pub(crate) fn abort(self) {
        self.task.abort();
    }
}

/// Starts the courier, when a case webhook is configured.
pub(crate) fn spawn(app: Arc<App>) -> Option<Handle> {
    let hook = app.settings.case_webhook.clone()?;
    let client = match reqwest::Client::builder()
        .timeout(hook.timeout)
        // A redirect is a failed try: a POST is not followed elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("icp-sms-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            log::error!(
                "the case webhook cannot post ({}); case events are queued, not sent",
                e.without_url()
            );
            return None;
        }
    };
    log::info!("case events are posted to {}", hook.target());
    let (stop, stopped) = watch::channel(false);
    let (settled_tx, settled) = watch::channel(Instant::MIN);
    let courier = Courier {
        lease: LEASE_SECS.max(2 * hook.timeout.as_secs() as i64),
        owner: app.instance.clone(),
        hook,
        client,
        failures: 0,
        paused_until: Instant::MIN,
        looked: false,
    };
    let task = tokio::spawn(run(courier, app, stopped, settled_tx));
    Some(Handle {
        stop,
        settled,
        task,
    })
}

async fn run(
    mut courier: Courier,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
    settled: watch::Sender<Instant>,
) {
    loop {
        let now = app.clock.now();
        let next = match courier.round(&app, &stop).await {
            Ok(next) => next,
            Err(e) if e.is_outage() => {
                log::debug!(
                    "case webhook: the store failed ({e}); trying again in {STORE_RETRY_SECS} s"
                );
                now + STORE_RETRY_SECS
            }
            Err(e) => {
                log::error!(
                    "case webhook: the store failed ({e}); trying again in {STORE_RETRY_SECS} s"
                );
                now + STORE_RETRY_SECS
            }
        };
        settled.send_replace(now);
        if *stop.borrow() {
            break;
        }
        tokio::select! {
            () = app.clock.sleep_until(next, now) => {}
            () = app.case_events.notified() => {}
            _ = stop.changed() => break,
        }
    }
}

/// The poster, with what one look leaves for the next.
struct Courier {
    hook: CaseWebhook,
    client: reqwest::Client,
    /// Who this process is, on the events it claims.
    owner: String,
    /// How long a claim lasts.
    lease: i64,
    /// Failed tries in a row, of any event: the receiver's state.
    failures: u32,
    /// Nothing is posted before this, after a failed try.
    paused_until: Instant,
    /// Whether the queue was looked at once since the start.
    looked: bool,
}

impl Courier {
    /// Posts the events due, oldest first, until one fails; returns when
    /// to look again.
    async fn round(
        &mut self,
        app: &App,
        stop: &watch::Receiver<bool>,
    ) -> Result<Instant, StoreError> {
        let now = app.clock.now();
        if now < self.paused_until {
            return Ok(self.paused_until);
        }
        if !self.looked {
            let queued = app.store.case_events_queued().await?;
            if queued > 0 {
                log::info!(
                    "case webhook: {queued} event(s) queued before the start are posted first"
                );
            }
            self.looked = true;
        }
        let due = app.store.due_case_events(now, BATCH).await?;
        if due.expired > 0 {
            app.metrics.case_events.given_up.inc_by(due.expired as u64);
            log::error!(
                "case webhook: {} queued event(s) were over {} days old and are forgotten unsent",
                due.expired,
                queue::KEPT_SECS / (24 * 3600)
            );
        }
        for event in due.events {
            if *stop.borrow() {
                return Ok(now);
            }
            // Each event on the clock as it is posted: a claim's lease
            // counts from the moment it is made.
            let now = app.clock.now();
            if !app
                .store
                .claim_case_event(&event, &self.owner, now, now + self.lease)
                .await?
            {
                continue;
            }
            match self.post(&event).await {
                Ok(()) => self.delivered(app, &event, now).await?,
                Err(failure) => {
                    if let Some(next) = self.failed(app, &event, now, &failure).await? {
                        return Ok(next);
                    }
                }
            }
        }
        if due.more {
            return Ok(now);
        }
        let next = app.store.next_case_event().await?;
        Ok(next.map_or(now + SWEEP_SECS, |at| at.clamp(now, now + SWEEP_SECS)))
    }

    /// One post of an event: whether the receiver answered 2xx, or why not.
    async fn post(&self, event: &Queued) -> Result<(), Failure> {
        let signature = sign(self.hook.secret.as_bytes(), event.body.as_bytes());
        let sent = self
            .client
            .post(self.hook.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, format!("sha256={signature}"))
            .header(ID_HEADER, &event.id)
            .header(TYPE_HEADER, &event.kind)
            .body(event.body.clone())
            .send()
            .await;
        // The address may hold a token: errors are told without it.
        let (why, refused) = match sent {
            Ok(answer) if answer.status().is_success() => return Ok(()),
            Ok(answer) => (
                format!("answered {}", answer.status()),
                REFUSALS.contains(&answer.status().as_u16()),
            ),
            Err(e) if e.is_timeout() => (
                format!("no answer within {} s", self.hook.timeout.as_secs_f64()),
                false,
            ),
            Err(e) => (e.without_url().to_string(), false),
        };
        Err(Failure { why, refused })
    }

    /// An event the receiver took: removed from the queue.
    async fn delivered(
        &mut self,
        app: &App,
        event: &Queued,
        now: Instant,
    ) -> Result<(), StoreError> {
        app.metrics.case_events.posted.inc();
        log::debug!("case {}: its {} event was posted", event.case, event.kind);
        if self.failures > 0 {
            log::info!(
                "case webhook: {} takes events again after {} failed tries",
                self.hook.target(),
                self.failures
            );
            self.failures = 0;
        }
        // Should this fail, the event is posted again once its claim
        // lapses: at least once.
        app.store.remove_case_event(&event.id, now).await
    }

    /// A failed try: the event is due again after its pause, and nothing
    /// is posted for the receiver's pause (returned). The next event is
    /// tried at once (`None`) when the receiver refused this one alone,
    /// and when this one is given up, a day after it was queued, so a long
    /// outage does not leave a backlog of old events.
    async fn failed(
        &mut self,
        app: &App,
        event: &Queued,
        now: Instant,
        failure: &Failure,
    ) -> Result<Option<Instant>, StoreError> {
        let why = &failure.why;
        let target = self.hook.target();
        let tries = event.tries + 1;
        if !failure.refused {
            self.failures = self.failures.saturating_add(1);
        }
        if now - event.queued_at >= GIVE_UP_SECS {
            app.metrics.case_events.given_up.inc();
            log::error!(
                "case {}: its {} event {} is given up after {tries} failed tries over {} hours; the case webhook at {target} last {why}",
                event.case,
                event.kind,
                event.id,
                (now - event.queued_at) / 3600
            );
            app.store.remove_case_event(&event.id, now).await?;
            return Ok(None);
        }
        app.metrics.case_events.retried.inc();
        let again = now + retry_after(tries);
        app.store
            .retry_case_event(&event.id, &self.owner, now, again)
            .await?;
        if failure.refused {
            let (case, kind, wait) = (event.case, &event.kind, again - now);
            let line = format!(
                "case {case}: the case webhook at {target} refused its {kind} event ({why}); the others go on, this one is tried again in {wait} s"
            );
            match tries {
                1 => log::warn!("{line}"),
                _ => log::info!("{line}"),
            }
            return Ok(None);
        }
        self.paused_until = now + retry_after(self.failures);
        let wait = self.paused_until - now;
        if self.failures == 1 {
            log::warn!(
                "case webhook: posting to {target} failed ({why}); events wait in the store and are tried again, next in {wait} s"
            );
        } else {
            log::info!(
                "case webhook: posting to {target} failed again ({why}, {} failures in a row); next try in {wait} s",
                self.failures
            );
        }
        Ok(Some(self.paused_until))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_in_hex() {
        // RFC 4231, test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 4231, test case 1: a key of 20 bytes 0x0b.
        assert_eq!(
            sign(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
    }

    #[test]
    fn the_pause_doubles_from_five_seconds_to_ten_minutes() {
        let pauses: Vec<i64> = (1..=10).map(retry_after).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
        assert_eq!(retry_after(0), FIRST_RETRY_SECS);
        assert_eq!(retry_after(u32::MAX), MAX_RETRY_SECS);
    }

    #[test]
    fn an_hour_down_is_a_dozen_tries_or_so_and_far_from_giving_up() {
        let mut at = 0;
        let mut tries = 0;
        while at < 3600 {
            tries += 1;
            at += retry_after(tries);
        }
        assert!(tries <= 13, "{tries} tries in an hour");
        // The hour's last pause ends long before the event is given up.
        assert!(at + MAX_RETRY_SECS < GIVE_UP_SECS, "{at}");
    }
}
