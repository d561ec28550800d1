//! Every error response has the same JSON shape, whichever layer produced it.

use crate::helpers::spawn_app;

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

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = spawn_app().await;

    let (status, body) = app.get_json("/no/such/route").await;

    assert_eq!(status, 404);
    assert_error_body(&body, "not_found");
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
    let app = spawn_app().await;

    let (status, body) = app.get_json("/nothing?api_key=rb_supersecret").await;

    assert_eq!(status, 404);
    assert!(!body.to_string().contains("supersecret"), "{body}");
}
