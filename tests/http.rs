//! Plain HTTP/1.1 for the webhook tests: a client that posts one request per connection, and a round-robin forwarder standing in for the load balancer in front of several instances.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long one exchange may take before it counts as failed.
const EXCHANGE: Duration = Duration::from_secs(10);

/// Reads one HTTP/1.1 message (head, and the body its Content-Length
/// gives) from `stream`.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
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
                buf.truncate(end + 4 + length);
                return Ok(buf);
            }
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The status code of a response.
fn status_of(response: &[u8]) -> u16 {
    String::from_utf8_lossy(response)
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// Posts `body` as JSON to `path` at `address`, with the secret header if
/// given; the response's status code.
pub async fn post(
    address: SocketAddr,
    path: &str,
    secret: Option<&str>,
    body: &str,
) -> std::io::Result<u16> {
    let secret = secret
        .map(|s| format!("X-Telegram-Bot-Api-Secret-Token: {s}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n{secret}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(address, request.as_bytes())
        .await
        .map(|r| status_of(&r))
}

/// Gets `path` at `address`: the status code and the body.
pub async fn get(address: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    let response = exchange(address, request.as_bytes()).await?;
    let text = String::from_utf8_lossy(&response).to_string();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    Ok((status_of(&response), body.unwrap_or_default()))
}

/// Sends one request on a new connection and reads its response.
async fn exchange(address: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let work = async {
        let mut stream = TcpStream::connect(address).await?;
        stream.write_all(request).await?;
        read_message(&mut stream).await
    };
    tokio::time::timeout(EXCHANGE, work)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// A load balancer: each request goes to the next backend in turn; one
/// that refuses the connection is skipped for the next, and a request no
/// backend answers gets a 502.
pub struct Forwarder {
    pub address: SocketAddr,
    task: tokio::task::AbortHandle,
    /// How many requests each backend answered.
    served: Arc<Vec<AtomicUsize>>,
}

impl Forwarder {
    pub async fn start(backends: Vec<SocketAddr>) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let address = listener.local_addr().expect("bound");
        let served: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let next = Arc::new(AtomicUsize::new(0));
        let backends = Arc::new(backends);
        let counts = Arc::clone(&served);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let (backends, next, counts) = (
                    Arc::clone(&backends),
                    Arc::clone(&next),
                    Arc::clone(&counts),
                );
                tokio::spawn(async move {
                    let Ok(request) = read_message(&mut client).await else {
                        return;
                    };
                    let first = next.fetch_add(1, Ordering::Relaxed);
                    let mut response = b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec();
                    for i in 0..backends.len() {
                        let which = (first + i) % backends.len();
                        // Refused, cut, or answered 502/503 (an instance
                        // stopping): the next one, as nginx's
                        // proxy_next_upstream.
                        if let Ok(answer) = exchange(backends[which], &request).await {
                            counts[which].fetch_add(1, Ordering::Relaxed);
                            response = answer;
                            if !matches!(status_of(&response), 502 | 503) {
                                break;
                            }
                        }
                    }
                    let _ = client.write_all(&response).await;
                });
            }
        });
        Forwarder {
            address,
            task: task.abort_handle(),
            served,
        }
    }

    /// How many requests each backend answered.
    pub fn served(&self) -> Vec<usize> {
        self.served
            .iter()
            .map(|n| n.load(Ordering::Relaxed))
            .collect()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
