//! # rampart-bench
//!
//! Rampart's benchmark (issue 4). One command:
//!
//! ```text
//! cargo run --release -p rampart-bench             # full run, writes docs/benchmarks.md
//! cargo run --release -p rampart-bench -- --quick  # ~1 s per scenario, 1,000 users, prints only
//! cargo run --release -p rampart-bench -- --million  # also /api/me with 1,000,000 users
//! ```
//!
//! It builds the release `rampart-app` binary (`cargo build --release -p rampart-app`), creates a
//! fresh SQLite database seeded with confirmed users ([`seed`]), starts the app and — as the
//! ceiling — a bare axum "hello" handler, each in its own process, and drives both over loopback
//! with concurrent keep-alive connections from its own small load generator ([`load`]), for a
//! fixed time per scenario ([`suite`]). It prints a table and writes it, with the issue's targets
//! checked, into `docs/benchmarks.md` ([`report`]).
//!
//! Every load loop is bounded in time and every server it starts is stopped when it ends.

#![forbid(unsafe_code)]

pub mod cluster;
pub mod load;
pub mod peer;
pub mod report;
pub mod seed;
pub mod server;
pub mod side;
pub mod suite;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use clap::Parser;

use report::{Machine, Million, Report};
use server::ServerProcess;
use suite::Sizes;

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Something needed for a scenario could not be prepared.
    #[error("set-up: {0}")]
    Setup(String),
    /// The app refused its configuration or could not prepare its database.
    #[error("app: {0}")]
    App(#[from] rampart_app::AppError),
    /// A database statement failed while seeding.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The framework's datastore failed.
    #[error("datastore: {0}")]
    Datastore(#[from] rampart::DatastoreError),
    /// Password hashing failed.
    #[error("password hashing: {0}")]
    Password(#[from] rampart::PasswordError),
    /// A server could not be started or did not answer.
    #[error("server: {0}")]
    Server(String),
    /// The load generator failed.
    #[error("load: {0}")]
    Load(String),
    /// `cargo build` failed.
    #[error("building rampart-app failed: {0}")]
    Build(String),
    /// A file or socket operation failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The command line.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "rampart-bench",
    about = "Benchmarks the release rampart-app against a bare axum handler over loopback"
)]
pub struct Options {
    /// About 1 s per scenario and 1,000 users; prints the table, writes nothing unless --write.
    #[arg(long)]
    pub quick: bool,
    /// Also measure /api/me on a database of --million-users users (seeding takes a while).
    #[arg(long)]
    pub million: bool,
    /// Users of the --million database.
    #[arg(long, default_value_t = 1_000_000)]
    pub million_users: u64,
    /// Users in the main database (default 10,000; 1,000 with --quick).
    #[arg(long)]
    pub users: Option<u64>,
    /// Measured seconds per scenario (default 5; 1 with --quick).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Warm-up seconds per scenario (default 1; 0.3 with --quick).
    #[arg(long)]
    pub warmup: Option<f64>,
    /// Keep-alive connections of the throughput scenarios.
    #[arg(long, default_value_t = 32)]
    pub connections: usize,
    /// Client threads of the load generator.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Use this rampart-app binary instead of building one.
    #[arg(long)]
    pub app_bin: Option<PathBuf>,
    /// Where to write the results (default: docs/benchmarks.md of the workspace).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write the results even with --quick.
    #[arg(long)]
    pub write: bool,
    /// Do not write the results.
    #[arg(long, conflicts_with = "write")]
    pub no_write: bool,
    /// Several instances on PostgreSQL instead: the admin URL of a PostgreSQL server (fresh
    /// databases are made there and dropped), measured side by side with one SQLite instance.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Instances on PostgreSQL (with --postgres).
    #[arg(long, default_value_t = 2)]
    pub instances: usize,
    /// Redis for the PostgreSQL instances (`REDIS_URL`, with --postgres).
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Serve the bare reference handler (used by the benchmark itself).
    #[arg(long, hide = true)]
    pub serve_bare: bool,
    /// Serve the axum-login peer on this SQLite file (used by the benchmark itself).
    #[arg(long, hide = true, value_name = "FILE")]
    pub serve_peer: Option<PathBuf>,
    /// Serve the sample app from this instance folder, configured by the environment (used by
    /// the flood memory test, which needs no release build).
    #[arg(long, hide = true, value_name = "DIR")]
    pub serve_app: Option<PathBuf>,
    /// Leave out the side-by-side comparison with the axum-login peer and the uncached app.
    #[arg(long)]
    pub no_peer: bool,
}

impl Options {
    /// Load sizes for this mode.
    pub fn sizes(&self) -> Sizes {
        let (duration, warmup) = if self.quick { (1.0, 0.3) } else { (5.0, 1.0) };
        Sizes {
            duration: Duration::from_secs_f64(self.duration.unwrap_or(duration).max(0.1)),
            warmup: Duration::from_secs_f64(self.warmup.unwrap_or(warmup).max(0.0)),
            connections: self.connections.max(1),
            login_connections: 8,
            flood_connections: 96,
            flood_backoff: Duration::from_millis(100),
            client_threads: self.client_threads.max(1),
            settle: Duration::from_millis(if self.quick { 300 } else { 1000 }),
        }
    }

    fn users(&self) -> u64 {
        self.users
            .unwrap_or(if self.quick { 1_000 } else { 10_000 })
            .max(16)
    }
}

/// The workspace folder (two levels above this crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Seeded users signed in for the `/api/me` scenarios.
const SIGNED_IN: u64 = 16;

/// Builds the release app with cargo and returns the binary's path (next to this benchmark's
/// target folder).
///
/// # Errors
///
/// [`BenchError::Build`] when cargo fails or the binary is not where it should be.
pub fn build_app() -> Result<PathBuf, BenchError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("building the release rampart-app (cargo build --release -p rampart-app)…");
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "rampart-app"])
        .current_dir(workspace_dir())
        .status()
        .map_err(|e| BenchError::Build(e.to_string()))?;
    if !status.success() {
        return Err(BenchError::Build(format!("cargo exited with {status}")));
    }
    let exe = std::env::current_exe()?;
    let target_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| BenchError::Build("cannot locate the target folder".into()))?;
    let binary = target_dir.join("release").join("rampart-app");
    if binary.exists() {
        Ok(binary)
    } else {
        Err(BenchError::Build(format!(
            "{} is missing after the build (CARGO_TARGET_DIR?); pass --app-bin",
            binary.display()
        )))
    }
}

/// Runs the `--postgres` benchmark (several instances on PostgreSQL, beside one on SQLite).
///
/// # Errors
///
/// [`BenchError`] when a step fails, or without `--postgres`.
pub fn run_cluster(options: &Options) -> Result<cluster::ClusterReport, BenchError> {
    let admin_url = options
        .postgres
        .as_deref()
        .ok_or_else(|| BenchError::Setup("--postgres URL is needed".into()))?;
    let binary = match &options.app_bin {
        Some(path) => std::fs::canonicalize(path)?,
        None => build_app()?,
    };
    cluster::run(options, admin_url, &binary, &options.sizes())
}

/// Runs the whole benchmark and returns its report.
///
/// # Errors
///
/// [`BenchError`] when a step fails; servers started so far are stopped.
pub fn run(options: &Options) -> Result<Report, BenchError> {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build of the benchmark; run it with --release");
    }
    let sizes = options.sizes();
    let binary = match &options.app_bin {
        Some(path) => std::fs::canonicalize(path)?,
        None => build_app()?,
    };
    // After the build, whose compiling still weighs on the 1-minute load average for a while.
    let mut machine = Machine::probe();
    let work = tempfile::Builder::new().prefix("rampart-bench").tempdir()?;
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;

    // The database, seeded.
    let users = options.users();
    let database = work.path().join("bench.db");
    let settings = seed::app_settings(&database, &[]);
    let config = seed::app_config(&settings, work.path())?;
    eprintln!("seeding {} users…", report::thousands(users));
    let seeded = control.block_on(seed::seed(&config, users))?;
    let password = &config.security.password;

    // Raw argon2, in this process, with the app's hasher.
    eprintln!("measuring raw argon2 verifications…");
    let hash = seeded.security.hasher().hash_blocking(seed::PASSWORD)?;
    let hash_rate = suite::hash_rate(
        seeded.security.hasher(),
        &hash,
        machine.cpus,
        if options.quick {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(4)
        },
    )?;

    // The ceiling.
    eprintln!("bare handler…");
    let exe = std::env::current_exe()?;
    let mut bare_command = Command::new(exe);
    bare_command.arg("--serve-bare");
    let bare_process = ServerProcess::spawn(bare_command, "/")?;
    let bare = suite::bare(&bare_process.target, &sizes)?;
    bare_process.stop();
    std::thread::sleep(sizes.settle);

    // The app: start-up (existing database), then the scenarios on the last start.
    eprintln!("rampart-app…");
    let starts = if options.quick { 1 } else { 3 };
    let mut startups = Vec::new();
    let mut app = None;
    for i in 0..starts {
        let process = ServerProcess::spawn(
            server::app_command(&binary, work.path(), &settings),
            "/api/me",
        )?;
        startups.push(process.startup);
        if i + 1 == starts {
            app = Some(process);
        } else {
            process.stop();
        }
    }
    let app = app.ok_or_else(|| BenchError::Server("the app did not start".into()))?;
    std::thread::sleep(Duration::from_millis(200));
    let idle_rss_kib = app.target.rss_kib();
    let signed_in: Vec<u64> = (1..=SIGNED_IN).collect();
    let credentials = control.block_on(suite::sign_in(&app.target, &signed_in))?;
    let login_users: Vec<u64> = (1..=users.min(1_000)).collect();
    eprintln!("app scenarios…");
    let scenarios = suite::app(&app.target, &credentials, &login_users, &sizes)?;
    let peak_rss_kib = app.target.peak_rss_kib();

    let home = side::read(
        &app.target,
        "/",
        &credentials,
        "text/html",
        &sizes,
        "GET / (home page), session cookie",
    )?;
    std::thread::sleep(sizes.settle);

    // The big database is measured alternately with this one (still running, idle), so both
    // see the same machine.
    let million = if options.million {
        Some(run_million(
            options,
            &binary,
            work.path(),
            &control,
            &sizes,
            (&app.target, &credentials),
        )?)
    } else {
        None
    };
    app.stop();

    let side = if options.no_peer {
        None
    } else {
        std::thread::sleep(sizes.settle);
        Some(run_side(
            &binary,
            work.path(),
            &settings,
            &control,
            &sizes,
            home,
            (users, password),
        )?)
    };

    machine.load_after = report::load_average();
    Ok(Report {
        mode: if options.quick { "quick" } else { "full" },
        machine,
        users: seeded.users,
        seeded_in: seeded.took,
        sizes,
        argon2: format!(
            "m={} KiB, t={}, p={}",
            password.argon2_memory_kib, password.argon2_iterations, password.argon2_parallelism
        ),
        hash_rate,
        pool: (password.max_concurrent, password.max_queued),
        bare,
        app: scenarios,
        startups,
        idle_rss_kib,
        peak_rss_kib,
        million,
        side,
    })
}

/// The uncached app (`SECURITY_AUTH_CACHE_TTL=0`, same database) and the axum-login peer (its
/// own database, the same users, argon2 hashes at the app's parameters).
fn run_side(
    binary: &Path,
    work: &Path,
    settings: &[(String, String)],
    control: &tokio::runtime::Runtime,
    sizes: &Sizes,
    home: suite::Measured,
    (users, password): (u64, &rampart::PasswordConfig),
) -> Result<side::SideBySide, BenchError> {
    eprintln!("rampart-app with SECURITY_AUTH_CACHE_TTL=0…");
    let mut uncached_settings = settings.to_vec();
    uncached_settings.push(("SECURITY_AUTH_CACHE_TTL".to_owned(), "0".to_owned()));
    let app = ServerProcess::spawn(
        server::app_command(binary, work, &uncached_settings),
        "/api/me",
    )?;
    let signed_in: Vec<u64> = (1..=SIGNED_IN).collect();
    let credentials = control.block_on(suite::sign_in(&app.target, &signed_in))?;
    let uncached_me = side::read(
        &app.target,
        "/api/me",
        &credentials,
        "application/json",
        sizes,
        "GET /api/me, session cookie, cache off",
    )?;
    std::thread::sleep(sizes.settle);
    let uncached_home = side::read(
        &app.target,
        "/",
        &credentials,
        "text/html",
        sizes,
        "GET / (home page), session cookie, cache off",
    )?;
    app.stop();
    std::thread::sleep(sizes.settle);

    eprintln!("axum-login peer…");
    let dir = work.join("peer");
    std::fs::create_dir_all(&dir)?;
    let database = dir.join("peer.db");
    let params = peer::Argon2Params {
        memory_kib: password.argon2_memory_kib,
        iterations: password.argon2_iterations,
        parallelism: password.argon2_parallelism,
    };
    control.block_on(peer::seed(&database, users, params))?;
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("--serve-peer").arg(&database);
    let process = ServerProcess::spawn(command, "/login")?;
    std::thread::sleep(Duration::from_millis(200));
    let peer_idle_rss_kib = process.target.rss_kib();
    let peer_credentials = control.block_on(side::sign_in_peer(&process.target, &signed_in))?;
    let peer_page = side::read(
        &process.target,
        "/",
        &peer_credentials,
        "text/html",
        sizes,
        "peer GET / (protected page), session cookie",
    )?;
    std::thread::sleep(sizes.settle);
    let peer_login_page = side::anonymous(
        &process.target,
        "/login",
        sizes,
        "peer GET /login, anonymous",
    )?;
    std::thread::sleep(sizes.settle);
    let login_users: Vec<u64> = (1..=users.min(1_000)).collect();
    let (peer_login, peer_flood) = side::peer_logins(&process.target, &login_users, sizes)?;
    let peer_peak_rss_kib = process.target.peak_rss_kib();
    process.stop();
    Ok(side::SideBySide {
        home,
        uncached_me,
        uncached_home,
        peer_page,
        peer_login_page,
        peer_login,
        peer_flood,
        peer_peak_rss_kib,
        peer_idle_rss_kib,
    })
}

fn run_million(
    options: &Options,
    binary: &Path,
    work: &Path,
    control: &tokio::runtime::Runtime,
    sizes: &Sizes,
    small: (&server::Target, &suite::Credentials),
) -> Result<Million, BenchError> {
    let dir = work.join("million");
    std::fs::create_dir_all(&dir)?;
    let database = dir.join("bench.db");
    let settings = seed::app_settings(&database, &[]);
    let config = seed::app_config(&settings, &dir)?;
    eprintln!(
        "seeding {} users…",
        report::thousands(options.million_users)
    );
    let seeded = control.block_on(seed::seed(&config, options.million_users))?;
    let app = ServerProcess::spawn(server::app_command(binary, &dir, &settings), "/api/me")?;
    let signed_in: Vec<u64> = (1..=SIGNED_IN).collect();
    let credentials = control.block_on(suite::sign_in(&app.target, &signed_in))?;
    let label = format!(", {} users", report::thousands(seeded.users));
    let mut big: Vec<(suite::Measured, suite::Measured)> = Vec::new();
    let mut reference: Vec<(suite::Measured, suite::Measured)> = Vec::new();
    eprintln!("/api/me on both databases, alternately…");
    for _ in 0..MILLION_ROUNDS {
        std::thread::sleep(sizes.settle);
        reference.push(suite::me(small.0, small.1, sizes, "")?);
        std::thread::sleep(sizes.settle);
        big.push(suite::me(&app.target, &credentials, sizes, &label)?);
    }
    let startup = app.startup;
    app.stop();
    let best = |runs: &[(suite::Measured, suite::Measured)], token: bool| {
        runs.iter()
            .map(|(session, tok)| if token { tok } else { session })
            .max_by(|a, b| a.result.rate().total_cmp(&b.result.rate()))
            .cloned()
    };
    let missing = || BenchError::Load("no /api/me run on the big database".into());
    Ok(Million {
        users: seeded.users,
        seeded_in: seeded.took,
        startup,
        me_session: best(&big, false).ok_or_else(missing)?,
        me_token: best(&big, true).ok_or_else(missing)?,
        reference_session: best(&reference, false).ok_or_else(missing)?,
        reference_token: best(&reference, true).ok_or_else(missing)?,
        rounds: MILLION_ROUNDS,
    })
}

/// Alternating rounds of `/api/me` on the small and the big database (the best of each counts).
const MILLION_ROUNDS: usize = 2;

/// Where the results go, if anywhere.
pub fn output_path(options: &Options) -> Option<PathBuf> {
    if options.no_write || (options.quick && !options.write && options.out.is_none()) {
        return None;
    }
    Some(
        options
            .out
            .clone()
            .unwrap_or_else(|| workspace_dir().join("docs").join("benchmarks.md")),
    )
}
