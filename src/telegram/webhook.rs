//! Webhook mode: Telegram posts each update to the bot's listener, which checks the secret, records the update in the inbox, and only then answers 200.
//!
//! teloxide's own webhook answers as soon as the update is parsed, so a
//! crash between the answer and the record would lose the update: Telegram
//! never sends an update it was told arrived. Here the answer waits for
//! the record, so an update is either in the store or sent again. A repeat
//! (Telegram sends again what it thinks went unanswered, to this instance
//! or another) is answered 200 and skipped. The same listener serves
//! /healthz and /metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use teloxide::prelude::*;
use teloxide::types::{Update, UpdateKind};
use tokio::sync::mpsc;

use super::inbox::{Inbox, Recorded};

/// Where Telegram posts updates, as configured.
#[derive(Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The public HTTPS address registered with Telegram; its path is the
    /// path served.
    pub url: url::Url,
    /// The local address listened on (behind a TLS-terminating proxy).
    pub listen: SocketAddr,
    /// What every request must carry in `X-Telegram-Bot-Api-Secret-Token`.
    pub secret: String,
    /// Whether this instance registers the address with `setWebhook`.
    pub register: bool,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &self.url.as_str())
            .field("listen", &self.listen)
            .field("secret", &"<secret>")
            .field("register", &self.register)
            .finish()
    }
}

/// The header Telegram puts the secret in.
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// How many updates may wait between the listener and the dispatcher
/// before a post waits (and Telegram with it).
const WAITING: usize = 1024;

/// What the update route shares.
#[derive(Clone)]
struct Hook {
    secret: Arc<str>,
    inbox: Arc<Inbox>,
    updates: mpsc::Sender<Update>,
    stopping: Arc<AtomicBool>,
}

/// The update route, and the receiving end of what it takes in.
pub(super) struct Intake {
    pub(super) router: axum::Router,
    pub(super) updates: mpsc::Receiver<Update>,
    /// Set when the bot stops: later posts are answered 503, so Telegram
    /// sends them again (to another instance, behind a load balancer).
    pub(super) stopping: Arc<AtomicBool>,
}

/// The route Telegram posts to.
pub(super) fn route(hook: &Webhook, inbox: Arc<Inbox>) -> Intake {
    let (tx, updates) = mpsc::channel(WAITING);
    let stopping = Arc::new(AtomicBool::new(false));
    let state = Hook {
        secret: Arc::from(hook.secret.as_str()),
        inbox,
        updates: tx,
        stopping: Arc::clone(&stopping),
    };
    let path = match hook.url.path() {
        "" => "/",
        path => path,
    };
    let router = axum::Router::new()
        .route(path, post(take))
        .with_state(state);
    Intake {
        router,
        updates,
        stopping,
    }
}

/// Whether two secrets are equal, in time that does not depend on where
/// they first differ.
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// Posts refused for their secret so far: logged at the 1st, 2nd, 4th,
/// 8th… so that someone posting junk cannot flood the log.
static REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One post from Telegram.
async fn take(State(hook): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !same_secret(given, hook.secret.as_bytes()) {
        hook.inbox.metrics().refused_posts.inc();
        let refused = REFUSED.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            log::warn!("webhook: {refused} post(s) without the right secret refused so far");
        }
        return StatusCode::UNAUTHORIZED;
    }
    if hook.stopping.load(Ordering::Acquire) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    let update = match serde_json::from_slice::<Update>(&body) {
        Ok(update) => update,
        Err(e) => {
            // Logged without the body: it may hold what a person typed.
            log::warn!(
                "webhook: a post of {} bytes is not an update ({e}); refused",
                body.len()
            );
            return StatusCode::BAD_REQUEST;
        }
    };
    let id = update.id.0;
    // Logged by id alone; nothing to record or handle.
    if let UpdateKind::Error(_) = &update.kind {
        log::warn!("update {id}: of a kind this bot cannot read; skipped");
        return StatusCode::OK;
    }
    // Recorded and queued together, in a task of its own: a post the
    // caller gives up on midway must not leave an update recorded as
    // this process's and never handled.
    tokio::spawn(async move { admit(&hook, update).await })
        .await
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// How long a post waits for room in the queue before it is answered 503
/// (Telegram sends it again later, perhaps to another instance).
pub(crate) const ROOM_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Records the update and queues it for the dispatcher: 200 once both are
/// done, or for a repeat; 503 when either cannot be, so Telegram sends it
/// again and nothing is acknowledged that is not in the store.
async fn admit(hook: &Hook, update: Update) -> StatusCode {
    let id = update.id.0;
    // Room first: recorded and then not queued would wait for a restart.
    let permit = match tokio::time::timeout(ROOM_WAIT, hook.updates.reserve()).await {
        Ok(Ok(permit)) => permit,
        // Full for too long, or the dispatcher is gone (stopping).
        _ => return StatusCode::SERVICE_UNAVAILABLE,
    };
    match hook.inbox.record_together(&update).await {
        Recorded::New => {
            permit.send(update);
            StatusCode::OK
        }
        Recorded::Repeat => {
            log::info!("update {id}: received before; skipped");
            hook.inbox.metrics().skip(crate::metrics::RECEIVED_BEFORE);
            StatusCode::OK
        }
        Recorded::Unrecorded => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// Registers the address and the secret with Telegram, for the kinds of
/// update the bot reads.
pub(super) async fn register(bot: &Bot, hook: &Webhook) -> Result<(), teloxide::RequestError> {
    bot.set_webhook(hook.url.clone())
        .secret_token(hook.secret.clone())
        .allowed_updates(super::WANTED_UPDATES.to_vec())
        .await?;
    Ok(())
}
