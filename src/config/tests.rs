//! The layering rules and the refusals, through the same `load` the binary uses.

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, LogFormat, Settings, Source};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load(None, &env(pairs)).map(|(settings, _)| settings)
}

fn config_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("reelbase-config-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn defaults_match_the_documented_contract() {
    let settings = load(&[]).unwrap();

    assert_eq!(settings.bind.to_string(), "127.0.0.1:3002");
    assert_eq!(
        settings.database_url.expose().as_str(),
        "postgres:///reelbase"
    );
    assert_eq!(
        settings.redis_url.expose().as_str(),
        "redis://127.0.0.1:6379"
    );
    assert_eq!(settings.media_roots, vec![PathBuf::from("./data/media")]);
    assert_eq!(settings.identities_dir, PathBuf::from("./data/identities"));
    assert_eq!(settings.health_interval, Duration::from_millis(5000));
    assert_eq!(settings.health_timeout, Duration::from_millis(2000));
    assert_eq!(settings.log_format, LogFormat::Pretty);
    assert!(settings.qdrant_url.is_none() && !settings.tmdb_enabled);
}

#[test]
fn environment_overrides_file_which_overrides_defaults() {
    let file = config_file("layers.toml", "bind = \"0.0.0.0:9000\"\nlog = \"debug\"\n");

    let (settings, _) =
        Settings::load(Some(file.clone()), &env(&[("REELBASE_LOG", "warn")])).unwrap();

    assert_eq!(settings.bind.to_string(), "0.0.0.0:9000");
    assert_eq!(settings.source_of("bind"), Some(&Source::File(file)));
    assert_eq!(settings.log, "warn");
    assert_eq!(settings.source_of("log"), Some(&Source::Env));
    assert_eq!(settings.source_of("redis_url"), Some(&Source::Default));
}

#[test]
fn config_file_can_come_from_reelbase_config() {
    let file = config_file("from-env.toml", "health_interval_ms = 750\n");

    let settings = load(&[("REELBASE_CONFIG", file.to_str().unwrap())]).unwrap();

    assert_eq!(settings.health_interval, Duration::from_millis(750));
}

#[test]
fn media_roots_and_identities_follow_the_data_dir() {
    let settings = load(&[("REELBASE_DATA_DIR", "/srv/reel")]).unwrap();
    assert_eq!(settings.media_roots, vec![PathBuf::from("/srv/reel/media")]);
    assert_eq!(
        settings.identities_dir,
        PathBuf::from("/srv/reel/identities")
    );

    let roots = load(&[("REELBASE_MEDIA_ROOTS", "/a:/b")])
        .unwrap()
        .media_roots;
    assert_eq!(roots, vec![PathBuf::from("/a"), PathBuf::from("/b")]);
}

#[test]
fn a_list_in_the_file_is_a_list_of_media_roots() {
    let file = config_file("roots.toml", "media_roots = [\"/x\", \"/y\"]\n");

    let (settings, _) = Settings::load(Some(file), &[]).unwrap();

    assert_eq!(
        settings.media_roots,
        vec![PathBuf::from("/x"), PathBuf::from("/y")]
    );
}

#[test]
fn an_empty_variable_unsets_an_optional_value() {
    let file = config_file("unset.toml", "qdrant_url = \"http://127.0.0.1:6333\"\n");

    let (settings, _) = Settings::load(Some(file), &env(&[("REELBASE_QDRANT_URL", "")])).unwrap();

    assert!(settings.qdrant_url.is_none());
}

#[test]
fn invalid_values_name_the_variable_and_what_was_expected() {
    let cases = [
        ("REELBASE_BIND", "localhost", "IP address and port"),
        ("REELBASE_DATABASE_URL", "mysql://db/x", "postgres://"),
        ("REELBASE_REDIS_URL", "not a url", "redis://"),
        ("REELBASE_QDRANT_URL", "qdrant:6333", "http://"),
        ("REELBASE_TMDB_ENABLED", "maybe", "true or false"),
        ("REELBASE_HEALTH_INTERVAL_MS", "0", "milliseconds"),
        ("REELBASE_HEALTH_TIMEOUT_MS", "-5", "milliseconds"),
        ("REELBASE_LOG_FORMAT", "xml", "`pretty` or `json`"),
        ("REELBASE_LOG", "info,[[", "log filter"),
    ];
    for (name, value, expected) in cases {
        let message = load(&[(name, value)]).unwrap_err().to_string();
        assert!(message.starts_with(name), "{name}: {message}");
        assert!(message.contains(expected), "{name}: {message}");
    }
}

#[test]
fn an_invalid_file_value_names_the_key_and_the_file() {
    let file = config_file("bad.toml", "health_timeout_ms = \"soon\"\n");

    let error = Settings::load(Some(file.clone()), &[])
        .unwrap_err()
        .to_string();

    assert!(error.contains("`health_timeout_ms`"), "{error}");
    assert!(error.contains(&file.display().to_string()), "{error}");
}

#[test]
fn unknown_file_keys_are_refused_and_unknown_variables_reported() {
    let file = config_file("typo.toml", "bnid = \"127.0.0.1:1\"\n");
    let error = Settings::load(Some(file), &[]).unwrap_err();
    assert!(matches!(error, ConfigError::UnknownKey { ref key, .. } if key == "bnid"));

    let (_, notes) = Settings::load(None, &env(&[("REELBASE_BNID", "x")])).unwrap();
    assert_eq!(notes.unknown_env, vec!["REELBASE_BNID".to_owned()]);
}

#[test]
fn slow_threshold_above_the_timeout_is_refused() {
    let error = load(&[("REELBASE_HEALTH_SLOW_MS", "3000")])
        .unwrap_err()
        .to_string();

    assert!(error.starts_with("REELBASE_HEALTH_SLOW_MS"), "{error}");
}

#[test]
fn errors_never_echo_secret_values() {
    let error = load(&[("REELBASE_DATABASE_URL", "mysql://u:pw-1234@db/x")]).unwrap_err();
    assert!(!error.to_string().contains("pw-1234"), "{error}");

    let rendered = load(&[("REELBASE_TMDB_API_KEY", "key-98765")])
        .unwrap()
        .render_redacted();
    assert!(
        !rendered.contains("key-98765") && rendered.contains("tmdb_api_key"),
        "{rendered}"
    );
}

#[test]
fn a_log_filter_without_a_level_is_refused() {
    for bad in ["warning", "inof", "reelbase", "info,debgu"] {
        let error = load(&[("REELBASE_LOG", bad)]).unwrap_err().to_string();
        assert!(error.starts_with("REELBASE_LOG"), "{bad}: {error}");
    }
    for good in ["warn", "reelbase=debug,sqlx=warn", "info,tower=off"] {
        assert!(load(&[("REELBASE_LOG", good)]).is_ok(), "{good}");
    }
}

#[test]
fn connection_urls_the_drivers_would_reject_are_refused_at_load() {
    let cases = [
        (
            "REELBASE_DATABASE_URL",
            "postgres://db/x?sslpassword=pw-4411",
        ),
        ("REELBASE_DATABASE_URL", "postgres://db/x?sslmode=bogus"),
        (
            "REELBASE_DATABASE_URL",
            "postgres://127.0.0.1:99999/x?password=pw-4411",
        ),
        ("REELBASE_REDIS_URL", "redis://127.0.0.1:6379/notanumber"),
        ("REELBASE_REDIS_URL", "rediss://127.0.0.1:6380"),
    ];
    for (name, value) in cases {
        let error = load(&[(name, value)]).unwrap_err().to_string();
        assert!(error.starts_with(name), "{value}: {error}");
        assert!(!error.contains("pw-4411"), "{error}");
    }
}

#[test]
fn placeholders_pasted_back_from_config_output_are_refused() {
    let cases = [
        ("REELBASE_JWT_SECRET", "[redacted]"),
        ("REELBASE_DATABASE_URL", "postgres://reel:***@db/reel"),
    ];
    for (name, value) in cases {
        let error = load(&[(name, value)]).unwrap_err().to_string();
        assert!(error.contains("placeholder"), "{name}: {error}");
    }
}

#[test]
fn file_values_of_the_wrong_type_are_refused() {
    for (name, text) in [
        ("secret-number.toml", "jwt_secret = 12345\n"),
        ("dir-list.toml", "data_dir = [\"/a\", \"/b\"]\n"),
        ("empty-roots.toml", "media_roots = []\n"),
        ("url-number.toml", "qdrant_url = 6333\n"),
    ] {
        let error = Settings::load(Some(config_file(name, text)), &[]).unwrap_err();
        assert!(
            matches!(error, ConfigError::Invalid { .. }),
            "{name}: {error}"
        );
    }
}

#[test]
fn toml_syntax_errors_say_where() {
    let file = config_file(
        "syntax.toml",
        "bind = \"127.0.0.1:1\"\nbind = \"127.0.0.1:2\"\n",
    );

    let error = Settings::load(Some(file), &[]).unwrap_err().to_string();

    assert!(error.contains("line 2"), "{error}");
}

#[test]
fn every_url_is_shown_with_its_credentials_masked() {
    let settings = load(&[
        ("REELBASE_QDRANT_URL", "http://qd:qdrant-pw@127.0.0.1:6333"),
        (
            "REELBASE_SFTPGO_URL",
            "http://admin:sftp-pw@127.0.0.1:8080/",
        ),
        ("REELBASE_TMDB_BASE_URL", "https://tm:tmdb-key@127.0.0.1/x"),
    ])
    .unwrap();

    let shown = format!("{}{settings:?}", settings.render_redacted());

    // A base URL with a query string is refused (it would be joined wrongly), without
    // echoing what the query held.
    let refused = load(&[(
        "REELBASE_SFTPGO_URL",
        "http://127.0.0.1:8080/?token=sftp-token",
    )])
    .unwrap_err()
    .to_string();
    assert!(
        refused.contains("REELBASE_SFTPGO_URL") && !refused.contains("sftp-token"),
        "{refused}"
    );

    for secret in ["qdrant-pw", "sftp-pw", "tmdb-key"] {
        assert!(!shown.contains(secret), "{secret} shown:\n{shown}");
    }
}

#[test]
fn an_empty_reelbase_config_means_no_file() {
    assert!(load(&[("REELBASE_CONFIG", "")]).is_ok());
}
