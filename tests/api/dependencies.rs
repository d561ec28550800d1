//! The monitor notices a dependency going away, and reelbase recovers when it comes back,
//! without a restart. Every failure is staged on a copy the test owns.

use std::time::{Duration, Instant};

use reelbase::health::{Fault, Status};

use crate::helpers::{PgProxy, ProxyMode, RedisServer, SilentListener, TestApp, spawn_app_with};

async fn public_status(app: &TestApp) -> String {
    let (code, body) = app.get_json("/health").await;
    assert_eq!(code, 200, "/health answers 200 whatever the state: {body}");
    body["status"].as_str().unwrap().to_owned()
}

/// `/health/ready` and its body agree, and `/health/live` stays 200.
async fn assert_readiness(app: &TestApp, ready: bool) {
    let (code, body) = app.get_json("/health/ready").await;
    let expected = if ready {
        (200, "ok")
    } else {
        (503, "unavailable")
    };
    assert_eq!((code, body["status"].as_str().unwrap()), expected, "{body}");
    let (live, _) = app.get_json("/health/live").await;
    assert_eq!(live, 200);
}

#[tokio::test]
async fn redis_stopping_degrades_health_within_one_interval_and_recovery_needs_no_restart() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let app = spawn_app_with(|s| s.redis_url = reelbase_url(&url)).await;
    assert_eq!(public_status(&app).await, "ok");

    redis.stop();
    let snapshot = app.fresh_snapshot().await;

    let service = snapshot.service("redis").unwrap();
    assert_eq!(service.status, Status::Error);
    assert_eq!(service.error, Some(Fault::Refused));
    assert_eq!(public_status(&app).await, "degraded");
    assert_readiness(&app, false).await;

    redis.restart();
    let snapshot = app.fresh_snapshot().await;

    assert_eq!(snapshot.service("redis").unwrap().status, Status::Ok);
    assert_eq!(public_status(&app).await, "ok");
    assert_readiness(&app, true).await;
}

#[tokio::test]
async fn postgres_down_at_start_still_serves_and_recovers_when_it_comes_back() {
    let proxy = PgProxy::start(ProxyMode::Refuse).await;
    let app = spawn_app_with(|s| s.database_url = db_url(&proxy, s)).await;

    let postgres = *app.health.latest().service("postgres").unwrap();
    assert_eq!(
        (postgres.status, postgres.error),
        (Status::Error, Some(Fault::Refused))
    );
    assert_eq!(public_status(&app).await, "degraded");
    assert_readiness(&app, false).await;

    proxy.set(ProxyMode::Forward).await;
    // The migrations are retried in the background once PostgreSQL answers, and may take
    // longer than one health round (creating pgvector's extension and indexes does).
    let snapshot = app.snapshot_where(|s| s.is_ready()).await;

    assert_eq!(snapshot.service("postgres").unwrap().status, Status::Ok);
    assert_eq!(public_status(&app).await, "ok");
    assert_readiness(&app, true).await;
}

#[tokio::test]
async fn postgres_going_away_degrades_health_and_its_return_restores_it() {
    let proxy = PgProxy::start(ProxyMode::Forward).await;
    let app = spawn_app_with(|s| s.database_url = db_url(&proxy, s)).await;
    assert_eq!(public_status(&app).await, "ok");

    proxy.set(ProxyMode::Refuse).await;
    let snapshot = app.fresh_snapshot().await;

    assert_eq!(snapshot.service("postgres").unwrap().status, Status::Error);
    assert_eq!(public_status(&app).await, "degraded");
    assert_readiness(&app, false).await;

    proxy.set(ProxyMode::Forward).await;
    app.fresh_snapshot().await;

    assert_eq!(public_status(&app).await, "ok");
    assert_readiness(&app, true).await;
}

#[tokio::test]
async fn silent_redis_times_out_in_the_snapshot_while_health_answers_at_once() {
    let silent = SilentListener::start().await;
    let url = format!("redis://127.0.0.1:{}", silent.port);
    let app = spawn_app_with(|s| {
        s.redis_url = reelbase_url(&url);
        s.health_timeout = Duration::from_millis(1500);
    })
    .await;

    let redis = *app.health.latest().service("redis").unwrap();
    assert_eq!(
        (redis.status, redis.error),
        (Status::Error, Some(Fault::Timeout))
    );
    assert!(
        redis.latency_ms >= 1500,
        "gave up only after the timeout: {redis:?}"
    );
    assert_health_answers_while_checks_hang(&app).await;
}

#[tokio::test]
async fn silent_postgres_times_out_in_the_snapshot_while_health_answers_at_once() {
    let proxy = PgProxy::start(ProxyMode::Silent).await;
    let app = spawn_app_with(|s| {
        s.database_url = db_url(&proxy, s);
        s.health_timeout = Duration::from_millis(1500);
    })
    .await;

    let postgres = *app.health.latest().service("postgres").unwrap();
    assert_eq!(
        (postgres.status, postgres.error),
        (Status::Error, Some(Fault::Timeout))
    );
    assert_health_answers_while_checks_hang(&app).await;
}

/// While a round is stuck on a silent dependency (1.5 s timeout), `/health` answers from the
/// last snapshot instead of waiting for the check: far sooner than the timeout.
async fn assert_health_answers_while_checks_hang(app: &TestApp) {
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(public_status(app).await, "degraded");
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(500),
            "/health waited on a check: {took:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // spread calls over a round
    }
}

fn reelbase_url(text: &str) -> reelbase::config::ServiceUrl {
    reelbase::config::ServiceUrl::new(url::Url::parse(text).unwrap())
}

fn db_url(proxy: &PgProxy, settings: &reelbase::config::Settings) -> reelbase::config::ServiceUrl {
    let database = settings
        .database_url
        .expose()
        .path()
        .trim_start_matches('/')
        .to_owned();
    reelbase_url(&proxy.url(&database))
}
