//! The web inbox: end to end in headless Chromium (Debian's, driven by
//! Playwright from tests/python/browser/inbox.py), and the session and CSRF
//! rules over plain HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{TestServer, get, post, token};
use serde_json::json;

fn venv() -> Option<PathBuf> {
    let venv = PathBuf::from(std::env::var_os("SIGNOFF_VENV")?);
    venv.join("bin").join("python").exists().then_some(venv)
}

fn chromium() -> PathBuf {
    std::env::var_os("SIGNOFF_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// The drafter proposes a meal limit of 5000, and 2000 once told why the
/// first was rejected; the validator scores every draft 88.
fn workflow_config(dir: &Path) -> PathBuf {
    let config = dir.join("signoff.yaml");
    std::fs::write(
        &config,
        r#"
agents:
  drafter:
    kind: command
    command:
      - python3
      - -c
      - |
        import json, sys
        task = json.load(sys.stdin)
        limit = 2000 if task.get("previous_rejection") else 5000
        print(json.dumps({"title": "Expense limit update", "description": "Meal limits for Q3.",
                          "changes": {"meals": {"limit": limit, "currency": "EUR"}}}))
  validator:
    kind: command
    command: [sh, -c, 'cat >/dev/null; echo "{\"is_valid\": true, \"score\": 88, \"issues\": [\"meal limit is above the 2025 average\"]}"']
executors:
  apply: { kind: command, command: [sh, -c, 'cat >/dev/null; echo "{\"applied\": true}"'] }
workflows:
  limits: { draft_agent: drafter, validator_agent: validator, executor: apply, max_retries: 2 }
"#,
    )
    .unwrap();
    config
}

#[tokio::test]
async fn a_reviewer_works_the_inbox_in_chromium() {
    let Some(venv) = venv() else {
        assert!(
            std::env::var_os("SIGNOFF_REQUIRE_TOOLS").is_none(),
            "the browser test needs $SIGNOFF_VENV; run scripts/test.sh"
        );
        eprintln!("skipped: no $SIGNOFF_VENV (scripts/test.sh sets it up)");
        return;
    };
    if !chromium().exists() {
        assert!(
            std::env::var_os("SIGNOFF_REQUIRE_TOOLS").is_none(),
            "the browser test needs Chromium at {}; scripts/test.sh installs Debian's",
            chromium().display()
        );
        eprintln!("skipped: no Chromium");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = workflow_config(dir.path());
    let server =
        TestServer::start_with(&["--auth", "on", "--config", config.to_str().unwrap()]).await;
    let reviewer = token(&server.database, "rita", "reviewer", &[]);
    let agent = token(&server.database, "bot", "agent", &[]);
    let admin = token(&server.database, "ada", "admin", &[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/browser/inbox.py");
    let mut command = Command::new(venv.join("bin").join("python"));
    command
        .arg(&script)
        .env("SIGNOFF_URL", &server.url)
        .env("SIGNOFF_REVIEWER_TOKEN", &reviewer)
        .env("SIGNOFF_AGENT_TOKEN", &agent)
        .env("SIGNOFF_ADMIN_TOKEN", &admin)
        .env("SIGNOFF_CHROMIUM", chromium());
    // `SIGNOFF_SCREENSHOTS=docs/img cargo test --test browser` refreshes
    // the README's pictures.
    if let Some(shots) = std::env::var_os("SIGNOFF_SCREENSHOTS") {
        command.arg(shots);
    }
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the browser test failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let (status, verify) = get(&server, "/v1/audit/verify", Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(verify["ok"], true, "{verify}");
}

/// A client that keeps no cookies and follows no redirects.
fn plain() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[tokio::test]
async fn forms_without_a_session_or_with_a_bad_csrf_token_are_refused() {
    let server = TestServer::start_with(&["--auth", "on"]).await;
    let reviewer = token(&server.database, "rita", "reviewer", &[]);
    let agent = token(&server.database, "bot", "agent", &[]);
    let (status, created) = post(
        &server,
        "/v1/requests",
        Some(&agent),
        json!({"title": "t", "proposed_action": {"a": 1}}),
    )
    .await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    let approve = format!("{}/ui/requests/{id}/approve", server.url);
    let http = plain();

    // No session: pages redirect to sign in, forms are refused.
    let page = http
        .get(format!("{}/ui/inbox", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    assert_eq!(page.headers()["location"], "/ui/login");
    let form = http
        .post(&approve)
        .header("cookie", "signoff_csrf=abc")
        .form(&[("csrf", "abc")])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 401);

    // A session, but the form's CSRF token does not match the cookie (or
    // there is no cookie, or the form comes from another site).
    let session = format!("signoff_session={reviewer}");
    for (cookie, field, origin) in [
        (format!("{session}; signoff_csrf=abc"), "abd", None),
        (session.clone(), "abc", None),
        (format!("{session}; signoff_csrf=abc"), "", None),
        (
            format!("{session}; signoff_csrf=abc"),
            "abc",
            Some("https://evil.example"),
        ),
    ] {
        let mut call = http
            .post(&approve)
            .header("cookie", cookie)
            .form(&[("csrf", field), ("comment", "sneaky")]);
        if let Some(origin) = origin {
            call = call.header("origin", origin);
        }
        let answer = call.send().await.unwrap();
        assert_eq!(answer.status(), 403, "csrf {field:?} origin {origin:?}");
    }
    // The same sign-in with a matching token goes through, and only then.
    let (_, still) = get(&server, &format!("/v1/requests/{id}"), Some(&reviewer)).await;
    assert_eq!(still["status"], "pending");
    let answer = http
        .post(&approve)
        .header("cookie", format!("{session}; signoff_csrf=abc"))
        .form(&[("csrf", "abc"), ("comment", "fine")])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303);
    let (_, done) = get(&server, &format!("/v1/requests/{id}"), Some(&reviewer)).await;
    assert_eq!(done["status"], "approved");
    assert_eq!(done["decision"]["reviewer"], "rita");

    // The sign-in form needs its CSRF token too, and a revoked token's
    // session ends.
    let login = http
        .post(format!("{}/ui/login", server.url))
        .form(&[("csrf", "x"), ("token", reviewer.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 403);
    let page = http
        .get(format!("{}/ui/inbox", server.url))
        .header("cookie", "signoff_session=so_bogus_token")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 401);
    assert!(
        page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );

    // Pages say what may run: only our own scripts and styles.
    let page = http
        .get(format!("{}/ui/login", server.url))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(
        page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("HttpOnly; SameSite=Strict")
    );
}

#[tokio::test]
async fn a_late_stage_reviewer_finds_requests_behind_hundreds_of_earlier_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path()).await;
    let config = dir.path().join("signoff.yaml");
    std::fs::write(
        &config,
        "policies:\n  chain:\n    stages:\n      - { name: manager, groups: [managers] }\n      - { name: finance, groups: [finance] }\ndefault_policy: chain\n",
    )
    .unwrap();
    let agent = token(&db, "bot", "agent", &[]);
    let mia = token(&db, "mia", "reviewer", &["--group", "managers"]);
    let fiona = token(&db, "fiona", "reviewer", &["--group", "finance"]);
    let server = TestServer::start_on_with(
        &db,
        &[
            "--auth",
            "on",
            "--config",
            config.to_str().unwrap(),
            "--write-rate",
            "100000",
        ],
    )
    .await;
    let create = |title: String| {
        let server = &server;
        let agent = &agent;
        async move {
            let (status, body) = post(
                server,
                "/v1/requests",
                Some(agent),
                json!({"title": title, "proposed_action": {"n": 1}}),
            )
            .await;
            assert_eq!(status, 201, "{body}");
            body["id"].as_str().unwrap().to_owned()
        }
    };
    let oldest = create("signed by the manager".into()).await;
    for i in 0..700 {
        create(format!("waiting for a manager {i}")).await;
    }
    let (status, _) = post(
        &server,
        &format!("/v1/requests/{oldest}/approve"),
        Some(&mia),
        json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let inbox = |who: String| {
        let url = format!("{}/ui/inbox", server.url);
        async move {
            let page = plain()
                .get(url)
                .header("cookie", format!("signoff_session={who}"))
                .send()
                .await
                .unwrap();
            assert_eq!(page.status(), 200);
            page.text().await.unwrap()
        }
    };
    // Finance's inbox: the one request at their stage, found past 700
    // newer ones that are not theirs yet.
    let finance = inbox(fiona).await;
    assert!(finance.contains(&oldest), "finance does not see {oldest}");
    assert_eq!(finance.matches("class=\"row\"").count(), 1);
    // The manager's inbox: the 700 at their stage (the page shows 200),
    // not the one they signed.
    let manager = inbox(mia).await;
    assert!(!manager.contains(&oldest));
    assert_eq!(manager.matches("class=\"row\"").count(), 200);
}
