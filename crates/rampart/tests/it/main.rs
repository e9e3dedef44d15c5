//! Integration tests of the framework: the real router and layer, driven like a browser or an SPA
//! would, on SQLite and (with `TEST_DATABASE_URL`) PostgreSQL. One binary, one link step.

mod harness;

mod bodies;
mod cache;
mod change;
mod change_email;
mod change_username;
mod confirm;
mod csrf;
mod flask_security;
mod freshness;
mod guards;
mod i18n;
mod identity;
mod login;
mod openapi;
mod outage;
mod rate_limit;
mod recover;
mod recovery_codes;
mod redirect;
mod register;
mod remember;
mod reply;
mod security_centre;
mod server;
mod smtp;
mod tokens;
mod two_factor;
mod unified_signin;
mod unlock;
mod username_recovery;
mod webauthn;
