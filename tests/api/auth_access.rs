//! Who gets in: the three ways in, and every way of being refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reelbase::auth::jwt::{Claims, JwtKey};
use reelbase::config::Secret;
use reelbase::db::users::{self, Role};
use reqwest::RequestBuilder;
use serde_json::Value;

use crate::helpers::{TestApp, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery";
const JWT_SECRET: &str = "a-test-signing-key-that-is-long-enough-0123";

async fn app_with_user(role: Role) -> TestApp {
    let app = spawn_app_with(|s| s.jwt_secret = Some(Secret::new(JWT_SECRET))).await;
    app.create_user("ana", PASSWORD, role).await;
    app
}

async fn status_and_body(request: RequestBuilder) -> (u16, Value) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn assert_refused(result: &(u16, Value), why: &str) {
    assert_eq!(result.0, 401, "{why}: {}", result.1);
    assert_eq!(result.1["error"]["code"], "unauthorized", "{why}");
}

#[tokio::test]
async fn each_of_the_three_credentials_reaches_detailed_health() {
    let app = app_with_user(Role::User).await;
    let (jwt, cookie) = app.login("ana", PASSWORD).await;
    let key = app.api_key("ana").await;
    let url = app.url("/health/detailed");

    let ways = [
        (
            "session",
            app.client
                .get(&url)
                .header("cookie", format!("session_id={cookie}")),
        ),
        ("jwt", app.client.get(&url).bearer_auth(&jwt)),
        ("api_key", app.client.get(&url).header("x-api-key", &key)),
    ];
    for (method, request) in ways {
        let (status, body) = status_and_body(request).await;
        assert_eq!(status, 200, "{method}: {body}");
        assert_eq!(body["status"], "ok", "{method}");
        assert_eq!(body["services"]["postgres"]["status"], "ok", "{method}");
        assert_eq!(body["schema"]["ok"], true, "{method}");
    }
}

#[tokio::test]
async fn me_says_who_is_calling_and_how() {
    let app = app_with_user(Role::Admin).await;
    let (jwt, cookie) = app.login("ana", PASSWORD).await;
    let key = app.api_key("ana").await;
    let url = app.url("/api/v1/auth/me");

    let session = app
        .client
        .get(&url)
        .header("cookie", format!("theme=dark; session_id={cookie}"));
    for (method, request) in [
        ("session", session),
        ("jwt", app.client.get(&url).bearer_auth(&jwt)),
        ("api_key", app.client.get(&url).header("x-api-key", &key)),
    ] {
        let (_, body) = status_and_body(request).await;
        let expected =
            serde_json::json!({"username": "ana", "role": "admin", "auth_method": method});
        assert_eq!(body, expected);
    }
}

#[tokio::test]
async fn the_first_credential_present_decides_even_when_a_later_one_is_valid() {
    let app = app_with_user(Role::User).await;
    let key = app.api_key("ana").await;

    let request = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("cookie", "session_id=forged")
        .header("x-api-key", &key);

    assert_refused(
        &status_and_body(request).await,
        "an invalid cookie is not skipped",
    );
}

#[tokio::test]
async fn anonymous_callers_get_401_with_www_authenticate() {
    let app = spawn_app().await;

    let response = app.get("/health/detailed").await;

    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
}

#[tokio::test]
async fn spellings_of_private_paths_never_bypass_authentication() {
    let app = spawn_app().await;

    for path in [
        "/health/detailed",
        "/health/detailed/",
        "/HEALTH/detailed",
        "/Health/Detailed",
        "/health%2Fdetailed",
        "/health%2fdetailed",
        "/health/%64etailed",
        "//health/detailed",
        "/health//detailed",
        "/health/./detailed",
        "/api/v1/auth/me/",
        "/api/v1/auth/api-keys",
        "/no/such/path",
    ] {
        let (status, body) = status_and_body(app.client.get(app.url(path))).await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    // A wrong method must not reveal that a private path exists (405 would).
    for path in [
        "/health/detailed",
        "/metrics",
        "/api/v1/auth/me",
        "/api/v1/auth/api-keys/1",
    ] {
        let (status, body) = status_and_body(app.client.post(app.url(path))).await;
        assert_eq!(status, 401, "POST {path}: {body}");
    }
}

#[tokio::test]
async fn forged_and_broken_tokens_are_refused() {
    let app = app_with_user(Role::Admin).await;
    let (jwt, _) = app.login("ana", PASSWORD).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let claims = |exp: i64| Claims {
        sub: "ana".into(),
        role: "admin".into(),
        jti: format!("test-{exp}"),
        exp,
        iat: now - 10,
    };
    let [head, body, signature]: [&str; 3] = jwt.split('.').collect::<Vec<_>>().try_into().unwrap();
    let none_head = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let flipped = format!("{head}.{body}.{}", flip_last_char(signature));

    let cases = [
        ("tampered signature", flipped),
        ("alg none", format!("{none_head}.{body}.")),
        (
            "wrong key",
            JwtKey::new(Secret::new("another-key-entirely-0123456789ab")).sign(&claims(now + 600)),
        ),
        (
            "expired",
            JwtKey::new(Secret::new(JWT_SECRET)).sign(&claims(now - 1)),
        ),
        ("malformed", "not.a.jwt".to_owned()),
        ("empty", String::new()),
    ];
    for (why, token) in cases {
        let request = app
            .client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(token);
        assert_refused(&status_and_body(request).await, why);
    }
    let valid = JwtKey::new(Secret::new(JWT_SECRET)).sign(&claims(now + 600));
    let request = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(valid);
    assert_eq!(
        status_and_body(request).await.0,
        200,
        "a token signed with the key works"
    );
}

fn flip_last_char(text: &str) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let last = chars.pop().unwrap();
    chars.push(if last == 'A' { 'B' } else { 'A' });
    chars.into_iter().collect()
}

#[tokio::test]
async fn non_bearer_authorization_is_refused() {
    let app = app_with_user(Role::User).await;

    let basic = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .basic_auth("ana", Some(PASSWORD));

    assert_refused(&status_and_body(basic).await, "basic auth");
}

#[tokio::test]
async fn wrong_revoked_and_expired_api_keys_are_refused() {
    let app = app_with_user(Role::User).await;
    let revoked = app.api_key("ana").await;
    let expired = app.api_key("ana").await;
    sqlx::query("UPDATE api_keys SET revoked_at = now() WHERE id = 1")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = 2")
        .execute(&app.pool)
        .await
        .unwrap();

    for (why, key) in [
        (
            "unknown",
            "rbk_thisKeyWasNeverIssuedToAnyone0000000000000".to_owned(),
        ),
        ("revoked", revoked),
        ("expired", expired),
    ] {
        let request = app
            .client
            .get(app.url("/api/v1/auth/me"))
            .header("x-api-key", key);
        assert_refused(&status_and_body(request).await, why);
    }
}

#[tokio::test]
async fn a_disabled_user_is_refused_every_way_in() {
    let app = app_with_user(Role::User).await;
    let (jwt, cookie) = app.login("ana", PASSWORD).await;
    let key = app.api_key("ana").await;

    users::set_disabled(&app.pool, "ana", true).await.unwrap();

    let url = app.url("/api/v1/auth/me");
    for (why, request) in [
        (
            "session",
            app.client
                .get(&url)
                .header("cookie", format!("session_id={cookie}")),
        ),
        ("jwt", app.client.get(&url).bearer_auth(&jwt)),
        ("api key", app.client.get(&url).header("x-api-key", &key)),
    ] {
        assert_refused(&status_and_body(request).await, why);
    }
}

#[tokio::test]
async fn api_key_in_the_query_string_works_only_when_enabled() {
    let off = app_with_user(Role::User).await;
    let key = off.api_key("ana").await;
    let refused = status_and_body(
        off.client
            .get(off.url(&format!("/api/v1/auth/me?api_key={key}"))),
    );
    assert_refused(&refused.await, "query keys are off by default");

    let on = spawn_app_with(|s| s.api_key_in_query = true).await;
    on.create_user("ana", PASSWORD, Role::User).await;
    let key = on.api_key("ana").await;
    let (status, body) = status_and_body(
        on.client
            .get(on.url(&format!("/api/v1/auth/me?x=1&api_key={key}"))),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["auth_method"], "api_key");
}

#[tokio::test]
async fn admins_manage_api_keys_through_the_api() {
    let app = app_with_user(Role::Admin).await;
    app.create_user("bo", PASSWORD, Role::User).await;
    let admin = app.api_key("ana").await;
    let keys_url = app.url("/api/v1/auth/api-keys");

    let created = app
        .client
        .post(&keys_url)
        .header("x-api-key", &admin)
        .json(&serde_json::json!({"username": "bo", "name": "ingest", "expires_days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("rbk_"), "{key}");
    assert_eq!(created["username"], "bo");

    let bo_me = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("x-api-key", &key);
    assert_eq!(status_and_body(bo_me).await.1["username"], "bo");

    let (_, listed) = status_and_body(app.client.get(&keys_url).header("x-api-key", &admin)).await;
    assert_eq!(listed["api_keys"].as_array().unwrap().len(), 2);
    assert!(
        !listed.to_string().contains(&key),
        "listings never show a key"
    );

    let id = created["id"].as_i64().unwrap();
    let revoke = app
        .client
        .delete(format!("{keys_url}/{id}"))
        .header("x-api-key", &admin);
    assert_eq!(status_and_body(revoke).await.0, 200);
    let again = app
        .client
        .delete(format!("{keys_url}/{id}"))
        .header("x-api-key", &admin);
    assert_eq!(status_and_body(again).await.0, 404);
    let bo_me = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .header("x-api-key", &key);
    assert_refused(&status_and_body(bo_me).await, "revoked through the API");
}

#[tokio::test]
async fn non_admins_cannot_manage_api_keys() {
    let app = app_with_user(Role::User).await;
    let key = app.api_key("ana").await;
    let keys_url = app.url("/api/v1/auth/api-keys");

    let list = status_and_body(app.client.get(&keys_url).header("x-api-key", &key)).await;
    let create = app
        .client
        .post(&keys_url)
        .header("x-api-key", &key)
        .json(&serde_json::json!({}));
    let create = status_and_body(create).await;

    assert_eq!((list.0, create.0), (403, 403));
    assert_eq!(list.1["error"]["code"], "forbidden");
}

#[tokio::test]
async fn bad_api_key_requests_get_clear_4xx_errors() {
    let app = app_with_user(Role::Admin).await;
    let admin = app.api_key("ana").await;
    let keys_url = app.url("/api/v1/auth/api-keys");
    let post = |body: Value| {
        app.client
            .post(&keys_url)
            .header("x-api-key", &admin)
            .json(&body)
    };

    let unknown_user = status_and_body(post(serde_json::json!({"username": "ghost"}))).await;
    let bad_days = status_and_body(post(serde_json::json!({"expires_days": 0}))).await;
    let bad_id = app
        .client
        .delete(format!("{keys_url}/abc"))
        .header("x-api-key", &admin);

    assert_eq!(unknown_user.0, 404);
    assert_eq!(bad_days.0, 400);
    assert_eq!(status_and_body(bad_id).await.0, 400);
}
