//! A throwaway `redis-server` for tests: on a free loopback port, saving nothing, stopped when dropped.
//!
//! Without `redis-server` on the `PATH` the tests that need one are
//! skipped, loudly; on CI (`CI=true`) that is a failure instead. The
//! file is shared by the library's unit tests, the integration tests and
//! the benches, and none of them uses all of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server has to answer after it is started.
const READY_WITHIN: Duration = Duration::from_secs(5);

/// How many free ports are tried (another process may take one first).
const TRIES: usize = 3;

/// A running `redis-server`, killed and waited for when dropped.
pub(crate) struct RedisServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server, or `None` (having said so on stderr) when
    /// `redis-server` is not installed. Panics if it is installed and does
    /// not start, or is missing on CI.
    pub(crate) fn start() -> Option<RedisServer> {
        for _ in 0..TRIES {
            if let Some(started) = Self::try_on(free_port()) {
                return started;
            }
        }
        panic!("redis-server did not answer within {READY_WITHIN:?}, on {TRIES} ports");
    }

    /// `start`, on `port`. Panics if it does not answer there.
    pub(crate) fn start_on(port: u16) -> Option<RedisServer> {
        Self::try_on(port).unwrap_or_else(|| {
            panic!("redis-server did not answer on port {port} within {READY_WITHIN:?}")
        })
    }

    /// `Some(None)` when there is no `redis-server`, `None` when it did
    /// not answer on `port`.
    fn try_on(port: u16) -> Option<Option<RedisServer>> {
        let dir = std::env::temp_dir().join(format!(
            "icp-sms-doctor-redis-{}-{port}",
            std::process::id()
        ));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let _ = std::fs::remove_dir_all(&dir);
                return Some(missing());
            }
            Err(e) => panic!("redis-server did not start: {e}"),
        };
        let mut server = RedisServer { child, port, dir };
        // Dropped when it did not answer: killed, its folder removed.
        server.ready().then_some(Some(server))
    }

    /// The URL of its database 0.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Waits until the server answers a PING; false if it exited (its
    /// port was taken meanwhile) or is still silent after `READY_WITHIN`.
    fn ready(&mut self) -> bool {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return false;
            }
            if pong(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port nothing listens on now.
fn free_port() -> u16 {
    match TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("no free loopback port: {e}"),
    }
}

/// Whether a server on `port` answers PING.
fn pong(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut answer = [0u8; 7];
    stream.write_all(b"PING\r\n").is_ok()
        && stream.read_exact(&mut answer).is_ok()
        && &answer == b"+PONG\r\n"
}

fn missing() -> Option<RedisServer> {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and redis-server is missing: .ci/run installs it");
    }
    eprintln!("SKIPPED: redis-server not found; the Redis tests did not run");
    None
}
