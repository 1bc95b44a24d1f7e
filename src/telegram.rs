//! The Telegram adapter's lifecycle: checking the token, registering the command menu, polling, and stopping.
//!
//! `classify` turns a message into an event, `handlers` pass events to the
//! conversation and its replies to `send`, which shows them as inline
//! menus edited in place; `schedule` sends reminders and closes idle
//! conversations through the same `send` and `retry`.

mod call;
mod cases;
mod classify;
mod door;
mod handlers;
pub(crate) mod health;
mod inbox;
pub mod intake;
pub(crate) mod keeper;
pub(crate) mod listener;
pub mod pacer;
pub(crate) mod retry;
pub(crate) mod schedule;
pub(crate) mod send;
mod shared;
pub(crate) mod team;
pub(crate) mod webhook;

use std::future::Future;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use dptree::di::DependencyMap;
use teloxide::dispatching::{ShutdownToken, UpdateHandler};
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::prelude::*;
use teloxide::types::{AllowedUpdate, BotCommand, Me};
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::clock::Instant;
use crate::lang::Lang;
use crate::tree::{Tree, UiCommand};
use door::{Door, Source};
use handlers::{HandlerError, Route};
use inbox::Inbox;
use intake::{FloodLimits, Intake};
use keeper::{Keeper, beat};
pub use listener::HttpLimits;
use listener::Routes;
use pacer::{Limits, Pacer};
use send::Outbox;
use shared::{Msg, Query, Shared};
pub use webhook::Webhook;

/// The kinds of update the bot asks Telegram for, by polling and by
/// webhook alike: those `schema()` answers. Any other kind (an edit, a
/// reaction, a member joining) would only be recorded and left alone.
const WANTED_UPDATES: [AllowedUpdate; 2] = [AllowedUpdate::Message, AllowedUpdate::CallbackQuery];

/// How the bot talks to the Bot API.
#[derive(Debug, Clone)]
pub struct Options {
    /// Telegram's limits on messages sent or changed.
    pub limits: Limits,
    /// The long-polling timeout for getUpdates.
    pub polling_timeout: Duration,
    /// How long a stop waits for queued replies to go out.
    pub grace: Duration,
    /// How fast one member may write or press.
    pub flood: FloodLimits,
    /// The longest a group member's answer may queue before they are
    /// offered to continue in private.
    pub busy_wait: Duration,
    /// Webhook mode, instead of polling.
    pub webhook: Option<Webhook>,
    /// Where /healthz and /metrics are served in polling mode (in webhook
    /// mode they share the webhook's listener).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// With a shared store: how long this process counts as alive after
    /// its latest heartbeat (what it took in is taken over by another
    /// after that), and how long the poller's lease lasts unless renewed.
    pub lease: Duration,
    /// The HTTP listener's timeouts and cap on connections.
    pub http: HttpLimits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            limits: Limits::default(),
            polling_timeout: Duration::from_secs(10),
            grace: Duration::from_secs(10),
            flood: FloodLimits::default(),
            busy_wait: Duration::from_secs(10),
            webhook: None,
            metrics_listen: None,
            lease: Duration::from_secs(30),
            http: HttpLimits::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("Telegram refused the token (TELOXIDE_TOKEN): {0}")]
    Unauthorized(RequestError),
    #[error("cannot reach the Bot API at {0}: {1}; the next start tries again")]
    Unreachable(String, RequestError),
    #[error("cannot listen on {0}: {1}")]
    Listen(std::net::SocketAddr, std::io::Error),
    #[error("Telegram refused the webhook {0}: {1}")]
    Webhook(String, RequestError),
    #[error(
        "the open-files limit is {limit}, too low to serve HTTP: HTTP_MAX_CONNECTIONS={wanted} needs {needed}; raise LimitNOFILE in the systemd unit (or ulimit -n), or lower HTTP_MAX_CONNECTIONS"
    )]
    OpenFiles {
        limit: u64,
        wanted: u32,
        needed: u64,
    },
}

/// A bot that is polling for updates, and its scheduler.
pub struct Running {
    pub me: Me,
    token: ShutdownToken,
    handle: JoinHandle<()>,
    scheduler: schedule::Handle,
    pacer: Pacer,
    inbox: Arc<Inbox>,
    grace: Duration,
    app: Arc<App>,
    /// The HTTP listener (webhook, /healthz, /metrics), if any.
    http: Option<JoinHandle<()>>,
    /// With a shared store: keeps the heartbeat, and takes over what
    /// stopped processes left.
    keeper: Option<Keeper>,
    /// Set when the bot stops, so the webhook refuses new posts.
    stopping: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// The case webhook's courier, when one is configured.
    case_events: Option<crate::cases::webhook::Handle>,
}

/// How long past the grace period the dispatcher may take to end once the
/// queue is closed, before it is stopped.
const DISPATCHER_MARGIN: Duration = Duration::from_secs(2);

impl Running {
    /// The time of the scheduler's latest completed pass: reminders due
    /// then have been sent, and sessions idle then closed.
    pub fn settled(&self) -> watch::Receiver<Instant> {
        self.scheduler.settled()
    }

    /// The time of the case webhook courier's latest completed look at its
    /// queue (events due then have been tried), when one is configured.
    pub fn case_events_settled(&self) -> Option<watch::Receiver<Instant>> {
        self.case_events.as_ref().map(|c| c.settled())
    }

    /// Stops at once, as a crash would: nothing in flight is finished.
    pub fn abort(self) {
        self.handle.abort();
        self.scheduler.abort();
        if let Some(courier) = self.case_events {
            courier.abort();
        }
        if let Some(keeper) = self.keeper {
            keeper.heart.abort();
            keeper.takeover.abort();
        }
        if let Some(http) = self.http {
            http.abort();
        }
    }

    /// Stops polling, lets updates in flight finish, and returns when done,
    /// within the grace period (and a moment for the queue closed at its
    /// end to release the handlers waiting on it).
    pub async fn stop(mut self) {
        if let Some(stopping) = &self.stopping {
            stopping.store(true, std::sync::atomic::Ordering::Release);
        }
        // Nothing more is taken over; the update being taken over now is
        // finished, within the grace period like the rest.
        if let Some(keeper) = &self.keeper {
            let _ = keeper.stop.send(true);
        }
        // One deadline for the whole stop: when the grace period is over,
        // whatever still waits in the queue is closed (not sent, and a
        // reminder among it released to be sent after the restart), so
        // the scheduler and the handlers waiting on the queue end too.
        let deadline = tokio::time::Instant::now() + self.grace;
        let pacer = self.pacer.clone();
        let closer = tokio::spawn(async move {
            tokio::time::sleep_until(deadline).await;
            pacer.drain(Duration::ZERO).await
        });
        let dispatcher = async {
            // The dispatcher becomes stoppable once it polls, right after it
            // has asked Telegram who it is; until then, look again shortly.
            // Its task ends when dispatching has stopped, so that is what is
            // awaited: the future `shutdown` returns can miss its wake-up
            // when the dispatcher finishes before that future is first polled.
            loop {
                match self.token.shutdown() {
                    Ok(_requested) => break,
                    Err(_) if self.handle.is_finished() => break,
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
            // Bounded like the rest of the stop: a handler that never ends
            // must not keep the process from exiting. What it was handling
            // stays open in the inbox and is handled at the next start.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match tokio::time::timeout(left + DISPATCHER_MARGIN, &mut self.handle).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log::error!("the dispatcher task failed: {e}"),
                Err(_) => {
                    log::warn!(
                        "the dispatcher did not stop within the grace period; \
                         the updates it was handling are handled again at the next start"
                    );
                    self.handle.abort();
                }
            }
        };
        let mut keeper = self.keeper.take();
        let takeover = async {
            if let Some(keeper) = keeper.as_mut() {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if tokio::time::timeout(left, &mut keeper.takeover)
                    .await
                    .is_err()
                {
                    keeper.takeover.abort();
                }
            }
        };
        // The case webhook's post under way finishes within the grace
        // period; one cut short is posted again after the restart.
        let courier = self.case_events.take();
        let courier = async {
            if let Some(courier) = courier {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                courier.stop(left).await;
            }
        };
        tokio::join!(self.scheduler.stop(), dispatcher, takeover, courier);
        // Replies already queued go out first, within what is left.
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut dropped = self.pacer.drain(left).await;
        if closer.is_finished() {
            dropped += closer.await.unwrap_or(0);
        } else {
            closer.abort();
        }
        if dropped > 0 {
            log::warn!(
                "stopped with {dropped} message(s) still queued after {:?}; they were not sent",
                self.grace
            );
        }
        // What was delivered is marked done before the process ends; the
        // rest stays open and is handled after the restart.
        self.inbox
            .settle(deadline.max(tokio::time::Instant::now() + Duration::from_secs(1)))
            .await;
        // Alive until here, so nothing this process was still finishing
        // is taken over; gone now: another process may take over what is
        // left at its next look.
        if let Some(keeper) = keeper {
            keeper.heart.abort();
            let app = &self.app;
            if let Err(e) = app.store.heartbeat(&app.instance, Instant::MIN).await {
                log::warn!("could not say this process is stopping: {e}");
            }
        }
        if let Some(http) = self.http {
            http.abort();
        }
    }

    /// Runs until `signal` completes, then shuts down gracefully. Returns
    /// false if the dispatcher ended on its own first (it could not start).
    pub async fn run_until(mut self, signal: impl Future<Output = ()>) -> bool {
        tokio::select! {
            () = signal => {
                log::info!("shutting down: finishing updates in flight");
                self.stop().await;
                true
            }
            result = &mut self.handle => {
                if let Err(e) = result {
                    log::error!("the dispatcher task failed: {e}");
                }
                false
            }
        }
    }
}

/// How many workers handle updates: one person's updates always go to the
/// same one, in order, and the number of workers stays fixed however many
/// people write (the dispatcher would otherwise keep one per person it has
/// seen busy at once).
pub(crate) const WORKERS: u64 = 64;

/// The updates each worker may hold waiting. Each slot is the size of an
/// update (about 750 bytes) and is allocated in blocks of 32 as it is first
/// used: 64 × 16 keeps them near 1.5 MB, where 256 × 64 took 18 MB.
pub(crate) const WORKER_QUEUE: usize = 16;

/// The worker for (chat, person).
fn lane_of(chat: ChatId, user: Option<UserId>) -> u16 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (chat, user).hash(&mut hasher);
    (hasher.finish() % WORKERS) as u16
}

/// Checks the token, registers the command menu, and starts taking
/// updates: by polling, or on the webhook.
pub async fn start(bot: Bot, app: Arc<App>, options: Options) -> Result<Running, StartError> {
    // Before anything else: an open-files limit too low to serve HTTP
    // stops the start.
    let http_cap = if options.webhook.is_some() || options.metrics_listen.is_some() {
        listener::cap_for(&options.http)?
    } else {
        0
    };
    // Every message sent or changed goes through the pacer; other requests
    // (getMe, answering presses, the command menu) go straight out.
    let pacer = Pacer::spawn(options.limits);
    pacer.measure(Arc::clone(&app.metrics));
    if let Some(budget) = app.store.budget(options.limits.rates()) {
        pacer.share(budget);
    }
    let out = Outbox::new(bot.clone(), pacer.clone(), options.busy_wait);
    let me = who_am_i(&bot).await?;
    if let Err(e) = register_commands(&bot, &app.tree()).await {
        log::warn!("could not register the command menu: {e}");
    }
    // Alive before anything is taken in: another process takes over only
    // what a process without a heartbeat left.
    let shared = app.store.is_shared();
    if shared {
        // Tried a few times: an entry of a process without a heartbeat
        // counts as left behind.
        for attempt in 1..=5 {
            if beat(&app, options.lease).await {
                break;
            }
            if attempt == 5 {
                log::error!(
                    "the heartbeat could not be written at start; another instance may take over what this one takes in"
                );
            }
            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
        }
    }
    let inbox = Inbox::start(app.clone());
    // What a crash left open is read before anything is served: /healthz
    // says 200 only once the start's own reads are done.
    let reopened = inbox.reopen().await;
    let queued = {
        let pacer = pacer.clone();
        Arc::new(move || pacer.depth()) as Arc<dyn Fn() -> usize + Send + Sync>
    };
    let health = health::routes(Arc::clone(&app), queued);
    let (source, http, stopping) = match &options.webhook {
        None => {
            let polling = door::Fetch::start(bot.clone(), options.polling_timeout).await;
            let http = match options.metrics_listen {
                Some(address) => {
                    let routes = Routes {
                        all: health.clone(),
                        health,
                    };
                    Some(listener::listen(address, routes, options.http, http_cap).await?)
                }
                None => None,
            };
            // With a shared store, getUpdates only while the poller's
            // lease is this process's.
            let lease = app.store.poller_lease().await;
            (Source::polling(polling, lease), http, None)
        }
        Some(hook) => {
            let intake = webhook::route(hook, inbox.clone());
            let routes = Routes {
                all: intake.router.merge(health.clone()),
                health,
            };
            let http = listener::listen(hook.listen, routes, options.http, http_cap).await?;
            if hook.register {
                webhook::register(&bot, hook)
                    .await
                    .map_err(|e| StartError::Webhook(hook.url.to_string(), e))?;
            }
            let (stop, flag) = teloxide::stop::mk_stop_token();
            let source = Source::Webhook {
                updates: intake.updates,
                stop,
                flag,
            };
            (source, Some(http), Some(intake.stopping))
        }
    };
    let listener = Door {
        source,
        intake: std::sync::Mutex::new(Intake::new(options.flood)),
        out: out.clone(),
        app: app.clone(),
        inbox: inbox.clone(),
        reopened,
    }
    .listener();
    let keeper = shared.then(|| {
        let deps = dptree::deps![
            bot.clone(),
            me.clone(),
            app.clone(),
            out.clone(),
            inbox.clone()
        ];
        Keeper::spawn(app.clone(), inbox.clone(), out.clone(), deps, options.lease)
    });
    let (out_for_scheduler, app_for_scheduler) = (out.clone(), app.clone());
    let mut dispatcher = Dispatcher::builder(bot, schema())
        .dependencies(dptree::deps![app.clone(), out, inbox.clone()])
        .distribution_function(|update: &Update| {
            Some(lane_of(
                update.chat()?.id,
                update.from().map(|user| user.id),
            ))
        })
        .worker_queue_size(WORKER_QUEUE)
        .default_handler(|update| async move {
            log::debug!("update {} is not for the dialogue; ignored", update.id.0);
        })
        .error_handler(LoggingErrorHandler::with_custom_text("a handler failed"))
        .build();
    let token = dispatcher.shutdown_token();
    let case_events = crate::cases::webhook::spawn(app.clone());
    let scheduler = schedule::spawn(out_for_scheduler, app_for_scheduler);
    let handle = tokio::spawn(async move {
        // An outage is logged when it starts and ends, not per poll.
        let listener_errors = Arc::new(|error: RequestError| async move { retry::failing(&error) });
        if let Err(e) = dispatcher
            .try_dispatch_with_listener(listener, listener_errors)
            .await
        {
            log::error!("the dispatcher could not start: {e}");
        }
    });
    Ok(Running {
        me,
        token,
        handle,
        scheduler,
        pacer,
        inbox,
        grace: options.grace,
        app,
        http,
        keeper,
        stopping,
        case_events,
    })
}

/// Asks the Bot API who the bot is, which also checks the token.
async fn who_am_i(bot: &Bot) -> Result<Me, StartError> {
    bot.get_me().await.map_err(|e| match e {
        RequestError::Api(ApiError::InvalidToken) => StartError::Unauthorized(e),
        e => StartError::Unreachable(bot.api_url().to_string(), e),
    })
}

/// The update handler with the dependencies `start` gives it, fed by the
/// caller instead of by polling: for tests that push more updates through
/// `schema()` than getUpdates would carry in the same time. Replies go out
/// through the pacer as in the running bot; nothing polls, no door paces
/// the updates, and no scheduler runs.
pub struct Feed {
    handler: UpdateHandler<HandlerError>,
    deps: DependencyMap,
    pacer: Pacer,
}

impl Feed {
    /// Asks the Bot API who the bot is, as `start` does.
    pub async fn new(bot: Bot, app: Arc<App>, options: &Options) -> Result<Feed, StartError> {
        let pacer = Pacer::spawn(options.limits);
        let out = Outbox::new(bot.clone(), pacer.clone(), options.busy_wait);
        let me = who_am_i(&bot).await?;
        Ok(Feed {
            handler: schema(),
            deps: dptree::deps![bot, me, app.clone(), out, Inbox::unrecorded(app)],
            pacer,
        })
    }

    /// Runs one update through `schema()` as a worker would: whether a
    /// handler took it, or the error the handler returned.
    pub async fn handle(
        &self,
        update: Update,
    ) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let mut deps = self.deps.clone();
        deps.insert(update);
        match self.handler.dispatch(deps).await {
            ControlFlow::Break(result) => result.map(|()| true),
            ControlFlow::Continue(_) => Ok(false),
        }
    }

    /// Lets the replies still queued go out, for at most `grace`, then
    /// closes the pacer; returns how many were not sent.
    pub async fn finish(self, grace: Duration) -> usize {
        self.pacer.drain(grace).await
    }
}

/// Registers the command menu, in the default language and per language
/// code; also after a reload, whose `[command]` texts may have changed.
pub async fn register_commands<R: Requester>(bot: &R, tree: &Tree) -> Result<(), R::Err> {
    let commands = |lang: Lang| -> Vec<BotCommand> {
        UiCommand::ALL
            .iter()
            .map(|c| BotCommand::new(c.key(), tree.ui().command(*c, lang)))
            .collect()
    };
    bot.set_my_commands(commands(Lang::default())).await?;
    for lang in Lang::ALL {
        bot.set_my_commands(commands(lang))
            .language_code(lang.code())
            .await?;
    }
    Ok(())
}

/// The update handler tree: messages and button presses; everything else
/// (edits, channel posts, reactions, member updates…) is left alone.
/// The branch for messages routed to `route`.
fn when(route: Route) -> UpdateHandler<HandlerError> {
    dptree::filter(move |routed: Route| routed == route)
}

pub fn schema() -> UpdateHandler<HandlerError> {
    shared::share()
        // A worker took the update up: its place in the queue is free.
        .inspect(|out: Outbox, update: Shared| {
            if let (Some(chat), Some(user)) = (update.chat(), update.from()) {
                out.backlog
                    .leave(usize::from(lane_of(chat.id, Some(user.id))));
            }
        })
        // The update is done once whatever it causes has been delivered.
        .map(|update: Shared, inbox: Arc<Inbox>| inbox.receipt(i64::from(update.id.0)))
        .branch(
            dptree::filter_map(Msg::of)
                .map(handlers::route)
                .branch(when(Route::Staff).endpoint(handlers::on_staff))
                .branch(when(Route::AnonymousAdmin).endpoint(handlers::on_anonymous_admin))
                .branch(
                    dptree::filter_map(|route: Route| match route {
                        Route::Team(ask) => Some(ask),
                        _ => None,
                    })
                    .endpoint(handlers::on_team),
                )
                .branch(
                    dptree::filter(|route: Route| {
                        matches!(route, Route::MyCase | Route::StaffOnly)
                    })
                    .endpoint(handlers::on_desk),
                )
                .branch(
                    when(Route::Words)
                        .filter_map_async(handlers::open_case)
                        .endpoint(handlers::on_case_words),
                )
                .branch(
                    dptree::filter(|route: Route| matches!(route, Route::Words | Route::Command))
                        .endpoint(handlers::on_message),
                )
                // Not for the bot: done, with nothing to deliver.
                .endpoint(|| async { Ok(()) }),
        )
        .branch(
            dptree::filter_map(Query::of)
                .map(handlers::pressed)
                .branch(
                    dptree::filter_map(handlers::staff_press).endpoint(handlers::on_staff_press),
                )
                .endpoint(handlers::on_press),
        )
}
