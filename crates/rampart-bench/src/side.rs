//! The side-by-side comparison of issue 16: bare axum, the axum-login peer ([`crate::peer`]) and
//! Rampart with its cache on and off (`SECURITY_AUTH_CACHE_TTL=0`), on the same paths — an
//! authenticated read by session cookie (Rampart's `/api/me` and the sample app's protected home
//! page; the peer's protected page), the anonymous sign-in page, logins at equal argon2
//! parameters — and the peak memory of each under a login flood.

use std::fmt::Write as _;

use http::StatusCode;
use http::header::{ACCEPT, COOKIE};

use crate::BenchError;
use crate::load::{self, RequestSpec};
use crate::report::{Check, mib, ratio};
use crate::seed::{PASSWORD, email};
use crate::server::Target;
use crate::suite::{Credentials, Measured, Sizes, plan};

/// Signs seeded users `users` in to the peer (`POST /login`, form, 303) and keeps their session
/// cookies (`id=…`).
///
/// # Errors
///
/// [`BenchError::Setup`] when a login is refused or sets no cookie.
pub async fn sign_in_peer(peer: &Target, users: &[u64]) -> Result<Credentials, BenchError> {
    let mut credentials = Credentials::default();
    for &i in users {
        let (status, headers, _) = load::fetch(peer.addr, &peer_login(i)).await?;
        if status != StatusCode::SEE_OTHER {
            return Err(BenchError::Setup(format!(
                "peer login of {} answered {status}",
                email(i)
            )));
        }
        let cookie = headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.starts_with("id="))
            .map(str::to_owned)
            .ok_or_else(|| BenchError::Setup("peer login set no session cookie".into()))?;
        // The first page shows (and so removes) the "logged in" message: a write, done here.
        let page = RequestSpec::get("/").header(COOKIE, &cookie)?;
        let (status, _, _) = load::fetch(peer.addr, &page).await?;
        if status != StatusCode::OK {
            return Err(BenchError::Setup(format!("peer's page answered {status}")));
        }
        credentials.cookies.push(cookie);
    }
    Ok(credentials)
}

/// The peer's `POST /login` (form) for seeded user `i`: 303 to `/`.
fn peer_login(i: u64) -> RequestSpec {
    let body = format!(
        "username={}&password={}",
        email(i).replace('@', "%40"),
        PASSWORD.replace(' ', "+")
    );
    RequestSpec::post_form("/login", body).expecting(StatusCode::SEE_OTHER)
}

/// `GET path` as a browser, with each session cookie in turn (one per connection).
///
/// # Errors
///
/// As [`load::run`].
pub fn read(
    target: &Target,
    path: &str,
    credentials: &Credentials,
    accept: &str,
    sizes: &Sizes,
    name: &str,
) -> Result<Measured, BenchError> {
    let specs = credentials
        .cookies
        .iter()
        .map(|cookie| {
            RequestSpec::get(path)
                .header(ACCEPT, accept)?
                .header(COOKIE, cookie)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let result = load::run(&plan(target, specs, sizes.connections, sizes))?;
    Ok(Measured::new(name, sizes.connections, result, target))
}

/// Anonymous `GET path` (HTML).
///
/// # Errors
///
/// As [`load::run`].
pub fn anonymous(
    target: &Target,
    path: &str,
    sizes: &Sizes,
    name: &str,
) -> Result<Measured, BenchError> {
    let spec = RequestSpec::get(path).header(ACCEPT, "text/html")?;
    let result = load::run(&plan(target, vec![spec], sizes.connections, sizes))?;
    Ok(Measured::new(name, sizes.connections, result, target))
}

/// The peer's logins (`login_connections`), then its flood (`flood_connections`, no backoff: it
/// never answers 503).
///
/// # Errors
///
/// As [`load::run`].
pub fn peer_logins(
    peer: &Target,
    users: &[u64],
    sizes: &Sizes,
) -> Result<(Measured, Measured), BenchError> {
    let specs: Vec<RequestSpec> = users.iter().map(|&i| peer_login(i)).collect();
    let login = load::run(&plan(peer, specs.clone(), sizes.login_connections, sizes))?;
    let login = Measured::new(
        "peer POST /login (form, valid password)",
        sizes.login_connections,
        login,
        peer,
    );
    std::thread::sleep(sizes.settle);
    let flood = load::run(&plan(peer, specs, sizes.flood_connections, sizes))?;
    let flood = Measured::new(
        "peer POST /login flood",
        sizes.flood_connections,
        flood,
        peer,
    );
    Ok((login, flood))
}

/// Everything the comparison measured.
#[derive(Clone, Debug)]
pub struct SideBySide {
    /// Rampart, cache on: the sample app's home page by session cookie.
    pub home: Measured,
    /// Rampart, cache off: `/api/me` by session cookie.
    pub uncached_me: Measured,
    /// Rampart, cache off: the home page by session cookie.
    pub uncached_home: Measured,
    /// The peer: its protected page by session cookie.
    pub peer_page: Measured,
    /// The peer: anonymous `GET /login`.
    pub peer_login_page: Measured,
    /// The peer: logins.
    pub peer_login: Measured,
    /// The peer: the login flood.
    pub peer_flood: Measured,
    /// The peer's peak resident memory (after the flood), KiB.
    pub peer_peak_rss_kib: Option<u64>,
    /// The peer's resident memory after start-up, KiB.
    pub peer_idle_rss_kib: Option<u64>,
}

/// What the table compares with: the bare handler and Rampart's own measurements of the run.
#[derive(Clone, Copy, Debug)]
pub struct Baseline<'a> {
    /// Bare axum.
    pub bare: &'a Measured,
    /// Rampart, cache on: `/api/me` by session cookie.
    pub me: &'a Measured,
    /// Rampart: anonymous `GET /login`.
    pub login_page: &'a Measured,
    /// Rampart: logins.
    pub login: &'a Measured,
    /// Rampart's peak resident memory over the run (its flood included), KiB.
    pub peak_rss_kib: Option<u64>,
}

fn rate(m: &Measured) -> String {
    let errors = m.result.errors + m.result.other_statuses.iter().map(|(_, n)| n).sum::<u64>();
    let cpu = m
        .result
        .server_cpu_us_per_answer()
        .map_or_else(String::new, |us| format!(" ({us:.1} µs)"));
    let mark = if errors > 0 {
        format!(", {errors} other answers")
    } else {
        String::new()
    };
    format!("{:.0}{cpu}{mark}", m.result.rate())
}

impl SideBySide {
    /// The table: req/s (server CPU µs per answer) per path and app.
    pub fn markdown(&self, base: &Baseline<'_>) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| path | bare axum | axum-login peer | Rampart, cache on | Rampart, cache off |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| authenticated read, session cookie: `/api/me` (JSON) | {} | {} ¹ | {} | {} |",
            rate(base.bare),
            rate(&self.peer_page),
            rate(base.me),
            rate(&self.uncached_me)
        );
        let _ = writeln!(
            out,
            "| authenticated read, session cookie: protected HTML page | | {} | {} | {} |",
            rate(&self.peer_page),
            rate(&self.home),
            rate(&self.uncached_home)
        );
        let _ = writeln!(
            out,
            "| anonymous `GET /login` | | {} | {} | |",
            rate(&self.peer_login_page),
            rate(base.login_page)
        );
        let _ = writeln!(
            out,
            "| `POST /login`, equal argon2 parameters, {} connections | | {} | {} | |",
            self.peer_login.connections,
            rate(&self.peer_login),
            rate(base.login)
        );
        let _ = writeln!(
            out,
            "| peak memory (MiB), login flood of {} connections | | {} | {} | |",
            self.peer_flood.connections,
            mib(self.peer_peak_rss_kib),
            mib(base.peak_rss_kib)
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "req/s, and in brackets the server's CPU time per answer. ¹ The peer has no JSON \
             endpoint: its protected page stands in for it. The peer's flood: {} logins/s, \
             resident memory idle {} MiB.",
            format_args!("{:.1}", self.peer_flood.result.rate()),
            mib(self.peer_idle_rss_kib)
        );
        out
    }

    /// The targets of issue 16, checked.
    pub fn checks(&self, base: &Baseline<'_>) -> Vec<Check> {
        let bare = base.bare.result.rate();
        let peer = self.peer_page.result.rate();
        let mut checks = Vec::new();
        let mut at_least = |target: &str, value: f64, min: f64| {
            checks.push(Check {
                target: target.to_owned(),
                measured: format!("{value:.2}"),
                met: Some(value >= min),
            });
        };
        at_least(
            "uncached /api/me (session) ≥ 1.0× the peer's page",
            ratio(self.uncached_me.result.rate(), peer),
            1.0,
        );
        at_least(
            "uncached home page (session) ≥ 1.0× the peer's page",
            ratio(self.uncached_home.result.rate(), peer),
            1.0,
        );
        at_least(
            "cached /api/me (session) ≥ 0.45× bare",
            ratio(base.me.result.rate(), bare),
            0.45,
        );
        at_least(
            "anonymous GET /login ≥ 0.35× bare",
            ratio(base.login_page.result.rate(), bare),
            0.35,
        );
        at_least(
            "POST /login ≥ 0.95× the peer (equal argon2 parameters)",
            ratio(base.login.result.rate(), self.peer_login.result.rate()),
            0.95,
        );
        let errors: u64 = [
            &self.home,
            &self.uncached_me,
            &self.uncached_home,
            base.me,
            base.login_page,
            base.login,
        ]
        .iter()
        .map(|m| m.result.errors + m.result.other_statuses.iter().map(|(_, n)| n).sum::<u64>())
        .sum();
        checks.push(Check {
            target: "no error answers from Rampart on these paths".to_owned(),
            measured: errors.to_string(),
            met: Some(errors == 0),
        });
        checks
    }
}
