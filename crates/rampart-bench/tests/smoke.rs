//! The benchmark still works: every scenario runs (for a second each, against the app's router
//! and the bare handler served in this process, cheap argon2) and the report renders and is
//! written between its markers. A second, not less: on a loaded CI machine the first logins of a
//! scenario can stall for a few hundred milliseconds. The real benchmark is not run in CI.

use std::time::Duration;

use rampart_bench::report::{self, Machine, Report};
use rampart_bench::server::{InProcess, bare_router};
use rampart_bench::{seed, suite};

#[test]
fn every_scenario_runs_and_the_report_is_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("smoke.db");
    let settings = seed::app_settings(
        &database,
        &[
            ("SECURITY_ARGON2_MEMORY_KIB", "1024"),
            ("SECURITY_ARGON2_ITERATIONS", "1"),
            ("SECURITY_ARGON2_PARALLELISM", "1"),
            // A tiny queue, so the flood meets 503s.
            ("SECURITY_HASHING_MAX_CONCURRENT", "1"),
            ("SECURITY_HASHING_MAX_QUEUED", "1"),
        ],
    );
    let config = seed::app_config(&settings, dir.path()).expect("config");
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let seeded = control.block_on(seed::seed(&config, 40)).expect("seed");
    assert_eq!(seeded.users, 40);

    let app = control
        .block_on(rampart_app::build(&config))
        .expect("build the app");
    let app_server = InProcess::start(app.router, 2).expect("serve the app");
    let bare_server = InProcess::start(bare_router(), 1).expect("serve the bare handler");
    let sizes = suite::Sizes {
        duration: Duration::from_millis(1000),
        warmup: Duration::from_millis(50),
        connections: 4,
        login_connections: 2,
        flood_connections: 6,
        flood_backoff: Duration::from_millis(20),
        client_threads: 1,
        settle: Duration::from_millis(10),
    };

    let hash = seeded
        .security
        .hasher()
        .hash_blocking(seed::PASSWORD)
        .expect("hash");
    let hash_rate = suite::hash_rate(
        seeded.security.hasher(),
        &hash,
        1,
        Duration::from_millis(100),
    )
    .expect("hash rate");
    assert!(hash_rate.one_thread > 0.0);

    let bare = suite::bare(&bare_server.target, &sizes).expect("bare");
    assert!(bare.result.ok > 0, "{bare:?}");
    let credentials = control
        .block_on(suite::sign_in(&app_server.target, &[1, 2, 3]))
        .expect("sign in");
    assert_eq!(credentials.cookies.len(), 3);
    let users: Vec<u64> = (1..=40).collect();
    let app = suite::app(&app_server.target, &credentials, &users, &sizes).expect("scenarios");
    for measured in [
        &app.login_page,
        &app.me_session,
        &app.me_token,
        &app.login,
        &app.flood_me,
    ] {
        assert!(
            measured.result.ok > 0,
            "{}: {:?}",
            measured.name,
            measured.result
        );
        assert_eq!(measured.result.errors, 0, "{}", measured.name);
        assert!(measured.result.quantile_ms(0.99) >= measured.result.quantile_ms(0.5));
    }
    let busy = app.flood_logins.result.count_of(503);
    assert!(
        busy > 0,
        "the flood met no 503: {:?}",
        app.flood_logins.result
    );
    assert_eq!(app.flood_logins.result.busy_with_retry_after, busy);

    let report = Report {
        mode: "smoke",
        machine: Machine::probe(),
        users: seeded.users,
        seeded_in: seeded.took,
        sizes,
        argon2: "m=1024 KiB, t=1, p=1".into(),
        hash_rate,
        pool: (1, 1),
        bare,
        app,
        startups: vec![Duration::from_millis(5)],
        idle_rss_kib: None,
        peak_rss_kib: None,
        million: None,
        side: None,
    };
    let table = report.table();
    assert!(table.contains("GET /api/me, session cookie"), "{table}");
    let checks = report.checks();
    assert!(checks.iter().any(|c| c.target.contains("p99 < 25 ms")));

    let out = dir.path().join("benchmarks.md");
    std::fs::write(&out, "# Benchmarks\n\nWritten by hand.\n").expect("write");
    report.write_markdown(&out).expect("first write");
    report.write_markdown(&out).expect("second write");
    let text = std::fs::read_to_string(&out).expect("read");
    assert!(
        text.starts_with("# Benchmarks\n\nWritten by hand."),
        "{text}"
    );
    assert_eq!(text.matches(report::BEGIN).count(), 1, "{text}");
    assert!(
        text.contains("| target (issue 4) | measured | met |"),
        "{text}"
    );
}
