//! End-to-end tests of the sample app: the real router over TCP, real SMTP to a sink, SQLite
//! (and PostgreSQL when `TEST_DATABASE_URL` is set), the CLI and the built binary.

#![expect(
    clippy::expect_used,
    reason = "tests: a step that cannot be done must fail the test at once, saying which"
)]

mod account;
mod binary;
mod browser;
mod cli;
mod cluster;
mod faults;
mod flow;
mod guards;
mod harness;
mod metrics;
mod newcomer;
mod oauth;
mod pages;
mod routing;
mod security_centre;
