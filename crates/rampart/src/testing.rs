//! Test support (feature `testing`): a local SMTP sink that receives and decodes mails.

pub mod smtp_sink;
