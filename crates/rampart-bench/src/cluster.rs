//! Several instances on one PostgreSQL (`--postgres URL --instances N [--redis URL]`), side by
//! side with one instance on SQLite: `GET /api/me`, anonymous `GET /login`, `POST /login` and
//! the revocation delay (a logout on one instance, then the same cookie refused on another:
//! p50 and p99 over [`REVOCATION_TRIES`] tries), and, with `--million`, `/api/me` on 1,000,000
//! users against 10,000 on PostgreSQL.
//!
//! `URL` is an admin URL of a PostgreSQL server (like `TEST_DATABASE_URL`): each database the
//! run needs is created fresh there and dropped at the end. The instances are release
//! `rampart-app` processes on their own ports; the load generator spreads its connections over
//! them evenly.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use http::StatusCode;
use http::header::{ACCEPT, COOKIE, HeaderName};
use rampart::testing::{TestBackend, TestDatabase};
use serde_json::json;

use crate::load::{self, LoadPlan, LoadResult, RequestSpec};
use crate::report::thousands;
use crate::seed::{self, PASSWORD, email};
use crate::server::{ServerProcess, Target};
use crate::suite::Sizes;
use crate::{BenchError, Options};

/// Logouts timed for the revocation delay.
pub const REVOCATION_TRIES: usize = 200;

/// Where the block of this run starts and ends in `docs/benchmarks.md`.
pub const BEGIN: &str = "<!-- rampart-bench:cluster:begin -->";
/// The end of the block.
pub const END: &str = "<!-- rampart-bench:cluster:end -->";

/// Seeded users signed in for the `/api/me` scenarios.
const SIGNED_IN: u64 = 16;

/// One configuration's figures.
#[derive(Clone, Debug)]
pub struct Figures {
    /// "SQLite, 1 instance", "PostgreSQL, 2 instances", …
    pub name: String,
    /// `GET /api/me` with a session cookie.
    pub me: LoadResult,
    /// Anonymous `GET /login`.
    pub login_page: LoadResult,
    /// `POST /login`, valid passwords.
    pub logins: LoadResult,
    /// Logout on one instance → refused on another (on the same one with one instance).
    pub revocation: Vec<Duration>,
}

/// `/api/me` on 1,000,000 users against 10,000, both on PostgreSQL.
#[derive(Clone, Debug)]
pub struct MillionOnPostgres {
    /// Users of the big database.
    pub users: u64,
    /// Users of the reference.
    pub reference_users: u64,
    /// Best `/api/me` rate on the big database.
    pub big: f64,
    /// Best `/api/me` rate on the reference.
    pub reference: f64,
}

/// What `--postgres` measured.
#[derive(Clone, Debug)]
pub struct ClusterReport {
    /// Instances on PostgreSQL.
    pub instances: usize,
    /// Whether they used Redis.
    pub redis: bool,
    /// Users in each database.
    pub users: u64,
    /// The configurations, SQLite first.
    pub figures: Vec<Figures>,
    /// With `--million`.
    pub million: Option<MillionOnPostgres>,
    /// CPUs and load average at the start.
    pub machine: String,
}

/// Seeds a PostgreSQL database with `users` confirmed users (as [`seed::seed`] does SQLite).
///
/// # Errors
///
/// As [`seed::seed`].
pub async fn seed_postgres(config: &rampart_app::AppConfig, users: u64) -> Result<(), BenchError> {
    let security = rampart_app::connect(config).await?;
    let hash = security.hasher().hash_blocking(PASSWORD)?;
    let rampart::DbPool::Postgres(pool) = security.datastore().pool() else {
        return Err(BenchError::Setup("expected a PostgreSQL database".into()));
    };
    let now = rampart_app::db::naive_utc(time::OffsetDateTime::now_utc());
    let mut tx = pool.begin().await?;
    let role_id: i64 =
        sqlx::query_scalar("SELECT CAST(\"id\" AS BIGINT) FROM \"role\" WHERE \"name\" = 'User'")
            .fetch_one(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO \"user\" (\"email\", \"password\", \"active\", \"fs_uniquifier\", \
         \"confirmed_at\", \"login_count\", \"create_datetime\", \"update_datetime\") \
         SELECT 'user' || i || '@bench.example', $2, TRUE, md5(random()::text || i), $3, 0, $3, $3 \
         FROM generate_series(1, $1) AS i",
    )
    .bind(i64::try_from(users).unwrap_or(i64::MAX))
    .bind(&hash)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO \"roles_users\" (\"user_id\", \"role_id\") SELECT \"id\", $1 FROM \"user\"",
    )
    .bind(role_id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO \"profile\" (\"user_id\") SELECT \"id\" FROM \"user\"")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    sqlx::query("ANALYZE").execute(pool).await?;
    security.datastore().close().await;
    Ok(())
}

/// Spreads `connections` over `targets` (each its share, at least one) and runs `specs` on all
/// at once; the results merged.
fn spread(
    targets: &[Target],
    specs: &[RequestSpec],
    connections: usize,
    sizes: &Sizes,
) -> Result<LoadResult, BenchError> {
    let share = connections.div_ceil(targets.len().max(1)).max(1);
    let running: Vec<_> = targets
        .iter()
        .map(|target| {
            load::start(&LoadPlan {
                addr: target.addr,
                specs: specs.to_vec().into(),
                connections: share,
                threads: sizes.client_threads,
                warmup: sizes.warmup,
                duration: sizes.duration,
                backoff_on_503: None,
                server_pid: None,
            })
        })
        .collect::<Result<_, _>>()?;
    let mut merged = LoadResult {
        window: sizes.duration,
        ..LoadResult::default()
    };
    for run in running {
        let result = run.wait()?;
        merged.ok += result.ok;
        merged.errors += result.errors;
        merged.busy_with_retry_after += result.busy_with_retry_after;
        merged.other_statuses.extend(result.other_statuses);
        merged.latencies_us.extend(result.latencies_us);
    }
    merged.latencies_us.sort_unstable();
    Ok(merged)
}

/// A signed-in user: session cookie and CSRF token (for the logout).
struct Signed {
    cookie: String,
    csrf: String,
}

/// Signs seeded user `i` in on `target`, retrying while the hashing pool is busy.
async fn sign_in(target: &Target, i: u64) -> Result<Signed, BenchError> {
    let spec = RequestSpec::post_json("/login", &json!({"email": email(i), "password": PASSWORD}));
    let mut tries = 0;
    let (status, headers, body) = loop {
        let answer = load::fetch(target.addr, &spec).await?;
        tries += 1;
        if answer.0 != StatusCode::SERVICE_UNAVAILABLE || tries >= 50 {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if status != StatusCode::OK {
        return Err(BenchError::Setup(format!(
            "login of {} answered {status}: {}",
            email(i),
            String::from_utf8_lossy(&body)
        )));
    }
    let cookie = headers
        .get_all(http::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .find(|pair| pair.starts_with("session="))
        .map(str::to_owned)
        .ok_or_else(|| BenchError::Setup("login set no session cookie".into()))?;
    let body: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| BenchError::Setup(format!("login answer is not JSON: {e}")))?;
    let csrf = body
        .pointer("/response/csrf_token")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BenchError::Setup("login answer has no CSRF token".into()))?;
    Ok(Signed { cookie, csrf })
}

fn me(cookie: &str) -> Result<RequestSpec, BenchError> {
    RequestSpec::get("/api/me")
        .header(ACCEPT, "application/json")?
        .header(COOKIE, cookie)
}

/// Logout on `targets[0]`, then the same cookie on the last target until refused, `tries`
/// times: how long each refusal took after the logout's answer.
async fn revocation_delays(
    targets: &[Target],
    users: u64,
    tries: usize,
) -> Result<Vec<Duration>, BenchError> {
    let (first, last) = match (targets.first(), targets.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => return Err(BenchError::Setup("no instance".into())),
    };
    let mut delays = Vec::with_capacity(tries);
    for n in 0..tries {
        let user = 1 + (n as u64 % users.max(1));
        let signed = sign_in(first, user).await?;
        let me = me(&signed.cookie)?;
        // Both instances have the session cached.
        for target in [first, last] {
            for _ in 0..2 {
                let (status, ..) = load::fetch(target.addr, &me).await?;
                if status != StatusCode::OK {
                    return Err(BenchError::Setup(format!("/api/me answered {status}")));
                }
            }
        }
        let logout = RequestSpec::post_json("/logout", &json!({}))
            .header(COOKIE, &signed.cookie)?
            .header(HeaderName::from_static("x-csrf-token"), &signed.csrf)?;
        let (status, _, body) = load::fetch(first.addr, &logout).await?;
        if status != StatusCode::OK {
            return Err(BenchError::Setup(format!(
                "logout answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        let done = Instant::now();
        loop {
            let (status, ..) = load::fetch(last.addr, &me).await?;
            if status == StatusCode::UNAUTHORIZED {
                delays.push(done.elapsed());
                break;
            }
            if done.elapsed() > Duration::from_secs(10) {
                return Err(BenchError::Load(
                    "a logged-out session was still served after 10 s".into(),
                ));
            }
        }
    }
    delays.sort_unstable();
    Ok(delays)
}

/// Runs the four measures on running `targets`.
fn measure(
    name: String,
    targets: &[Target],
    users: u64,
    sizes: &Sizes,
    control: &tokio::runtime::Runtime,
) -> Result<Figures, BenchError> {
    eprintln!("{name}: signing in…");
    let signed: Vec<Signed> = control.block_on(async {
        let mut signed = Vec::new();
        for i in 1..=SIGNED_IN {
            let target = &targets[(i as usize) % targets.len()];
            signed.push(sign_in(target, i).await?);
        }
        Ok::<_, BenchError>(signed)
    })?;
    let me_specs = signed
        .iter()
        .map(|s| me(&s.cookie))
        .collect::<Result<Vec<_>, _>>()?;
    eprintln!("{name}: GET /api/me…");
    let me = spread(targets, &me_specs, sizes.connections, sizes)?;
    std::thread::sleep(sizes.settle);
    eprintln!("{name}: GET /login…");
    let page = RequestSpec::get("/login").header(ACCEPT, "text/html")?;
    let login_page = spread(targets, &[page], sizes.connections, sizes)?;
    std::thread::sleep(sizes.settle);
    eprintln!("{name}: POST /login…");
    let login_specs: Vec<RequestSpec> = (1..=users.min(1_000))
        .map(|i| {
            RequestSpec::post_json("/login", &json!({"email": email(i), "password": PASSWORD}))
        })
        .collect();
    let logins = spread(targets, &login_specs, sizes.login_connections, sizes)?;
    std::thread::sleep(sizes.settle);
    eprintln!("{name}: revocation delay ({REVOCATION_TRIES} logouts)…");
    let revocation = control.block_on(revocation_delays(targets, users, REVOCATION_TRIES))?;
    Ok(Figures {
        name,
        me,
        login_page,
        logins,
        revocation,
    })
}

/// Starts `n` instances with `settings` (each with its own instance folder under `dir`).
fn start_instances(
    binary: &Path,
    dir: &Path,
    settings: &[(String, String)],
    n: usize,
) -> Result<Vec<ServerProcess>, BenchError> {
    (0..n)
        .map(|i| {
            let home = dir.join(format!("instance-{i}"));
            std::fs::create_dir_all(&home)?;
            ServerProcess::spawn(
                crate::server::app_command(binary, &home, settings),
                "/healthz",
            )
        })
        .collect()
}

/// The settings of an instance on `database_url` (PostgreSQL), with `redis` when given.
fn postgres_settings(database_url: &str, redis: Option<&str>) -> Vec<(String, String)> {
    let mut settings = seed::app_settings(Path::new("unused"), &[("DATABASE_URL", database_url)]);
    if let Some(url) = redis {
        settings.push(("REDIS_URL".to_owned(), url.to_owned()));
    }
    settings
}

/// Runs the `--postgres` benchmark.
///
/// # Errors
///
/// [`BenchError`] when a step fails; servers and databases made so far are removed.
pub fn run(
    options: &Options,
    admin_url: &str,
    binary: &Path,
    sizes: &Sizes,
) -> Result<ClusterReport, BenchError> {
    let instances = options.instances.max(1);
    let users = options
        .users
        .unwrap_or(if options.quick { 1_000 } else { 10_000 });
    let machine = format!(
        "{} CPUs, load average {:.2} at the start",
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        crate::report::load_average().unwrap_or(f64::NAN)
    );
    let work = tempfile::Builder::new()
        .prefix("rampart-bench-cluster")
        .tempdir()?;
    let control = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let backend = TestBackend::Postgres(admin_url.to_owned());
    let mut figures = Vec::new();

    // One instance on SQLite.
    let sqlite_dir = work.path().join("sqlite");
    std::fs::create_dir_all(&sqlite_dir)?;
    let sqlite_settings = seed::app_settings(&sqlite_dir.join("bench.db"), &[]);
    let config = seed::app_config(&sqlite_settings, &sqlite_dir)?;
    eprintln!("seeding {} users in SQLite…", thousands(users));
    control.block_on(seed::seed(&config, users))?;
    {
        let app = start_instances(binary, &sqlite_dir, &sqlite_settings, 1)?;
        let targets: Vec<Target> = app.iter().map(|p| p.target).collect();
        figures.push(measure(
            "SQLite, 1 instance".to_owned(),
            &targets,
            users,
            sizes,
            &control,
        )?);
    }

    // PostgreSQL: one instance, then N.
    let database = control
        .block_on(TestDatabase::create(&backend))
        .map_err(|e| BenchError::Setup(format!("PostgreSQL: {e}")))?;
    let pg_settings = postgres_settings(database.url(), options.redis.as_deref());
    let pg_dir = work.path().join("postgres");
    std::fs::create_dir_all(&pg_dir)?;
    let config = seed::app_config(&pg_settings, &pg_dir)?;
    eprintln!("seeding {} users in PostgreSQL…", thousands(users));
    control.block_on(seed_postgres(&config, users))?;
    let redis = if options.redis.is_some() {
        " + Redis"
    } else {
        ""
    };
    let counts = if instances == 1 {
        vec![1]
    } else {
        vec![1, instances]
    };
    for n in counts {
        let apps = start_instances(binary, &pg_dir, &pg_settings, n)?;
        let targets: Vec<Target> = apps.iter().map(|p| p.target).collect();
        let plural = if n == 1 { "" } else { "s" };
        figures.push(measure(
            format!("PostgreSQL{redis}, {n} instance{plural}"),
            &targets,
            users,
            sizes,
            &control,
        )?);
        drop(apps);
        std::thread::sleep(sizes.settle);
    }

    let million = if options.million {
        Some(million_on_postgres(
            options,
            &backend,
            binary,
            work.path(),
            sizes,
            &control,
            &database,
        )?)
    } else {
        None
    };
    drop(database);
    Ok(ClusterReport {
        instances,
        redis: options.redis.is_some(),
        users,
        figures,
        million,
        machine,
    })
}

/// `/api/me` on a fresh database of `--million-users` users against the 10,000 one, both on
/// PostgreSQL, one instance each, alternately (best of [`MILLION_ROUNDS`]).
fn million_on_postgres(
    options: &Options,
    backend: &TestBackend,
    binary: &Path,
    work: &Path,
    sizes: &Sizes,
    control: &tokio::runtime::Runtime,
    reference: &TestDatabase,
) -> Result<MillionOnPostgres, BenchError> {
    let big = control
        .block_on(TestDatabase::create(backend))
        .map_err(|e| BenchError::Setup(format!("PostgreSQL: {e}")))?;
    let big_settings = postgres_settings(big.url(), options.redis.as_deref());
    let big_dir = work.join("million");
    std::fs::create_dir_all(&big_dir)?;
    let config = seed::app_config(&big_settings, &big_dir)?;
    eprintln!(
        "seeding {} users in PostgreSQL…",
        thousands(options.million_users)
    );
    control.block_on(seed_postgres(&config, options.million_users))?;
    let small_settings = postgres_settings(reference.url(), options.redis.as_deref());
    let small_dir = work.join("postgres");
    let small = start_instances(binary, &small_dir, &small_settings, 1)?;
    let large = start_instances(binary, &big_dir, &big_settings, 1)?;
    let rate = |apps: &[ServerProcess]| -> Result<f64, BenchError> {
        let targets: Vec<Target> = apps.iter().map(|p| p.target).collect();
        let signed: Vec<Signed> = control.block_on(async {
            let mut signed = Vec::new();
            for i in 1..=SIGNED_IN {
                signed.push(sign_in(&targets[0], i).await?);
            }
            Ok::<_, BenchError>(signed)
        })?;
        let specs = signed
            .iter()
            .map(|s| me(&s.cookie))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(spread(&targets, &specs, sizes.connections, sizes)?.rate())
    };
    let (mut best_small, mut best_big) = (0.0_f64, 0.0_f64);
    eprintln!("/api/me on both PostgreSQL databases, alternately…");
    for _ in 0..MILLION_ROUNDS {
        std::thread::sleep(sizes.settle);
        best_small = best_small.max(rate(&small)?);
        std::thread::sleep(sizes.settle);
        best_big = best_big.max(rate(&large)?);
    }
    drop(large);
    drop(small);
    drop(big);
    Ok(MillionOnPostgres {
        users: options.million_users,
        reference_users: options.users.unwrap_or(10_000),
        big: best_big,
        reference: best_small,
    })
}

/// Alternating rounds of the million comparison.
const MILLION_ROUNDS: usize = 2;

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let last = sorted.len() - 1;
    let at = ((last as f64) * q).round() as usize;
    sorted[at.min(last)]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

impl ClusterReport {
    /// The figures as a Markdown block (between [`BEGIN`] and [`END`]).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{BEGIN}");
        let _ = writeln!(
            out,
            "{} users per database; {}. Each column is one configuration; the load generator \
             spreads its connections evenly over the instances.\n",
            thousands(self.users),
            self.machine
        );
        let mut header = "| measure |".to_owned();
        let mut rule = "|---|".to_owned();
        for f in &self.figures {
            let _ = write!(header, " {} |", f.name);
            rule.push_str("---:|");
        }
        let _ = writeln!(out, "{header}\n{rule}");
        let row = |out: &mut String, name: &str, cell: &dyn Fn(&Figures) -> String| {
            let mut line = format!("| {name} |");
            for f in &self.figures {
                let _ = write!(line, " {} |", cell(f));
            }
            let _ = writeln!(out, "{line}");
        };
        row(&mut out, "GET /api/me (session), req/s", &|f| {
            format!("{:.0}", f.me.rate())
        });
        row(&mut out, "GET /api/me p99, ms", &|f| {
            format!("{:.2}", f.me.quantile_ms(0.99))
        });
        row(&mut out, "anonymous GET /login, req/s", &|f| {
            format!("{:.0}", f.login_page.rate())
        });
        row(&mut out, "POST /login, logins/s", &|f| {
            format!("{:.1}", f.logins.rate())
        });
        row(
            &mut out,
            &format!("revocation delay p50 / p99, ms ({REVOCATION_TRIES} logouts)"),
            &|f| {
                format!(
                    "{} / {}",
                    ms(quantile(&f.revocation, 0.5)),
                    ms(quantile(&f.revocation, 0.99))
                )
            },
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "Revocation delay: a session signed in and cached on every instance is logged out on \
             the first; the time from the logout's answer to the first refusal (401) of the same \
             cookie on the last instance (on the same instance with one)."
        );
        if let Some(m) = &self.million {
            let ratio = if m.reference > 0.0 {
                m.big / m.reference
            } else {
                f64::NAN
            };
            let _ = writeln!(
                out,
                "\nPostgreSQL, one instance, `GET /api/me` (session), best of {MILLION_ROUNDS} \
                 alternating rounds: {} users {:.0} req/s, {} users {:.0} req/s: **{ratio:.2}×** \
                 (target: within 10%).",
                thousands(m.users),
                m.big,
                thousands(m.reference_users),
                m.reference
            );
        }
        let _ = writeln!(out, "{END}");
        out
    }

    /// Puts the block into `path`, replacing the previous one (the rest is kept).
    ///
    /// # Errors
    ///
    /// [`BenchError::Io`] when the file cannot be read or written.
    pub fn write_markdown(&self, path: &Path) -> Result<(), BenchError> {
        let block = self.markdown();
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let text = match (text.find(BEGIN), text.find(END)) {
            (Some(begin), Some(end)) if end > begin => format!(
                "{}{}{}",
                &text[..begin],
                block.trim_end(),
                &text[end + END.len()..]
            ),
            _ => format!("{}\n\n## Several instances\n\n{block}", text.trim_end()),
        };
        std::fs::write(path, text)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_sorted_delays() {
        let delays: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&delays, 0.5), Duration::from_millis(51));
        assert_eq!(quantile(&delays, 0.99), Duration::from_millis(99));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
