//! The HTTP listener (the webhook, /healthz, /metrics): an accept loop with timeouts and a cap, so that idle or slow connections cannot starve it.
//!
//! Each connection has one deadline at a time. A request's head must
//! arrive within the header timeout, counted from the connection's
//! opening or, on a kept-alive connection, from the first byte of the next
//! request; between requests a connection may stay open for the idle
//! timeout; a request's body must arrive within the body timeout of its
//! head. A connection past its deadline is closed, without an answer.
//!
//! At most `max_connections` are open at once. Past that, a small reserve
//! of connections serves `GET /healthz` and `GET /metrics` alone, one
//! request each with short timeouts, and answers anything else 503; a
//! connection that finds the reserve full too is closed at once. The cap
//! is lowered at start to what the open-files limit leaves room for.
//! Reaching the cap, and accepting failing (out of file descriptors, say),
//! are each logged once when they start and once when they end, never per
//! connection; a failing accept is retried after a pause that grows to a
//! second, so it does not spin.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tower::Service;

use super::StartError;

/// The listener's limits, as configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// The most connections open at once, besides the reserve for
    /// /healthz (`HTTP_MAX_CONNECTIONS`).
    pub max_connections: u32,
    /// How long a request's head may take to arrive
    /// (`HTTP_HEADER_TIMEOUT_SECS`).
    pub header_timeout: Duration,
    /// How long a connection may wait for its next request
    /// (`HTTP_IDLE_TIMEOUT_SECS`).
    pub idle_timeout: Duration,
    /// How long a request's body may take to arrive after its head
    /// (`HTTP_BODY_TIMEOUT_SECS`).
    pub body_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
        }
    }
}

/// Connections kept, past the cap, for `GET /healthz` and `GET /metrics`.
pub(crate) const RESERVE: u32 = 16;

/// How long a reserve connection may take to send its request…
pub(crate) const RESERVE_HEADER: Duration = Duration::from_secs(1);

/// …and how long it may stay open in all: /healthz waits up to 2 s for
/// the store.
pub(crate) const RESERVE_LIFETIME: Duration = Duration::from_secs(5);

/// Open files kept, beside the listener's, for the rest of the process:
/// the store's files or connections, the Bot API's connections, the log,
/// the runtime's own.
pub(crate) const FILES_MARGIN: u64 = 128;

/// The largest request head taken: a larger one is answered 431.
pub(crate) const MAX_HEAD: usize = 32 * 1024;

/// About the most a connection buffers of what it was sent and has not
/// been handled yet. Bodies pass through in pieces, so it does not limit
/// them; with `MAX_HEAD` it keeps slow or idle connections at the cap
/// from holding more than some 64 MB together.
const READ_BUFFER: usize = 64 * 1024;

/// The fewest connections worth serving: with an open-files limit that
/// leaves room for fewer, the bot does not start.
pub(crate) const MIN_CONNECTIONS: u64 = 16;

/// The `Retry-After` a reserve connection gives with its 503, in seconds.
pub(crate) const RESERVE_RETRY_AFTER_SECS: u32 = 1;

/// The cap counts as having room again, and its episode ends in the log,
/// once a `ROOM_AGAIN`th of it is free: a cap hovering at its limit is not
/// logged on and off.
pub(crate) const ROOM_AGAIN: u64 = 10;

/// How often, while the cap is reached, the listener looks whether it has
/// room again.
const ROOM_CHECK: Duration = Duration::from_secs(1);

/// The pauses after a failed accept: doubled each time, up to the second.
pub(crate) const ACCEPT_PAUSE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(1));

/// The open files `cap` connections need, with the reserve and the
/// margin.
pub(crate) fn files_needed(cap: u32) -> u64 {
    u64::from(cap) + u64::from(RESERVE) + FILES_MARGIN
}

/// The cap to serve with: `wanted`, or less if the open-files limit
/// (`None`: unknown or unlimited) leaves room for less; an error if it
/// leaves room for fewer than `MIN_CONNECTIONS`.
pub(crate) fn fit(wanted: u32, limit: Option<u64>) -> Result<u32, StartError> {
    let Some(limit) = limit else {
        return Ok(wanted);
    };
    let room = limit.saturating_sub(files_needed(0));
    if room < MIN_CONNECTIONS.min(u64::from(wanted)) {
        return Err(StartError::OpenFiles {
            limit,
            wanted,
            needed: files_needed(wanted),
        });
    }
    Ok(u32::try_from(room).unwrap_or(u32::MAX).min(wanted))
}

/// This process's soft limit on open files, from `/proc/self/limits`:
/// `None` where that cannot be read (not Linux) or it is unlimited.
pub(super) fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    soft_open_files(&text)
}

/// The soft limit on open files in the text of `/proc/<pid>/limits`.
fn soft_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The routes served: `all` on ordinary connections, `health` (/healthz
/// and /metrics) on the reserve's.
pub(super) struct Routes {
    pub(super) all: axum::Router,
    pub(super) health: axum::Router,
}

/// Binds `address` and serves `routes` on it with `limits`, lowered to
/// `cap` connections, from now until the task is aborted (which closes
/// every connection).
pub(super) async fn listen(
    address: std::net::SocketAddr,
    routes: Routes,
    limits: HttpLimits,
    cap: u32,
) -> Result<JoinHandle<()>, StartError> {
    let listener = TcpListener::bind(address)
        .await
        .map_err(|e| StartError::Listen(address, e))?;
    log::info!("listening on {address}");
    Ok(tokio::spawn(serve(
        listener,
        routes,
        Plan::new(limits, cap),
    )))
}

/// Checks `limits` against the open-files limit: the cap to serve with,
/// logged once if it is lower than asked.
pub(super) fn cap_for(limits: &HttpLimits) -> Result<u32, StartError> {
    let limit = open_files_limit();
    let cap = fit(limits.max_connections, limit)?;
    if let Some(limit) = limit.filter(|_| cap < limits.max_connections) {
        log::warn!(
            "the open-files limit is {limit}, too low for HTTP_MAX_CONNECTIONS={} (it needs {}): \
             at most {cap} HTTP connections are served; raise LimitNOFILE in the systemd unit \
             (or ulimit -n) to serve them all",
            limits.max_connections,
            files_needed(limits.max_connections)
        );
    }
    Ok(cap)
}

/// What one connection is allowed.
#[derive(Debug, Clone, Copy)]
struct Timing {
    header: Duration,
    idle: Duration,
    body: Duration,
    /// Whether a connection may carry more than one request.
    keep_alive: bool,
    /// How long a connection may stay open whatever it does.
    lifetime: Option<Duration>,
}

/// How the listener serves: its cap, its reserve, and what ordinary and
/// reserve connections are allowed.
#[derive(Debug, Clone, Copy)]
struct Plan {
    cap: u32,
    reserve: u32,
    ordinary: Timing,
    spare: Timing,
}

impl Plan {
    fn new(limits: HttpLimits, cap: u32) -> Plan {
        Plan {
            cap,
            reserve: RESERVE,
            ordinary: Timing {
                header: limits.header_timeout,
                idle: limits.idle_timeout,
                body: limits.body_timeout,
                keep_alive: true,
                lifetime: None,
            },
            spare: Timing {
                header: RESERVE_HEADER,
                idle: RESERVE_HEADER,
                body: RESERVE_HEADER,
                keep_alive: false,
                lifetime: Some(RESERVE_LIFETIME),
            },
        }
    }
}

/// What a reserve connection answers to anything but /healthz and
/// /metrics.
async fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(
            header::RETRY_AFTER,
            header::HeaderValue::from(RESERVE_RETRY_AFTER_SECS),
        )],
        "too many connections: only /healthz and /metrics are served now\n",
    )
        .into_response()
}

/// Accepts connections on `listener` until the task is dropped, then
/// closes every connection it opened.
async fn serve(listener: TcpListener, routes: Routes, plan: Plan) {
    // Dropped with this task: every connection sees it and ends.
    let (_open, closing) = watch::channel(());
    let slots = Arc::new(Semaphore::new(plan.cap as usize));
    let spare = Arc::new(Semaphore::new(plan.reserve as usize));
    let health = routes.health.fallback(busy);
    let mut full = Full::new(plan.cap);
    let mut failing = Failing::default();
    let mut next_check = Instant::now();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = tokio::time::sleep_until(next_check), if full.is_on() => {
                next_check = Instant::now() + ROOM_CHECK;
                if let Some(line) = full.look(slots.available_permits()) {
                    log::info!("{line}");
                }
                continue;
            }
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            // The connection was gone before it was accepted.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                let (line, pause) = failing.failed(&e);
                if let Some(line) = line {
                    log::error!("{line}");
                }
                tokio::time::sleep(pause).await;
                continue;
            }
        };
        if let Some(line) = failing.accepted() {
            log::info!("{line}");
        }
        let _ = stream.set_nodelay(true);
        let closing = closing.clone();
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(connection(
                    stream,
                    routes.all.clone(),
                    plan.ordinary,
                    slot,
                    closing,
                ));
            }
            Err(_) => {
                let reserved = Arc::clone(&spare).try_acquire_owned().ok();
                if let Some(line) = full.refused(reserved.is_some()) {
                    log::warn!("{line}");
                    next_check = Instant::now() + ROOM_CHECK;
                }
                // Past the reserve too: closed at once.
                if let Some(slot) = reserved {
                    tokio::spawn(connection(
                        stream,
                        health.clone(),
                        plan.spare,
                        slot,
                        closing,
                    ));
                }
            }
        }
    }
}

/// An accept error that concerns one connection, not the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// An episode of the cap reached: when it began, and the connections
/// refused since.
struct Full {
    cap: u32,
    since: Option<Instant>,
    refused: u64,
    reserved: u64,
}

impl Full {
    fn new(cap: u32) -> Full {
        Full {
            cap,
            since: None,
            refused: 0,
            reserved: 0,
        }
    }

    fn is_on(&self) -> bool {
        self.since.is_some()
    }

    /// A connection found the cap reached (and was given a reserve
    /// connection or not): the line to log if this begins an episode.
    fn refused(&mut self, reserved: bool) -> Option<String> {
        self.refused += 1;
        self.reserved += u64::from(reserved);
        if self.since.is_some() {
            return None;
        }
        self.since = Some(Instant::now());
        Some(format!(
            "HTTP connection cap reached: {} connections are open (HTTP_MAX_CONNECTIONS); \
             until some close, new ones get only /healthz and /metrics ({RESERVE} at a time) \
             or are closed",
            self.cap
        ))
    }

    /// With `free` ordinary connections free: the line to log if that
    /// ends the episode (`ROOM_AGAIN`).
    fn look(&mut self, free: usize) -> Option<String> {
        let since = self.since?;
        if (free as u64) < (u64::from(self.cap) / ROOM_AGAIN).max(1) {
            return None;
        }
        let line = format!(
            "HTTP connection cap has room again after {:.0} s: {} connection(s) over the cap \
             were refused, {} of them given /healthz and /metrics only",
            since.elapsed().as_secs_f64(),
            self.refused,
            self.reserved
        );
        *self = Full::new(self.cap);
        Some(line)
    }
}

/// A run of failed accepts: how many, and the next pause.
#[derive(Default)]
struct Failing {
    failures: u64,
    pause: Duration,
}

impl Failing {
    /// An accept failed: the line to log if this begins a run, and how
    /// long to pause before the next.
    fn failed(&mut self, e: &std::io::Error) -> (Option<String>, Duration) {
        self.failures += 1;
        self.pause = if self.failures == 1 {
            ACCEPT_PAUSE.0
        } else {
            (self.pause * 2).min(ACCEPT_PAUSE.1)
        };
        let line = (self.failures == 1).then(|| {
            format!(
                "HTTP connections cannot be accepted ({e}); trying again, up to once a second, \
                 until they can (if the open-files limit is the cause, raise LimitNOFILE)"
            )
        });
        (line, self.pause)
    }

    /// An accept succeeded: the line to log if that ends a run.
    fn accepted(&mut self) -> Option<String> {
        if self.failures == 0 {
            return None;
        }
        let line = format!(
            "HTTP connections are accepted again, after {} failed attempt(s)",
            self.failures
        );
        *self = Failing::default();
        Some(line)
    }
}

/// Where a connection is between its requests, and the deadline that
/// goes with it.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for the next request, until the deadline.
    Idle(Instant),
    /// A request's head has begun (or the connection has just opened) and
    /// must be whole by the deadline.
    Head(Instant),
    /// A request is being read (within the body timeout, which its body
    /// keeps) and answered.
    Busy,
}

/// A connection's phase, shared by its reads, its requests and its
/// watchdog.
struct Watch {
    phase: Mutex<Phase>,
    changed: Notify,
    timing: Timing,
}

impl Watch {
    fn deadline(&self) -> Option<Instant> {
        match *self.phase.lock().unwrap_or_else(|e| e.into_inner()) {
            Phase::Idle(at) | Phase::Head(at) => Some(at),
            Phase::Busy => None,
        }
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
        self.changed.notify_one();
    }

    /// Bytes arrived: an idle connection has begun its next request.
    fn arrived(&self) {
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        if let Phase::Idle(_) = *phase {
            *phase = Phase::Head(Instant::now() + self.timing.header);
            drop(phase);
            self.changed.notify_one();
        }
    }
}

/// A connection's stream, telling its watch when bytes arrive.
struct Watched<S> {
    stream: S,
    watch: Arc<Watch>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(read, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.watch.arrived();
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A request's body, which fails once it has taken longer than the body
/// timeout to arrive.
struct Timed {
    body: Incoming,
    /// `None` for a request without a body.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// A body that took longer than the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct SlowBody;

impl Body for Timed {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(deadline) = this.deadline.as_mut()
            && deadline.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Some(Err(SlowBody.into())));
        }
        Pin::new(&mut this.body).poll_frame(cx).map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Serves `router` on one connection within `timing`, holding `slot`
/// until it ends: when the client closes it, when it misses its
/// deadline, or when the listener stops.
async fn connection<S>(
    stream: S,
    router: axum::Router,
    timing: Timing,
    slot: OwnedSemaphorePermit,
    mut closing: watch::Receiver<()>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let opened = Instant::now();
    let watch = Arc::new(Watch {
        phase: Mutex::new(Phase::Head(opened + timing.header)),
        changed: Notify::new(),
        timing,
    });
    let io = TokioIo::new(Watched {
        stream,
        watch: Arc::clone(&watch),
    });
    let service = {
        let watch = Arc::clone(&watch);
        hyper::service::service_fn(move |request: Request<Incoming>| {
            watch.set(Phase::Busy);
            let request = request.map(|body| Timed {
                deadline: (!body.is_end_stream())
                    .then(|| Box::pin(tokio::time::sleep(timing.body))),
                body,
            });
            let mut router = router.clone();
            let watch = Arc::clone(&watch);
            async move {
                let response: Result<Response, Infallible> = router.call(request).await;
                watch.set(Phase::Idle(Instant::now() + timing.idle));
                response
            }
        })
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    // The watchdog below keeps the header timeout, not hyper.
    http.keep_alive(timing.keep_alive)
        .header_read_timeout(None)
        .max_header_size(MAX_HEAD)
        .max_buf_size(READ_BUFFER);
    let served = http.serve_connection(io, service);
    let mut served = std::pin::pin!(served);
    let end = timing.lifetime.map(|lifetime| opened + lifetime);
    let due = || match (watch.deadline(), end) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    loop {
        let deadline = due();
        let changed = watch.changed.notified();
        tokio::select! {
            // What the connection can do is done before its deadline is
            // looked at: a request that arrived in time is served.
            biased;
            _ = served.as_mut() => break,
            _ = closing.changed() => break,
            () = changed => {}
            () = sleep_until(deadline) => {
                if due().is_some_and(|at| at <= Instant::now()) {
                    break;
                }
            }
        }
    }
    drop(slot);
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
