//! Turning raw setting text into typed values. Each parser returns what it expected on failure;
//! the `Parser` adds the setting's name and source, and hides the value of secrets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::sources::{KEYS, Layers, SECRET_KEYS, Source};
use super::{ConfigError, LogFormat, Secret, ServiceUrl, origin_text};

type ParseResult<T> = Result<T, &'static str>;

pub struct Parser<'a> {
    layers: &'a Layers,
}

impl<'a> Parser<'a> {
    pub fn new(layers: &'a Layers) -> Self {
        Self { layers }
    }

    pub fn required<T>(
        &self,
        key: &str,
        parse: fn(&str) -> ParseResult<T>,
    ) -> Result<T, ConfigError> {
        match self.optional(key, parse)? {
            Some(value) => Ok(value),
            None => Err(self.invalid(key, "a value")),
        }
    }

    /// An unset or empty value is `None`; an empty variable is how an operator unsets a
    /// value that the file set.
    pub fn optional<T>(
        &self,
        key: &str,
        parse: fn(&str) -> ParseResult<T>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((raw, source)) = self.layers.get(key) else {
            return Ok(None);
        };
        if raw.trim().is_empty() {
            return Ok(None);
        }
        parse(raw)
            .map(Some)
            .map_err(|expected| self.error(key, source, expected, raw))
    }

    pub fn invalid(&self, key: &str, expected: &str) -> ConfigError {
        let source = self
            .layers
            .get(key)
            .map(|(_, s)| s.clone())
            .unwrap_or(Source::Default);
        let raw = self.layers.get(key).map(|(v, _)| v).unwrap_or_default();
        self.error(key, &source, expected, raw)
    }

    fn error(&self, key: &str, source: &Source, expected: &str, raw: &str) -> ConfigError {
        let got = (!SECRET_KEYS.contains(&key) && !raw.is_empty()).then(|| redact_url(raw));
        ConfigError::Invalid {
            origin: origin_text(key, source),
            expected: expected.to_owned(),
            got,
        }
    }

    pub fn sources(&self) -> Vec<(&'static str, Source)> {
        KEYS.iter()
            .filter_map(|key| {
                self.layers
                    .get(key)
                    .map(|(_, source)| (*key, source.clone()))
            })
            .collect()
    }
}

/// An invalid URL may still hold a password; never echo one.
fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => ServiceUrl::new(url).redacted(),
        Err(_) if raw.contains('@') => "[hidden: may contain credentials]".to_owned(),
        Err(_) => raw.to_owned(),
    }
}

pub fn socket_addr(raw: &str) -> ParseResult<SocketAddr> {
    raw.trim()
        .parse()
        .map_err(|_| "an IP address and port such as 127.0.0.1:3002")
}

pub fn postgres_url(raw: &str) -> ParseResult<ServiceUrl> {
    let url = Url::parse(raw.trim()).map_err(|_| "a postgres:// or postgresql:// URL")?;
    match url.scheme() {
        "postgres" | "postgresql" => Ok(ServiceUrl::new(url)),
        _ => Err("a postgres:// or postgresql:// URL"),
    }
}

pub fn redis_url(raw: &str) -> ParseResult<ServiceUrl> {
    const EXPECTED: &str = "a redis://, rediss:// or redis+unix:// URL";
    let url = Url::parse(raw.trim()).map_err(|_| EXPECTED)?;
    match url.scheme() {
        "redis" | "rediss" | "redis+unix" | "unix" => Ok(ServiceUrl::new(url)),
        _ => Err(EXPECTED),
    }
}

pub fn http_url(raw: &str) -> ParseResult<Url> {
    const EXPECTED: &str = "an http:// or https:// URL";
    let url = Url::parse(raw.trim()).map_err(|_| EXPECTED)?;
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(url),
        _ => Err(EXPECTED),
    }
}

pub fn path(raw: &str) -> ParseResult<PathBuf> {
    Ok(PathBuf::from(raw.trim()))
}

pub fn path_list(raw: &str) -> ParseResult<Vec<PathBuf>> {
    let roots: Vec<PathBuf> = raw
        .split(':')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .collect();
    if roots.is_empty() {
        return Err("one or more folders separated by ':'");
    }
    Ok(roots)
}

pub fn secret(raw: &str) -> ParseResult<Secret> {
    Ok(Secret::new(raw.trim()))
}

pub fn text(raw: &str) -> ParseResult<String> {
    Ok(raw.trim().to_owned())
}

pub fn boolean(raw: &str) -> ParseResult<bool> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err("true or false"),
    }
}

/// Whole milliseconds, at least 1 and at most one day.
pub fn millis(raw: &str) -> ParseResult<Duration> {
    const EXPECTED: &str = "a whole number of milliseconds from 1 to 86400000";
    let ms: u64 = raw.trim().parse().map_err(|_| EXPECTED)?;
    if !(1..=86_400_000).contains(&ms) {
        return Err(EXPECTED);
    }
    Ok(Duration::from_millis(ms))
}

pub fn log_filter(raw: &str) -> ParseResult<String> {
    tracing_subscriber::EnvFilter::try_new(raw.trim())
        .map(|_| raw.trim().to_owned())
        .map_err(|_| "a log filter such as `info` or `reelbase=debug,tower_http=info`")
}

pub fn log_format(raw: &str) -> ParseResult<LogFormat> {
    match raw.trim() {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        _ => Err("`pretty` or `json`"),
    }
}

/// A whole number from 1 to 1000.
pub fn count(raw: &str) -> ParseResult<u32> {
    const EXPECTED: &str = "a whole number from 1 to 1000";
    let n: u32 = raw.trim().parse().map_err(|_| EXPECTED)?;
    if !(1..=1000).contains(&n) {
        return Err(EXPECTED);
    }
    Ok(n)
}
