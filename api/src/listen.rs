//! Accepting HTTP connections with bounds, so that no client can hold the server's sockets.
//!
//! `axum::serve` keeps every connection for as long as the peer likes: the hardening review
//! held 2,000 idle TCP connections open forever, and with the common `nofile` limit of 1,024,
//! 1,100 of them made `/healthz` time out with nothing logged. This loop is axum's own
//! `serve-with-hyper` pattern plus four bounds:
//! - **header read timeout**: a request's headers must arrive within it (hyper's timer; it also
//!   covers the wait for the first request on a new connection);
//! - **idle timeout**: a connection that moves no byte either way for this long is closed
//!   gracefully (an in-flight request still finishes, within [`HttpLimits::drain`]);
//! - **connection cap**: at most [`HttpLimits::max_connections`] are open (WebSockets
//!   included: the permit lives in the socket wrapper, which the upgraded stream keeps); at the
//!   cap the loop stops accepting, so new connections wait in the kernel's backlog instead of
//!   exhausting file descriptors, and the pause is logged and counted;
//! - **accept errors** are logged (rate-limited) and counted, and back off briefly, instead of
//!   spinning on `EMFILE`.
//!
//! Every accepted socket gets `TCP_NODELAY`: the API's answers and WebSocket diffs are small
//! and must not wait for Nagle + delayed ACK. [`raise_nofile_limit`] lifts the soft
//! `RLIMIT_NOFILE` to the hard limit at start, and the connection cap stays below it.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tower::Service;

use crate::metrics::Metrics;

/// File descriptors kept free for everything that is not a connection (log, auth file,
/// Kafka and MySQL sockets, timely's channels).
const RESERVED_FDS: u64 = 256;

/// The bounds on connections (`lpm serve --http-*` flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's headers must arrive within this.
    pub header_read_timeout: Duration,
    /// A connection with no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once (further ones wait in the backlog).
    pub max_connections: usize,
    /// How long a closing connection (idle, or at shutdown) may take to finish its request.
    pub drain: Duration,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 4096,
            drain: Duration::from_secs(10),
        }
    }
}

impl HttpLimits {
    /// The cap actually used: the configured one, lowered to fit the soft `RLIMIT_NOFILE`
    /// (`nofile`, if known) minus [`RESERVED_FDS`].
    pub fn effective_max_connections(&self, nofile: Option<u64>) -> usize {
        let fit = nofile.map_or(usize::MAX, |n| {
            usize::try_from(n.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(usize::MAX)
        });
        self.max_connections.clamp(1, fit.max(1))
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit in force after.
pub fn raise_nofile_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write the one struct passed by pointer.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
            return None;
        }
        let before = lim.rlim_cur;
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            // SAFETY: as above.
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
        if lim.rlim_cur != before {
            tracing::info!(
                from = before,
                to = lim.rlim_cur,
                "Raised the open-files limit (RLIMIT_NOFILE)."
            );
        }
        Some(lim.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// A socket that remembers when it last moved a byte, and holds the connection's permit and
/// gauge until it is dropped (after an upgrade, that is when the WebSocket ends).
struct Tracked {
    inner: TcpStream,
    born: Instant,
    /// Milliseconds after `born` of the last read or write that moved bytes.
    last: Arc<AtomicU64>,
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Tracked {
    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.metrics.http_connections.dec();
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets open
/// connections finish (bounded by [`HttpLimits::drain`]) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: HttpLimits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let nofile = raise_nofile_limit();
    let cap = limits.effective_max_connections(nofile);
    if cap < limits.max_connections {
        tracing::warn!(
            configured = limits.max_connections,
            used = cap,
            nofile = ?nofile,
            "The connection cap was lowered to fit the open-files limit."
        );
    }
    let permits = Arc::new(Semaphore::new(cap));
    let (stop_tx, stop_rx) = watch::channel(false);
    // every connection task holds a clone; recv() returns None once all are gone
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut said_full = None::<Instant>;
    let mut said_error = None::<Instant>;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                metrics.http_connection_limit_waits.inc();
                if said_full.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(
                        max_connections = cap,
                        "Connection cap reached: new connections wait until one closes."
                    );
                    said_full = Some(Instant::now());
                }
                tokio::select! {
                    p = permits.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                metrics.http_accept_errors.inc();
                if said_error.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::error!(error = %e, "Accepting a connection failed.");
                    said_error = Some(Instant::now());
                }
                // EMFILE and friends do not clear by retrying at once
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "Could not set TCP_NODELAY.");
        }
        metrics.http_connections.inc();
        let last = Arc::new(AtomicU64::new(0));
        let io = Tracked {
            inner: tcp,
            born: Instant::now(),
            last: last.clone(),
            _permit: permit,
            metrics: metrics.clone(),
        };
        tokio::spawn(connection(
            io,
            peer,
            app.clone(),
            limits.clone(),
            stop_rx.clone(),
            alive_tx.clone(),
        ));
    }
    let _ = stop_tx.send(true);
    drop(alive_tx);
    // connections drain themselves within `limits.drain`; this bound is a backstop
    let _ = tokio::time::timeout(limits.drain + Duration::from_secs(1), alive_rx.recv()).await;
}

/// Drives one connection: hyper's HTTP/1 with upgrades, closed when idle or at shutdown.
async fn connection(
    io: Tracked,
    peer: SocketAddr,
    app: Router,
    limits: HttpLimits,
    mut stop: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let (born, last) = (io.born, io.last.clone());
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        app.clone().call(req)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let closing = tokio::select! {
        r = conn.as_mut() => {
            log_end(r, peer);
            return;
        }
        () = idle(born, last, limits.idle_timeout) => "idle",
        _ = stop.wait_for(|s| *s) => "shutdown",
    };
    tracing::debug!(%peer, why = closing, "Closing a connection.");
    conn.as_mut().graceful_shutdown();
    match tokio::time::timeout(limits.drain, conn).await {
        Ok(r) => log_end(r, peer),
        Err(_) => tracing::debug!(%peer, "A closing connection did not finish in time; dropped."),
    }
}

fn log_end(r: Result<(), hyper::Error>, peer: SocketAddr) {
    if let Err(e) = r {
        // timeouts, resets and malformed requests: the peer's problem, not the server's
        tracing::debug!(%peer, error = %e, "Connection ended with an error.");
    }
}

/// Resolves once the socket has moved no byte for `limit`.
async fn idle(born: Instant, last: Arc<AtomicU64>, limit: Duration) {
    loop {
        let since_born = born.elapsed();
        let last_ms = Duration::from_millis(last.load(Ordering::Relaxed));
        let quiet = since_born.saturating_sub(last_ms);
        if quiet >= limit {
            return;
        }
        tokio::time::sleep(limit - quiet).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_files_limit() {
        let l = HttpLimits {
            max_connections: 4096,
            ..HttpLimits::default()
        };
        assert_eq!(l.effective_max_connections(None), 4096);
        assert_eq!(l.effective_max_connections(Some(1_048_576)), 4096);
        assert_eq!(l.effective_max_connections(Some(1024)), 1024 - 256);
        assert_eq!(l.effective_max_connections(Some(100)), 16);
    }
}
