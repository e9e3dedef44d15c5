//! Languages: `BABEL_DEFAULT_LOCALE`, `SECURITY_I18N_DIRNAME`, `SECURITY_I18N_DOMAIN`.

use std::path::PathBuf;

/// Languages of messages, pages and mails (see `docs/i18n.md`).
#[derive(Debug, Clone)]
pub struct I18nConfig {
    /// `BABEL_DEFAULT_LOCALE` (Flask-Babel's name): the language when a request's
    /// `Accept-Language` names none of the catalogs', and outside requests (`en`).
    pub default_locale: String,
    /// `SECURITY_I18N_DIRNAME`: a folder of the app's own catalogs,
    /// `<dir>/<lang>/<domain>.ftl`, whose entries win over the built-in ones (none).
    pub dirname: Option<PathBuf>,
    /// `SECURITY_I18N_DOMAIN`: the catalogs' file name without `.ftl` (`security`).
    pub domain: String,
}

impl Default for I18nConfig {
    fn default() -> Self {
        Self {
            default_locale: "en".into(),
            dirname: None,
            domain: "security".into(),
        }
    }
}
