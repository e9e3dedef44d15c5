//! Test support (feature `testing`): throwaway SQLite and PostgreSQL databases, and a local SMTP
//! sink that receives and decodes mails.

pub mod database;
pub mod smtp_sink;

pub use database::{TestBackend, TestDatabase, TestDatabaseError};
