//! Memory stays bounded under a login flood (issue 16): the sample app, in a process of its own
//! (this package's binary, `--serve-app`), is flooded with concurrent logins, and its peak
//! resident memory may not pass what it used before the flood plus the hashing pool's budget
//! (`SECURITY_HASHING_MAX_CONCURRENT` × the argon2 memory) and a fixed allowance — whatever the
//! number of logins waiting.
//!
//! That the measure can fail is shown on the axum-login peer (`--serve-peer`), which hashes
//! every login at once on tokio's blocking threads: the same flood takes it past the same bound.

#![expect(
    clippy::expect_used,
    reason = "test steps: a step that cannot be done must fail the test at once, saying which"
)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use rampart_bench::load::{self, LoadPlan, RequestSpec};
use rampart_bench::peer::{self, Argon2Params};
use rampart_bench::seed::{self, PASSWORD, email};
use rampart_bench::server::{ServerProcess, Target};
use serde_json::json;

/// Argon2 memory per hash: 16 MiB.
const MEMORY_KIB: u32 = 16 * 1024;
/// Hashes at once in the app's pool.
const POOL: u32 = 2;
/// Connections sending logins, all at once.
const FLOOD: usize = 48;
/// What a process may use beyond its hashing budget during the flood (buffers of the
/// connections, the blocking threads' stacks, the allocator's slack: glibc keeps a freed argon2
/// block per thread arena, and a debug build under `.ci/run` grew by 83 MiB once), KiB. Still far
/// below what hashing every waiting login at once takes (`FLOOD` × 16 MiB = 768 MiB), which the
/// peer's control run shows.
const ALLOWANCE_KIB: u64 = 128 * 1024;
/// Seeded users.
const USERS: u64 = 48;

fn bench_binary() -> &'static str {
    env!("CARGO_BIN_EXE_rampart-bench")
}

/// Floods `target` with `specs` on [`FLOOD`] connections for 3 s and returns the growth of its
/// peak resident memory over its resident memory before, in KiB, and the expected answers.
fn flood(target: &Target, specs: Vec<RequestSpec>) -> (u64, u64) {
    let before = target.rss_kib().expect("resident memory before");
    let result = load::run(&LoadPlan {
        addr: target.addr,
        specs: specs.into(),
        connections: FLOOD,
        threads: 1,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(3),
        backoff_on_503: Some(Duration::from_millis(20)),
        server_pid: target.pid,
    })
    .expect("flood");
    let peak = target.peak_rss_kib().expect("peak resident memory");
    (peak.saturating_sub(before), result.ok)
}

fn bound_kib() -> u64 {
    u64::from(POOL * MEMORY_KIB) + ALLOWANCE_KIB
}

fn app_command(dir: &Path, settings: &[(String, String)]) -> Command {
    let mut command = Command::new(bench_binary());
    command
        .arg("--serve-app")
        .arg(dir)
        .current_dir(dir)
        .env_clear();
    for (key, value) in settings {
        command.env(key, value);
    }
    command
}

#[test]
fn peak_memory_under_a_login_flood_stays_within_the_hashing_budget() {
    let dir = tempfile::tempdir().expect("temp dir");
    let memory = MEMORY_KIB.to_string();
    let pool = POOL.to_string();
    let settings = seed::app_settings(
        &dir.path().join("app.db"),
        &[
            ("SECURITY_ARGON2_MEMORY_KIB", memory.as_str()),
            ("SECURITY_ARGON2_ITERATIONS", "1"),
            ("SECURITY_ARGON2_PARALLELISM", "1"),
            ("SECURITY_HASHING_MAX_CONCURRENT", pool.as_str()),
            ("SECURITY_HASHING_MAX_QUEUED", "64"),
        ],
    );
    let config = seed::app_config(&settings, dir.path()).expect("config");
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    control.block_on(seed::seed(&config, USERS)).expect("seed");
    let app = ServerProcess::spawn(app_command(dir.path(), &settings), "/login").expect("app");
    let logins: Vec<RequestSpec> = (1..=USERS)
        .map(|i| {
            RequestSpec::post_json("/login", &json!({"email": email(i), "password": PASSWORD}))
        })
        .collect();
    // A few logins first, so the pool's first hashes are part of "before".
    assert!(
        warm_up(&app.target, logins[..2].to_vec()) > 0,
        "a login went through before the flood"
    );

    let (growth, ok) = flood(&app.target, logins);
    assert!(ok > 0, "some logins went through the flood");
    assert!(
        growth <= bound_kib(),
        "the app grew by {growth} KiB under a flood of {FLOOD} logins: more than its hashing \
         budget ({POOL} × {MEMORY_KIB} KiB) and {ALLOWANCE_KIB} KiB"
    );
    app.stop();
}

/// Logins on two connections for a second (the hashing warmed up): the expected answers.
fn warm_up(target: &Target, specs: Vec<RequestSpec>) -> u64 {
    let result = load::run(&LoadPlan {
        addr: target.addr,
        specs: specs.into(),
        connections: 2,
        threads: 1,
        warmup: Duration::ZERO,
        duration: Duration::from_secs(1),
        backoff_on_503: Some(Duration::from_millis(20)),
        server_pid: target.pid,
    })
    .expect("logins");
    result.ok
}

#[test]
fn the_same_flood_takes_a_server_that_hashes_every_login_at_once_past_the_bound() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("peer.db");
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let params = Argon2Params {
        memory_kib: MEMORY_KIB,
        iterations: 1,
        parallelism: 1,
    };
    control
        .block_on(peer::seed(&database, USERS, params))
        .expect("seed the peer");
    let mut command = Command::new(bench_binary());
    command.arg("--serve-peer").arg(&database);
    let process = ServerProcess::spawn(command, "/login").expect("peer");
    let logins: Vec<RequestSpec> = (1..=USERS)
        .map(|i| {
            RequestSpec::post_form(
                "/login",
                format!(
                    "username={}&password={}",
                    email(i).replace('@', "%40"),
                    PASSWORD.replace(' ', "+")
                ),
            )
            .expecting(http::StatusCode::SEE_OTHER)
        })
        .collect();
    assert!(
        warm_up(&process.target, logins[..2].to_vec()) > 0,
        "a peer login went through"
    );
    let (growth, ok) = flood(&process.target, logins);
    assert!(ok > 0);
    assert!(
        growth > bound_kib(),
        "the peer grew by only {growth} KiB: the measure would not catch unbounded hashing"
    );
    process.stop();
}
