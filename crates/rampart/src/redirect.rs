//! The one policy for `next` redirects: same origin (or an allow-listed host) only.

use crate::config::SecurityConfig;

/// A `next` value that must not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("redirections outside the domain are forbidden")]
pub struct UnsafeRedirect;

/// Returns the local target (path, query, fragment) for `next` if it stays on `request_host` (or
/// an allowed host), else [`UnsafeRedirect`]. Backslashes are escaped, so `/\evil.com` stays a
/// local path (`/%5Cevil.com`) instead of becoming `//evil.com` in a browser.
///
/// ```
/// use rampart::{SecurityConfig, safe_next};
/// let config = SecurityConfig::default();
/// assert_eq!(safe_next(&config, Some("app.test"), "/api/me").unwrap(), "/api/me");
/// assert!(safe_next(&config, Some("app.test"), "//evil.com/x").is_err());
/// assert!(safe_next(&config, Some("app.test"), "http://evil.com/").is_err());
/// assert_eq!(safe_next(&config, Some("app.test"), "/\\evil.com").unwrap(), "/%5Cevil.com");
/// ```
pub fn safe_next(
    config: &SecurityConfig,
    request_host: Option<&str>,
    next: &str,
) -> Result<String, UnsafeRedirect> {
    let next = next.trim();
    if next.is_empty() || next.chars().any(char::is_control) {
        return Err(UnsafeRedirect);
    }
    let escaped = next.replace('\\', "%5C");
    let own_host = config
        .server_name
        .as_deref()
        .or(request_host)
        .unwrap_or("localhost");
    let base = url::Url::parse(&format!("http://{own_host}/")).map_err(|_| UnsafeRedirect)?;
    let target = base.join(&escaped).map_err(|_| UnsafeRedirect)?;
    if !matches!(target.scheme(), "http" | "https") {
        return Err(UnsafeRedirect);
    }
    let target_host = target.host_str().unwrap_or_default();
    let same = target_host.eq_ignore_ascii_case(base.host_str().unwrap_or_default())
        && target.port_or_known_default() == base.port_or_known_default()
        || escaped.starts_with('/') && !escaped.starts_with("//");
    let allowed = config
        .redirect_allowed_hosts
        .iter()
        .any(|h| h.eq_ignore_ascii_case(target_host));
    if allowed && !escaped.starts_with('/') {
        return Ok(target.to_string());
    }
    if !same {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_are_kept_and_foreign_hosts_refused() {
        let c = SecurityConfig::default();
        let host = Some("127.0.0.1:5000");
        assert_eq!(safe_next(&c, host, "/a?b=1#c").unwrap(), "/a?b=1#c");
        assert_eq!(
            safe_next(&c, host, "http://127.0.0.1:5000/x").unwrap(),
            "/x"
        );
        for bad in [
            "//evil.com",
            "http://evil.com",
            "https://evil.com/",
            "javascript:alert(1)",
            "///evil.com",
            "\t//evil.com",
            "/\n/evil.com",
            "",
        ] {
            assert!(safe_next(&c, host, bad).is_err(), "{bad:?}");
        }
        assert_eq!(safe_next(&c, host, "/\\evil.com").unwrap(), "/%5Cevil.com");
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
    }
}
