//! The peer: a reference app on axum-login + tower-sessions + tower-sessions' SQLite store, from
//! the crate registry, in the shape of axum-login's own SQLite example — a `users` table
//! (`id`, `username`, `password`), a password login form checked with `password-auth` (argon2)
//! on `spawn_blocking`, sessions in SQLite with a signed cookie and an inactivity expiry, one-time
//! messages (`axum-messages`) and one protected HTML page (`GET /`, "Logged in as …").
//!
//! Differences from the example, each stated in `docs/benchmarks.md`: it runs on a SQLite file in
//! WAL mode with `synchronous = NORMAL` (as Rampart does) instead of `:memory:`, its pages are
//! written with `format!` instead of askama templates (the same work: literal text and escaped
//! values), and it installs no log subscriber (the example logs axum-login and tower-sessions at
//! debug level by default, which would only slow it down). Its users are the benchmark's seeded
//! users, each with an argon2id hash of [`PASSWORD`](crate::seed::PASSWORD) made with Rampart's
//! argon2 parameters, so both apps verify logins at equal cost.
//!
//! It runs in its own process (`rampart-bench --serve-peer DATABASE`), measured like the others.

use std::io::Write as _;
use std::path::Path;
use std::str::FromStr as _;

use axum::Router;
use axum::extract::Query;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_login::{AuthManagerLayerBuilder, AuthUser, AuthnBackend, UserId, login_required};
use axum_messages::{Messages, MessagesManagerLayer};
use http::StatusCode;
use serde::Deserialize;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tower_sessions_peer::cookie::Key;
use tower_sessions_peer::{Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

use crate::BenchError;

/// The argon2id parameters of the peer's password hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

/// The peer's user row.
#[derive(Clone, sqlx::FromRow)]
pub struct PeerUser {
    id: i64,
    username: String,
    password: String,
}

impl std::fmt::Debug for PeerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerUser")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl AuthUser for PeerUser {
    type Id = i64;

    fn id(&self) -> i64 {
        self.id
    }

    // As in the example: changing the password ends the user's sessions.
    fn session_auth_hash(&self) -> &[u8] {
        self.password.as_bytes()
    }
}

/// The login form.
#[derive(Clone, Debug, Deserialize)]
pub struct PeerCredentials {
    username: String,
    password: String,
    next: Option<String>,
}

/// Why a peer lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// A query failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// The hashing task failed.
    #[error(transparent)]
    Join(#[from] tokio::task::JoinError),
}

/// The peer's authentication backend: its users table.
#[derive(Clone, Debug)]
pub struct PeerBackend {
    db: SqlitePool,
}

impl AuthnBackend for PeerBackend {
    type User = PeerUser;
    type Credentials = PeerCredentials;
    type Error = PeerError;

    async fn authenticate(&self, creds: PeerCredentials) -> Result<Option<PeerUser>, PeerError> {
        let user: Option<PeerUser> = sqlx::query_as("select * from users where username = ?")
            .bind(&creds.username)
            .fetch_optional(&self.db)
            .await?;
        Ok(tokio::task::spawn_blocking(move || {
            user.filter(|user| {
                password_auth::verify_password(&creds.password, &user.password).is_ok()
            })
        })
        .await?)
    }

    async fn get_user(&self, id: &UserId<Self>) -> Result<Option<PeerUser>, PeerError> {
        Ok(sqlx::query_as("select * from users where id = ?")
            .bind(id)
            .fetch_optional(&self.db)
            .await?)
    }
}

type AuthSession = axum_login::AuthSession<PeerBackend>;

/// `&`, `<`, `>`, `"` and `'` escaped, as a template engine does.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

fn message_list(messages: Messages) -> String {
    let mut items = String::new();
    for message in messages {
        items.push_str("      <li><strong>");
        items.push_str(&escape(&message.to_string()));
        items.push_str("</strong></li>\n");
    }
    items
}

/// `?next=…` of the sign-in page.
#[derive(Debug, Deserialize)]
struct Next {
    next: Option<String>,
}

async fn login_page(messages: Messages, Query(Next { next }): Query<Next>) -> Html<String> {
    let next = next.map_or_else(String::new, |next| {
        format!(
            "      <input type=\"hidden\" name=\"next\" value=\"{}\">\n",
            escape(&next)
        )
    });
    Html(format!(
        "<!doctype html>\n<html>\n  <head>\n    <title>Sign in</title>\n    <style>\n      \
         label {{ display: block; margin-bottom: 5px; }}\n    </style>\n  </head>\n  <body>\n    \
         <ul>\n{}    </ul>\n    <form method=\"post\">\n      <fieldset>\n        \
         <legend>Sign in</legend>\n        <p>\n          <label for=\"username\">Username</label>\n          \
         <input name=\"username\" id=\"username\" autocomplete=\"username\">\n        </p>\n        \
         <p>\n          <label for=\"password\">Password</label>\n          \
         <input name=\"password\" id=\"password\" type=\"password\" \
         autocomplete=\"current-password\">\n        </p>\n      </fieldset>\n      \
         <input type=\"submit\" value=\"Sign in\">\n{next}    </form>\n  </body>\n</html>\n",
        message_list(messages)
    ))
}

async fn login(
    mut auth_session: AuthSession,
    messages: Messages,
    axum::Form(creds): axum::Form<PeerCredentials>,
) -> Response {
    let user = match auth_session.authenticate(creds.clone()).await {
        Ok(Some(user)) => user,
        Ok(None) => {
            messages.error("Invalid credentials");
            let to = creds
                .next
                .map_or_else(|| "/login".to_owned(), |next| format!("/login?next={next}"));
            return Redirect::to(&to).into_response();
        }
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    if auth_session.login(&user).await.is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    messages.success(format!("Successfully logged in as {}", user.username));
    Redirect::to(creds.next.as_deref().unwrap_or("/")).into_response()
}

async fn logout(mut auth_session: AuthSession) -> Response {
    match auth_session.logout().await {
        Ok(_) => Redirect::to("/login").into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn protected(auth_session: AuthSession, messages: Messages) -> Response {
    match auth_session.user {
        Some(user) => Html(format!(
            "<!doctype html>\n<html>\n  <head>\n    <title>Protected</title>\n  </head>\n  \
             <body>\n    <ul>\n{}    </ul>\n    <p>Logged in as {}</p>\n    \
             <a href=\"/logout\">Sign out</a>\n  </body>\n</html>\n",
            message_list(messages),
            escape(&user.username)
        ))
        .into_response(),
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The peer's SQLite pool on `database` (WAL, `synchronous = NORMAL`, like Rampart's).
///
/// # Errors
///
/// [`BenchError::Database`] when the file cannot be opened.
pub async fn pool(database: &Path) -> Result<SqlitePool, BenchError> {
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", database.display()))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    Ok(SqlitePoolOptions::new().connect_with(options).await?)
}

/// Creates the peer's `users` table in `database` and inserts `users` users
/// (`user{i}@bench.example`, all with one argon2id hash of the benchmark's password made with
/// `params`), and the session table. Returns the number of users.
///
/// # Errors
///
/// [`BenchError::Database`] when a statement fails, [`BenchError::Setup`] when hashing fails.
pub async fn seed(database: &Path, users: u64, params: Argon2Params) -> Result<u64, BenchError> {
    let db = pool(database).await?;
    sqlx::query(
        "create table if not exists users \
         (id integer primary key not null, username text not null unique, password text not null)",
    )
    .execute(&db)
    .await?;
    SqliteStore::new(db.clone()).migrate().await?;
    let hash = tokio::task::spawn_blocking(move || hash(crate::seed::PASSWORD, params))
        .await
        .map_err(|e| BenchError::Setup(e.to_string()))??;
    sqlx::query(
        "with recursive seq(i) as (select 1 union all select i + 1 from seq where i < $1) \
         insert into users (username, password) select 'user' || i || '@bench.example', $2 from seq",
    )
    .bind(i64::try_from(users).unwrap_or(i64::MAX))
    .bind(&hash)
    .execute(&db)
    .await?;
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&db)
        .await?;
    let count: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&db)
        .await?;
    db.close().await;
    Ok(u64::try_from(count).unwrap_or(0))
}

/// An argon2id PHC string of `password` with `params` (a fresh random salt).
///
/// # Errors
///
/// [`BenchError::Setup`] for parameters argon2 refuses.
pub fn hash(password: &str, params: Argon2Params) -> Result<String, BenchError> {
    use argon2::password_hash::{PasswordHasher as _, SaltString};
    let fail = |e: &dyn std::fmt::Display| BenchError::Setup(format!("argon2: {e}"));
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| fail(&e))?,
    );
    let mut salt = [0_u8; 16];
    getrandom::fill(&mut salt).map_err(|e| fail(&e))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| fail(&e))?;
    Ok(argon
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| fail(&e))?
        .to_string())
}

/// The peer's router on `db` (session table already made).
pub fn router(db: SqlitePool) -> Router {
    let sessions = SessionManagerLayer::new(SqliteStore::new(db.clone()))
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(1)))
        .with_signed(Key::generate());
    let auth = AuthManagerLayerBuilder::new(PeerBackend { db }, sessions).build();
    Router::new()
        .route("/", get(protected))
        .route_layer(login_required!(PeerBackend, login_url = "/login"))
        .route("/login", get(login_page).post(login))
        .route("/logout", get(logout))
        .layer(MessagesManagerLayer)
        .layer(auth)
}

/// Serves the peer on `database` (seeded by [`seed`]) at `127.0.0.1:0` with a default
/// multi-threaded runtime, printing its address, until stdin closes or SIGTERM; expired sessions
/// are deleted every minute, as in the example.
///
/// # Errors
///
/// [`BenchError::Io`] when it cannot listen, [`BenchError::Database`] when the database cannot
/// be opened.
pub fn serve(database: &Path) -> Result<(), BenchError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let db = pool(database).await?;
        let store = SqliteStore::new(db.clone());
        let deletion = tokio::task::spawn(
            tower_sessions_peer::ExpiredDeletion::continuously_delete_expired(
                store,
                tokio::time::Duration::from_secs(60),
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "axum-login peer on http://{addr}/")?;
            out.flush()?;
        }
        axum::serve(listener, router(db))
            .with_graceful_shutdown(crate::server::stop_signal())
            .await?;
        deletion.abort();
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"
        );
    }

    #[test]
    fn hashes_carry_the_parameters_and_verify_with_password_auth() {
        let params = Argon2Params {
            memory_kib: 1024,
            iterations: 2,
            parallelism: 2,
        };
        let hash = hash("secret", params).expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=2,p=2$"), "{hash}");
        assert!(password_auth::verify_password("secret", &hash).is_ok());
        assert!(password_auth::verify_password("other", &hash).is_err());
    }
}
