//! Health that tells the truth (issue 30): `/healthz` answers 503, with the reason, while the store refuses writes — a Redis at its memory limit, a full disk, a store whose writes fail — and 200 again within about two seconds of writes being taken; the database's folder closed up to 0700, and a second bot refused on the same database reached by a hard link.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use icp_sms_doctor::store::PROBE_EVERY;
use icp_sms_doctor::telegram::Options;

use crate::binary::{binary, finish, terminate};
use crate::bot::ALICE;
use crate::fake_api::{FakeApi, Person};
use crate::faulty::{Faulty, Op};
use crate::http::get;
use crate::scene::{Scene, memory, options, within};
use crate::webhook::free_address;

/// Asks `/healthz` on `listen` every 50 ms until it answers `want`, and
/// returns its body and how long that took. (The bound is `within`'s.)
async fn until_healthz(listen: SocketAddr, want: u16) -> (String, Duration) {
    let started = Instant::now();
    loop {
        let answer = match get(listen, "/healthz").await {
            Ok((status, body)) if status == want => return (body, started.elapsed()),
            answer => answer,
        };
        if started.elapsed() > Duration::from_secs(20) {
            panic!("/healthz did not answer {want} within 20 s; last: {answer:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bot process, killed if the test fails before stopping it.
pub(crate) struct Bot(Option<Child>);

impl Bot {
    /// Stops it as systemd does, and waits for its end.
    pub(crate) async fn stop(mut self) -> std::process::Output {
        terminate(self.0.take().expect("running")).await
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The bot as a process on `database`, polling the fake API, serving
/// /healthz and /metrics on `listen`.
pub(crate) fn launch(api: &FakeApi, database: &str, listen: SocketAddr) -> Bot {
    let child = binary()
        .env("TELOXIDE_TOKEN", "123:secretsecret")
        .env("TELOXIDE_API_URL", api.url.as_str())
        .env("DATABASE_URL", database)
        .env("METRICS_LISTEN", listen.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    Bot(Some(child))
}

/// What a body may never hold: the token, a person's id or name.
fn assert_private(body: &str) {
    for secret in ["secretsecret", &ALICE.id.to_string(), ALICE.name] {
        assert!(!body.contains(secret), "{secret} in the body: {body}");
    }
}

/// A Redis at its `maxmemory` with `noeviction` refuses every write that
/// adds: /healthz says so, naming Redis's reason, and answers 200 again
/// within about two seconds of the limit being lifted.
#[tokio::test]
async fn healthz_says_503_while_redis_refuses_writes_and_200_once_it_takes_them() {
    let Some(redis) = crate::redis_server::RedisServer::start() else {
        return;
    };
    within(async {
        let api = FakeApi::start().await;
        let listen = free_address();
        let bot = launch(&api, &redis.url(), listen);
        api.wait_polling().await;
        let (body, _) = until_healthz(listen, 200).await;
        assert_eq!(body.trim(), "ok");

        let client = redis::Client::open(redis.url()).expect("a client");
        let mut admin = client.get_connection().expect("a connection");
        let config = |admin: &mut redis::Connection, key: &str, value: &str| {
            redis::cmd("CONFIG")
                .arg("SET")
                .arg(key)
                .arg(value)
                .query::<()>(admin)
                .expect("CONFIG SET");
        };
        config(&mut admin, "maxmemory-policy", "noeviction");
        config(&mut admin, "maxmemory", "1");
        // Reads still work: only what the writes say tells.
        let (body, _) = until_healthz(listen, 503).await;
        eprintln!("Redis at its limit: /healthz 503 {body:?}");
        assert!(body.contains("the store refuses writes"), "{body}");
        assert!(body.contains("OOM"), "{body}");
        assert_private(&body);
        // And it stays so while the limit holds, the probe trying again.
        tokio::time::sleep(PROBE_EVERY * 2).await;
        assert_eq!(get(listen, "/healthz").await.unwrap().0, 503);

        config(&mut admin, "maxmemory", "0");
        let (body, took) = until_healthz(listen, 200).await;
        assert_eq!(body.trim(), "ok");
        eprintln!("Redis: /healthz 200 again {took:?} after the limit was lifted");
        assert!(took < PROBE_EVERY * 5, "recovered only after {took:?}");

        let out = bot.stop().await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("a write was refused"), "{stderr}");
        assert!(stderr.contains("writes are taken again"), "{stderr}");
    })
    .await;
}

/// Redis stopped under a bot in webhook mode, then started again on the
/// same port: `/healthz` says 503 while it is gone and 200 within about two
/// seconds of its return; a post meanwhile is answered 503 (Telegram sends
/// it again); and the log says so once when the outage starts and once
/// when it ends, however many calls failed in between.
#[tokio::test]
async fn a_redis_outage_is_logged_once_each_way_and_healthz_recovers_at_once() {
    let Some(redis) = crate::redis_server::RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let port: u16 = url
        .trim_start_matches("redis://127.0.0.1:")
        .trim_end_matches("/0")
        .parse()
        .expect("the port");
    within(async move {
        let api = FakeApi::start().await;
        let listen = free_address();
        let child = binary()
            .env("TELOXIDE_TOKEN", "123:secretsecret")
            .env("TELOXIDE_API_URL", api.url.as_str())
            .env("DATABASE_URL", &url)
            .env("WEBHOOK_URL", format!("http://{listen}/tg/hook"))
            .env("WEBHOOK_LISTEN", listen.to_string())
            .env("WEBHOOK_SECRET", "s3cret")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let bot = Bot(Some(child));
        let (body, _) = until_healthz(listen, 200).await;
        assert_eq!(body.trim(), "ok");

        drop(redis);
        let (body, took) = until_healthz(listen, 503).await;
        eprintln!("Redis gone: /healthz 503 after {took:?}: {body:?}");
        assert_private(&body);
        let update = serde_json::json!({
            "update_id": 7001,
            "message": {
                "message_id": 1, "date": 0,
                "chat": {"id": ALICE.id, "type": "private", "first_name": ALICE.name},
                "from": {"id": ALICE.id, "is_bot": false, "first_name": ALICE.name},
                "text": "/diagnose"
            }
        });
        let status = crate::http::post(listen, "/tg/hook", Some("s3cret"), &update.to_string())
            .await
            .expect("the post is answered");
        assert_eq!(status, 503, "a post the store cannot record");
        // Several probes fail while it stays away.
        let away = Instant::now();
        while away.elapsed() < PROBE_EVERY * 3 {
            assert_eq!(get(listen, "/healthz").await.unwrap().0, 503);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        let back = crate::redis_server::RedisServer::start_on(port).expect("redis-server");
        let (body, took) = until_healthz(listen, 200).await;
        assert_eq!(body.trim(), "ok");
        eprintln!("Redis back: /healthz 200 after {took:?}");
        assert!(took < PROBE_EVERY * 5, "recovered only after {took:?}");
        // The post Telegram sends again is taken.
        let status = crate::http::post(listen, "/tg/hook", Some("s3cret"), &update.to_string())
            .await
            .expect("the post is answered");
        assert_eq!(status, 200);
        api.wait_for("sendMessage", 1).await;

        let out = bot.stop().await;
        drop(back);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("{stderr}");
        let lines = |needle: &str| stderr.lines().filter(|l| l.contains(needle)).count();
        assert_eq!(lines("a write was refused"), 1, "{stderr}");
        assert_eq!(lines("writes are taken again"), 1, "{stderr}");
        let warnings = stderr
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .count();
        assert_eq!(warnings, 1, "one line for the outage: {stderr}");
    })
    .await;
}

/// A tmpfs mounted for one test, unmounted (lazily, whatever still has a
/// file open there) and removed when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts one of `size` at a new folder, or `None` where this machine
    /// does not allow it (not root, or in a container that forbids it).
    fn mount(name: &str, size: &str) -> Option<Tmpfs> {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tmpfs-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a mount point");
        let mounted = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs(dir)),
            other => {
                let _ = std::fs::remove_dir(&dir);
                eprintln!(
                    "SKIPPED: a tmpfs cannot be mounted here ({other:?}); the full-disk test did not run"
                );
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes zeros to `path` until the disk under it is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("the filler");
    let block = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = file.write_all(&block) {
            assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}");
            // The last bytes that fit, a smaller write at a time.
            for size in [4096, 512, 1] {
                while file.write_all(&block[..size]).is_ok() {}
            }
            return;
        }
    }
}

/// A full disk under the SQLite file: /healthz says 503 with SQLite's
/// reason once writes fail, and 200 again within about two seconds of
/// space being made.
#[tokio::test]
async fn healthz_says_503_while_the_disk_is_full_and_200_once_there_is_room() {
    let Some(disk) = Tmpfs::mount("full", "2m") else {
        return;
    };
    within(async {
        let api = FakeApi::start().await;
        let listen = free_address();
        let database = disk.0.join("data").join("sessions.db");
        let bot = launch(&api, &format!("sqlite://{}", database.display()), listen);
        api.wait_polling().await;
        until_healthz(listen, 200).await;
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;

        let filler = disk.0.join("filler");
        fill(&filler);
        // New people write until the file must grow, which it cannot.
        let mut body = None;
        for i in 0..200u64 {
            let person = Person {
                id: 5_000_000 + i,
                name: "Someone",
                language_code: "en",
            };
            api.send_as(&person, &person.private_chat(), "/diagnose", None);
            let (status, text) = get(listen, "/healthz").await.unwrap();
            if status == 503 {
                body = Some(text);
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let body = body.expect("/healthz answered 503 once the disk was full");
        eprintln!("SQLite, the disk full: /healthz 503 {body:?}");
        assert!(body.contains("the store refuses writes"), "{body}");
        assert!(body.contains("full"), "{body}");
        assert_private(&body);
        // And it stays so while the disk is full and people write, the
        // probe trying again whenever the bot has written nothing lately.
        let mut statuses = Vec::new();
        for i in 0..20u64 {
            let person = Person {
                id: 6_000_000 + i,
                name: "Someone",
                language_code: "en",
            };
            api.send_as(&person, &person.private_chat(), "/diagnose", None);
            tokio::time::sleep(PROBE_EVERY / 10).await;
            statuses.push(get(listen, "/healthz").await.unwrap().0);
        }
        eprintln!("SQLite, the disk full, people writing: {statuses:?}");
        assert!(statuses.iter().all(|s| *s == 503), "{statuses:?}");

        std::fs::remove_file(&filler).expect("room made");
        let (body, took) = until_healthz(listen, 200).await;
        assert_eq!(body.trim(), "ok");
        eprintln!("SQLite: /healthz 200 again {took:?} after room was made");
        assert!(took < PROBE_EVERY * 5, "recovered only after {took:?}");
        let out = bot.stop().await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("a write was refused"), "{stderr}");
        assert!(stderr.contains("writes are taken again"), "{stderr}");
    })
    .await;
}

/// A store that answers reads and refuses every write (a read-only file,
/// a disk that fails writes): 503 with the reason, as soon as a write has
/// failed or the probe finds it, and 200 once writes are taken.
#[tokio::test]
async fn healthz_says_503_while_only_writes_fail() {
    within(async {
        let listen = free_address();
        let faulty = Faulty::new(memory(), |_| false);
        let options = Options {
            metrics_listen: Some(listen),
            ..options()
        };
        let scene = Scene::paced(faulty.store(), options).await;
        let listen = scene.metrics_listen().expect("a metrics address");
        let (body, _) = until_healthz(listen, 200).await;
        assert_eq!(body.trim(), "ok");
        faulty.set_rule(|op| {
            matches!(
                op,
                Op::Save(_)
                    | Op::Finish
                    | Op::Other {
                        call: "commit" | "next_id",
                        ..
                    }
            )
        });
        let (body, _) = until_healthz(listen, 503).await;
        assert!(body.contains("the store refuses writes"), "{body}");
        assert!(body.contains("disk I/O error"), "{body}");
        // Reads were answered all along.
        assert!(get(listen, "/metrics").await.unwrap().0 == 200);
        faulty.set_rule(|_| false);
        let (_, took) = until_healthz(listen, 200).await;
        assert!(took < PROBE_EVERY * 5, "recovered only after {took:?}");
        scene.stop().await;
    })
    .await;
}

/// A data folder that exists and lets everyone in is closed up to 0700 at
/// start; a second bot on the same database, reached through a hard link
/// in another folder, is refused as on the same path.
#[cfg(unix)]
#[tokio::test]
async fn an_open_data_folder_is_closed_up_and_a_hard_link_is_no_way_round_the_lock() {
    use std::os::unix::fs::PermissionsExt;
    within(async {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("hard-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let data = root.join("data");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).unwrap();
        let database = data.join("sessions.db");

        let api = FakeApi::start().await;
        let first = Bot(Some(crate::binary::launch(&api, &database)));
        api.wait_polling().await;
        let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700, "{mode:o}");

        let elsewhere = root.join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = elsewhere.join("link.db");
        std::fs::hard_link(&database, &link).unwrap();
        let second = finish(crate::binary::launch(&api, &link)).await;
        let stderr = String::from_utf8_lossy(&second.stderr);
        assert_eq!(second.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("another process is already running the bot on"),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");

        // The first goes on, alone.
        api.send_as(&ALICE, &ALICE.private_chat(), "/diagnose", None);
        api.wait_for("sendMessage", 1).await;
        let out = first.stop().await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("it is now 0700"), "{stderr}");
        let _ = std::fs::remove_dir_all(&root);
    })
    .await;
}
