//! A small closed-loop HTTP/1.1 load generator: keep-alive connections, each sending its next
//! request as soon as the previous answer is read, for a fixed time.
//!
//! Every loop is bounded: a connection stops at its deadline, abandoning a request still in
//! flight, so a run never outlasts `warmup + duration` (plus the time to connect).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::BenchError;

/// How long connecting may take before the attempt counts as an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One request to send (again and again).
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// The method.
    pub method: Method,
    /// Path and query.
    pub path: String,
    /// Extra headers (a `Host` header is always sent).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body (empty for GET).
    pub body: Bytes,
    /// The status that counts as a success.
    pub expect: StatusCode,
}

impl RequestSpec {
    /// A GET of `path` expecting 200.
    pub fn get(path: &str) -> Self {
        Self {
            method: Method::GET,
            path: path.to_owned(),
            headers: Vec::new(),
            body: Bytes::new(),
            expect: StatusCode::OK,
        }
    }

    /// A POST of a JSON body to `path` expecting 200.
    pub fn post_json(path: &str, body: &serde_json::Value) -> Self {
        Self {
            method: Method::POST,
            path: path.to_owned(),
            headers: vec![
                (
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                ),
                (
                    http::header::ACCEPT,
                    HeaderValue::from_static("application/json"),
                ),
            ],
            body: Bytes::from(body.to_string()),
            expect: StatusCode::OK,
        }
    }

    /// A POST of a form body (`application/x-www-form-urlencoded`) to `path` expecting 200.
    pub fn post_form(path: &str, body: String) -> Self {
        Self {
            method: Method::POST,
            path: path.to_owned(),
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )],
            body: Bytes::from(body),
            expect: StatusCode::OK,
        }
    }

    /// The same request, with `status` counting as a success.
    #[must_use]
    pub fn expecting(mut self, status: StatusCode) -> Self {
        self.expect = status;
        self
    }

    /// Adds a header.
    ///
    /// # Errors
    ///
    /// [`BenchError::Setup`] when the value is not a valid header value.
    pub fn header(mut self, name: HeaderName, value: &str) -> Result<Self, BenchError> {
        let value = HeaderValue::from_str(value)
            .map_err(|e| BenchError::Setup(format!("bad header value for {name}: {e}")))?;
        self.headers.push((name, value));
        Ok(self)
    }

    fn build(&self, host: &HeaderValue) -> Result<Request<Full<Bytes>>, http::Error> {
        let mut builder = Request::builder()
            .method(self.method.clone())
            .uri(self.path.as_str())
            .header(http::header::HOST, host.clone());
        for (name, value) in &self.headers {
            builder = builder.header(name, value.clone());
        }
        builder.body(Full::new(self.body.clone()))
    }
}

/// What to run: which requests, on how many connections, for how long.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    /// The server.
    pub addr: SocketAddr,
    /// The requests; connection `i` sends `specs[i % len]` every time.
    pub specs: Arc<[RequestSpec]>,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Client threads (each a single-threaded tokio runtime).
    pub threads: usize,
    /// Time before measuring starts (answers are not recorded).
    pub warmup: Duration,
    /// Measured time.
    pub duration: Duration,
    /// Pause before retrying after a 503 (a flood that backs off a little), if any.
    pub backoff_on_503: Option<Duration>,
    /// The server's process, to measure the CPU time it spends in the measured window.
    pub server_pid: Option<u32>,
}

/// What a run measured (answers completed inside the measured window only).
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    /// Answers with the expected status.
    pub ok: u64,
    /// Answers with another status: (status, count).
    pub other_statuses: Vec<(u16, u64)>,
    /// 503 answers that carried `Retry-After`.
    pub busy_with_retry_after: u64,
    /// Connection or protocol failures (each followed by a reconnect).
    pub errors: u64,
    /// Latency of every recorded answer, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
    /// The measured window.
    pub window: Duration,
    /// CPU time (user + system) the server process used in the window, if measured.
    pub server_cpu: Option<Duration>,
}

impl LoadResult {
    /// Expected answers per second.
    pub fn rate(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// The `q` quantile (0..=1) of the latency of every recorded answer, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let last = self.latencies_us.len() - 1;
        let rank = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
        f64::from(self.latencies_us[rank.min(last)]) / 1000.0
    }

    /// Server CPU time per answer (any status), in microseconds, if measured.
    pub fn server_cpu_us_per_answer(&self) -> Option<f64> {
        let answers = self.ok + self.other_statuses.iter().map(|(_, n)| n).sum::<u64>();
        let cpu = self.server_cpu?;
        (answers > 0).then(|| cpu.as_secs_f64() * 1e6 / answers as f64)
    }

    /// Answers with status `code`.
    pub fn count_of(&self, code: u16) -> u64 {
        self.other_statuses
            .iter()
            .filter(|(c, _)| *c == code)
            .map(|(_, n)| n)
            .sum()
    }

    fn merge(&mut self, other: ConnStats) {
        self.ok += other.ok;
        self.errors += other.errors;
        self.busy_with_retry_after += other.busy_with_retry_after;
        for (code, n) in other.other_statuses {
            match self.other_statuses.iter_mut().find(|(c, _)| *c == code) {
                Some(entry) => entry.1 += n,
                None => self.other_statuses.push((code, n)),
            }
        }
        self.latencies_us.extend(other.latencies_us);
    }
}

#[derive(Default)]
struct ConnStats {
    ok: u64,
    other_statuses: Vec<(u16, u64)>,
    busy_with_retry_after: u64,
    errors: u64,
    latencies_us: Vec<u32>,
}

impl ConnStats {
    fn record(&mut self, status: StatusCode, expected: StatusCode, latency: Duration) {
        if status == expected {
            self.ok += 1;
        } else {
            let code = status.as_u16();
            match self.other_statuses.iter_mut().find(|(c, _)| *c == code) {
                Some(entry) => entry.1 += 1,
                None => self.other_statuses.push((code, 1)),
            }
        }
        self.latencies_us
            .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
    }
}

/// A run in progress on its own threads; [`RunningLoad::wait`] collects the result.
pub struct RunningLoad {
    threads: Vec<std::thread::JoinHandle<Result<Vec<ConnStats>, String>>>,
    cpu: Option<std::thread::JoinHandle<Option<Duration>>>,
    window: Duration,
}

impl std::fmt::Debug for RunningLoad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningLoad")
            .field("threads", &self.threads.len())
            .finish_non_exhaustive()
    }
}

impl RunningLoad {
    /// Waits for every connection to reach its deadline and merges what they measured.
    ///
    /// # Errors
    ///
    /// [`BenchError::Load`] when a client thread failed.
    pub fn wait(self) -> Result<LoadResult, BenchError> {
        let mut result = LoadResult {
            window: self.window,
            ..LoadResult::default()
        };
        for thread in self.threads {
            let stats = thread
                .join()
                .map_err(|_| BenchError::Load("a client thread panicked".into()))?
                .map_err(BenchError::Load)?;
            for conn in stats {
                result.merge(conn);
            }
        }
        result.latencies_us.sort_unstable();
        result.server_cpu = self.cpu.and_then(|t| t.join().ok().flatten());
        Ok(result)
    }
}

/// Starts `plan` on its own threads and returns at once.
///
/// # Errors
///
/// [`BenchError::Load`] when the plan is empty or a thread cannot be started.
pub fn start(plan: &LoadPlan) -> Result<RunningLoad, BenchError> {
    if plan.specs.is_empty() || plan.connections == 0 || plan.threads == 0 {
        return Err(BenchError::Load(
            "a load plan needs requests, connections and threads".into(),
        ));
    }
    let started = Instant::now();
    let measure_from = started + plan.warmup;
    let stop_at = measure_from + plan.duration;
    let host = HeaderValue::from_str(&plan.addr.to_string())
        .map_err(|e| BenchError::Load(format!("host header: {e}")))?;
    let threads = plan.threads.min(plan.connections);
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let conns: Vec<usize> = (t..plan.connections).step_by(threads).collect();
        let specs = Arc::clone(&plan.specs);
        let host = host.clone();
        let addr = plan.addr;
        let backoff = plan.backoff_on_503;
        let handle = std::thread::Builder::new()
            .name(format!("load-{t}"))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("client runtime: {e}"))?;
                runtime.block_on(async move {
                    let tasks: Vec<_> = conns
                        .into_iter()
                        .map(|i| {
                            let spec = specs[i % specs.len()].clone();
                            let host = host.clone();
                            tokio::spawn(connection(
                                addr,
                                spec,
                                host,
                                measure_from,
                                stop_at,
                                backoff,
                            ))
                        })
                        .collect();
                    let mut all = Vec::with_capacity(tasks.len());
                    for task in tasks {
                        all.push(task.await.map_err(|e| format!("connection task: {e}"))?);
                    }
                    Ok(all)
                })
            })
            .map_err(|e| BenchError::Load(format!("cannot start a client thread: {e}")))?;
        handles.push(handle);
    }
    let cpu = plan.server_pid.map(|pid| {
        std::thread::spawn(move || {
            std::thread::sleep(measure_from.saturating_duration_since(Instant::now()));
            let before = cpu_time(pid)?;
            std::thread::sleep(stop_at.saturating_duration_since(Instant::now()));
            Some(cpu_time(pid)?.saturating_sub(before))
        })
    });
    Ok(RunningLoad {
        threads: handles,
        cpu,
        window: plan.duration,
    })
}

/// Runs `plan` to the end.
///
/// # Errors
///
/// As [`start`] and [`RunningLoad::wait`].
pub fn run(plan: &LoadPlan) -> Result<LoadResult, BenchError> {
    start(plan)?.wait()
}

/// One keep-alive connection's loop, reconnecting after a failure, until `stop_at`.
async fn connection(
    addr: SocketAddr,
    spec: RequestSpec,
    host: HeaderValue,
    measure_from: Instant,
    stop_at: Instant,
    backoff: Option<Duration>,
) -> ConnStats {
    let mut stats = ConnStats::default();
    let stop = tokio::time::Instant::from_std(stop_at);
    'connect: while Instant::now() < stop_at {
        let connected =
            tokio::time::timeout(CONNECT_TIMEOUT.min(stop_at - Instant::now()), async {
                let stream = TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                    .await
                    .map_err(std::io::Error::other)
            })
            .await;
        let Ok(Ok((mut sender, conn))) = connected else {
            if Instant::now() >= measure_from {
                stats.errors += 1;
            }
            tokio::time::sleep_until(
                stop.min(tokio::time::Instant::now() + Duration::from_millis(20)),
            )
            .await;
            continue;
        };
        let driver = tokio::spawn(conn);
        let finished = exchange_until(
            &mut sender,
            &spec,
            &host,
            measure_from,
            stop_at,
            backoff,
            &mut stats,
        )
        .await;
        driver.abort();
        if finished {
            break 'connect;
        }
    }
    stats
}

/// Sends requests on one connection until the deadline (`true`) or a failure (`false`, the
/// caller reconnects).
async fn exchange_until(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    spec: &RequestSpec,
    host: &HeaderValue,
    measure_from: Instant,
    stop_at: Instant,
    backoff: Option<Duration>,
    stats: &mut ConnStats,
) -> bool {
    let stop = tokio::time::Instant::from_std(stop_at);
    loop {
        let Ok(request) = spec.build(host) else {
            stats.errors += 1;
            return true;
        };
        let sent = Instant::now();
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let retry_after = response.headers().contains_key(RETRY_AFTER);
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>((status, retry_after))
        };
        match tokio::time::timeout_at(stop, exchange).await {
            // The deadline came first: the request is abandoned.
            Err(_) => return true,
            Ok(Ok((status, retry_after))) => {
                let done = Instant::now();
                if done >= measure_from {
                    stats.record(status, spec.expect, done - sent);
                    if status == StatusCode::SERVICE_UNAVAILABLE && retry_after {
                        stats.busy_with_retry_after += 1;
                    }
                }
                if status == StatusCode::SERVICE_UNAVAILABLE
                    && let Some(pause) = backoff
                {
                    tokio::time::sleep_until(stop.min(tokio::time::Instant::now() + pause)).await;
                }
                if Instant::now() >= stop_at {
                    return true;
                }
            }
            Ok(Err(_)) => {
                if Instant::now() >= measure_from {
                    stats.errors += 1;
                }
                return false;
            }
        }
    }
}

/// How long a single set-up request may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(60);

/// One request on a fresh connection: the status, headers and body of the answer.
///
/// # Errors
///
/// [`BenchError::Load`] when the server cannot be reached or does not answer within a minute.
pub async fn fetch(
    addr: SocketAddr,
    spec: &RequestSpec,
) -> Result<(StatusCode, http::HeaderMap, Bytes), BenchError> {
    let host = HeaderValue::from_str(&addr.to_string())
        .map_err(|e| BenchError::Load(format!("host header: {e}")))?;
    let request = spec
        .build(&host)
        .map_err(|e| BenchError::Load(format!("request {}: {e}", spec.path)))?;
    let exchange = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(conn);
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        driver.abort();
        Ok::<_, String>((parts.status, parts.headers, body))
    };
    tokio::time::timeout(FETCH_TIMEOUT, exchange)
        .await
        .map_err(|_| BenchError::Load(format!("{} {}: no answer in time", spec.method, spec.path)))?
        .map_err(|e| BenchError::Load(format!("{} {}: {e}", spec.method, spec.path)))
}

/// User + system CPU time of process `pid` so far (`/proc/<pid>/stat`, in clock ticks of
/// 1/100 s, Linux's fixed `USER_HZ`).
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}
