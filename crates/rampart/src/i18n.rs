//! Languages: Fluent catalogs of the messages (`SECURITY_MSG_*` keys), the pages and the mails,
//! compiled once per language, and the language of the request being answered.
//!
//! Built in: English, German, French and Spanish (`i18n/<lang>/security.ftl`, compiled into the
//! binary). An app adds or rewords texts with its own catalogs in `SECURITY_I18N_DIRNAME`
//! (`<dir>/<lang>/<SECURITY_I18N_DOMAIN>.ftl`): their entries win over the built-in ones, and a
//! language only the app has becomes available too. The security layer picks one language per
//! request from `Accept-Language` (q-values honoured, `de-AT` falls back to `de`), else
//! `BABEL_DEFAULT_LOCALE` (`en`), and runs the request inside [`scope`]; messages and templates
//! read it from there. Outside a request the default language applies.

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use unic_langid::LanguageIdentifier;

/// The built-in catalogs: (language tag, Fluent source).
const BUILTIN: &[(&str, &str)] = &[
    ("en", include_str!("../i18n/en/security.ftl")),
    ("de", include_str!("../i18n/de/security.ftl")),
    ("fr", include_str!("../i18n/fr/security.ftl")),
    ("es", include_str!("../i18n/es/security.ftl")),
];

/// Why the catalogs could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum I18nError {
    /// A catalog of the app's folder could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A catalog of the app's folder is not valid Fluent.
    #[error("{path} is not a valid Fluent catalog: {detail}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's first complaint.
        detail: String,
    },
    /// A folder name or the default language is not a language tag.
    #[error("{0:?} is not a language tag")]
    BadTag(String),
    /// No catalog for the default language.
    #[error("no catalog for the default language {0:?}")]
    NoDefault(String),
}

/// One language's compiled catalog.
pub struct Catalog {
    tag: String,
    langid: LanguageIdentifier,
    bundle: FluentBundle<FluentResource>,
    /// The built-in English messages with no app rewording: [`crate::Messages`] answers them
    /// from its table without going through Fluent.
    builtin_english: bool,
    /// Whether this is the default language (`SECURITY_MSG_*` overrides are in it).
    default: bool,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

impl Catalog {
    fn new(tag: &str, langid: LanguageIdentifier) -> Self {
        let mut bundle = FluentBundle::new_concurrent(vec![langid.clone()]);
        // No Unicode isolation marks around placeables: texts go into JSON, mails and pages.
        bundle.set_use_isolating(false);
        Self {
            tag: tag.to_owned(),
            langid,
            bundle,
            builtin_english: false,
            default: false,
        }
    }

    /// The language tag (`de`).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    /// Whether this is the default language.
    pub fn is_default(&self) -> bool {
        self.default
    }

    /// Whether messages may be answered from the built-in English table.
    pub(crate) fn is_builtin_english(&self) -> bool {
        self.builtin_english
    }

    /// Whether the catalog has an entry `id`.
    pub fn has(&self, id: &str) -> bool {
        self.bundle.has_message(id)
    }

    /// Entry `id` with its `{ $name }` placeables filled from `args`, if the catalog has it.
    pub fn format(&self, id: &str, args: &[(&str, &str)]) -> Option<String> {
        let pattern = self.bundle.get_message(id)?.value()?;
        let fluent_args = (!args.is_empty()).then(|| {
            let mut fa = FluentArgs::with_capacity(args.len());
            for (name, value) in args {
                // Counts as numbers, so plural forms (`[one]`) can select on them; codes with a
                // leading zero and long digit strings stay text, as written.
                let count = value.len() <= 9
                    && value.bytes().all(|b| b.is_ascii_digit())
                    && (*value == "0" || !value.starts_with('0'));
                let value = match value.parse::<u32>() {
                    Ok(n) if count => FluentValue::from(n),
                    _ => FluentValue::from(*value),
                };
                fa.set(*name, value);
            }
            fa
        });
        let mut errors = Vec::new();
        let text = self
            .bundle
            .format_pattern(pattern, fluent_args.as_ref(), &mut errors);
        Some(match text {
            Cow::Borrowed(s) => s.to_owned(),
            Cow::Owned(s) => s,
        })
    }
}

/// Every language's catalog, compiled once and shared; and which is the default.
pub struct Catalogs {
    list: Vec<Arc<Catalog>>,
    langids: Vec<LanguageIdentifier>,
    default: usize,
}

impl std::fmt::Debug for Catalogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.list.iter().map(|c| c.tag()))
            .finish()
    }
}

static BUILTIN_CATALOGS: LazyLock<Arc<Catalogs>> = LazyLock::new(|| {
    Arc::new(
        Catalogs::load(None, "security", "en").unwrap_or_else(|_| Catalogs {
            list: Vec::new(),
            langids: Vec::new(),
            default: 0,
        }),
    )
});

impl Catalogs {
    /// The built-in catalogs with English as the default (shared, compiled once per process).
    pub fn builtin() -> Arc<Catalogs> {
        BUILTIN_CATALOGS.clone()
    }

    /// The built-in catalogs, each extended (and overridden entry by entry) by the app's
    /// `<dir>/<lang>/<domain>.ftl`, with `default` as the default language.
    pub fn load(dir: Option<&Path>, domain: &str, default: &str) -> Result<Self, I18nError> {
        Self::load_with(&[], dir, domain, default)
    }

    /// [`Catalogs::load`] with catalogs compiled into the app, `(language tag, Fluent source)`:
    /// they extend the built-in ones and the folder's win over them.
    pub fn load_with(
        embedded: &[(String, String)],
        dir: Option<&Path>,
        domain: &str,
        default: &str,
    ) -> Result<Self, I18nError> {
        let mut list: Vec<Catalog> = Vec::new();
        for (tag, source) in BUILTIN {
            let langid: LanguageIdentifier =
                tag.parse().map_err(|_| I18nError::BadTag((*tag).into()))?;
            let mut catalog = Catalog::new(tag, langid);
            // Built-in sources are checked by the tests; a broken entry is skipped, never fatal.
            let resource = FluentResource::try_new((*source).to_owned()).unwrap_or_else(|(r, _)| r);
            let _ = catalog.bundle.add_resource(resource);
            catalog.builtin_english = *tag == "en";
            list.push(catalog);
        }
        for (tag, source) in embedded {
            let resource = FluentResource::try_new(source.clone()).map_err(|(_, errors)| {
                I18nError::Syntax {
                    path: format!("the app's {tag} catalog"),
                    detail: errors.first().map(|e| format!("{e:?}")).unwrap_or_default(),
                }
            })?;
            add(&mut list, tag, resource)?;
        }
        if let Some(dir) = dir {
            let mut found: Vec<(String, std::path::PathBuf)> = Vec::new();
            let entries = std::fs::read_dir(dir).map_err(|source| I18nError::Read {
                path: dir.display().to_string(),
                source,
            })?;
            for entry in entries.flatten() {
                let path = entry.path().join(format!("{domain}.ftl"));
                if path.is_file() {
                    found.push((entry.file_name().to_string_lossy().into_owned(), path));
                }
            }
            found.sort();
            for (folder, path) in found {
                let source = std::fs::read_to_string(&path).map_err(|source| I18nError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                let resource =
                    FluentResource::try_new(source).map_err(|(_, errors)| I18nError::Syntax {
                        path: path.display().to_string(),
                        detail: errors.first().map(|e| format!("{e:?}")).unwrap_or_default(),
                    })?;
                add(&mut list, &folder, resource)?;
            }
        }
        let wanted: LanguageIdentifier = default
            .replace('_', "-")
            .parse()
            .map_err(|_| I18nError::BadTag(default.into()))?;
        let default_index = list
            .iter()
            .position(|c| c.langid == wanted)
            .or_else(|| {
                list.iter()
                    .position(|c| c.langid.language == wanted.language)
            })
            .ok_or_else(|| I18nError::NoDefault(default.into()))?;
        list[default_index].default = true;
        let langids = list.iter().map(|c| c.langid.clone()).collect();
        Ok(Self {
            list: list.into_iter().map(Arc::new).collect(),
            langids,
            default: default_index,
        })
    }

    /// The default language's catalog.
    pub fn default_catalog(&self) -> Option<&Arc<Catalog>> {
        self.list.get(self.default)
    }

    /// The catalog of language `tag`, if there is one.
    pub fn get(&self, tag: &str) -> Option<&Arc<Catalog>> {
        self.list.iter().find(|c| c.tag.eq_ignore_ascii_case(tag))
    }

    /// The language tags available.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|c| c.tag())
    }

    /// The best catalog for an `Accept-Language` header (q-values honoured, `de-AT` matches
    /// `de`, `*` and unknown languages give the default).
    pub fn negotiate(&self, accept_language: Option<&str>) -> Option<&Arc<Catalog>> {
        let Some(header) = accept_language.filter(|h| !h.trim().is_empty()) else {
            return self.default_catalog();
        };
        let mut ranked: Vec<(f32, usize, LanguageIdentifier)> = Vec::new();
        for (position, item) in header.split(',').take(32).enumerate() {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if tag.is_empty() || tag == "*" || q.is_nan() || q <= 0.0 {
                continue;
            }
            if let Ok(langid) = tag.parse::<LanguageIdentifier>() {
                ranked.push((q, position, langid));
            }
        }
        ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let requested: Vec<LanguageIdentifier> = ranked.into_iter().map(|(_, _, l)| l).collect();
        let default = self.langids.get(self.default)?;
        let chosen = fluent_langneg::negotiate_languages(
            &requested,
            &self.langids,
            Some(default),
            fluent_langneg::NegotiationStrategy::Lookup,
        );
        let chosen = chosen.first()?;
        self.list
            .iter()
            .find(|c| &c.langid == *chosen)
            .or_else(|| self.default_catalog())
    }
}

/// Adds `resource` to the catalog of language `tag` (`de`, `pt_BR`), a new one if need be; its
/// entries win over those already there.
fn add(list: &mut Vec<Catalog>, tag: &str, resource: FluentResource) -> Result<(), I18nError> {
    let langid: LanguageIdentifier = tag
        .replace('_', "-")
        .parse()
        .map_err(|_| I18nError::BadTag(tag.to_owned()))?;
    let index = match list.iter().position(|c| c.langid == langid) {
        Some(i) => i,
        None => {
            list.push(Catalog::new(&langid.to_string(), langid));
            list.len() - 1
        }
    };
    let rewords_messages = resource.entries().any(|entry| {
        matches!(entry, fluent_syntax::ast::Entry::Message(m) if crate::Messages::is_known(m.id.name))
    });
    let catalog = &mut list[index];
    catalog.bundle.add_resource_overriding(resource);
    if rewords_messages {
        catalog.builtin_english = false;
    }
    Ok(())
}

tokio::task_local! {
    /// The language of the request being answered.
    static LOCALE: Arc<Catalog>;
}

/// Runs `answer` in language `catalog`: while it runs, messages, pages and mails use it.
pub async fn scope<F: std::future::Future>(catalog: Arc<Catalog>, answer: F) -> F::Output {
    LOCALE.scope(catalog, answer).await
}

/// Calls `f` with the language of the request being answered, or `None` outside a request.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Catalog>) -> R) -> R {
    let current = LOCALE.try_with(Arc::clone).ok();
    f(current.as_deref())
}

/// Runs `f` in built-in English, whatever the request's language (for values computed once and
/// shared by every request).
pub(crate) fn in_english<R>(f: impl FnOnce() -> R) -> R {
    match Catalogs::builtin().get("en") {
        Some(en) => LOCALE.sync_scope(en.clone(), f),
        None => f(),
    }
}

/// The tag of the language of the request being answered, else the default of `catalogs`.
pub fn current_tag(catalogs: &Catalogs) -> String {
    with_current(|c| {
        c.map(|c| c.tag().to_owned())
            .or_else(|| catalogs.default_catalog().map(|c| c.tag().to_owned()))
            .unwrap_or_else(|| "en".to_owned())
    })
}

/// Text `id` of the current language (else the default's, else English, else `id` itself), with
/// `{ $name }` placeables filled: the pages' and mails' `_()` function.
pub fn text(catalogs: &Catalogs, id: &str, args: &[(&str, &str)]) -> String {
    with_current(|c| c.and_then(|c| c.format(id, args)))
        .or_else(|| catalogs.default_catalog().and_then(|c| c.format(id, args)))
        .or_else(|| catalogs.get("en").and_then(|c| c.format(id, args)))
        .unwrap_or_else(|| id.to_owned())
}

/// The language functions of every template: `_("id", name=value, …)` (alias `gettext`), the
/// catalog text `id` in the request's language with its `{ $name }` placeables filled, and
/// `current_locale()`, the request's language tag (for `<html lang>`).
///
/// When some argument is safe HTML (e.g. a link captured with `{% set link %}…{% endset %}`),
/// the other arguments are escaped and the result is safe HTML: the catalog's text is trusted.
pub fn add_template_functions(env: &mut minijinja::Environment<'_>, catalogs: Arc<Catalogs>) {
    let translate = {
        let catalogs = catalogs.clone();
        move |id: &str,
              kwargs: minijinja::value::Kwargs|
              -> Result<minijinja::Value, minijinja::Error> {
            let mut values: Vec<(&str, minijinja::Value)> = Vec::new();
            for name in kwargs.args() {
                values.push((name, kwargs.get(name)?));
            }
            let html = values.iter().any(|(_, v)| v.is_safe());
            let strings: Vec<(&str, String)> = values
                .iter()
                .map(|(n, v)| {
                    let s = v.to_string();
                    (
                        *n,
                        if html && !v.is_safe() {
                            escape_html(&s)
                        } else {
                            s
                        },
                    )
                })
                .collect();
            let args: Vec<(&str, &str)> = strings.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let out = text(&catalogs, id, &args);
            Ok(if html {
                minijinja::Value::from_safe_string(out)
            } else {
                minijinja::Value::from(out)
            })
        }
    };
    env.add_function("_", translate.clone());
    env.add_function("gettext", translate);
    env.add_function("current_locale", move || current_tag(&catalogs));
}

/// `s` escaped as minijinja's HTML auto-escaping does.
fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '/' => out.push_str("&#x2f;"),
            _ => out.push(ch),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(catalogs: &Catalogs, header: &str) -> String {
        catalogs
            .negotiate(Some(header))
            .map(|c| c.tag().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn accept_language_is_negotiated_with_q_values() {
        let c = Catalogs::builtin();
        assert_eq!(tags(&c, "de"), "de");
        assert_eq!(tags(&c, "de-AT,de;q=0.9"), "de");
        assert_eq!(tags(&c, "fr;q=0.4, es;q=0.9, de;q=0.5"), "es");
        assert_eq!(tags(&c, "it, fr;q=0.1"), "fr");
        assert_eq!(
            tags(&c, "it, ja"),
            "en",
            "unknown languages give the default"
        );
        assert_eq!(tags(&c, "de;q=0, fr;q=0.2"), "fr", "q=0 means not wanted");
        assert_eq!(tags(&c, "*"), "en");
        assert_eq!(tags(&c, ";;,,q=,"), "en");
        assert_eq!(c.negotiate(None).map(|c| c.tag()), Some("en"));
    }

    #[test]
    fn builtin_catalogs_parse_without_errors() {
        for (tag, source) in BUILTIN {
            if let Err((_, errors)) = FluentResource::try_new((*source).to_owned()) {
                panic!("{tag}: {errors:?}");
            }
        }
    }

    #[test]
    fn every_language_has_every_entry_of_the_english_catalog() {
        let en = FluentResource::try_new(BUILTIN[0].1.to_owned()).unwrap();
        let ids: Vec<String> = en
            .entries()
            .filter_map(|e| match e {
                fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_owned()),
                _ => None,
            })
            .collect();
        assert!(ids.len() > 100);
        let c = Catalogs::builtin();
        for tag in ["de", "fr", "es"] {
            let catalog = c.get(tag).unwrap();
            let missing: Vec<&String> = ids.iter().filter(|id| !catalog.has(id)).collect();
            assert!(missing.is_empty(), "{tag} lacks {missing:?}");
        }
        for id in &ids {
            assert!(
                !id.chars().any(|ch| ch.is_ascii_uppercase()) || crate::Messages::is_known(id),
                "{id} is neither a page text nor a message"
            );
        }
    }

    #[test]
    fn placeables_are_filled_without_isolation_marks() {
        let c = Catalogs::builtin();
        let de = c.get("de").unwrap();
        let text = de
            .format("EMAIL_ALREADY_ASSOCIATED", &[("email", "a@b.c")])
            .unwrap();
        assert!(text.contains("a@b.c"), "{text}");
        assert!(!text.contains('\u{2068}'), "{text:?}");
    }

    #[test]
    fn the_apps_folder_wins_and_adds_languages() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("de")).unwrap();
        std::fs::write(
            dir.path().join("de/security.ftl"),
            "INVALID_PASSWORD = Falsches Kennwort, { $who }!\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("it")).unwrap();
        std::fs::write(
            dir.path().join("it/security.ftl"),
            "INVALID_PASSWORD = Password non valida\n",
        )
        .unwrap();
        let c = Catalogs::load(Some(dir.path()), "security", "en").unwrap();
        let de = c.get("de").unwrap();
        assert_eq!(
            de.format("INVALID_PASSWORD", &[("who", "Ann")]).as_deref(),
            Some("Falsches Kennwort, Ann!")
        );
        assert!(
            de.has("PASSWORD_MISMATCH"),
            "the rest of the built-in catalog stays"
        );
        assert_eq!(tags(&c, "it-IT"), "it");
        std::fs::write(dir.path().join("it/security.ftl"), "INVALID_PASSWORD = {\n").unwrap();
        assert!(matches!(
            Catalogs::load(Some(dir.path()), "security", "en"),
            Err(I18nError::Syntax { .. })
        ));
        assert!(matches!(
            Catalogs::load(None, "security", "pt"),
            Err(I18nError::NoDefault(_))
        ));
    }
}
