//! Pages that are the same for every anonymous visitor but for their CSRF token — the sign-in
//! form without `next`, for a visitor without a session — rendered once per template and
//! language and kept as the text around the token, which each request only signs and fills in.
//!
//! What such a page shows is fixed for the life of a [`Security`](crate::Security): the
//! configuration, the compiled templates and the language's catalog do not change, and the
//! visitor has no user, no session (so no flashes) and no page values. A page is cached only
//! when the caller says its own context is the same for everyone
//! ([`Form::same_for_every_visitor`](crate::web::negotiate::Form::same_for_every_visitor)).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Stands for the token while the page is rendered: letters, digits and `-` only, so no
/// escaping or URL-encoding in a template changes it (nor the real token, base64url and `.`).
pub(crate) const PLACEHOLDER: &str = "rampart-csrf-placeholder-5c0f1e9a7b2d";

/// At most this many pages (templates × languages) are kept; past it, pages are rendered as
/// usual.
const MAX_PAGES: usize = 256;

/// A rendered page cut at each place its token goes.
#[derive(Debug)]
pub(crate) struct Segments {
    parts: Vec<String>,
    len: usize,
}

impl Segments {
    /// `rendered` (made with [`PLACEHOLDER`] as the token) cut at each placeholder.
    pub(crate) fn of(rendered: &str) -> Self {
        let parts: Vec<String> = rendered.split(PLACEHOLDER).map(str::to_owned).collect();
        let len = parts.iter().map(String::len).sum();
        Self { parts, len }
    }

    /// The page with `token` in each place.
    pub(crate) fn fill(&self, token: &str) -> String {
        let mut out =
            String::with_capacity(self.len + token.len() * self.parts.len().saturating_sub(1));
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push_str(token);
            }
            out.push_str(part);
        }
        out
    }
}

/// The cached pages of one [`Security`](crate::Security), by template and language tag.
#[derive(Debug, Default)]
pub(crate) struct PageCache {
    pages: RwLock<HashMap<(&'static str, String), Arc<Segments>>>,
}

impl PageCache {
    /// The page of `template` in language `tag`, if rendered before.
    pub(crate) fn get(&self, template: &'static str, tag: &str) -> Option<Arc<Segments>> {
        let pages = self.pages.read().ok()?;
        pages.get(&(template, tag.to_owned())).cloned()
    }

    /// Keeps `segments` as the page of `template` in `tag` (unless full).
    pub(crate) fn put(&self, template: &'static str, tag: String, segments: Arc<Segments>) {
        if let Ok(mut pages) = self.pages.write()
            && pages.len() < MAX_PAGES
        {
            pages.insert((template, tag), segments);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_goes_in_every_place_of_the_placeholder() {
        let page = Segments::of(&format!(
            "<meta content=\"{PLACEHOLDER}\"><input value=\"{PLACEHOLDER}\">end"
        ));
        assert_eq!(
            page.fill("tok.en"),
            "<meta content=\"tok.en\"><input value=\"tok.en\">end"
        );
        assert_eq!(Segments::of("no token").fill("x"), "no token");
    }

    #[test]
    fn pages_are_kept_per_template_and_language() {
        let cache = PageCache::default();
        cache.put("a.html", "en".into(), Arc::new(Segments::of("english")));
        assert_eq!(
            cache.get("a.html", "en").map(|s| s.fill("")),
            Some("english".to_owned())
        );
        assert!(cache.get("a.html", "fr").is_none());
        assert!(cache.get("b.html", "en").is_none());
    }
}
