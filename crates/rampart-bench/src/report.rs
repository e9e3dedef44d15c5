//! The results: a table for the terminal, the same in Markdown for `docs/benchmarks.md`, and
//! the targets checked against them.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::BenchError;
use crate::suite::{AppScenarios, HashRate, Measured, Sizes};

/// Start of the generated block in `docs/benchmarks.md`.
pub const BEGIN: &str = "<!-- rampart-bench:begin -->";
/// End of the generated block.
pub const END: &str = "<!-- rampart-bench:end -->";

/// The machine the run was on.
#[derive(Clone, Debug, Default)]
pub struct Machine {
    /// CPUs available to this process.
    pub cpus: usize,
    /// The CPU model, from `/proc/cpuinfo`.
    pub model: String,
    /// The 1-minute load average before the run.
    pub load_before: Option<f64>,
    /// The 1-minute load average after the run.
    pub load_after: Option<f64>,
}

impl Machine {
    /// Reads the CPU count, model and current load.
    pub fn probe() -> Self {
        let model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".to_owned());
        Self {
            cpus: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            model,
            load_before: load_average(),
            load_after: None,
        }
    }
}

/// The 1-minute load average.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// `/api/me` on the big database.
#[derive(Clone, Debug)]
pub struct Million {
    /// Users in it.
    pub users: u64,
    /// Time to insert them.
    pub seeded_in: Duration,
    /// Start-up to first answer on it.
    pub startup: Duration,
    /// Session cookie (best of the rounds).
    pub me_session: Measured,
    /// Auth token (best of the rounds).
    pub me_token: Measured,
    /// The same on the main database, measured alternately with the big one (best of the rounds).
    pub reference_session: Measured,
    /// The same with an auth token.
    pub reference_token: Measured,
    /// Rounds run on each database.
    pub rounds: usize,
}

/// Everything one run measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// `full` or `quick`.
    pub mode: &'static str,
    /// Where it ran.
    pub machine: Machine,
    /// Users in the main database.
    pub users: u64,
    /// Time to insert them.
    pub seeded_in: Duration,
    /// Load sizes.
    pub sizes: Sizes,
    /// The argon2 parameters (`m=…,t=…,p=…`).
    pub argon2: String,
    /// Raw verification rate in-process.
    pub hash_rate: HashRate,
    /// The app's hashing pool (`max_concurrent`, `max_queued`).
    pub pool: (usize, usize),
    /// The bare handler.
    pub bare: Measured,
    /// The app.
    pub app: AppScenarios,
    /// Start-up to first answer, each start (existing database).
    pub startups: Vec<Duration>,
    /// Resident memory after start-up and one answer, in KiB.
    pub idle_rss_kib: Option<u64>,
    /// Peak resident memory over the run, in KiB.
    pub peak_rss_kib: Option<u64>,
    /// The 1M-user database, when run.
    pub million: Option<Million>,
    /// The side-by-side comparison with the axum-login peer (issue 16), unless `--no-peer`.
    pub side: Option<crate::side::SideBySide>,
}

/// One target of the issue, checked.
#[derive(Clone, Debug)]
pub struct Check {
    /// What is required.
    pub target: String,
    /// What was measured.
    pub measured: String,
    /// Met, missed, or not measured (`None`).
    pub met: Option<bool>,
}

/// `a / b`, NaN when `b` is not positive.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { f64::NAN }
}

/// KiB as MiB with one decimal, `–` when unknown.
pub fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "–".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// Non-expected answers, e.g. `503×40 (40 with Retry-After)`.
fn other_answers(m: &Measured) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut statuses = m.result.other_statuses.clone();
    statuses.sort_unstable();
    for (code, n) in statuses {
        if code == 503 {
            parts.push(format!(
                "503×{n} ({} with Retry-After)",
                m.result.busy_with_retry_after
            ));
        } else {
            parts.push(format!("{code}×{n}"));
        }
    }
    if m.result.errors > 0 {
        parts.push(format!("{} connection errors", m.result.errors));
    }
    if parts.is_empty() {
        "–".to_owned()
    } else {
        parts.join(", ")
    }
}

struct Row {
    name: String,
    connections: String,
    cpu: String,
    rate: f64,
    p50: String,
    p99: String,
    ratio: String,
    rss: String,
    other: String,
}

impl Row {
    fn of(m: &Measured, ratio_text: String) -> Self {
        Self {
            name: m.name.clone(),
            connections: m.connections.to_string(),
            cpu: m
                .result
                .server_cpu_us_per_answer()
                .map_or_else(|| "–".to_owned(), |us| format!("{us:.1}")),
            rate: m.result.rate(),
            p50: format!("{:.2}", m.result.quantile_ms(0.5)),
            p99: format!("{:.2}", m.result.quantile_ms(0.99)),
            ratio: ratio_text,
            rss: mib(m.rss_after_kib),
            other: other_answers(m),
        }
    }
}

impl Report {
    fn bare_rate(&self) -> f64 {
        self.bare.result.rate()
    }

    /// What the side-by-side comparison is measured against.
    fn baseline(&self) -> crate::side::Baseline<'_> {
        crate::side::Baseline {
            bare: &self.bare,
            me: &self.app.me_session,
            login_page: &self.app.login_page,
            login: &self.app.login,
            peak_rss_kib: self.peak_rss_kib,
        }
    }

    /// The side-by-side table and its checks (issue 16), as Markdown, when it was run.
    fn side_markdown(&self) -> Option<String> {
        let side = self.side.as_ref()?;
        let base = self.baseline();
        let mut out = side.markdown(&base);
        let _ = writeln!(out);
        let _ = writeln!(out, "| target (issue 16) | measured | met |");
        let _ = writeln!(out, "|---|---|---|");
        for c in side.checks(&base) {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                c.target,
                c.measured,
                met_word(c.met)
            );
        }
        Some(out)
    }

    fn rows(&self) -> Vec<Row> {
        let bare = self.bare_rate();
        let vs_bare = |m: &Measured| format!("{:.2}× bare", ratio(m.result.rate(), bare));
        let app = &self.app;
        let mut rows = vec![
            Row::of(&self.bare, "1.00 (ceiling)".to_owned()),
            Row::of(&app.login_page, vs_bare(&app.login_page)),
            Row::of(&app.me_session, vs_bare(&app.me_session)),
            Row::of(&app.me_token, vs_bare(&app.me_token)),
            Row::of(
                &app.login,
                format!(
                    "{:.2}× raw argon2",
                    ratio(app.login.result.rate(), self.hash_rate.all_threads)
                ),
            ),
            Row {
                name: format!(
                    "raw argon2id verify in-process ({} threads; 1 thread: {:.1}/s)",
                    self.hash_rate.threads, self.hash_rate.one_thread
                ),
                connections: "–".to_owned(),
                cpu: format!("{:.0}", 1e6 / self.hash_rate.one_thread.max(1e-9)),
                rate: self.hash_rate.all_threads,
                p50: "–".to_owned(),
                p99: "–".to_owned(),
                ratio: "reference".to_owned(),
                rss: "–".to_owned(),
                other: "–".to_owned(),
            },
            Row::of(
                &app.flood_me,
                format!(
                    "{:.2}× undisturbed",
                    ratio(app.flood_me.result.rate(), app.me_session.result.rate())
                ),
            ),
            Row::of(
                &app.flood_logins,
                format!(
                    "{:.2}× raw argon2",
                    ratio(app.flood_logins.result.rate(), self.hash_rate.all_threads)
                ),
            ),
        ];
        if let Some(side) = &self.side {
            let peer = side.peer_page.result.rate();
            let vs_peer =
                |m: &Measured| format!("{:.2}× peer's page", ratio(m.result.rate(), peer));
            rows.push(Row::of(&side.home, vs_bare(&side.home)));
            rows.push(Row::of(&side.uncached_me, vs_peer(&side.uncached_me)));
            rows.push(Row::of(&side.uncached_home, vs_peer(&side.uncached_home)));
            rows.push(Row::of(&side.peer_page, vs_bare(&side.peer_page)));
            rows.push(Row::of(
                &side.peer_login_page,
                vs_bare(&side.peer_login_page),
            ));
            rows.push(Row::of(&side.peer_login, "reference".to_owned()));
            rows.push(Row::of(&side.peer_flood, "–".to_owned()));
        }
        if let Some(million) = &self.million {
            let mut reference = |m: &Measured| {
                let mut m = m.clone();
                m.name = format!("{}, {} users (alternating)", m.name, thousands(self.users));
                rows.push(Row::of(&m, "reference".to_owned()));
            };
            reference(&million.reference_session);
            reference(&million.reference_token);
            for (big, small) in [
                (&million.me_session, &million.reference_session),
                (&million.me_token, &million.reference_token),
            ] {
                rows.push(Row::of(
                    big,
                    format!(
                        "{:.2}× {} users",
                        ratio(big.result.rate(), small.result.rate()),
                        thousands(self.users)
                    ),
                ));
            }
        }
        rows
    }

    /// The targets, checked against this run.
    pub fn checks(&self) -> Vec<Check> {
        let bare = self.bare_rate();
        let app = &self.app;
        let mut checks = Vec::new();
        let mut at_least = |target: &str, value: f64, min: f64| {
            checks.push(Check {
                target: target.to_owned(),
                measured: format!("{value:.2}"),
                met: Some(value >= min),
            });
        };
        at_least(
            "GET /api/me (session) ≥ 0.35× bare",
            ratio(app.me_session.result.rate(), bare),
            0.35,
        );
        at_least(
            "GET /api/me (token) ≥ 0.35× bare",
            ratio(app.me_token.result.rate(), bare),
            0.35,
        );
        at_least(
            "anonymous GET /login ≥ 0.20× bare",
            ratio(app.login_page.result.rate(), bare),
            0.20,
        );
        at_least(
            "POST /login ≥ 0.9× raw argon2 (all CPUs)",
            ratio(app.login.result.rate(), self.hash_rate.all_threads),
            0.9,
        );
        at_least(
            "during the flood, /api/me ≥ 0.30× undisturbed",
            ratio(app.flood_me.result.rate(), app.me_session.result.rate()),
            0.30,
        );
        let p99 = app.flood_me.result.quantile_ms(0.99);
        checks.push(Check {
            target: "during the flood, /api/me p99 < 25 ms".to_owned(),
            measured: format!("{p99:.1} ms"),
            met: Some(p99 < 25.0),
        });
        let busy = app.flood_logins.result.count_of(503);
        let with_retry = app.flood_logins.result.busy_with_retry_after;
        checks.push(Check {
            target: "logins beyond the hashing queue get 503 + Retry-After".to_owned(),
            measured: format!("{busy} × 503, {with_retry} with Retry-After"),
            met: (busy > 0).then_some(with_retry == busy),
        });
        let idle = self.idle_rss_kib.map(|k| k as f64 / 1024.0);
        checks.push(Check {
            target: "idle memory < 30 MiB".to_owned(),
            measured: idle.map_or_else(|| "–".to_owned(), |m| format!("{m:.1} MiB")),
            met: idle.map(|m| m < 30.0),
        });
        let startup = ms(median(&self.startups));
        checks.push(Check {
            target: "start-up to first answer < 150 ms (median)".to_owned(),
            measured: format!("{startup:.0} ms"),
            met: (!self.startups.is_empty()).then_some(startup < 150.0),
        });
        match &self.million {
            Some(million) => {
                for (name, big, small) in [
                    ("session", &million.me_session, &million.reference_session),
                    ("token", &million.me_token, &million.reference_token),
                ] {
                    let r = ratio(big.result.rate(), small.result.rate());
                    checks.push(Check {
                        target: format!(
                            "GET /api/me ({name}) with {} users within 10% of {}",
                            thousands(million.users),
                            thousands(self.users)
                        ),
                        measured: format!("{r:.2}×"),
                        met: Some(r >= 0.9),
                    });
                }
            }
            None => checks.push(Check {
                target: "GET /api/me with 1,000,000 users within 10% of 10,000".to_owned(),
                measured: "not run (use --million)".to_owned(),
                met: None,
            }),
        }
        checks
    }

    fn context_lines(&self) -> Vec<String> {
        let m = &self.machine;
        let load = |l: Option<f64>| l.map_or_else(|| "?".to_owned(), |l| format!("{l:.2}"));
        let s = &self.sizes;
        let mut lines = vec![
            format!(
                "Mode: {}. Machine: {} CPUs ({}), load average {} before, {} after (above ~0.5 \
                 something else was running: numbers are noisy).",
                self.mode,
                m.cpus,
                m.model,
                load(m.load_before),
                load(m.load_after)
            ),
            format!(
                "Database: SQLite (WAL), {} confirmed users, seeded in {:.1} s. argon2id {}; \
                 hashing pool {} at once, queue {}.",
                thousands(self.users),
                self.seeded_in.as_secs_f64(),
                self.argon2,
                self.pool.0,
                self.pool.1
            ),
            format!(
                "Each scenario: {:.1} s warm-up, then {:.1} s measured; {} keep-alive connections \
                 ({} for POST /login, {} flooding logins that pause {} ms after a 503), {} client \
                 thread(s) on the same machine.",
                s.warmup.as_secs_f64(),
                s.duration.as_secs_f64(),
                s.connections,
                s.login_connections,
                s.flood_connections,
                s.flood_backoff.as_millis(),
                s.client_threads
            ),
            format!(
                "Start-up to first answer (existing database): {} ms; resident memory idle {} MiB, \
                 peak {} MiB.",
                self.startups
                    .iter()
                    .map(|d| format!("{:.0}", ms(*d)))
                    .collect::<Vec<_>>()
                    .join(" / "),
                mib(self.idle_rss_kib),
                mib(self.peak_rss_kib)
            ),
        ];
        if let Some(million) = &self.million {
            lines.push(format!(
                "{} users seeded in {:.1} s; start-up on that database {:.0} ms. /api/me was then \
                 measured {} times on each database, alternately (both apps running), and the \
                 best run of each is shown.",
                thousands(million.users),
                million.seeded_in.as_secs_f64(),
                ms(million.startup),
                million.rounds
            ));
        }
        lines
    }

    /// The results as a plain-text table.
    pub fn table(&self) -> String {
        let rows = self.rows();
        let mut out = String::new();
        for line in self.context_lines() {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<62} {:>5} {:>10} {:>8} {:>8} {:>22} {:>8} {:>8}  other answers",
            "scenario", "conns", "req/s", "p50 ms", "p99 ms", "ratio", "CPU µs", "RSS MiB"
        );
        for r in &rows {
            let _ = writeln!(
                out,
                "{:<62} {:>5} {:>10.1} {:>8} {:>8} {:>22} {:>8} {:>8}  {}",
                r.name, r.connections, r.rate, r.p50, r.p99, r.ratio, r.cpu, r.rss, r.other
            );
        }
        if let Some(side) = self.side_markdown() {
            let _ = writeln!(out);
            let _ = write!(out, "{side}");
        }
        let _ = writeln!(out);
        for c in self.checks() {
            let mark = match c.met {
                Some(true) => "met   ",
                Some(false) => "MISSED",
                None => "–     ",
            };
            let _ = writeln!(out, "{mark} {:<58} {}", c.target, c.measured);
        }
        out
    }

    /// The results as Markdown (the generated block of `docs/benchmarks.md`).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{BEGIN}");
        let _ = writeln!(
            out,
            "<!-- Written by `cargo run --release -p rampart-bench`; edit outside these markers. -->"
        );
        let _ = writeln!(out);
        for line in self.context_lines() {
            let _ = writeln!(out, "{line}");
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "| scenario | conns | req/s | p50 ms | p99 ms | ratio | server CPU µs/req | RSS after (MiB) | other answers |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---:|---:|---|");
        for r in self.rows() {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} |",
                r.name, r.connections, r.rate, r.p50, r.p99, r.ratio, r.cpu, r.rss, r.other
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "| target (issue 4) | measured | met |");
        let _ = writeln!(out, "|---|---|---|");
        for c in self.checks() {
            let _ = writeln!(
                out,
                "| {} | {} | {} |",
                c.target,
                c.measured,
                met_word(c.met)
            );
        }
        if let Some(side) = self.side_markdown() {
            let _ = writeln!(out);
            let _ = writeln!(out, "### Side by side with the axum-login peer");
            let _ = writeln!(out);
            let _ = write!(out, "{side}");
        }
        let _ = writeln!(out, "{END}");
        out
    }

    /// Puts the Markdown block into `path`, replacing the previous one (the rest of the file is
    /// kept); creates the file when missing.
    ///
    /// # Errors
    ///
    /// [`BenchError::Io`] when the file cannot be read or written.
    pub fn write_markdown(&self, path: &Path) -> Result<(), BenchError> {
        let block = self.markdown();
        let existing = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let text = match existing {
            Some(text) => match (text.find(BEGIN), text.find(END)) {
                (Some(begin), Some(end)) if end > begin => {
                    format!(
                        "{}{}{}",
                        &text[..begin],
                        block.trim_end(),
                        &text[end + END.len()..]
                    )
                }
                _ => format!("{}\n\n## Latest run\n\n{block}", text.trim_end()),
            },
            None => format!("# Benchmarks\n\n## Latest run\n\n{block}"),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, text)?;
        Ok(())
    }
}

fn met_word(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "not measured",
    }
}

/// `10000` → `10,000`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(10_000), "10,000");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
