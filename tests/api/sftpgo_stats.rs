//! `GET /api/v1/stats/sftpgo` against a loopback stub of SFTPGo's admin API: unconfigured,
//! healthy (password or API key), refusing our credentials, down, failing and slow; the answer
//! shared by a burst of callers; the admin token kept, and replaced when revoked; and the
//! count of recent uploads, from PostgreSQL.

use std::time::{Duration, Instant};

use reelbase::api::stats::SHARE_FOR;
use reelbase::config::{Secret, ServiceUrl, Settings};
use reelbase::health::Fault;
use reelbase::integrations::sftpgo::{AdminAccess, Credentials, Sftpgo};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::stubs::{Behaviour, SftpgoRequests, SftpgoStub};
use crate::helpers::{PgProxy, ProxyMode, SilentListener, TestApp, free_port, spawn_app_with};

const USER: &str = "reelbase-admin";
const PASSWORD: &str = "sftpgo-pw-5c1e";
const API_KEY: &str = "6ajKLwswLccVBGpZGv596G.ySAXc8vtp9hMiwAuaLtzof";

fn url(text: &str) -> ServiceUrl {
    ServiceUrl::new(url::Url::parse(text).unwrap())
}

fn with_password(base: &str, password: &str) -> impl FnOnce(&mut Settings) {
    let (base, password) = (url(base), Secret::new(password));
    move |s| {
        s.sftpgo_url = Some(base);
        s.sftpgo_user = Some(USER.to_owned());
        s.sftpgo_password = Some(password);
    }
}

fn with_api_key(base: &str, key: &str) -> impl FnOnce(&mut Settings) {
    let (base, key) = (url(base), Secret::new(key));
    move |s| {
        s.sftpgo_url = Some(base);
        s.sftpgo_api_key = Some(key);
    }
}

/// The answer as text (to look for leaks) and parsed; it is always a 200.
async fn stats(app: &TestApp) -> (String, Value) {
    let response = app.get("/api/v1/stats/sftpgo").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).expect("a JSON body");
    (text, value)
}

fn services(ssh: bool, ftp: bool, webdav: bool, data_provider: bool) -> Value {
    json!({
        "ssh": {"is_active": ssh},
        "ftp": {"is_active": ftp},
        "webdav": {"is_active": webdav},
        "data_provider": {"is_active": data_provider},
    })
}

fn requests(healthz: usize, token: usize, status: usize) -> SftpgoRequests {
    SftpgoRequests {
        healthz,
        token,
        status,
    }
}

/// No address and none of `secrets` in the body.
fn assert_no_leak(body: &str, port: u16, secrets: &[&str]) {
    let port = format!(":{port}");
    for forbidden in ["127.0.0.1", "localhost", "http", &port]
        .iter()
        .chain(secrets)
    {
        assert!(!body.contains(forbidden), "{forbidden:?} in {body}");
    }
}

#[tokio::test]
async fn unconfigured_sftpgo_answers_200_saying_so_with_every_field() {
    // Credentials without a URL configure nothing: there is no SFTPGo to ask.
    let app = spawn_app_with(|s| {
        s.sftpgo_user = Some(USER.to_owned());
        s.sftpgo_password = Some(Secret::new(PASSWORD));
    })
    .await;

    let (body, stats) = stats(&app).await;

    let mut keys: Vec<&str> = stats
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    let expected = [
        "auth",
        "checked_at",
        "configured",
        "error",
        "latency_ms",
        "reachable",
        "services",
        "uploads_last_24h",
    ];
    assert_eq!(keys, expected);
    assert_eq!(stats["configured"], false);
    for field in ["reachable", "latency_ms", "error", "services"] {
        assert!(stats[field].is_null(), "{field} in {body}");
    }
    assert_eq!(stats["auth"], "not_configured");
    assert_eq!(stats["uploads_last_24h"], 0);
    let checked_at = stats["checked_at"].as_str().unwrap();
    let format = &time::format_description::well_known::Rfc3339;
    let checked_at = time::OffsetDateTime::parse(checked_at, format).expect("RFC 3339");
    assert!((time::OffsetDateTime::now_utc() - checked_at).abs() < time::Duration::minutes(1));
    assert!(!body.contains(PASSWORD));
}

#[tokio::test]
async fn with_user_and_password_sftpgo_is_reachable_with_its_active_services() {
    let stub = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    stub.set_active(true, false, true, true);
    let app = spawn_app_with(with_password(&stub.url(), PASSWORD)).await;

    let (body, stats) = stats(&app).await;

    assert_eq!(stats["configured"], true);
    assert_eq!(stats["reachable"], true);
    let latency = stats["latency_ms"].as_f64().expect("a latency");
    assert!((0.0..500.0).contains(&latency), "{body}");
    assert_eq!(stats["error"], Value::Null);
    assert_eq!(stats["auth"], "ok");
    assert_eq!(stats["services"], services(true, false, true, true));
    assert_eq!(stub.requests(), requests(1, 1, 1));
    let token = stub.issued_tokens().pop().expect("a token was issued");
    assert_no_leak(&body, stub.addr.port(), &[PASSWORD, USER, &token]);
}

#[tokio::test]
async fn with_an_api_key_no_token_is_fetched_and_provider_error_text_stays_out() {
    let stub = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    stub.set_active(false, true, true, false);
    let app = spawn_app_with(with_api_key(&stub.url(), API_KEY)).await;

    let (body, stats) = stats(&app).await;

    assert_eq!(stats["reachable"], true);
    assert_eq!(stats["auth"], "ok");
    assert_eq!(stats["services"], services(false, true, true, false));
    assert_eq!(stub.requests(), requests(1, 0, 1));
    // The stub's inactive data provider reports "dial tcp 10.1.2.3:5432: ... refused".
    assert_no_leak(
        &body,
        stub.addr.port(),
        &[API_KEY, "10.1.2.3", "dial", "postgresql"],
    );
}

async fn assert_rejected(app: TestApp, stub: &SftpgoStub, expected: SftpgoRequests, secret: &str) {
    let (body, stats) = stats(&app).await;

    assert_eq!(stats["reachable"], true, "{body}");
    assert!(stats["latency_ms"].is_f64());
    assert_eq!(stats["auth"], "rejected");
    assert_eq!(stats["error"], "auth");
    assert_eq!(stats["services"], Value::Null);
    assert_eq!(stub.requests(), expected);
    assert_no_leak(
        &body,
        stub.addr.port(),
        &[secret, PASSWORD, API_KEY, "Unauthorized"],
    );
}

#[tokio::test]
async fn refused_credentials_leave_sftpgo_reachable_without_services() {
    let stub = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    let app = spawn_app_with(with_password(&stub.url(), "not-the-password")).await;
    assert_rejected(app, &stub, requests(1, 1, 0), "not-the-password").await;

    let stub = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    let app = spawn_app_with(with_api_key(&stub.url(), "not-the-key")).await;
    assert_rejected(app, &stub, requests(1, 0, 1), "not-the-key").await;

    // An admin without the permission to view the status gets a 403.
    let stub = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    stub.refuse_status(Some(StatusCode::FORBIDDEN));
    let app = spawn_app_with(with_password(&stub.url(), PASSWORD)).await;
    assert_rejected(app, &stub, requests(1, 1, 1), PASSWORD).await;
}

#[tokio::test]
async fn sftpgo_down_or_failing_is_unreachable_with_its_class() {
    let port = free_port();
    let failing = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    failing.set(Behaviour::ServerError);
    let cases = [
        (format!("http://127.0.0.1:{port}"), port, "refused"),
        (failing.url(), failing.addr.port(), "protocol"),
    ];
    for (base, port, expected) in cases {
        let app = spawn_app_with(with_password(&base, PASSWORD)).await;

        let (body, stats) = stats(&app).await;

        assert_eq!(stats["configured"], true, "{expected}: {body}");
        assert_eq!(stats["reachable"], false);
        assert_eq!(stats["latency_ms"], Value::Null);
        assert_eq!(stats["error"], expected);
        assert_eq!(stats["auth"], "unavailable");
        assert_eq!(stats["services"], Value::Null);
        assert_no_leak(&body, port, &[PASSWORD]);
    }
}

#[tokio::test]
async fn slow_or_silent_sftpgo_times_out_within_the_health_timeout() {
    let timeout = Duration::from_millis(600);
    let slow = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    slow.set(Behaviour::Slow(Duration::from_secs(5)));
    let silent = SilentListener::start().await;
    for base in [slow.url(), format!("http://127.0.0.1:{}", silent.port)] {
        let app = spawn_app_with(|s| {
            with_password(&base, PASSWORD)(s);
            s.health_timeout = timeout;
            s.health_slow = timeout;
        })
        .await;

        let started = Instant::now();
        let (body, stats) = stats(&app).await;
        let took = started.elapsed();

        assert!(
            took < timeout + Duration::from_millis(600),
            "{base}: {took:?}"
        );
        assert_eq!(stats["reachable"], false, "{body}");
        assert_eq!(stats["error"], "timeout");
        assert_eq!(stats["auth"], "unavailable");
        assert_eq!(stats["services"], Value::Null);
    }
}

#[tokio::test]
async fn a_burst_of_callers_shares_one_round_of_requests() {
    let stub = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    stub.set(Behaviour::Slow(Duration::from_millis(150)));
    let app = spawn_app_with(with_password(&stub.url(), PASSWORD)).await;

    let calls: Vec<_> = (0..8)
        .map(|_| {
            let request = app.client.get(app.url("/api/v1/stats/sftpgo"));
            tokio::spawn(async move { request.send().await.unwrap().json::<Value>().await })
        })
        .collect();
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap().unwrap());
    }
    let (_, later) = stats(&app).await;

    assert_eq!(answers[0]["auth"], "ok", "{}", answers[0]);
    assert!(answers.iter().all(|answer| *answer == answers[0]));
    assert_eq!(later, answers[0], "shared within {SHARE_FOR:?}");
    assert_eq!(stub.requests(), requests(1, 1, 1));
}

#[tokio::test]
async fn the_admin_token_is_reused_by_the_next_round() {
    let stub = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    let app = spawn_app_with(with_password(&stub.url(), PASSWORD)).await;

    let (_, first) = stats(&app).await;
    tokio::time::sleep(SHARE_FOR + Duration::from_millis(200)).await;
    let (_, second) = stats(&app).await;

    assert_ne!(first["checked_at"], second["checked_at"], "a new round");
    assert_eq!(second["services"], services(true, true, true, true));
    assert_eq!(stub.requests(), requests(2, 1, 2));
}

fn client(stub: &SftpgoStub) -> Sftpgo {
    let credentials = Credentials::Password {
        user: USER.to_owned(),
        password: Secret::new(PASSWORD),
    };
    Sftpgo::new(url(&stub.url()), credentials, Duration::from_millis(500))
}

#[tokio::test]
async fn a_token_is_kept_until_shortly_before_it_expires() {
    let long_lived = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    let short_lived = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    short_lived.set_token_lifetime(Duration::from_secs(20));

    for stub in [&long_lived, &short_lived] {
        let sftpgo = client(stub);
        for _ in 0..3 {
            assert_eq!(sftpgo.probe().await.admin, AdminAccess::Ok);
        }
    }

    // SFTPGo's usual 20 minutes: one token. 20 seconds is inside the margin: one per round.
    assert_eq!(long_lived.requests(), requests(3, 1, 3));
    assert_eq!(short_lived.requests(), requests(3, 3, 3));
}

#[tokio::test]
async fn a_revoked_token_is_replaced_by_one_new_token() {
    let stub = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    let sftpgo = client(&stub);
    sftpgo.probe().await;

    stub.revoke_tokens();
    let probe = sftpgo.probe().await;

    assert_eq!(probe.admin, AdminAccess::Ok);
    assert_eq!(probe.error, None);
    assert!(probe.services.is_some_and(|s| s.ssh.is_active));
    // The kept token refused once, then a new token and a second status request.
    assert_eq!(stub.requests(), requests(2, 2, 3));
}

#[tokio::test]
async fn a_status_refusing_every_token_costs_one_retry_not_a_loop() {
    let stub = SftpgoStub::start(USER, PASSWORD, API_KEY).await;
    let sftpgo = client(&stub);
    sftpgo.probe().await;
    stub.refuse_status(Some(StatusCode::UNAUTHORIZED));

    let refused = sftpgo.probe().await; // the kept token, then one new one
    let refused_again = sftpgo.probe().await; // a new token, refused: no retry

    for probe in [&refused, &refused_again] {
        assert_eq!(probe.admin, AdminAccess::Rejected);
        assert_eq!(probe.error, Some(Fault::Auth));
        assert!(probe.reachable && probe.services.is_none());
    }
    assert_eq!(stub.requests(), requests(3, 3, 4));
}

async fn insert_file(app: &TestApp, n: usize, source: &str, minutes_ago: i32) {
    sqlx::query(
        "INSERT INTO files (file_uuid, content_hash, file_path, file_name, file_type, \
         container, size_bytes, source, device, inode, mtime_ns, ctime_ns, registered_at) \
         VALUES ($1, $2, $3, $4, 'video', 'mp4', 1024, $5, 1, $6, 0, 0, \
         now() - make_interval(mins => $7))",
    )
    .bind(format!("{n:032x}"))
    .bind(format!("{n:064x}"))
    .bind(format!("/media/upload-{n}.mp4"))
    .bind(format!("upload-{n}.mp4"))
    .bind(source)
    .bind(n as i64)
    .bind(minutes_ago)
    .execute(&app.pool)
    .await
    .expect("insert a file row");
}

#[tokio::test]
async fn uploads_last_24h_counts_only_recent_watcher_and_sftpgo_registrations() {
    let app = spawn_app_with(|_| {}).await;
    let rows = [
        ("watcher", 1),
        ("sftpgo", 23 * 60),
        ("watcher", 10),
        ("api", 1),
        ("cli", 5),
        ("watcher", 25 * 60),
        ("sftpgo", 48 * 60),
    ];
    for (n, (source, minutes_ago)) in rows.into_iter().enumerate() {
        insert_file(&app, n, source, minutes_ago).await;
    }

    let (_, stats) = stats(&app).await;

    assert_eq!(stats["uploads_last_24h"], 3);
}

#[tokio::test]
async fn uploads_are_null_when_postgres_does_not_answer_in_time() {
    let timeout = Duration::from_millis(600);
    let proxy = PgProxy::start(ProxyMode::Silent).await;
    let app = spawn_app_with(|s| {
        let database = s.database_url.expose().path().trim_start_matches('/');
        s.database_url = url(&proxy.url(database));
        s.health_timeout = timeout;
        s.health_slow = timeout;
    })
    .await;

    let started = Instant::now();
    let (_, stats) = stats(&app).await;
    let took = started.elapsed();

    assert_eq!(stats["uploads_last_24h"], Value::Null);
    assert_eq!(stats["configured"], false);
    assert!(took < timeout + Duration::from_millis(600), "{took:?}");
}
