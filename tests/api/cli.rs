//! The user, key and migration commands as an operator runs them, and what the server logs
//! while people log in and call it: never a password, token, cookie or key.

use std::io::Write;
use std::process::{Output, Stdio};

use crate::helpers::TestDb;
use crate::helpers::process::{Served, reelbase};

/// Runs `reelbase ARGS` against `db`, with `stdin` piped in.
fn run(db: &TestDb, args: &[&str], stdin: &str) -> Output {
    let mut child = reelbase()
        .args(args)
        .env("REELBASE_DATABASE_URL", db.socket_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn first_admin_is_created_from_the_cli_with_the_password_on_stdin() {
    let db = TestDb::create().await;

    let created = run(
        &db,
        &["user", "create", "root-admin", "--role", "admin"],
        "Adm1n-pass-phrase\n",
    );
    let duplicate = run(&db, &["user", "create", "ROOT-ADMIN"], "another-password\n");
    let listed = run(&db, &["user", "list"], "");

    assert!(created.status.success(), "{}", text(&created.stderr));
    assert_eq!(
        duplicate.status.code(),
        Some(64),
        "{}",
        text(&duplicate.stderr)
    );
    assert!(text(&duplicate.stderr).contains("already exists"));
    assert_eq!(text(&listed.stdout).trim(), "root-admin\tadmin\tactive");
}

#[tokio::test]
async fn passwords_are_never_taken_from_arguments_and_short_ones_are_refused() {
    let db = TestDb::create().await;

    let as_argument = run(&db, &["user", "create", "ana", "Sup3r-secret-pw"], "");
    let too_short = run(&db, &["user", "create", "ana"], "short\n");
    let listed = run(&db, &["user", "list"], "");

    assert_eq!(
        as_argument.status.code(),
        Some(2),
        "clap refuses the extra argument"
    );
    assert!(!too_short.status.success());
    assert!(
        text(&too_short.stderr).contains("at least 8"),
        "{}",
        text(&too_short.stderr)
    );
    assert_eq!(text(&listed.stdout).trim(), "", "nobody was created");
}

#[tokio::test]
async fn api_keys_are_printed_once_listed_without_the_key_and_revoked() {
    let db = TestDb::create().await;
    run(&db, &["user", "create", "ana"], "long-enough-password\n");

    let created = run(
        &db,
        &["apikey", "create", "--user", "ana", "--name", "laptop"],
        "",
    );
    let key = text(&created.stdout).trim().to_owned();
    let listed = text(&run(&db, &["apikey", "list"], "").stdout);
    let revoked = run(&db, &["apikey", "revoke", "1"], "");
    let listed_after = text(&run(&db, &["apikey", "list", "--user", "ana"], "").stdout);
    let unknown_user = run(&db, &["apikey", "create", "--user", "ghost"], "");

    assert!(key.starts_with("rbk_") && key.len() > 40, "{key}");
    assert!(
        listed.contains("laptop") && listed.contains("live"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "the key is shown once only");
    assert!(revoked.status.success());
    assert!(listed_after.contains("revoked"), "{listed_after}");
    assert!(!unknown_user.status.success());
}

#[tokio::test]
async fn migrate_status_reports_what_is_applied_and_required() {
    let db = TestDb::create().await;

    let before = run(&db, &["migrate", "--status"], "");
    let migrate = run(&db, &["migrate"], "");
    let after = run(&db, &["migrate", "--status"], "");

    assert_eq!(before.status.code(), Some(1), "not ok before migrating");
    assert!(text(&before.stdout).contains(
        "required (8): 0001_users_and_auth.sql, 0002_identities.sql, 0003_files.sql, \
         0004_jobs.sql, 0005_search.sql, 0006_vectors.sql, 0007_faces.sql, 0008_visual.sql"
    ));
    assert!(text(&migrate.stdout).contains("applied 0001_users_and_auth.sql"));
    assert!(after.status.success());
    assert!(
        text(&after.stdout).contains("schema: ok"),
        "{}",
        text(&after.stdout)
    );
}

#[tokio::test]
async fn no_secret_reaches_the_logs_while_people_log_in_and_call_the_api() {
    let db = TestDb::create().await;
    run(
        &db,
        &["user", "create", "ana", "--role", "admin"],
        "Pw-in-the-logs-7781\n",
    );
    let key = text(&run(&db, &["apikey", "create", "--user", "ana"], "").stdout)
        .trim()
        .to_owned();
    let mut served = Served::start(&[
        ("REELBASE_DATABASE_URL", &db.socket_url()),
        ("REELBASE_API_KEY_IN_QUERY", "true"),
        ("REELBASE_REDIS_PREFIX", &format!("{}:", db.name)),
    ]);
    let addr = served.wait_for("listening")["addr"]
        .as_str()
        .unwrap()
        .to_owned();
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://{addr}{path}");

    let login = |password: &'static str| {
        let body = serde_json::json!({"username": "ana", "password": password});
        client.post(url("/api/v1/auth/login")).json(&body).send()
    };
    login("Wrong-guess-5512").await.unwrap();
    let ok = login("Pw-in-the-logs-7781").await.unwrap();
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("session_id=")
        .to_owned();
    let jwt = ok.json::<serde_json::Value>().await.unwrap()["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    client
        .get(url("/health/detailed"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    client
        .get(url("/health/detailed"))
        .header("x-api-key", &key)
        .send()
        .await
        .unwrap();
    client
        .get(url(&format!("/health/detailed?api_key={key}")))
        .send()
        .await
        .unwrap();
    client
        .get(url(&format!("/nope?api_key={key}")))
        .send()
        .await
        .unwrap();
    client
        .get(url("/health/detailed"))
        .header("cookie", format!("session_id={session}"))
        .send()
        .await
        .unwrap();
    client
        .post(url("/api/v1/auth/logout"))
        .bearer_auth(&jwt)
        .send()
        .await
        .unwrap();
    served.sigterm();
    served.wait_exit();

    let output = served.all_output();
    assert!(
        output.contains("user logged in"),
        "the login is logged:\n{output}"
    );
    assert!(
        output.contains("request finished"),
        "requests are logged at debug:\n{output}"
    );
    for secret in [
        "Pw-in-the-logs-7781",
        "Wrong-guess-5512",
        &key,
        &jwt,
        &session,
    ] {
        assert!(
            !output.contains(secret),
            "{secret} leaked into the logs:\n{output}"
        );
    }
}
