//! Turning raw setting text into typed values. Each parser returns what it expected on failure;
//! the `Parser` adds the setting's name and source, and hides the value of secrets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::secret::is_placeholder;
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

/// An invalid URL may still hold a password; echo only what parses, masked, and nothing of
/// what looks like a URL but does not parse.
fn redact_url(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(url) => ServiceUrl::new(url).redacted(),
        Err(_) if raw.contains(['@', '?', '/', ':']) => "[not shown: may hold credentials]".into(),
        Err(_) => raw.to_owned(),
    }
}

pub fn socket_addr(raw: &str) -> ParseResult<SocketAddr> {
    raw.trim()
        .parse()
        .map_err(|_| "an IP address and port such as 127.0.0.1:3002")
}

/// Connection parameters the PostgreSQL driver understands. Anything else is refused here,
/// at start: the driver would ignore it with a warning that quotes its value, which may be a
/// password (`sslpassword`).
const POSTGRES_PARAMETERS: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

pub fn postgres_url(raw: &str) -> ParseResult<ServiceUrl> {
    const EXPECTED: &str = "a postgres:// or postgresql:// URL with a valid host, port (1-65535) \
                            and parameters (sslmode, sslrootcert, sslcert, sslkey, host, port, \
                            dbname, user, password, application_name, options)";
    let url = Url::parse(raw.trim()).map_err(|_| EXPECTED)?;
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        return Err(EXPECTED);
    }
    if url
        .query_pairs()
        .any(|(key, _)| !POSTGRES_PARAMETERS.contains(&key.as_ref()))
    {
        return Err(EXPECTED);
    }
    if url.password().is_some_and(is_placeholder) {
        return Err(PLACEHOLDER);
    }
    <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(url.as_str())
        .map_err(|_| EXPECTED)?;
    Ok(ServiceUrl::new(url))
}

pub fn redis_url(raw: &str) -> ParseResult<ServiceUrl> {
    const EXPECTED: &str = "a redis:// or redis+unix:// URL the Redis driver accepts (TLS, rediss://, is not built in)";
    let url = Url::parse(raw.trim()).map_err(|_| EXPECTED)?;
    if !matches!(url.scheme(), "redis" | "redis+unix" | "unix") {
        return Err(EXPECTED);
    }
    if url.password().is_some_and(is_placeholder) {
        return Err(PLACEHOLDER);
    }
    redis::Client::open(url.as_str()).map_err(|_| EXPECTED)?;
    Ok(ServiceUrl::new(url))
}

pub fn http_url(raw: &str) -> ParseResult<ServiceUrl> {
    const EXPECTED: &str = "an http:// or https:// base URL (no query string or fragment)";
    let url = Url::parse(raw.trim()).map_err(|_| EXPECTED)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(EXPECTED);
    }
    match url.scheme() {
        "http" | "https" if url.host().is_some() => Ok(ServiceUrl::new(url)),
        _ => Err(EXPECTED),
    }
}

const PLACEHOLDER: &str = "a real value, not the `[redacted]`/`***` placeholder that \
                           `reelbase config` prints";

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
    if is_placeholder(raw.trim()) {
        return Err(PLACEHOLDER);
    }
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

/// A `tracing` filter in which every directive names a level (`info`, `reelbase=debug`). A
/// bare word such as `warning` would otherwise be read as a module name and silence every
/// log line, errors included.
pub fn log_filter(raw: &str) -> ParseResult<String> {
    const EXPECTED: &str = "a log filter such as `info` or `reelbase=debug,sqlx=warn` \
                            (levels: trace, debug, info, warn, error, off)";
    const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];
    let text = raw.trim();
    let has_level = |directive: &str| {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        LEVELS.contains(&level.trim().to_ascii_lowercase().as_str())
    };
    if text.is_empty() || !text.split(',').all(has_level) {
        return Err(EXPECTED);
    }
    tracing_subscriber::EnvFilter::try_new(text)
        .map(|_| text.to_owned())
        .map_err(|_| EXPECTED)
}

pub fn log_format(raw: &str) -> ParseResult<LogFormat> {
    match raw.trim() {
        "pretty" => Ok(LogFormat::Pretty),
        "json" => Ok(LogFormat::Json),
        _ => Err("`pretty` or `json`"),
    }
}

/// Frames per second to sample: from 0.1 to 30.
pub fn sample_rate(raw: &str) -> ParseResult<f64> {
    const EXPECTED: &str = "frames per second from 0.1 to 30";
    let rate: f64 = raw.trim().parse().map_err(|_| EXPECTED)?;
    if !(0.1..=30.0).contains(&rate) {
        return Err(EXPECTED);
    }
    Ok(rate)
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

/// A whole number from 0 to 64.
pub fn count_or_zero(raw: &str) -> ParseResult<u32> {
    const EXPECTED: &str = "a whole number from 0 to 64";
    let n: u32 = raw.trim().parse().map_err(|_| EXPECTED)?;
    if n > 64 {
        return Err(EXPECTED);
    }
    Ok(n)
}

/// The JWT signing key: HS256 is only as strong as its key.
pub fn jwt_secret(raw: &str) -> ParseResult<Secret> {
    let secret = secret(raw)?;
    if secret.expose().len() < crate::auth::keys::MIN_SECRET_LEN {
        return Err("at least 32 characters");
    }
    Ok(secret)
}
