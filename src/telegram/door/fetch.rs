//! Long polling by whole batches: the request that confirms a batch goes out only when the stream is polled after the batch was taken.
//!
//! Telegram forgets the updates of a batch once a getUpdates asks for the
//! offset past them, so the door must record a batch before that request
//! is made. teloxide's own polling stream makes it too early for that: it
//! prepares the next request as soon as a batch arrives, and sends it when
//! it is polled after handing out the batch's last update, which is how a
//! stream consumer learns that the batch has ended. A crash while the
//! batch was being recorded then lost it. Here a batch is one item, and
//! the next request is made by the next poll, which the door makes once
//! the batch is recorded.
//!
//! Otherwise it polls as teloxide does: the kinds of update the bot
//! answers (`WANTED_UPDATES`, the webhook's list too) go with each request
//! until one is answered; an error is handed on, and the next request
//! waits, counted from the error, for as long as Telegram asks
//! (`retry_after`) or for the same doubling back-off (1 s, 2 s, … up to
//! 64 s); a stop ends the request in flight (or the wait)
//! and confirms, with one short request, every batch already taken. A
//! stop that comes while the gate holds polling back (the poller's lease
//! is another process's) never reaches this stream, and nothing is
//! confirmed: that would end the holder's request.

use std::time::Duration;

use futures::Stream;
use teloxide::RequestError;
use teloxide::backoff::exponential_backoff_strategy;
use teloxide::errors::AsResponseParameters;
use teloxide::prelude::*;
use teloxide::stop::{StopFlag, StopToken, mk_stop_token};
use teloxide::types::{AllowedUpdate, Update};

use crate::telegram::{WANTED_UPDATES, retry};

/// Long polling of one bot, before it is started.
pub(in crate::telegram) struct Fetch {
    bot: Bot,
    /// The long poll's timeout, in seconds.
    timeout: u32,
    allowed: Option<Vec<AllowedUpdate>>,
    stop: StopToken,
    flag: StopFlag,
}

impl Fetch {
    /// Polling by `bot`, each request held open by Telegram for up to
    /// `timeout`; a webhook left set up is deleted first, as getUpdates
    /// is refused while one is.
    pub(in crate::telegram) async fn start(bot: Bot, timeout: Duration) -> Fetch {
        delete_webhook_if_set(&bot).await;
        let (stop, flag) = mk_stop_token();
        Fetch {
            bot,
            timeout: u32::try_from(timeout.as_secs()).unwrap_or(u32::MAX),
            allowed: Some(WANTED_UPDATES.to_vec()),
            stop,
            flag,
        }
    }

    /// Stops the stream: the request in flight is dropped, what was taken
    /// is confirmed, and the stream ends (after the confirm's error, if it
    /// fails).
    pub(super) fn stop_token(&self) -> StopToken {
        self.stop.clone()
    }

    /// The batches, each of one or more updates, or the error a request
    /// ended with.
    pub(super) fn batches(
        &mut self,
    ) -> impl Stream<Item = Result<Vec<Update>, RequestError>> + Send + 'static {
        let state = Polling {
            bot: self.bot.clone(),
            timeout: self.timeout,
            allowed: self.allowed.take(),
            flag: self.flag.clone(),
            offset: 0,
            errors: 0,
            resume: None,
            ended: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            let item = state.next().await?;
            Some((item, state))
        })
    }
}

/// Where the polling stands between requests.
struct Polling {
    bot: Bot,
    timeout: u32,
    allowed: Option<Vec<AllowedUpdate>>,
    flag: StopFlag,
    /// The offset past every batch taken so far.
    offset: i32,
    /// Requests failed in a row: the back-off grows with them.
    errors: u32,
    /// When the next request may go, after an error: counted from the
    /// error, so a wait downstream (the gate's, after a 409) overlaps it.
    resume: Option<tokio::time::Instant>,
    ended: bool,
}

impl Polling {
    async fn next(&mut self) -> Option<Result<Vec<Update>, RequestError>> {
        if self.ended {
            return None;
        }
        if let Some(resume) = self.resume.take() {
            tokio::select! {
                biased;
                () = &mut self.flag => {}
                () = tokio::time::sleep_until(resume) => {}
            }
        }
        while !self.flag.is_stopped() {
            let mut request = self
                .bot
                .get_updates()
                .offset(self.offset)
                .timeout(self.timeout);
            // Until a request is answered: one that fails may not have
            // reached Telegram.
            if let Some(allowed) = &self.allowed {
                request = request.allowed_updates(allowed.clone());
            }
            let answer = tokio::select! {
                biased;
                () = &mut self.flag => break,
                answer = request.send() => answer,
            };
            let updates = match answer {
                Ok(updates) => updates,
                Err(e) => {
                    let pause = match e.retry_after() {
                        Some(seconds) => {
                            self.errors = 0;
                            seconds.duration()
                        }
                        None => {
                            let pause = exponential_backoff_strategy(self.errors);
                            self.errors = self.errors.saturating_add(1);
                            pause
                        }
                    };
                    // The outage itself is logged once, by the dispatcher's
                    // listener error handler (`retry::failing`).
                    log::debug!(
                        "getUpdates failed ({}); asked again in {} s",
                        retry::kind_of(&e),
                        pause.as_secs()
                    );
                    self.resume = Some(tokio::time::Instant::now() + pause);
                    return Some(Err(e));
                }
            };
            self.errors = 0;
            self.allowed = None;
            // An empty answer: the long poll ran out with nothing; ask again.
            if let Some(last) = updates.last() {
                self.offset = last.id.as_offset();
                return Some(Ok(updates));
            }
        }
        // Stopping: the batches taken are confirmed, and nothing more is
        // asked for.
        self.ended = true;
        let confirm = self
            .bot
            .get_updates()
            .offset(self.offset)
            .limit(1)
            .timeout(0);
        match confirm.send().await {
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

/// Deletes the bot's webhook if one is set up, as teloxide's polling does
/// at start; a failure is logged and polling goes on.
async fn delete_webhook_if_set(bot: &Bot) {
    match bot.get_webhook_info().await {
        Ok(info) if info.url.is_some() => {
            if let Err(e) = bot.delete_webhook().await {
                let why = retry::kind_of(&e);
                log::error!("the webhook could not be deleted ({why})");
            }
        }
        Ok(_) => {}
        Err(e) => {
            let why = retry::kind_of(&e);
            log::error!("the webhook could not be looked up ({why})");
        }
    }
}
