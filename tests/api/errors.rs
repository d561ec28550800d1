//! Every error response has the same JSON shape, whichever layer produced it.

use reelbase::db::users::Role;
use serde_json::Value;

use crate::helpers::{spawn_app, spawn_app_with_key};

fn assert_error_body(body: &serde_json::Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only `error` at the top: {body}"
    );
}

async fn get_with_key(app: &crate::helpers::TestApp, key: &str, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(app.url(path))
        .header("x-api-key", key)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn unknown_route_is_a_json_404_for_an_authenticated_caller() {
    let (app, key) = spawn_app_with_key(Role::User, |_| {}).await;

    let (status, body) = get_with_key(&app, &key, "/no/such/route").await;

    assert_eq!(status, 404);
    assert_error_body(&body, "not_found");
}

#[tokio::test]
async fn unknown_route_is_a_json_401_for_anyone_else() {
    let app = spawn_app().await;

    let (status, body) = app.get_json("/no/such/route").await;

    assert_eq!(status, 401);
    assert_error_body(&body, "unauthorized");
}

#[tokio::test]
async fn wrong_method_is_a_json_405_with_allow_header() {
    let app = spawn_app().await;

    let response = app.client.post(app.url("/health")).send().await.unwrap();

    assert_eq!(response.status(), 405);
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    assert!(allow.contains("GET"), "Allow: {allow}");
    assert_error_body(&response.json().await.unwrap(), "method_not_allowed");
}

#[tokio::test]
async fn error_messages_never_echo_the_query_string() {
    let (app, key) = spawn_app_with_key(Role::User, |_| {}).await;

    let (status, body) = get_with_key(&app, &key, "/nothing?token=rb_supersecret").await;

    assert_eq!(status, 404);
    assert!(!body.to_string().contains("supersecret"), "{body}");
}
