//! The device of a request: client address, user agent, a readable name parsed from it with
//! `woothee` ("Firefox on Linux") and a key (browser, system and network) that tells whether a
//! sign-in comes from a device seen before.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Longest user agent kept (longer ones are cut, on a character boundary).
const MAX_USER_AGENT: usize = 512;

/// Where a request came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    /// The client address (after `SECURITY_TRUSTED_PROXIES`).
    pub ip: Option<String>,
    /// The `User-Agent` header (at most 512 bytes).
    pub user_agent: Option<String>,
    /// A readable name: "Firefox on Linux", "Chrome on Android", "Unknown browser".
    pub name: String,
    /// Browser, system and network (`/24` of IPv4, `/48` of IPv6): the same key means the same
    /// device for the new-device alert.
    pub key: String,
}

impl Device {
    /// The device of a request from `ip` with `user_agent`.
    pub fn from_request(ip: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        let user_agent = user_agent
            .map(str::trim)
            .filter(|ua| !ua.is_empty())
            .map(cut);
        let parsed = user_agent
            .as_deref()
            .and_then(|ua| woothee::parser::Parser::new().parse(ua));
        let known = |s: &str| (!s.is_empty() && s != "UNKNOWN").then(|| s.to_owned());
        let browser = parsed.as_ref().and_then(|p| known(p.name));
        let os = parsed.as_ref().and_then(|p| known(p.os));
        let name = match (&browser, &os) {
            (Some(b), Some(o)) => format!("{b} on {o}"),
            (Some(b), None) => b.clone(),
            (None, Some(o)) => format!("Unknown browser on {o}"),
            (None, None) => "Unknown browser".to_owned(),
        };
        let network = ip.map(network).unwrap_or_default();
        let key = format!(
            "{}|{}|{network}",
            browser.as_deref().unwrap_or("?"),
            os.as_deref().unwrap_or("?")
        );
        Self {
            ip: ip.map(|ip| ip.to_canonical().to_string()),
            user_agent,
            name,
            key,
        }
    }
}

/// The network of an address: its `/24` (IPv4) or `/48` (IPv6).
fn network(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.0/24")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

fn cut(ua: &str) -> String {
    if ua.len() <= MAX_USER_AGENT {
        return ua.to_owned();
    }
    let mut end = MAX_USER_AGENT;
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    ua[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                                  (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

    #[test]
    fn a_browser_gets_a_readable_name_and_a_key_of_browser_system_and_network() {
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        let firefox = Device::from_request(Some(ip), Some(FIREFOX_LINUX));
        assert_eq!(firefox.name, "Firefox on Linux");
        assert_eq!(firefox.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(firefox.key, "Firefox|Linux|203.0.113.0/24");
        let chrome = Device::from_request(Some(ip), Some(CHROME_WINDOWS));
        assert!(
            chrome.name.starts_with("Chrome on Windows"),
            "{}",
            chrome.name
        );
        assert_ne!(chrome.key, firefox.key);
        let neighbour = Device::from_request(
            Some("203.0.113.200".parse().expect("ip")),
            Some(FIREFOX_LINUX),
        );
        assert_eq!(neighbour.key, firefox.key, "same network, same device");
        let elsewhere = Device::from_request(
            Some("198.51.100.7".parse().expect("ip")),
            Some(FIREFOX_LINUX),
        );
        assert_ne!(elsewhere.key, firefox.key);
    }

    #[test]
    fn no_or_odd_user_agents_are_named_without_failing() {
        assert_eq!(Device::from_request(None, None).name, "Unknown browser");
        assert!(!Device::from_request(None, Some("curl/8.0")).name.is_empty());
        let long = "x".repeat(2000);
        let device = Device::from_request(None, Some(&long));
        assert_eq!(device.user_agent.map(|ua| ua.len()), Some(MAX_USER_AGENT));
    }
}
