//! [`Settings`], the flat layered key/value source (defaults → `rampart.toml` → `.env` →
//! environment), and the parsing of its values: booleans, numbers, Flask-Security durations
//! (`5 days`) and Flask-Limiter rate limits (`3 per 10 minutes`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::ConfigError;

/// Flat, layered settings: later layers override earlier ones.
///
/// Keys are upper-cased, so `security_registerable` in `rampart.toml` and
/// `SECURITY_REGISTERABLE` in the environment name the same setting.
///
/// ```
/// let settings = rampart::Settings::from_pairs([("SECURITY_REGISTERABLE", "true")]);
/// assert_eq!(settings.bool("SECURITY_REGISTERABLE").unwrap(), Some(true));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Settings {
    values: BTreeMap<String, String>,
}

impl Settings {
    /// Settings from explicit pairs (tests, embedding).
    pub fn from_pairs<K: AsRef<str>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let mut settings = Self::default();
        for (k, v) in pairs {
            settings.set(k.as_ref(), v);
        }
        settings
    }

    /// Loads `toml_file` (if it exists), then `dotenv_file` (if it exists), then the process
    /// environment, each overriding the one before.
    pub fn load(toml_file: Option<&Path>, dotenv_file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut settings = Self::default();
        if let Some(path) = toml_file.filter(|p| p.exists()) {
            settings.merge_toml(path)?;
        }
        if let Some(path) = dotenv_file.filter(|p| p.exists()) {
            let iter = dotenvy::from_path_iter(path).map_err(|e| ConfigError::File {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
            for item in iter {
                let (k, v) = item.map_err(|e| ConfigError::File {
                    path: path.to_owned(),
                    message: e.to_string(),
                })?;
                settings.set(&k, v);
            }
        }
        for (k, v) in std::env::vars() {
            settings.set(&k, v);
        }
        Ok(settings)
    }

    fn merge_toml(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file_error = |message: String| ConfigError::File {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| file_error(e.to_string()))?;
        for (key, value) in table {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                toml::Value::Table(_) => {
                    return Err(file_error(format!(
                        "{key}: nested tables are not supported"
                    )));
                }
                other => other.to_string(),
            };
            self.set(&key, text);
        }
        Ok(())
    }

    /// Sets one value.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_ascii_uppercase(), value.into());
    }

    /// The raw value of `key`, if set and not empty.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(&key.to_ascii_uppercase())
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// All keys starting with `prefix`, with the prefix removed.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.values
            .iter()
            .filter_map(move |(k, v)| k.strip_prefix(prefix).map(|rest| (rest, v.as_str())))
    }

    /// A boolean (`true/false`, `1/0`, `yes/no`, `on/off`, Python's `True/False`).
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.get(key)
            .map(|v| match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" | "y" => Ok(true),
                "0" | "false" | "no" | "off" | "n" | "none" => Ok(false),
                _ => Err(ConfigError::invalid(
                    key,
                    format!("expected true or false, got {v:?}"),
                )),
            })
            .transpose()
    }

    /// An integer.
    pub fn int<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ConfigError> {
        self.get(key)
            .map(|v| {
                v.trim().parse::<T>().map_err(|_| {
                    ConfigError::invalid(key, format!("expected a whole number, got {v:?}"))
                })
            })
            .transpose()
    }

    /// A duration such as `5 days`, `2 hours`, `30 minutes` or a number of seconds.
    pub fn duration(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        self.get(key)
            .map(|v| parse_duration(v).map_err(|m| ConfigError::invalid(key, m)))
            .transpose()
    }

    /// A comma-separated list (also accepts Python-style `["a", "b"]`).
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        self.get(key).map(|v| {
            v.trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split(',')
                .map(|s| s.trim().trim_matches(|c| c == '"' || c == '\'').to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
    }

    /// A string value, owned.
    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }
}

/// Parses Flask-Security style durations: `"5 days"`, `"1 days"`, `"2 hours"`, `"10 minutes"`,
/// `"30 seconds"`, `"1 week"`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut parts = text.split_whitespace();
    let (Some(number), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!(
            "expected e.g. \"5 days\" or a number of seconds, got {text:?}"
        ));
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("expected a whole number before the unit, got {number:?}"))?;
    let unit_secs = unit_seconds(unit).ok_or_else(|| format!("unknown time unit {unit:?}"))?;
    number
        .checked_mul(unit_secs)
        .map(Duration::from_secs)
        .ok_or_else(|| "duration too large".to_owned())
}

fn unit_seconds(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().trim_end_matches('s') {
        "second" | "sec" => 1,
        "minute" | "min" => 60,
        "hour" => 3600,
        "day" => 86_400,
        "week" => 604_800,
        _ => return None,
    })
}

/// A rate limit such as `3 per 10 minutes` or `10/minute`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// Hits allowed per window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
    /// The text, as limits are reported (`"3 per 10 minute"`).
    pub description: String,
}

impl RateLimit {
    /// Parses `N per [M] unit` or `N/unit`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let normalized = text.trim().replace('/', " per ");
        let (count, period) = normalized
            .split_once(" per ")
            .ok_or_else(|| format!("expected e.g. \"3 per 10 minutes\", got {text:?}"))?;
        let limit: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("expected a count before \"per\", got {count:?}"))?;
        let period = period.trim();
        let (amount, unit) = match period.split_once(' ') {
            Some((n, unit)) => (
                n.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("bad period {period:?}"))?,
                unit.trim(),
            ),
            None => (1, period),
        };
        let secs = unit_seconds(unit).ok_or_else(|| format!("unknown time unit {unit:?}"))?;
        let singular = unit.trim_end_matches('s');
        let description = if amount == 1 {
            format!("{limit} per 1 {singular}")
        } else {
            format!("{limit} per {amount} {singular}")
        };
        Ok(Self {
            limit,
            window: Duration::from_secs(amount * secs),
            description,
        })
    }

    /// The limit in plain words, for people: "3 per 10 minutes", "5 per hour" (the
    /// [`description`](Self::description) is Flask-Limiter's wording, kept for JSON clients).
    #[must_use]
    pub fn readable(&self) -> String {
        let secs = self.window.as_secs().max(1);
        let (amount, unit) = [
            (604_800, "week"),
            (86_400, "day"),
            (3600, "hour"),
            (60, "minute"),
        ]
        .into_iter()
        .find(|(size, _)| secs.is_multiple_of(*size))
        .map_or((secs, "second"), |(size, unit)| (secs / size, unit));
        if amount == 1 {
            format!("{} per {unit}", self.limit)
        } else {
            format!("{} per {amount} {unit}s", self.limit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_flask_security_form_are_parsed() {
        assert_eq!(
            parse_duration("5 days").unwrap(),
            Duration::from_secs(5 * 86_400)
        );
        assert_eq!(
            parse_duration("1 days").unwrap(),
            Duration::from_secs(86_400)
        );
        assert_eq!(
            parse_duration("2 hours").unwrap(),
            Duration::from_secs(7200)
        );
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn rate_limits_parse_and_describe_themselves_like_flask_limiter() {
        let limit = RateLimit::parse("3 per 10 minutes").unwrap();
        assert_eq!((limit.limit, limit.window), (3, Duration::from_secs(600)));
        assert_eq!(limit.description, "3 per 10 minute");
        assert_eq!(limit.readable(), "3 per 10 minutes");
        assert_eq!(
            RateLimit::parse("5 per hour").unwrap().readable(),
            "5 per hour"
        );
        assert_eq!(RateLimit::parse("1/day").unwrap().readable(), "1 per day");
        let limit = RateLimit::parse("100/minute").unwrap();
        assert_eq!((limit.limit, limit.window), (100, Duration::from_secs(60)));
        assert!(RateLimit::parse("lots").is_err());
    }
}
