//! The listener's own tests: each connection's timeouts on a paused clock over an in-memory stream (so the clock moves only when nothing else can), the cap and its reserve over loopback, and the pure parts (the open-files fit, the once-per-episode lines).

use std::time::Duration;

use axum::routing::{get, post};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::*;

/// A test's routes: /healthz, a webhook-like post that reads its body,
/// and a slow page.
fn router() -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/hook",
            post(|body: Bytes| async move { format!("{} bytes\n", body.len()) }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "late\n"
            }),
        )
}

fn ordinary(header: u64, idle: u64, body: u64) -> Timing {
    Timing {
        header: Duration::from_secs(header),
        idle: Duration::from_secs(idle),
        body: Duration::from_secs(body),
        keep_alive: true,
        lifetime: None,
    }
}

/// One connection served over an in-memory stream: the client's end, the
/// sender whose drop stops the listener, and the slot's semaphore.
struct Served {
    client: DuplexStream,
    open: watch::Sender<()>,
    slots: Arc<Semaphore>,
    task: JoinHandle<()>,
}

fn serve_one(router: axum::Router, timing: Timing) -> Served {
    let (client, server) = tokio::io::duplex(64 * 1024);
    let (open, closing) = watch::channel(());
    let slots = Arc::new(Semaphore::new(1));
    let slot = Arc::clone(&slots).try_acquire_owned().expect("a slot");
    let task = tokio::spawn(connection(server, router, timing, slot, closing));
    Served {
        client,
        open,
        slots,
        task,
    }
}

/// Reads one response: its status and body (by its Content-Length).
async fn response<S: AsyncRead + Unpin>(stream: &mut S) -> (u16, String) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + length]);
                return (status, body.to_string());
            }
        }
        let n = stream.read(&mut chunk).await.expect("a response");
        assert!(n > 0, "closed before a whole response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Waits until the server closes the stream; what it sent meanwhile.
async fn closed<S: AsyncRead + Unpin>(stream: &mut S) -> Vec<u8> {
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
    rest
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n";

/// Runs a test on the paused clock for at most an hour of it (no time at
/// all on the wall clock), so one that waits for what never comes fails.
async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(3600), test)
        .await
        .expect("the test finished within an hour of the paused clock")
}

/// A slowloris: a head trickled a line a second is cut at the header
/// timeout, counted from the connection's opening, and its slot freed.
#[tokio::test(start_paused = true)]
async fn a_head_trickled_in_is_cut_at_the_header_timeout() {
    within(async {
        let Served {
            client,
            open: _open,
            slots,
            task,
        } = serve_one(router(), ordinary(10, 30, 10));
        let started = Instant::now();
        let (mut reader, mut writer) = tokio::io::split(client);
        let trickle = tokio::spawn(async move {
            writer
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n")
                .await?;
            for i in 0..600 {
                tokio::time::sleep(Duration::from_secs(1)).await;
                writer.write_all(format!("X-{i}: a\r\n").as_bytes()).await?;
            }
            Ok::<_, std::io::Error>(())
        });
        let sent = closed(&mut reader).await;
        assert!(
            sent.is_empty(),
            "no answer: {:?}",
            String::from_utf8_lossy(&sent)
        );
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        task.await.expect("the connection's task");
        assert_eq!(slots.available_permits(), 1, "the slot is free again");
        // The trickle found the connection closed.
        assert!(trickle.await.expect("the trickle").is_err());
    })
    .await;
}

/// A connection that never sends anything is closed at the header
/// timeout too.
#[tokio::test(start_paused = true)]
async fn a_connection_that_says_nothing_is_closed_at_the_header_timeout() {
    within(async {
        let mut served = serve_one(router(), ordinary(10, 30, 10));
        let started = Instant::now();
        assert!(closed(&mut served.client).await.is_empty());
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    })
    .await;
}

/// A kept-alive connection waits for its next request for the idle
/// timeout (longer than the header timeout here), and is closed after.
#[tokio::test(start_paused = true)]
async fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    within(async {
        let mut served = serve_one(router(), ordinary(10, 30, 10));
        let client = &mut served.client;
        client.write_all(HEALTHZ).await.unwrap();
        assert_eq!(response(client).await, (200, "ok\n".to_string()));
        // Idle for 25 s, past the header timeout: still open, and served.
        tokio::time::sleep(Duration::from_secs(25)).await;
        client.write_all(HEALTHZ).await.unwrap();
        assert_eq!(response(client).await.0, 200);
        let answered = Instant::now();
        assert!(closed(client).await.is_empty());
        assert_eq!(answered.elapsed(), Duration::from_secs(30));
    })
    .await;
}

/// On a kept-alive connection, the header timeout counts from the first
/// byte of the next request: a head begun after 25 s idle is cut 10 s
/// later, not at the idle timeout.
#[tokio::test(start_paused = true)]
async fn the_header_timeout_of_a_later_request_counts_from_its_first_byte() {
    within(async {
        let mut served = serve_one(router(), ordinary(10, 30, 10));
        let client = &mut served.client;
        client.write_all(HEALTHZ).await.unwrap();
        assert_eq!(response(client).await.0, 200);
        let answered = Instant::now();
        tokio::time::sleep(Duration::from_secs(25)).await;
        client
            .write_all(b"GET /healthz HTTP/1.1\r\n")
            .await
            .unwrap();
        assert!(closed(client).await.is_empty());
        assert_eq!(answered.elapsed(), Duration::from_secs(35));
    })
    .await;
}

/// A head over 32 KB is refused 431 and the connection closed; a body
/// larger than the read buffer passes through whole.
#[tokio::test(start_paused = true)]
async fn a_huge_head_is_refused_and_a_large_body_served() {
    within(async {
        let mut served = serve_one(router(), ordinary(10, 30, 10));
        let client = &mut served.client;
        let body = "x".repeat(3 * READ_BUFFER);
        let post = format!(
            "POST /hook HTTP/1.1\r\nHost: bot\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        client.write_all(post.as_bytes()).await.unwrap();
        assert_eq!(
            response(client).await,
            (200, format!("{} bytes\n", body.len()))
        );
        let (mut reader, mut writer) = tokio::io::split(served.client);
        let huge = format!(
            "GET /healthz HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "y".repeat(MAX_HEAD)
        );
        let sending = tokio::spawn(async move {
            let _ = writer.write_all(huge.as_bytes()).await;
        });
        assert_eq!(response(&mut reader).await.0, 431);
        assert!(closed(&mut reader).await.is_empty());
        sending.await.unwrap();
    })
    .await;
}

/// A body that does not arrive within the body timeout of its head is
/// refused and the connection closed; one that does is served.
#[tokio::test(start_paused = true)]
async fn a_body_sent_too_slowly_is_refused_at_the_body_timeout() {
    within(async {
        let mut served = serve_one(router(), ordinary(10, 30, 10));
        let client = &mut served.client;
        client
            .write_all(b"POST /hook HTTP/1.1\r\nHost: bot\r\nContent-Length: 10\r\n\r\n0123456789")
            .await
            .unwrap();
        assert_eq!(response(client).await, (200, "10 bytes\n".to_string()));
        client
            .write_all(b"POST /hook HTTP/1.1\r\nHost: bot\r\nContent-Length: 100\r\n\r\n0123456789")
            .await
            .unwrap();
        let sent = Instant::now();
        let (status, _) = response(client).await;
        assert_eq!(status, 400);
        assert_eq!(sent.elapsed(), Duration::from_secs(10));
        assert!(closed(client).await.is_empty());
    })
    .await;
}

/// A request being answered is not cut by the header or idle timeout.
#[tokio::test(start_paused = true)]
async fn a_slow_answer_is_not_cut_on_an_ordinary_connection() {
    within(async {
        let mut served = serve_one(router(), ordinary(10, 30, 10));
        let client = &mut served.client;
        client
            .write_all(b"GET /slow HTTP/1.1\r\nHost: bot\r\n\r\n")
            .await
            .unwrap();
        let asked = Instant::now();
        assert_eq!(response(client).await, (200, "late\n".to_string()));
        assert_eq!(asked.elapsed(), Duration::from_secs(60));
    })
    .await;
}

/// When the listener stops, its connections close, idle or not.
#[tokio::test(start_paused = true)]
async fn connections_close_when_the_listener_stops() {
    within(async {
        let Served {
            mut client,
            open,
            slots,
            task,
        } = serve_one(router(), ordinary(10, 30, 10));
        client
            .write_all(b"GET /slow HTTP/1.1\r\nHost: bot\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let stopped = Instant::now();
        drop(open);
        assert!(closed(&mut client).await.is_empty());
        assert_eq!(stopped.elapsed(), Duration::ZERO);
        task.await.expect("the connection's task");
        assert_eq!(slots.available_permits(), 1);
    })
    .await;
}

/// The reserve: /healthz served once and the connection closed, anything
/// else 503, and nothing held past its short timeouts.
#[tokio::test(start_paused = true)]
async fn a_reserve_connection_serves_health_once_with_short_timeouts() {
    within(async {
        let plan = Plan::new(HttpLimits::default(), 4);
        let health = || {
            axum::Router::new()
                .route("/healthz", get(|| async { "ok\n" }))
                .route(
                    "/metrics",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        "late\n"
                    }),
                )
                .fallback(busy)
        };
        let mut served = serve_one(health(), plan.spare);
        served.client.write_all(HEALTHZ).await.unwrap();
        assert_eq!(response(&mut served.client).await.0, 200);
        assert!(closed(&mut served.client).await.is_empty());

        let mut served = serve_one(health(), plan.spare);
        served
            .client
            .write_all(b"POST /hook HTTP/1.1\r\nHost: bot\r\nContent-Length: 2\r\n\r\n{}")
            .await
            .unwrap();
        let (status, body) = response(&mut served.client).await;
        assert_eq!(status, 503);
        assert!(body.contains("too many connections"), "{body}");

        let mut served = serve_one(health(), plan.spare);
        let opened = Instant::now();
        assert!(closed(&mut served.client).await.is_empty());
        assert_eq!(opened.elapsed(), RESERVE_HEADER);

        let mut served = serve_one(health(), plan.spare);
        served
            .client
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: bot\r\n\r\n")
            .await
            .unwrap();
        assert!(closed(&mut served.client).await.is_empty());
        assert_eq!(opened.elapsed(), RESERVE_HEADER + RESERVE_LIFETIME);
    })
    .await;
}

/// Over loopback: past the cap, the reserve serves /healthz and answers
/// the rest 503; past the reserve, connections are closed at once; once
/// connections close there is room again; and stopping the listener
/// closes what is open.
#[tokio::test]
async fn past_the_cap_the_reserve_serves_health_and_the_rest_is_closed() {
    tokio::time::timeout(Duration::from_secs(30), async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut plan = Plan::new(HttpLimits::default(), 2);
        plan.reserve = 1;
        plan.ordinary = ordinary(60, 60, 60);
        plan.spare.header = Duration::from_secs(60);
        plan.spare.lifetime = Some(Duration::from_secs(60));
        let routes = Routes {
            all: router(),
            health: axum::Router::new().route("/healthz", get(|| async { "ok\n" })),
        };
        let server = tokio::spawn(serve(listener, routes, plan));
        let connect = || tokio::net::TcpStream::connect(address);
        // Two idle connections fill the cap (accepted in order).
        let mut first = connect().await.unwrap();
        let _second = connect().await.unwrap();
        // The third gets the reserve: /hook refused, the connection closed.
        let mut third = connect().await.unwrap();
        third
            .write_all(b"POST /hook HTTP/1.1\r\nHost: bot\r\nContent-Length: 2\r\n\r\n{}")
            .await
            .unwrap();
        assert_eq!(response(&mut third).await.0, 503);
        assert!(closed(&mut third).await.is_empty());
        // The reserve serves /healthz, one request, and closes.
        let mut spare = connect().await.unwrap();
        spare.write_all(HEALTHZ).await.unwrap();
        assert_eq!(response(&mut spare).await, (200, "ok\n".to_string()));
        assert!(closed(&mut spare).await.is_empty());
        // The reserve held by an idle connection: the next is closed at once.
        let _idle_spare = connect().await.unwrap();
        let mut over = connect().await.unwrap();
        let _ = over.write_all(HEALTHZ).await;
        assert!(closed(&mut over).await.is_empty());
        // The first idle connection goes: room for an ordinary one again.
        first.shutdown().await.unwrap();
        drop(first);
        let served = loop {
            let mut next = connect().await.unwrap();
            next.write_all(
                b"POST /hook HTTP/1.1\r\nHost: bot\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
            )
            .await
            .unwrap();
            let mut answer = Vec::new();
            let _ = next.read_to_end(&mut answer).await;
            if answer.starts_with(b"HTTP/1.1 200") {
                break next;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        drop(served);
        // Stopped: the connections left are closed.
        let mut last = connect().await.unwrap();
        last.write_all(b"GET /healthz HTTP/1.1\r\nHost: bot\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(response(&mut last).await.0, 200);
        server.abort();
        assert!(closed(&mut last).await.is_empty());
    })
    .await
    .expect("within 30 s");
}

#[test]
fn the_cap_fits_the_open_files_limit_or_the_start_is_refused() {
    assert_eq!(fit(1024, None).unwrap(), 1024);
    assert_eq!(fit(1024, Some(20_000)).unwrap(), 1024);
    assert_eq!(fit(1024, Some(1168)).unwrap(), 1024);
    assert_eq!(fit(1024, Some(1024)).unwrap(), 880);
    assert_eq!(fit(1024, Some(256)).unwrap(), 112);
    assert_eq!(fit(1024, Some(160)).unwrap(), 16);
    let Err(StartError::OpenFiles {
        limit,
        wanted,
        needed,
    }) = fit(1024, Some(159))
    else {
        panic!("refused below 16 connections");
    };
    assert_eq!((limit, wanted, needed), (159, 1024, 1168));
    // A cap asked below 16 is served whole if it fits.
    assert_eq!(fit(4, Some(150)).unwrap(), 4);
    assert!(fit(4, Some(100)).is_err());
}

#[test]
fn the_soft_open_files_limit_is_read_from_proc() {
    let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                  Max cpu time              unlimited            unlimited            seconds   \n\
                  Max open files            1024                 524288               files     \n";
    assert_eq!(soft_open_files(limits), Some(1024));
    let unlimited = limits.replace("1024 ", "unlimited ");
    assert_eq!(soft_open_files(&unlimited), None);
    assert_eq!(soft_open_files(""), None);
    if cfg!(target_os = "linux") {
        assert!(open_files_limit().is_some_and(|n| n > 0));
    }
}

#[tokio::test(start_paused = true)]
async fn the_cap_reached_is_one_line_when_it_begins_and_one_when_it_ends() {
    within(async {
        let mut full = Full::new(100);
        assert_eq!(full.look(100), None, "no episode, nothing to end");
        let first = full.refused(true).expect("the episode begins");
        assert!(first.contains("cap reached"), "{first}");
        assert!(first.contains("100 connections"), "{first}");
        for reserved in [false, true, false] {
            assert_eq!(full.refused(reserved), None);
        }
        tokio::time::sleep(Duration::from_secs(7)).await;
        // Room for fewer than a tenth of the cap: still on.
        assert_eq!(full.look(9), None);
        let last = full.look(10).expect("the episode ends");
        assert!(
            last.contains(
                "room again after 7 s: 4 connection(s) over the cap were refused, 2 of them"
            ),
            "{last}"
        );
        assert_eq!(full.look(100), None);
        assert!(full.refused(false).is_some(), "a new episode");
    })
    .await;
}

#[test]
fn failed_accepts_pause_longer_each_time_and_are_logged_once() {
    let mut failing = Failing::default();
    assert_eq!(failing.accepted(), None);
    let e = std::io::Error::from_raw_os_error(24);
    let (line, pause) = failing.failed(&e);
    let line = line.expect("the first failure is logged");
    assert!(line.contains("cannot be accepted"), "{line}");
    assert_eq!(pause, Duration::from_millis(10));
    let mut pauses = vec![pause];
    for _ in 0..9 {
        let (line, pause) = failing.failed(&e);
        assert_eq!(line, None);
        pauses.push(pause);
    }
    assert_eq!(
        pauses.iter().map(Duration::as_millis).collect::<Vec<_>>(),
        [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]
    );
    let back = failing.accepted().expect("the end is logged");
    assert!(back.contains("after 10 failed attempt(s)"), "{back}");
    assert_eq!(failing.accepted(), None);
}
