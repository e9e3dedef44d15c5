//! The one policy for `next` redirects: same origin (or an allow-listed host) only.
//!
//! The verdict is taken on the URL a browser would actually follow: `next` is resolved against
//! the site's own origin (dot-segments, `%2e` spellings of them, scheme-relative and absolute
//! forms all resolved first), then the resolved result is checked. Only a path (with query and
//! fragment) that provably stays on this origin is returned, never anything starting with `//`.

use crate::config::SecurityConfig;

/// A `next` value that must not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirections outside the domain are forbidden")]
pub struct UnsafeRedirect;

/// Returns the local target (path, query, fragment) for `next` if it stays on `request_host`
/// (`SERVER_NAME` when set), or the full URL when it names an allow-listed host
/// (`SECURITY_REDIRECT_ALLOWED_HOSTS`), else [`UnsafeRedirect`].
///
/// Refused: anything that resolves to another scheme, host or port; user info (`a@host`);
/// control characters (tab, CR, LF, … which browsers drop) and backslashes (which browsers read
/// as `/`), raw or percent-encoded; and any result whose decoded path starts with `//`, however
/// it was spelled (`/..//evil.com`, `/%2e%2e//evil.com`, `/a/../..//evil.com`).
///
/// ```
/// use rampart::{SecurityConfig, safe_next};
/// let config = SecurityConfig::default();
/// assert_eq!(safe_next(&config, Some("app.test"), "/api/me").unwrap(), "/api/me");
/// assert_eq!(safe_next(&config, Some("app.test"), "/a/../b?x=1").unwrap(), "/b?x=1");
/// assert!(safe_next(&config, Some("app.test"), "//evil.com/x").is_err());
/// assert!(safe_next(&config, Some("app.test"), "/..//evil.com").is_err());
/// assert!(safe_next(&config, Some("app.test"), "http://evil.com/").is_err());
/// assert!(safe_next(&config, Some("app.test"), "/\\evil.com").is_err());
/// ```
pub fn safe_next(
    config: &SecurityConfig,
    request_host: Option<&str>,
    next: &str,
) -> Result<String, UnsafeRedirect> {
    let next = next.trim_matches(' ');
    if next.is_empty()
        || next.starts_with("//")
        || next.chars().any(|c| c.is_control() || c == '\\')
        || has_encoded_danger(next)
        || scheme_without_authority(next)
    {
        return Err(UnsafeRedirect);
    }
    let own_host = config
        .server_name
        .as_deref()
        .or(request_host)
        .unwrap_or("localhost");
    let scheme = match config.url_scheme.to_ascii_lowercase().as_str() {
        "https" => "https",
        _ => "http",
    };
    let base = url::Url::parse(&format!("{scheme}://{own_host}/")).map_err(|_| UnsafeRedirect)?;
    let target = base.join(next).map_err(|_| UnsafeRedirect)?;
    if !matches!(target.scheme(), "http" | "https")
        || !target.username().is_empty()
        || target.password().is_some()
    {
        return Err(UnsafeRedirect);
    }
    let target_host = target.host_str().unwrap_or_default();
    let same_origin = target.scheme() == base.scheme()
        && target_host.eq_ignore_ascii_case(base.host_str().unwrap_or_default())
        && target.port_or_known_default() == base.port_or_known_default();
    if !same_origin {
        let allowed = config
            .redirect_allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(target_host));
        // Only an absolute URL names another host; a path always resolves to our own.
        return if allowed && !next.starts_with('/') && local_path_is_safe(target.path()) {
            Ok(target.to_string())
        } else {
            Err(UnsafeRedirect)
        };
    }
    if !local_path_is_safe(target.path()) {
        return Err(UnsafeRedirect);
    }
    let mut local = target.path().to_owned();
    if let Some(query) = target.query() {
        local.push('?');
        local.push_str(query);
    }
    if let Some(fragment) = target.fragment() {
        local.push('#');
        local.push_str(fragment);
    }
    Ok(local)
}

/// Whether a resolved path is one a browser can only read as a path on this origin: it starts
/// with a single `/`, and neither it nor its percent-decoded form holds a second leading `/`, a
/// backslash or a control character.
fn local_path_is_safe(path: &str) -> bool {
    let decoded = percent_decode(path);
    let starts_ok = |p: &[u8]| p.first() == Some(&b'/') && !matches!(p.get(1), Some(b'/' | b'\\'));
    starts_ok(path.as_bytes())
        && starts_ok(&decoded)
        && !decoded.iter().any(|&b| b == b'\\' || b.is_ascii_control())
}

/// Whether `next` starts with a scheme not followed by `//` (`https:evil.com`, `http:/x`): a
/// spelling whose reading depends on the page it is resolved against.
fn scheme_without_authority(next: &str) -> bool {
    let Some((scheme, rest)) = next.split_once(':') else {
        return false;
    };
    let is_scheme = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme && !rest.starts_with("//")
}

/// Whether `next` spells a backslash or a control character percent-encoded (`%5c`, `%09`, …),
/// before the query: a proxy or framework that decodes once would read it as the real thing.
fn has_encoded_danger(next: &str) -> bool {
    let before_query = next.split(['?', '#']).next().unwrap_or_default();
    percent_decode(before_query)
        .iter()
        .any(|&b| b == b'\\' || b.is_ascii_control())
}

/// Percent-decodes `text` once (invalid escapes are kept as they are).
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "127.0.0.1:5000";

    fn check(next: &str) -> Result<String, UnsafeRedirect> {
        safe_next(&SecurityConfig::default(), Some(HOST), next)
    }

    #[test]
    fn local_paths_are_kept_normalised() {
        for (next, local) in [
            ("/a?b=1#c", "/a?b=1#c"),
            ("/profile?tab=1", "/profile?tab=1"),
            ("/a/../b", "/b"),
            ("/a/./b/../c", "/a/c"),
            ("/a/%2e%2e/b", "/b"),
            ("/a:b", "/a:b"),
            ("/x?t=12:30", "/x?t=12:30"),
            ("/..", "/"),
            ("http://127.0.0.1:5000/x", "/x"),
            ("HTTP://127.0.0.1:5000/x?y", "/x?y"),
            ("/search?q=a@b.c", "/search?q=a@b.c"),
            ("/@evil.com", "/@evil.com"),
            ("profile", "/profile"),
        ] {
            assert_eq!(check(next).as_deref(), Ok(local), "{next:?}");
        }
    }

    #[test]
    fn every_spelling_of_another_host_is_refused() {
        for bad in [
            "//evil.com",
            "///evil.com",
            "////evil.com",
            "/..//evil.com",
            "/.//evil.com",
            "/%2e%2e//evil.com",
            "/%2E%2e//evil.com",
            "/%2E%2e/%2fevil.com",
            "/%2f%2fevil.com",
            "/%2F/evil.com",
            "/.%2e//evil.com",
            "/a/..//evil.com",
            "/a/../..//evil.com",
            "/a/b/../../..//evil.com",
            "http://127.0.0.1:5000/..//evil.com",
            "http://127.0.0.1:5000//evil.com",
            "http://127.0.0.1:5000/%2e%2e//evil.com",
            "/\\evil.com",
            "/\\\\evil.com",
            "\\/evil.com",
            "\\\\evil.com",
            "/%5cevil.com",
            "/%5Cevil.com",
            "/a/..%5c/evil.com",
            "/%09/evil.com",
            "/\t/evil.com",
            "\t//evil.com",
            "/\n/evil.com",
            "/\r/evil.com",
            "/%0d%0a/evil.com",
            " //evil.com",
            "https:evil.com",
            "https:/evil.com",
            "https:%5c%5cevil.com",
            "http:evil.com/x",
            "http:/evil.com/x",
            "http:///evil.com/x",
            "mailto:a@evil.com",
            "http://evil.com",
            "https://evil.com/",
            "HTTPS://EVIL.COM/",
            "http://evil.com@127.0.0.1:5000/",
            "http://user:pw@127.0.0.1:5000/x",
            "http://127.0.0.1:5000@evil.com/",
            "http://127.0.0.1@evil.com/",
            "http://127.0.0.1:5001/x",
            "http://127.0.0.1/x",
            "https://127.0.0.1:5000/x",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            " javascript:alert(1)",
            "java\tscript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "DATA:text/html;base64,PHNjcmlwdD4=",
            "vbscript:msgbox(1)",
            "ftp://127.0.0.1:5000/x",
            "",
            "   ",
        ] {
            assert!(check(bad).is_err(), "{bad:?} -> {:?}", check(bad));
        }
    }

    #[test]
    fn whatever_is_returned_starts_with_a_single_slash() {
        let spellings = [
            "/", "/.", "/..", "/%2e", "/%2e%2e", "/a", "/a/..", "//", "/%2f", "/%5c",
        ];
        for a in spellings {
            for b in spellings {
                for tail in ["evil.com", "/evil.com", ""] {
                    let next = format!("{a}{b}{tail}");
                    if let Ok(local) = check(&next) {
                        let bytes = local.as_bytes();
                        assert_eq!(bytes.first(), Some(&b'/'), "{next:?} -> {local:?}");
                        assert!(
                            !matches!(bytes.get(1), Some(b'/' | b'\\')),
                            "{next:?} -> {local:?}"
                        );
                        assert!(
                            !local.to_ascii_lowercase().starts_with("/%2f"),
                            "{next:?} -> {local:?}"
                        );
                        assert!(
                            !local.to_ascii_lowercase().starts_with("/%5c"),
                            "{next:?} -> {local:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn server_name_is_the_origin_when_set() {
        let c = SecurityConfig {
            server_name: Some("app.example.com".into()),
            ..SecurityConfig::default()
        };
        assert_eq!(
            safe_next(&c, Some("evil.com"), "http://app.example.com/x").as_deref(),
            Ok("/x")
        );
        assert!(safe_next(&c, Some("evil.com"), "http://evil.com/x").is_err());
    }

    #[test]
    fn allow_listed_hosts_are_accepted() {
        let c = SecurityConfig {
            redirect_allowed_hosts: vec!["docs.example.com".into()],
            ..SecurityConfig::default()
        };
        assert_eq!(
            safe_next(&c, Some("app.example.com"), "https://docs.example.com/x").unwrap(),
            "https://docs.example.com/x"
        );
        for bad in [
            "https://user@docs.example.com/x",
            "https://docs.example.com//evil.com",
            "https://docs.example.com/..//evil.com",
            "javascript://docs.example.com/%0aalert(1)",
        ] {
            assert!(
                safe_next(&c, Some("app.example.com"), bad).is_err(),
                "{bad:?}"
            );
        }
    }
}
