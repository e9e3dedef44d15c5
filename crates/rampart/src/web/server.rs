//! The HTTP server: [`serve`] runs a router on a TCP listener (HTTP/1.1, keep-alive) with the
//! limits a reverse proxy would put in front of it, so a slow or idle client cannot hold a
//! connection forever:
//!
//! - **header timeout** ([`ServerLimits::header_timeout`], `RAMPART_HEADER_TIMEOUT`, 20 s): a
//!   request's head must arrive whole within it, counted from when the server starts waiting
//!   for it (a new connection, or the end of the previous response); else the connection is
//!   closed. A client trickling a header byte every few seconds is dropped.
//! - **body timeout** ([`ServerLimits::body_timeout`], `RAMPART_BODY_TIMEOUT`, 60 s): a request's
//!   body must arrive whole within it of its head, while the handler is still waiting for it;
//!   else the answer is `408 Request Timeout` and the connection is closed.
//! - **keep-alive timeout** ([`ServerLimits::keep_alive_timeout`], `RAMPART_KEEPALIVE_TIMEOUT`,
//!   15 s): a connection with no request in progress and no byte read or written for that long
//!   is closed (also a response the client does not read).
//! - **connection cap** ([`ServerLimits::max_connections`], `RAMPART_MAX_CONNECTIONS`, 1024):
//!   beyond it new connections wait in the listen queue until one closes.
//!
//! Each request carries axum's `ConnectInfo<SocketAddr>` (the per-address limits read it).
//! [`serve`] stops on Ctrl-C or SIGTERM: it stops accepting, lets the requests in flight finish
//! and closes idle connections.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::config::{ConfigError, Settings};

/// Setting: how long a request's head may take to arrive ([`ServerLimits::header_timeout`]).
pub const HEADER_TIMEOUT_KEY: &str = "RAMPART_HEADER_TIMEOUT";
/// Setting: how long a request's body may take to arrive ([`ServerLimits::body_timeout`]).
pub const BODY_TIMEOUT_KEY: &str = "RAMPART_BODY_TIMEOUT";
/// Setting: how long an idle connection is kept open ([`ServerLimits::keep_alive_timeout`]).
pub const KEEPALIVE_TIMEOUT_KEY: &str = "RAMPART_KEEPALIVE_TIMEOUT";
/// Setting: how many connections are served at once ([`ServerLimits::max_connections`]).
pub const MAX_CONNECTIONS_KEY: &str = "RAMPART_MAX_CONNECTIONS";

/// The most connections [`ServerLimits::max_connections`] may allow.
pub const MAX_CONNECTIONS_CEILING: usize = 1_000_000;

/// The server's limits on slow, idle and numerous clients; see the [module](self) documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a request's head may take to arrive (default 20 s).
    pub header_timeout: Duration,
    /// How long a request's body may take to arrive after its head (default 60 s).
    pub body_timeout: Duration,
    /// How long a connection may stay idle between requests (default 15 s).
    pub keep_alive_timeout: Duration,
    /// How many connections are served at once (default 1024; at least 1).
    pub max_connections: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(60),
            keep_alive_timeout: Duration::from_secs(15),
            max_connections: 1024,
        }
    }
}

impl ServerLimits {
    /// The limits from `RAMPART_HEADER_TIMEOUT`, `RAMPART_BODY_TIMEOUT`,
    /// `RAMPART_KEEPALIVE_TIMEOUT` (durations such as `20 seconds` or a number of seconds) and
    /// `RAMPART_MAX_CONNECTIONS`; the defaults where unset.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the key of a malformed value, a zero timeout or a
    /// connection cap of 0 or above [`MAX_CONNECTIONS_CEILING`].
    pub fn from_settings(settings: &Settings) -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let timeout = |key: &str, default: Duration| match settings.duration(key)? {
            None => Ok(default),
            Some(duration) if duration.is_zero() => Err(ConfigError::Invalid {
                key: key.to_owned(),
                message: "must be at least 1 second".into(),
            }),
            Some(duration) => Ok(duration),
        };
        let max_connections = match settings.int::<usize>(MAX_CONNECTIONS_KEY)? {
            None => defaults.max_connections,
            Some(n) if (1..=MAX_CONNECTIONS_CEILING).contains(&n) => n,
            Some(n) => {
                return Err(ConfigError::Invalid {
                    key: MAX_CONNECTIONS_KEY.to_owned(),
                    message: format!(
                        "expected a number of connections from 1 to {MAX_CONNECTIONS_CEILING}, got {n}"
                    ),
                });
            }
        };
        Ok(Self {
            header_timeout: timeout(HEADER_TIMEOUT_KEY, defaults.header_timeout)?,
            body_timeout: timeout(BODY_TIMEOUT_KEY, defaults.body_timeout)?,
            keep_alive_timeout: timeout(KEEPALIVE_TIMEOUT_KEY, defaults.keep_alive_timeout)?,
            max_connections,
        })
    }
}

/// Serves `router` on `listener` under `limits` until Ctrl-C or SIGTERM, then lets the requests
/// in flight finish.
///
/// # Errors
///
/// None so far: failed accepts are logged and retried; the result leaves room for more.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
) -> std::io::Result<()> {
    serve_with_shutdown(listener, router, limits, shutdown_signal()).await
}

/// [`serve`] until `signal` resolves (tests pass their own).
///
/// # Errors
///
/// As [`serve`].
pub async fn serve_with_shutdown<F>(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    signal: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let max_connections = limits.max_connections.clamp(1, MAX_CONNECTIONS_CEILING);
    let permits = Arc::new(Semaphore::new(max_connections));
    let (stop, stopped) = watch::channel(false);
    tokio::pin!(signal);
    loop {
        // A permit before accepting: over the cap, new connections wait in the listen queue.
        let permit = tokio::select! {
            () = &mut signal => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let (stream, addr) = tokio::select! {
            () = &mut signal => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        // Out of file descriptors and the like: wait before trying again.
                        tracing::error!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    continue;
                }
            },
        };
        let _ignored = stream.set_nodelay(true);
        let router = router.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            serve_connection(stream, addr, router, limits, stopped).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ignored = stop.send(true);
    // Every open connection holds a permit: all of them back means all connections are closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _all = permits.acquire_many(all).await;
    Ok(())
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, idles past the keep-alive timeout, or the server stops.
async fn serve_connection(
    stream: TcpStream,
    addr: SocketAddr,
    router: Router,
    limits: ServerLimits,
    mut stopped: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service = hyper::service::service_fn({
        let activity = Arc::clone(&activity);
        move |request| {
            handle(
                request,
                router.clone(),
                addr,
                limits.body_timeout,
                Arc::clone(&activity),
            )
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(connection);
    let mut stopping = *stopped.borrow();
    if stopping {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        let idle_deadline = activity.idle_deadline(limits.keep_alive_timeout);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %addr, "connection closed");
                }
                return;
            }
            _ = stopped.changed(), if !stopping => {
                stopping = true;
                connection.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(idle_deadline) => {
                if activity.is_idle(limits.keep_alive_timeout) {
                    // Nothing in flight and nothing moved: dropping the connection closes it.
                    tracing::debug!(%addr, "idle connection closed");
                    return;
                }
            }
        }
    }
}

/// One request: the app's router, unless the body does not arrive in time.
async fn handle(
    request: Request<Incoming>,
    router: Router,
    addr: SocketAddr,
    body_timeout: Duration,
    activity: Arc<Activity>,
) -> Result<Response<Body>, Infallible> {
    let _in_flight = InFlight::new(activity);
    let (parts, body) = request.into_parts();
    let body_done = Arc::new(AtomicBool::new(http_body::Body::is_end_stream(&body)));
    let body = Body::new(WatchedBody {
        inner: body,
        done: Arc::clone(&body_done),
    });
    let mut request = Request::from_parts(parts, body);
    request.extensions_mut().insert(ConnectInfo(addr));
    let response = router.oneshot(request);
    let deadline = async {
        tokio::time::sleep(body_timeout).await;
        if body_done.load(Ordering::Acquire) {
            // The body came (or the handler let it go): the handler takes its time.
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        response = response => response,
        () = deadline => Ok(body_timeout_response()),
    }
}

/// `408 Request Timeout`, closing the connection (the rest of the body is not read).
fn body_timeout_response() -> Response<Body> {
    let mut response = Response::new(Body::from(
        "Request Timeout: the request body did not arrive in time.\n",
    ));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// When a connection last read or wrote a byte, and how many requests it has in flight.
#[derive(Debug)]
struct Activity {
    origin: Instant,
    /// Milliseconds from `origin` to the last byte read or written.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let elapsed = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(elapsed, Ordering::Relaxed);
    }

    /// When the connection becomes idle for `timeout` if nothing happens (with a request in
    /// flight, a full `timeout` from now: the next look).
    fn idle_deadline(&self, timeout: Duration) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + timeout;
        }
        self.origin + Duration::from_millis(self.last.load(Ordering::Relaxed)) + timeout
    }

    fn is_idle(&self, timeout: Duration) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 && Instant::now() >= self.idle_deadline(timeout)
    }
}

/// Counts a request in flight while it lives.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        activity.touch();
        Self(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A socket that records its activity.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A request body that says when it is no longer awaited: read to the end, failed or dropped.
struct WatchedBody<B> {
    inner: B,
    done: Arc<AtomicBool>,
}

impl<B> http_body::Body for WatchedBody<B>
where
    B: http_body::Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let poll = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(poll, Poll::Ready(None | Some(Err(_)))) || self.inner.is_end_stream() {
            self.done.store(true, Ordering::Release);
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for WatchedBody<B> {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_come_from_settings_with_defaults() {
        let limits = ServerLimits::from_settings(&Settings::default()).unwrap();
        assert_eq!(limits, ServerLimits::default());
        let limits = ServerLimits::from_settings(&Settings::from_pairs([
            (HEADER_TIMEOUT_KEY, "5"),
            (BODY_TIMEOUT_KEY, "2 minutes"),
            (KEEPALIVE_TIMEOUT_KEY, "75 seconds"),
            (MAX_CONNECTIONS_KEY, "10"),
        ]))
        .unwrap();
        assert_eq!(
            limits,
            ServerLimits {
                header_timeout: Duration::from_secs(5),
                body_timeout: Duration::from_secs(120),
                keep_alive_timeout: Duration::from_secs(75),
                max_connections: 10,
            }
        );
    }

    #[test]
    fn bad_limits_name_their_key() {
        for (key, value) in [
            (HEADER_TIMEOUT_KEY, "0"),
            (BODY_TIMEOUT_KEY, "soon"),
            (KEEPALIVE_TIMEOUT_KEY, "0 seconds"),
            (MAX_CONNECTIONS_KEY, "0"),
            (MAX_CONNECTIONS_KEY, "many"),
            (MAX_CONNECTIONS_KEY, "2000000"),
        ] {
            let err = ServerLimits::from_settings(&Settings::from_pairs([(key, value)]))
                .expect_err(value);
            assert!(err.to_string().contains(key), "{key}={value}: {err}");
        }
    }
}
