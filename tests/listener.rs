//! The HTTP listener under siege, through the real binary under a lowered open-files limit: idle connections past the cap leave /healthz served and the webhook reached once they are closed, one log line each way; a limit too low lowers the cap or stops the start; accepts failing for want of file descriptors pause and are logged once.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::binary::{binary, finish, terminate};
use crate::bot::ALICE;
use crate::fake_api::FakeApi;
use crate::http::get;
use crate::scene::{Log, within};
use crate::webhook::free_address;

/// The binary, run by bash after `ulimit -n <files>` (soft and hard).
fn limited(files: u32) -> Command {
    let inner = binary();
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(format!("ulimit -n {files} && exec \"$0\" run"))
        .arg(inner.get_program());
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => command.env(key, value),
            None => command.env_remove(key),
        };
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // bash execs the bot: the parent-death signal set here stays with it.
    crate::binary::die_with_the_test(&mut command);
    command
}

/// Webhook mode on `listen` against `api`.
fn webhook(command: &mut Command, api: &FakeApi, listen: SocketAddr) {
    command
        .env("TELOXIDE_TOKEN", "123:secretsecret")
        .env("TELOXIDE_API_URL", api.url.as_str())
        .env("WEBHOOK_URL", format!("http://{listen}/tg/hook"))
        .env("WEBHOOK_LISTEN", listen.to_string())
        .env("WEBHOOK_SECRET", "s3cret");
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

/// With 256 open files the default cap of 1024 is lowered to 112 (one
/// line). 200 connections that say nothing fill it and the reserve;
/// /healthz is still answered 200 while they hold it, a webhook post
/// gets through once the header timeout has closed them, and the episode
/// is logged once when it begins and once when it ends.
#[tokio::test]
async fn idle_connections_past_the_cap_leave_health_served_and_the_webhook_reached() {
    within(async {
        let api = FakeApi::start().await;
        let listen = free_address();
        let mut command = limited(256);
        webhook(&mut command, &api, listen);
        command.env("HTTP_HEADER_TIMEOUT_SECS", "5");
        let mut child = command.spawn().expect("bash starts the binary");
        let mut log = Log::of(&mut child);
        let lowered = log.wait_for("open-files limit").await;
        assert!(
            lowered.contains("the open-files limit is 256")
                && lowered.contains("at most 112 HTTP connections"),
            "{lowered}"
        );
        log.wait_for("started as").await;
        api.wait_for("setWebhook", 1).await;

        let mut idle = Vec::new();
        for _ in 0..200 {
            idle.push(tokio::net::TcpStream::connect(listen).await.unwrap());
        }
        log.wait_for("HTTP connection cap reached").await;
        // The reserve's idle ones are closed within a second; then
        // /healthz gets through, while the cap's are still open.
        let mut tries = 0;
        loop {
            tries += 1;
            assert!(tries <= 100, "/healthz never answered");
            if let Ok((200, body)) = get(listen, "/healthz").await {
                assert_eq!(body.trim(), "ok");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut probe = [0u8; 1];
        assert!(
            matches!(idle[0].try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
            "the first idle connection is still open: the cap still holds"
        );
        // Telegram's post (refused 503 while the cap holds, then posted
        // again) gets through once the idle ones are closed.
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let answers = api.webhook_answers(1).await;
        assert_eq!(answers[0].1, 200, "{answers:?}");
        log.wait_for("HTTP connection cap has room again").await;
        drop(idle);

        let out = terminate(child).await;
        assert!(out.status.success(), "{:?}", out.status);
        let lines = log.all().await;
        let all = lines.join("\n");
        assert_eq!(count(&lines, "cap reached"), 1, "{all}");
        assert_eq!(count(&lines, "has room again"), 1, "{all}");
        assert_eq!(count(&lines, "open-files limit"), 1, "{all}");
        assert_eq!(count(&lines, "cannot be accepted"), 0, "{all}");
        // At least the 88 past the cap were refused.
        let room = lines.iter().find(|l| l.contains("has room again")).unwrap();
        let refused: u64 = room
            .split(": ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a count in {room}"));
        assert!(refused >= 88, "{room}");
    })
    .await;
}

/// With 100 open files there is no room for 16 connections: the start is
/// refused with one line and status 2, before anything is asked of
/// Telegram. With 256 and a cap of 100 the cap fits: nothing is said.
#[tokio::test]
async fn an_open_files_limit_too_low_stops_the_start_and_one_that_fits_says_nothing() {
    within(async {
        let api = FakeApi::start().await;
        let mut command = limited(100);
        webhook(&mut command, &api, free_address());
        let out = finish(command.spawn().expect("bash starts the binary")).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("the open-files limit is 100, too low to serve HTTP")
                && stderr.contains("needs 1168")
                && stderr.contains("LimitNOFILE"),
            "{stderr}"
        );
        assert!(api.calls().is_empty(), "{:?}", api.calls());

        let listen = free_address();
        let mut command = limited(256);
        command
            .env("TELOXIDE_TOKEN", "123:secretsecret")
            .env("TELOXIDE_API_URL", api.url.as_str())
            .env("METRICS_LISTEN", listen.to_string())
            .env("HTTP_MAX_CONNECTIONS", "100");
        let mut child = command.spawn().expect("bash starts the binary");
        let mut log = Log::of(&mut child);
        log.wait_for("started as").await;
        let (status, _) = get(listen, "/healthz").await.unwrap();
        assert_eq!(status, 200);
        let out = terminate(child).await;
        assert!(out.status.success());
        let lines = log.all().await;
        assert_eq!(count(&lines, "open-files"), 0, "{}", lines.join("\n"));
    })
    .await;
}

/// Sets process `pid`'s soft open-files limit with prlimit(1); false
/// where it cannot (no prlimit).
fn set_soft_open_files(pid: u32, soft: usize) -> bool {
    Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--nofile={soft}:")])
        .status()
        .is_ok_and(|status| status.success())
}

/// The lowest descriptor number process `pid` has not open.
fn lowest_free_descriptor(pid: u32) -> usize {
    let open: std::collections::HashSet<usize> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the bot's descriptors")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|n| !open.contains(n)).expect("a free number")
}

/// Out of file descriptors (the soft limit lowered under the running bot
/// with prlimit): accepting fails, is paused between tries instead of
/// spinning, and is logged once; when the limit is back, the connections
/// that waited are served and that is logged once too.
#[tokio::test]
async fn accepts_failing_for_want_of_files_pause_and_are_logged_once() {
    within(async {
        let api = FakeApi::start().await;
        let listen = free_address();
        let mut command = binary();
        webhook(&mut command, &api, listen);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let pid = child.id();
        let mut log = Log::of(&mut child);
        log.wait_for("started as").await;
        assert_eq!(get(listen, "/healthz").await.unwrap().0, 200);
        // At the lowest descriptor number it has free: the kernel hands
        // out the lowest free number, so none can be opened unless one
        // below closes meanwhile.
        if !set_soft_open_files(pid, lowest_free_descriptor(pid)) {
            eprintln!("prlimit is not available: the test is skipped");
            let _ = terminate(child).await;
            return;
        }
        // Connected (waiting in the backlog), never accepted for now.
        let mut waiting = Vec::new();
        for _ in 0..3 {
            waiting.push(tokio::net::TcpStream::connect(listen).await.unwrap());
        }
        log.wait_for("HTTP connections cannot be accepted").await;
        let before = crate::process::cpu_time(pid);
        // Failing for about two seconds: some nine tries, paused ever
        // longer, not a busy loop.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let spent = crate::process::cpu_time(pid).saturating_sub(before);
        assert!(
            spent < Duration::from_millis(500),
            "{spent:?} of CPU in 2 s of failing accepts"
        );
        assert!(set_soft_open_files(pid, 4096));
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let first = &mut waiting[0];
        first
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: bot\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        first.read_to_end(&mut answer).await.unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        log.wait_for("HTTP connections are accepted again").await;
        drop(waiting);
        let out = terminate(child).await;
        assert!(out.status.success());
        let lines = log.all().await;
        let all = lines.join("\n");
        assert_eq!(count(&lines, "cannot be accepted"), 1, "{all}");
        assert_eq!(count(&lines, "accepted again"), 1, "{all}");
    })
    .await;
}
