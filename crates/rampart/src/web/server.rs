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
//! - **request line** (first request of a connection): its head is read before hyper sees it
//!   (within the header timeout, at most [`MAX_SNIFFED_HEAD`] bytes kept); a request line over
//!   [`MAX_REQUEST_LINE`] is answered `414 URI Too Long` in the request's format (the error
//!   envelope when its `Accept` or `Content-Type` says JSON or its path starts with `/api/`,
//!   else the error page) and the connection closed. Later requests on a kept-alive connection
//!   go straight to hyper: the security layer answers targets over 8 KiB with the same 414,
//!   but hyper refuses those over 64 KiB itself with a bare 414.
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
pub(crate) const HEADER_TIMEOUT_KEY: &str = "RAMPART_HEADER_TIMEOUT";
/// Setting: how long a request's body may take to arrive ([`ServerLimits::body_timeout`]).
pub(crate) const BODY_TIMEOUT_KEY: &str = "RAMPART_BODY_TIMEOUT";
/// Setting: how long an idle connection is kept open ([`ServerLimits::keep_alive_timeout`]).
pub(crate) const KEEPALIVE_TIMEOUT_KEY: &str = "RAMPART_KEEPALIVE_TIMEOUT";
/// Setting: how long a stopping server waits for the requests in flight
/// ([`ServerLimits::shutdown_timeout`]).
pub(crate) const SHUTDOWN_TIMEOUT_KEY: &str = "RAMPART_SHUTDOWN_TIMEOUT";
/// Setting: how many connections are served at once ([`ServerLimits::max_connections`]).
pub(crate) const MAX_CONNECTIONS_KEY: &str = "RAMPART_MAX_CONNECTIONS";

/// The longest request line (method, target, version) a connection's first request may have;
/// a longer one gets 414 (see the [module](self) documentation).
pub(crate) const MAX_REQUEST_LINE: usize = 16 * 1024;

/// The most bytes of a connection's first request head read and kept before hyper parses it.
pub(crate) const MAX_SNIFFED_HEAD: usize = 64 * 1024;

/// The most bytes of header lines kept from a request with an over-long line (to choose the
/// answer's format); the most read of its head in all is [`MAX_REFUSED_HEAD`].
const MAX_KEPT_HEADERS: usize = 8 * 1024;

/// The most bytes read of the head of a request whose line is over-long.
const MAX_REFUSED_HEAD: usize = 1024 * 1024;

/// The most connections [`ServerLimits::max_connections`] may allow.
pub(crate) const MAX_CONNECTIONS_CEILING: usize = 1_000_000;

/// The server's limits on slow, idle and numerous clients, applied by [`serve`].
///
/// A request's head must arrive within `header_timeout` (else the connection is closed), its
/// body within `body_timeout` of the head while the handler waits for it (else `408 Request
/// Timeout`); a connection with nothing in progress closes after `keep_alive_timeout`; beyond
/// `max_connections`, new connections wait in the listen queue. A connection's first request
/// line over 16 KiB gets `414 URI Too Long` in the request's format (JSON envelope or page).
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
    /// On Ctrl-C or SIGTERM, how long the requests in flight may take to finish before the
    /// server returns anyway (default 30 s).
    pub shutdown_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(60),
            keep_alive_timeout: Duration::from_secs(15),
            max_connections: 1024,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

impl ServerLimits {
    /// The limits from `RAMPART_HEADER_TIMEOUT`, `RAMPART_BODY_TIMEOUT`,
    /// `RAMPART_KEEPALIVE_TIMEOUT`, `RAMPART_SHUTDOWN_TIMEOUT` (durations such as `20 seconds` or
    /// a number of seconds) and `RAMPART_MAX_CONNECTIONS`; the defaults where unset.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] naming the key of a malformed value, a zero timeout or a
    /// connection cap of 0 or above 1 000 000.
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
            shutdown_timeout: timeout(SHUTDOWN_TIMEOUT_KEY, defaults.shutdown_timeout)?,
        })
    }
}

/// Serves `router` on `listener` under `limits` until Ctrl-C or SIGTERM, then stops accepting
/// and lets the requests in flight finish, for at most [`ServerLimits::shutdown_timeout`].
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
    let drained = tokio::time::timeout(limits.shutdown_timeout, permits.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!(
            timeout = ?limits.shutdown_timeout,
            "requests still in flight at the end of the shutdown timeout: stopping anyway"
        );
    }
    Ok(())
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
pub(crate) async fn shutdown_signal() {
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
    let mut tracked = Tracked {
        inner: stream,
        activity: Arc::clone(&activity),
    };
    if *stopped.borrow() {
        return;
    }
    let first = tokio::select! {
        first = tokio::time::timeout(
            limits.header_timeout,
            read_first_head(&mut tracked, limits.keep_alive_timeout),
        ) => {
            first.unwrap_or(FirstHead::Closed)
        }
        _ = stopped.changed() => FirstHead::Closed,
    };
    let (replay, uri_too_long) = match first {
        FirstHead::Pass(bytes) => (Replay::new(bytes, tracked, true), false),
        FirstHead::TooLong(head) => {
            tracing::debug!(%addr, "request line too long: 414");
            (Replay::new(head, tracked, false), true)
        }
        FirstHead::Closed => return,
    };
    let io = TokioIo::new(replay);
    let service = hyper::service::service_fn({
        let activity = Arc::clone(&activity);
        move |request| {
            handle(
                request,
                router.clone(),
                addr,
                limits.body_timeout,
                Arc::clone(&activity),
                uri_too_long,
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
    uri_too_long: bool,
) -> Result<Response<Body>, Infallible> {
    let _in_flight = InFlight::new(activity);
    if uri_too_long {
        return Ok(uri_too_long_response(request, router, addr).await);
    }
    let (parts, body) = request.into_parts();
    // What a 408 needs to answer in the request's format (cheap clones of shared bytes).
    let format = RequestFormat {
        uri: parts.uri.clone(),
        accept: parts.headers.get(header::ACCEPT).cloned(),
        content_type: parts.headers.get(header::CONTENT_TYPE).cloned(),
    };
    let standin_router = router.clone();
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
        () = deadline => Ok(body_timeout_response(standin_router, addr, format).await),
    }
}

/// The parts of a request its 408 is rendered from.
struct RequestFormat {
    uri: axum::http::Uri,
    accept: Option<HeaderValue>,
    content_type: Option<HeaderValue>,
}

/// The answer to a request whose line was too long, from the stand-in head [`read_first_head`]
/// made: the security layer's 414 in the request's format, or a plain 414 from a router without
/// it. The connection closes after it.
async fn uri_too_long_response(
    request: Request<Incoming>,
    router: Router,
    addr: SocketAddr,
) -> Response<Body> {
    let (parts, _empty) = request.into_parts();
    let standin = Request::from_parts(parts, Body::empty());
    answer_from_layer(
        router,
        standin,
        addr,
        StatusCode::URI_TOO_LONG,
        "URI Too Long\n",
    )
    .await
}

/// Sends a body-less `standin` through `router` marked
/// [`AnswerWith`](crate::web::layer::AnswerWith) `status`, with a method no route has: the
/// security layer answers `status` in the request's format and no handler runs; a router
/// without the layer gets `plain_text`. Either way the connection closes after the answer.
async fn answer_from_layer(
    router: Router,
    mut standin: Request<Body>,
    addr: SocketAddr,
    status: StatusCode,
    plain_text: &'static str,
) -> Response<Body> {
    if let Ok(method) = axum::http::Method::from_bytes(b"RAMPART-STAND-IN") {
        *standin.method_mut() = method;
    }
    standin.extensions_mut().insert(ConnectInfo(addr));
    standin
        .extensions_mut()
        .insert(crate::web::layer::AnswerWith(status));
    let mut response = match router.oneshot(standin).await {
        Ok(response) if response.status() == status => response,
        Ok(_) | Err(_) => {
            let mut plain = Response::new(Body::from(plain_text));
            *plain.status_mut() = status;
            plain.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            plain
        }
    };
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// What came first on a new connection.
#[derive(Debug, PartialEq, Eq)]
enum FirstHead {
    /// A request (or whatever hyper is to judge): these bytes, then the socket.
    Pass(Vec<u8>),
    /// A request line over [`MAX_REQUEST_LINE`]: a stand-in head (`GET /` with the request's
    /// `Host`, `Accept` and `Content-Type`, `Connection: close`) to answer 414 from; the rest
    /// of the request is not read.
    TooLong(Vec<u8>),
    /// Closed, failed or timed out before a request line: nothing to answer.
    Closed,
}

/// Reads the first request's head (up to [`MAX_SNIFFED_HEAD`] bytes) to hand it to hyper, or,
/// when its line is over [`MAX_REQUEST_LINE`], the rest of its head (up to
/// [`MAX_REFUSED_HEAD`], keeping at most [`MAX_KEPT_HEADERS`] of it) to answer 414. A
/// connection that sends nothing for `idle` is closed, as an idle kept-alive one is.
async fn read_first_head<R: AsyncRead + Unpin>(stream: &mut R, idle: Duration) -> FirstHead {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut chunk = vec![0_u8; 8 * 1024];
    let mut over_long: Option<OverLong> = None;
    loop {
        let n = match tokio::time::timeout(idle, stream.read(&mut chunk)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) | Err(_) => return FirstHead::Closed,
        };
        let Some(read) = chunk.get(..n) else {
            return FirstHead::Closed;
        };
        if let Some(refused) = over_long.as_mut() {
            if n == 0 || refused.feed(read) {
                return FirstHead::TooLong(refused.stand_in());
            }
            continue;
        }
        if n == 0 {
            return FirstHead::Closed;
        }
        buf.extend_from_slice(read);
        // Servers ignore empty lines before a request line.
        let start = buf
            .iter()
            .position(|b| !matches!(b, b'\r' | b'\n'))
            .unwrap_or(buf.len());
        let rest = buf.get(start..).unwrap_or_default();
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) if end <= MAX_REQUEST_LINE => {
                if head_ends(rest) || buf.len() >= MAX_SNIFFED_HEAD {
                    return FirstHead::Pass(buf);
                }
            }
            None if rest.len() <= MAX_REQUEST_LINE => {
                if buf.len() >= MAX_SNIFFED_HEAD {
                    return FirstHead::Pass(buf);
                }
            }
            _ => {
                let mut refused = OverLong::default();
                if refused.feed(rest) {
                    return FirstHead::TooLong(refused.stand_in());
                }
                over_long = Some(refused);
                buf = Vec::new();
            }
        }
    }
}

/// Whether `head` (from its request line on) holds the empty line that ends a head.
fn head_ends(head: &[u8]) -> bool {
    head.windows(2).any(|w| w == b"\n\n") || head.windows(3).any(|w| w == b"\n\r\n")
}

/// What is kept of a request whose line is over-long, as its head arrives.
#[derive(Debug, Default)]
struct OverLong {
    /// The start of its request line (method and the start of the target).
    line: Vec<u8>,
    /// Whether its request line has ended.
    line_done: bool,
    /// Its header lines (up to [`MAX_KEPT_HEADERS`]).
    headers: Vec<u8>,
    /// How many bytes were read of it.
    read: usize,
}

impl OverLong {
    /// The start of the request line kept: enough for the method and a path prefix.
    const LINE_KEPT: usize = 64;

    /// Takes the next bytes; `true` when enough of the head is read.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        self.read = self.read.saturating_add(bytes.len());
        if !self.line_done {
            let end = bytes.iter().position(|&b| b == b'\n');
            let line = bytes.get(..end.unwrap_or(bytes.len())).unwrap_or_default();
            let room = Self::LINE_KEPT.saturating_sub(self.line.len());
            self.line
                .extend_from_slice(line.get(..room.min(line.len())).unwrap_or_default());
            match end {
                None => return self.read > MAX_REFUSED_HEAD,
                Some(end) => {
                    self.line_done = true;
                    bytes = bytes.get(end + 1..).unwrap_or_default();
                }
            }
        }
        let room = MAX_KEPT_HEADERS.saturating_sub(self.headers.len());
        self.headers
            .extend_from_slice(bytes.get(..room.min(bytes.len())).unwrap_or_default());
        self.headers.starts_with(b"\n")
            || self.headers.starts_with(b"\r\n")
            || head_ends(&self.headers)
            || self.headers.len() >= MAX_KEPT_HEADERS
            || self.read > MAX_REFUSED_HEAD
    }

    /// The head hyper is given instead: `GET /` with the headers that choose the answer's
    /// format, and `Accept: application/json` for a path under `/api/`.
    fn stand_in(&self) -> Vec<u8> {
        let mut head = b"GET / HTTP/1.1\r\n".to_vec();
        let api = self
            .line
            .splitn(2, |&b| b == b' ')
            .nth(1)
            .is_some_and(|target| target.starts_with(b"/api/"));
        let mut accept = false;
        let end = self
            .headers
            .windows(2)
            .position(|w| w == b"\n\n")
            .into_iter()
            .chain(self.headers.windows(3).position(|w| w == b"\n\r\n"))
            .min()
            .map_or(self.headers.len(), |at| at + 1);
        for line in self
            .headers
            .get(..end)
            .unwrap_or_default()
            .split(|&b| b == b'\n')
        {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = line.split_at(colon);
            let value = value.get(1..).unwrap_or_default();
            let wanted = [&b"host"[..], b"accept", b"content-type"]
                .iter()
                .any(|w| name.eq_ignore_ascii_case(w));
            let clean = value
                .iter()
                .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b));
            if wanted && clean && HeaderValue::from_bytes(value.trim_ascii()).is_ok() {
                accept |= name.eq_ignore_ascii_case(b"accept");
                head.extend_from_slice(name);
                head.extend_from_slice(b": ");
                head.extend_from_slice(value.trim_ascii());
                head.extend_from_slice(b"\r\n");
            }
        }
        if api && !accept {
            head.extend_from_slice(b"Accept: application/json\r\n");
        }
        head.extend_from_slice(b"Connection: close\r\n\r\n");
        head
    }
}

/// A socket whose first bytes are given back from a buffer (the head read before hyper), then
/// read from the socket itself, or, for a stand-in head, never (hyper answers it and closes).
struct Replay<T> {
    prefix: Vec<u8>,
    at: usize,
    then_socket: bool,
    inner: T,
}

impl<T> Replay<T> {
    fn new(prefix: Vec<u8>, inner: T, then_socket: bool) -> Self {
        Self {
            prefix,
            at: 0,
            then_socket,
            inner,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Replay<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Some(left) = this.prefix.get(this.at..)
            && !left.is_empty()
        {
            let n = left.len().min(buf.remaining());
            buf.put_slice(left.get(..n).unwrap_or_default());
            this.at += n;
            if this.at == this.prefix.len() {
                this.prefix = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if this.then_socket {
            Pin::new(&mut this.inner).poll_read(cx, buf)
        } else {
            // Nothing more is read of a refused request: hyper answers the stand-in and closes.
            Poll::Pending
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Replay<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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

/// `408 Request Timeout`, closing the connection (the rest of the body is not read), in the
/// request's format (see [`answer_from_layer`]).
async fn body_timeout_response(
    router: Router,
    addr: SocketAddr,
    format: RequestFormat,
) -> Response<Body> {
    let mut standin = Request::new(Body::empty());
    *standin.uri_mut() = format.uri;
    for (name, value) in [
        (header::ACCEPT, format.accept),
        (header::CONTENT_TYPE, format.content_type),
    ] {
        if let Some(value) = value {
            standin.headers_mut().insert(name, value);
        }
    }
    answer_from_layer(
        router,
        standin,
        addr,
        StatusCode::REQUEST_TIMEOUT,
        "Request Timeout: the request body did not arrive in time.\n",
    )
    .await
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
                shutdown_timeout: Duration::from_secs(30),
            }
        );
    }

    async fn first_head(bytes: &[u8]) -> FirstHead {
        read_first_head(&mut &bytes[..], Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn the_first_head_is_passed_on_whole() {
        let head = b"\r\nGET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\nPOST".to_vec();
        assert_eq!(first_head(&head).await, FirstHead::Pass(head.clone()));
        // Cut short by the client: nothing to answer.
        assert_eq!(
            first_head(b"GET / HTTP/1.1\r\nHost").await,
            FirstHead::Closed
        );
        let line = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(MAX_REQUEST_LINE - 20)
        );
        assert!(matches!(
            first_head(line.as_bytes()).await,
            FirstHead::Pass(_)
        ));
        // A huge head with a sane line goes to hyper (which answers 431) once the sniff is full.
        let big = format!(
            "GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "b".repeat(MAX_SNIFFED_HEAD)
        );
        match first_head(big.as_bytes()).await {
            FirstHead::Pass(bytes) => assert!(bytes.len() <= MAX_SNIFFED_HEAD + 8 * 1024),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn an_over_long_line_gets_a_stand_in_head_with_the_format_headers() {
        let long = "a".repeat(100 * 1024);
        let request = format!(
            "GET /login?q={long} HTTP/1.1\r\nHost: example.com\r\nCookie: s=1\r\n\
             Accept: application/json\r\nContent-Length: 5\r\n\r\nabcde"
        );
        let FirstHead::TooLong(head) = first_head(request.as_bytes()).await else {
            panic!("not refused");
        };
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "GET / HTTP/1.1\r\nHost: example.com\r\nAccept: application/json\r\n\
             Connection: close\r\n\r\n"
        );
        // An API path without `Accept` gets JSON; a page the HTML default.
        let api = format!("DELETE /api/x?{long} HTTP/1.1\r\nHost: h\r\n\r\n");
        let FirstHead::TooLong(head) = first_head(api.as_bytes()).await else {
            panic!("not refused");
        };
        assert!(
            String::from_utf8(head)
                .unwrap()
                .contains("Accept: application/json")
        );
        let page = format!("GET /{long}");
        let FirstHead::TooLong(head) = first_head(page.as_bytes()).await else {
            panic!("not refused");
        };
        assert_eq!(head, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
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
