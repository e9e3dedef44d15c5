//! The test harness: [`TestApp`] (a minimal app on the real router, over a fresh SQLite file and,
//! with `TEST_DATABASE_URL`, a fresh PostgreSQL database), [`TestClient`] (drives the router with
//! `oneshot`, keeps cookies and the CSRF token, never follows redirects) and the helpers that act
//! like a user does (register, follow mailed links, log in).

#![expect(
    clippy::expect_used,
    reason = "test set-up: a step that cannot be done must fail the test at once, saying which"
)]

mod app;
mod backends;
mod client;
mod html;
mod response;
mod routes;

pub(crate) use app::*;
pub(crate) use backends::*;
pub(crate) use client::*;
pub(crate) use html::*;
pub(crate) use response::*;
