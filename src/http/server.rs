//! The HTTP/1.1 connection loop: accepts TCP connections, caps how many one client address
//! holds open, and closes connections whose request head arrives too slowly or that stay
//! idle, so slow clients (a "slowloris") cannot hold the server's connections forever.
//!
//! Limits on the request head itself ([`limit_request_head`]) answer 414 and 431 as
//! `application/problem+json` before routing; hyper's own limit (about 400 KiB of head
//! buffer) is far above ours, so its empty-bodied answers are only reached by heads that
//! large.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::problem::Problem;
use crate::config::HttpSettings;

/// Longest request target (path and query) accepted, in bytes: RFC 9112 §3 recommends
/// supporting at least 8000 octets of request line.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Largest total of header field names and values accepted, in bytes.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Answers 414 or 431 as problem+json when the request target or the header fields are
/// larger than this service reads, 400 when the path does not decode to UTF-8 (which the
/// path extractors would otherwise refuse in plain text); everything else goes on to the
/// router.
pub async fn limit_request_head(request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Problem::uri_too_long(MAX_URI_BYTES).into_response();
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Problem::headers_too_large(MAX_HEADER_BYTES).into_response();
    }
    if !decodes_to_utf8(request.uri().path()) {
        return Problem::invalid_path().into_response();
    }
    next.run(request).await
}

/// Whether the percent-decoded `path` is UTF-8. A `%` not followed by two hex digits stays a
/// literal `%`, as the router reads it.
fn decodes_to_utf8(path: &str) -> bool {
    let bytes = path.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let hex = |b: Option<&u8>| b.and_then(|&b| char::from(b).to_digit(16));
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
            (b'%', Some(high), Some(low)) => {
                // Two hex digits are at most 0xFF: the conversion cannot fail.
                decoded.push(u8::try_from(high * 16 + low).unwrap_or(u8::MAX));
                i += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    std::str::from_utf8(&decoded).is_ok()
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets
/// each open connection finish its request in progress and returns once all are closed.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: HttpSettings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let per_address = Arc::new(Mutex::new(HashMap::<IpAddr, u32>::new()));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning, as a
                // connection that closes frees one.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some(slot) = Slot::take(&per_address, peer.ip(), limits.max_connections_per_address)
        else {
            tracing::debug!(%peer, "too many connections from this address: closed");
            drop(stream);
            continue;
        };
        let router = router.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            serve_one(stream, peer, router, limits, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    // Every connection holds a receiver: `closed` resolves once the last one has ended.
    let _ = stop_tx.send(true);
    drop(stop_rx);
    stop_tx.closed().await;
    Ok(())
}

/// Serves one connection until it closes, times out, or the server shuts down.
async fn serve_one(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: HttpSettings,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    let last_activity = Arc::new(AtomicU64::new(0));
    let io = TokioIo::new(Tracked {
        inner: stream,
        started,
        last_activity: last_activity.clone(),
    });
    let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
        // What `into_make_service_with_connect_info` would give the throttle and the logs.
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        async move {
            tower_service::Service::call(&mut router, request.map(axum::body::Body::new)).await
        }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .serve_connection(io, service);
    let mut connection = std::pin::pin!(connection);
    let mut closing = *stop.borrow();
    if closing {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        let idle_since = started + Duration::from_millis(last_activity.load(Ordering::Relaxed));
        let idle_deadline = tokio::time::Instant::from_std(idle_since + limits.idle_timeout);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(idle_deadline) => {
                let quiet = started.elapsed().saturating_sub(Duration::from_millis(
                    last_activity.load(Ordering::Relaxed),
                ));
                if quiet >= limits.idle_timeout {
                    // Idle between requests: hyper closes at once; a request in progress
                    // finishes first. A connection silent even after that is dropped.
                    if closing {
                        return;
                    }
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// A place among the connections one client address may hold; given back on drop.
struct Slot {
    table: Arc<Mutex<HashMap<IpAddr, u32>>>,
    address: IpAddr,
}

impl Slot {
    fn take(table: &Arc<Mutex<HashMap<IpAddr, u32>>>, address: IpAddr, cap: u32) -> Option<Slot> {
        let mut counts = table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = counts.entry(address).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Slot {
            table: table.clone(),
            address,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
    }
}

/// A TCP stream that notes when bytes last went through it, for the idle timeout.
struct Tracked {
    inner: TcpStream,
    started: Instant,
    /// Milliseconds after `started` of the last byte read or written.
    last_activity: Arc<AtomicU64>,
}

impl Tracked {
    fn touch(&self) {
        let millis = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_activity.store(millis, Ordering::Relaxed);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::decodes_to_utf8;

    #[test]
    fn a_path_decodes_to_utf8_unless_a_percent_escape_makes_invalid_bytes() {
        assert!(decodes_to_utf8("/v1/letters/0190a2b4"));
        assert!(decodes_to_utf8("/r/caf%C3%A9"));
        assert!(decodes_to_utf8("/r/100%"));
        assert!(decodes_to_utf8("/r/%G1"));
        assert!(!decodes_to_utf8("/v1/verify/%FF%FE"));
        assert!(!decodes_to_utf8("/r/%C3"));
    }
}
