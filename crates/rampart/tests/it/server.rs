//! `rampart::serve` over real TCP: slow headers, slow bodies and idle connections are dropped,
//! the connection cap holds, and ordinary requests (with the client's address) still work.

#![expect(
    clippy::expect_used,
    reason = "test helpers: a step that cannot be done must fail the test at once, saying which"
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::ConnectInfo;
use axum::routing::{get, post};
use rampart::ServerLimits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server on a free port, stopped by `stop`.
struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(limits: ServerLimits) -> Self {
        let router =
            Router::new()
                .route("/", get(|| async { "hello" }))
                .route(
                    "/ip",
                    get(|ConnectInfo(addr): ConnectInfo<SocketAddr>| async move {
                        addr.ip().to_string()
                    }),
                )
                .route(
                    "/echo",
                    post(|body: Bytes| async move { format!("got {}", body.len()) }),
                )
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        "finally"
                    }),
                )
                .route(
                    "/stuck",
                    get(|| async {
                        tokio::time::sleep(Duration::from_secs(600)).await;
                        "never"
                    }),
                );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(rampart::serve_with_shutdown(
            listener,
            router,
            limits,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.expect("connect")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn limits(header: u64, body: u64, idle: u64, connections: usize) -> ServerLimits {
    ServerLimits {
        header_timeout: Duration::from_secs(header),
        body_timeout: Duration::from_secs(body),
        keep_alive_timeout: Duration::from_secs(idle),
        max_connections: connections,
        shutdown_timeout: Duration::from_secs(30),
    }
}

/// Reads one response whose body ends with `end`, or what came until EOF / `wait`.
async fn read_response(stream: &mut TcpStream, end: &str, wait: Duration) -> String {
    let mut text = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&text).ends_with(end) {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) | Err(_) => break,
            Ok(Ok(n)) => text.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

/// Waits up to `wait` for the server to close `stream`; returns how long it took, or `None`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(wait.saturating_sub(start.elapsed()), stream.read(&mut buf))
            .await
        {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
        }
    }
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

#[tokio::test]
async fn ordinary_requests_work_and_see_the_client_address() {
    let server = Server::start(ServerLimits::default()).await;
    let mut stream = server.connect().await;
    stream.write_all(GET).await.expect("write");
    let response = read_response(&mut stream, "hello", Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    // Same connection (keep-alive): a body, then the client's address.
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nabcde")
        .await
        .expect("write");
    let response = read_response(&mut stream, "got 5", Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    stream
        .write_all(b"GET /ip HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    let response = read_response(&mut stream, "127.0.0.1", Duration::from_secs(5)).await;
    assert!(response.ends_with("\r\n\r\n127.0.0.1"), "{response}");
}

#[tokio::test]
async fn a_client_trickling_its_header_is_dropped_after_the_header_timeout() {
    let server = Server::start(limits(1, 30, 30, 16)).await;
    let mut stream = server.connect().await;
    let (mut reader, mut writer) = stream.split();
    let start = Instant::now();
    let trickle = async {
        writer
            .write_all(b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: ")
            .await
            .expect("write");
        // One header byte every 400 ms, for up to 6 s: never a whole head.
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            if writer.write_all(b"a").await.is_err() {
                break;
            }
        }
    };
    let closed = async {
        let mut buf = [0u8; 256];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return start.elapsed(),
                Ok(_) => {}
            }
        }
    };
    let closed_after = tokio::select! {
        elapsed = closed => Some(elapsed),
        () = trickle => None,
    };
    let closed_after = closed_after.expect("the slow client is still connected after 6 s");
    assert!(
        closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let server = Server::start(limits(30, 30, 1, 16)).await;
    let mut stream = server.connect().await;
    stream.write_all(GET).await.expect("write");
    let response = read_response(&mut stream, "hello", Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let closed_after = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("the idle connection is still open after 5 s");
    assert!(
        closed_after >= Duration::from_millis(800),
        "closed too early: {closed_after:?}"
    );
    // A connection that never sends anything is closed too.
    let mut silent = server.connect().await;
    assert!(
        closed_within(&mut silent, Duration::from_secs(5))
            .await
            .is_some(),
        "a silent connection is still open after 5 s"
    );
}

#[tokio::test]
async fn a_slow_body_gets_408_and_the_connection_is_closed() {
    let server = Server::start(limits(30, 1, 30, 16)).await;
    let mut stream = server.connect().await;
    let (mut reader, mut writer) = stream.split();
    let start = Instant::now();
    let trickle = async {
        writer
            .write_all(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n")
            .await
            .expect("write");
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            if writer.write_all(b"a").await.is_err() {
                break;
            }
        }
    };
    let answered = async {
        let mut text = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    return (String::from_utf8_lossy(&text).into_owned(), start.elapsed());
                }
                Ok(n) => text.extend_from_slice(&buf[..n]),
            }
        }
    };
    let (response, elapsed) = tokio::select! {
        answered = answered => answered,
        () = trickle => panic!("no answer and still open after 6 s"),
    };
    assert!(
        response.starts_with("HTTP/1.1 408 Request Timeout"),
        "{response}"
    );
    assert!(elapsed < Duration::from_secs(4), "after {elapsed:?}");
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    let server = Server::start(limits(30, 30, 30, 1)).await;
    let mut first = server.connect().await;
    first.write_all(GET).await.expect("write");
    let response = read_response(&mut first, "hello", Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");

    // The first connection is kept alive: the second is not served meanwhile.
    let mut second = server.connect().await;
    second.write_all(GET).await.expect("write");
    let response = read_response(&mut second, "hello", Duration::from_millis(1500)).await;
    assert!(response.is_empty(), "served over the cap: {response}");

    drop(first);
    let response = read_response(&mut second, "hello", Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
}

#[tokio::test]
async fn shutdown_closes_idle_connections_and_returns() {
    let mut server = Server::start(limits(30, 30, 30, 16)).await;
    let mut stream = server.connect().await;
    stream.write_all(GET).await.expect("write");
    read_response(&mut stream, "hello", Duration::from_secs(5)).await;
    server.stop.take().expect("stop").send(()).expect("signal");
    assert!(
        closed_within(&mut stream, Duration::from_secs(5))
            .await
            .is_some(),
        "an idle connection outlived the shutdown"
    );
    let result = tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("serve returns after the shutdown")
        .expect("task");
    assert!(result.is_ok(), "{result:?}");
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_stops_accepting() {
    let mut server = Server::start(limits(30, 30, 30, 16)).await;
    let mut stream = server.connect().await;
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop.take().expect("stop").send(()).expect("signal");
    let response = read_response(&mut stream, "finally", Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    let result = tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("serve returns after the shutdown")
        .expect("task");
    assert!(result.is_ok(), "{result:?}");
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "no longer accepting"
    );
}

#[tokio::test]
async fn shutdown_waits_for_a_stuck_request_no_longer_than_its_timeout() {
    let mut limits = limits(30, 30, 30, 16);
    limits.shutdown_timeout = Duration::from_secs(1);
    let mut server = Server::start(limits).await;
    let mut stream = server.connect().await;
    stream
        .write_all(b"GET /stuck HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = tokio::time::Instant::now();
    server.stop.take().expect("stop").send(()).expect("signal");
    let result = tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("serve returns at the end of the shutdown timeout")
        .expect("task");
    assert!(result.is_ok(), "{result:?}");
    assert!(started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn a_url_over_64_kib_gets_a_414_with_a_body_and_other_requests_still_work() {
    let server = Server::start(limits(5, 5, 5, 16)).await;
    let mut stream = server.connect().await;
    let long = format!(
        "GET /?q={} HTTP/1.1\r\nHost: test\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    stream.write_all(long.as_bytes()).await.expect("write");
    // The whole answer, then the server closes the connection.
    let response = read_response(&mut stream, "\u{0}", Duration::from_secs(5)).await;
    assert!(
        response.starts_with("HTTP/1.1 414 URI Too Long"),
        "{response}"
    );
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.contains("URI Too Long"), "a body: {response}");
    assert!(!body.contains("hello"), "no handler ran: {response}");

    // A fresh connection: an ordinary request, then another on the same connection.
    let mut stream = server.connect().await;
    for _ in 0..2 {
        stream.write_all(GET).await.expect("write");
        let response = read_response(&mut stream, "hello", Duration::from_secs(5)).await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    }
    // A first request sent in pieces, its body after its head, still works.
    let mut stream = server.connect().await;
    stream.write_all(b"POST /ec").await.expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream
        .write_all(b"ho HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(b"abc").await.expect("write");
    let response = read_response(&mut stream, "got 3", Duration::from_secs(5)).await;
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
}

#[tokio::test]
async fn behind_the_security_layer_a_slow_body_gets_its_408_in_the_request_format() {
    let backend = rampart::testing::TestBackend::Sqlite;
    crate::harness::on_backend(backend, &[], async |app: crate::harness::TestApp| {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let server = tokio::spawn(rampart::serve_with_shutdown(
            listener,
            app.router.clone(),
            limits(30, 1, 30, 16),
            std::future::pending::<()>(),
        ));
        for (accept, content_type, body_start) in [
            ("application/json", "application/json", "{"),
            ("text/html", "application/x-www-form-urlencoded", "<"),
        ] {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            let head = format!(
                "POST /login HTTP/1.1\r\nHost: rampart.test\r\nAccept: {accept}\r\n\
                 Content-Type: {content_type}\r\nContent-Length: 100\r\n\r\n{{"
            );
            stream.write_all(head.as_bytes()).await.expect("write");
            // Everything until the server closes the connection (it must, within the wait).
            let response = read_response(&mut stream, "\u{0}", Duration::from_secs(5)).await;
            assert!(
                response.starts_with("HTTP/1.1 408 Request Timeout"),
                "{response}"
            );
            assert!(
                response.to_ascii_lowercase().contains("connection: close"),
                "{response}"
            );
            let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
            assert!(
                body.trim_start().starts_with(body_start),
                "{accept}: {response}"
            );
            if accept == "application/json" {
                let json: serde_json::Value = serde_json::from_str(body).expect("JSON envelope");
                assert_eq!(json["meta"]["code"], 408, "{json}");
            }
        }
        server.abort();
    })
    .await;
}
