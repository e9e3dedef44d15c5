//! The servers under test: the release `rampart-app` binary and the bare axum handler, each in its
//! own process (or, for the smoke test, in this one), with their address, resident memory and
//! start-up time.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BenchError;

/// How long a server may take to print its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A server to drive: its address and, when it is a process of its own, its pid.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its process, for memory readings (`None` in-process).
    pub pid: Option<u32>,
}

impl Target {
    /// Resident memory now (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        self.pid.and_then(|pid| proc_status_kib(pid, "VmRSS:"))
    }

    /// Peak resident memory so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.pid.and_then(|pid| proc_status_kib(pid, "VmHWM:"))
    }
}

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// A server process, stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Address and pid.
    pub target: Target,
    /// From spawning the process to the end of its first HTTP answer.
    pub startup: Duration,
}

impl ServerProcess {
    /// Spawns `command`, waits for the `http://host:port/` it prints on its first stdout line,
    /// then times a first request (`GET probe_path`) and keeps draining its stdout.
    ///
    /// # Errors
    ///
    /// [`BenchError::Server`] when it cannot start, prints no address or does not answer.
    pub fn spawn(mut command: Command, probe_path: &str) -> Result<Self, BenchError> {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| BenchError::Server(format!("cannot start {command:?}: {e}")))?;
        let pid = child.id();
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| BenchError::Server("no stdout".into()))?;
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the first line, then drains stdout (console mails) so the server never blocks.
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _sent = tx.send(reader.read_line(&mut line).map(|_| line));
            let mut sink = [0_u8; 8192];
            while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
        });
        let mut process = Self {
            child,
            target: Target {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                pid: Some(pid),
            },
            startup: Duration::ZERO,
        };
        let line = rx
            .recv_timeout(START_TIMEOUT)
            .map_err(|_| BenchError::Server("the server printed no address in time".into()))?
            .map_err(|e| BenchError::Server(format!("reading the server's output: {e}")))?;
        process.target.addr = address_in(&line)
            .ok_or_else(|| BenchError::Server(format!("no http:// address in {line:?}")))?;
        probe(process.target.addr, probe_path)?;
        process.startup = started.elapsed();
        Ok(process)
    }

    /// Stops the process: SIGTERM, up to 5 s to finish, then SIGKILL.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ignored = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ignored = self.child.kill();
        let _ignored = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The `host:port` of the first `http://host:port/` in `line`.
fn address_in(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("http://")? + "http://".len()..];
    let end = rest.find('/').unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// One `GET path` with `Connection: close`, read to the end: the server is up and answering.
fn probe(addr: SocketAddr, path: &str) -> Result<(), BenchError> {
    let fail = |e: std::io::Error| BenchError::Server(format!("first request to {addr}: {e}"));
    let mut stream = TcpStream::connect_timeout(&addr, START_TIMEOUT).map_err(fail)?;
    stream.set_read_timeout(Some(START_TIMEOUT)).map_err(fail)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(fail)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(fail)?;
    if answer.starts_with(b"HTTP/1.1 ") {
        Ok(())
    } else {
        Err(BenchError::Server(format!("{addr} did not answer HTTP")))
    }
}

/// The command that serves the release sample app on `database` with `settings`, from `dir`
/// (its instance folder), with nothing inherited from this environment but `PATH`.
pub fn app_command(binary: &Path, dir: &Path, settings: &[(String, String)]) -> Command {
    let mut command = Command::new(binary);
    command.arg("serve").current_dir(dir).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for (key, value) in settings {
        command.env(key, value);
    }
    command
}

/// Serves the sample app (this build of it) from instance folder `dir`, configured by the
/// environment as the `rampart-app serve` command is, until SIGTERM.
///
/// # Errors
///
/// [`BenchError::App`] when the configuration is refused or the app cannot start.
pub fn serve_app(dir: &Path) -> Result<(), BenchError> {
    let config = rampart_app::AppConfig::load(&dir.join("rampart.toml"), &dir.join(".env"), dir)
        .map_err(|e| BenchError::App(rampart_app::AppError::Config(e)))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(rampart_app::cli::serve(&config, None))?;
    Ok(())
}

/// The bare reference handler: `GET /` answers `Hello, World!`, nothing else.
pub fn bare_router() -> axum::Router {
    axum::Router::new().route("/", axum::routing::get(|| async { "Hello, World!" }))
}

/// Serves [`bare_router`] on `127.0.0.1:0` with a default multi-threaded runtime (as
/// `#[tokio::main]` makes, like the app's), printing its address, until stdin closes (the
/// benchmark went away) or SIGTERM.
///
/// # Errors
///
/// [`BenchError::Io`] when it cannot listen.
pub fn serve_bare() -> Result<(), BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "bare handler on http://{addr}/")?;
            out.flush()?;
        }
        axum::serve(listener, bare_router())
            .with_graceful_shutdown(stop_signal())
            .await?;
        Ok(())
    })
}

/// Resolves on SIGTERM or when stdin reaches its end.
pub(crate) async fn stop_signal() {
    use tokio::io::AsyncReadExt as _;
    let stdin_closed = async {
        let mut stdin = tokio::io::stdin();
        let mut buf = [0_u8; 64];
        while matches!(stdin.read(&mut buf).await, Ok(n) if n > 0) {}
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = stdin_closed => {}
        () = terminate => {}
    }
}

/// A router served in this process on its own runtime thread(s), for the smoke test.
#[derive(Debug)]
pub struct InProcess {
    /// Its address (no pid: memory is not measured in-process).
    pub target: Target,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Serves `router` (with client addresses) on `127.0.0.1:0` with `workers` threads.
    ///
    /// # Errors
    ///
    /// [`BenchError::Io`] when it cannot listen.
    pub fn start(router: axum::Router, workers: usize) -> Result<Self, BenchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers.max(1))
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let service = router.into_make_service_with_connect_info::<SocketAddr>();
                let _ignored = axum::serve(listener, service)
                    .with_graceful_shutdown(async {
                        let _ignored = stopped.await;
                    })
                    .await;
            });
        });
        Ok(Self {
            target: Target { addr, pid: None },
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ignored = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ignored = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_read_from_the_servers_first_line() {
        assert_eq!(
            address_in("Rampart Sample is running on http://127.0.0.1:4321/ (database: sqlite)"),
            Some(SocketAddr::from(([127, 0, 0, 1], 4321)))
        );
        assert_eq!(address_in("no address"), None);
    }
}
