//! Fuzzes the served OpenAPI document with schemathesis: no input may make
//! the server answer 5xx, and every answer must match the documented schema.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers: failing loudly is their job

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::TestServer;

fn schemathesis() -> Option<PathBuf> {
    let venv = std::env::var_os("SIGNOFF_VENV")?;
    let bin = PathBuf::from(venv).join("bin").join("schemathesis");
    bin.exists().then_some(bin)
}

/// Runs schemathesis against `server`'s document with `extra` arguments.
async fn fuzz(server: &TestServer, extra: Vec<String>) {
    let Some(schemathesis) = schemathesis() else {
        assert!(
            std::env::var_os("SIGNOFF_REQUIRE_TOOLS").is_none(),
            "schemathesis not found in $SIGNOFF_VENV; run scripts/test.sh"
        );
        eprintln!("skipped: schemathesis not installed (scripts/test.sh installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = format!("{}/openapi.json", server.url);
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/python/schemathesis.toml"
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .current_dir(dir.path())
            .arg("--config-file")
            .arg(config)
            .args([
                "run",
                &url,
                "--checks",
                "all",
                "--generation-database",
                "none",
            ])
            .args([
                "--max-examples",
                "40",
                // One worker: with two, hypothesis parses lambda sources in
                // two threads at once, which CPython 3.11 before 3.11.9
                // can fail with "AST constructor recursion depth mismatch".
                "--workers",
                "1",
                "--request-timeout",
                "20",
            ])
            .args(extra)
            .env("NO_COLOR", "1")
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}"
    );
}

// Fuzzed long polls may ask for up to 300 s; the server's cap keeps each one
// short (the answer is the same "still pending" document).
const SHORT_POLLS: [&str; 2] = ["--max-wait", "2s"];

/// Loopback single-user mode: no tokens, and the document declares none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_holds_under_fuzzing() {
    let server = TestServer::start_with(&SHORT_POLLS).await;
    fuzz(&server, Vec::new()).await;
}

/// Auth on: the document declares bearer auth, and the fuzzer holds an
/// admin token; every check runs, including that calls without it are
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_holds_under_fuzzing_with_auth_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path()).await;
    let output = Command::new(common::binary())
        .args([
            "--json",
            "token",
            "create",
            "--name",
            "fuzzer",
            "--role",
            "admin",
            "--database",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(output.status.success());
    let token: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let mut args = SHORT_POLLS.to_vec();
    // Fuzzing writes fast: no rate limit to hit.
    args.extend(["--auth", "on", "--write-rate", "100000"]);
    let server = TestServer::start_on_with(&db, &args).await;
    // Revoking tokens would revoke the fuzzer's own and end the run early.
    let extra = vec![
        "--header".to_owned(),
        format!("Authorization: Bearer {token}"),
        "--exclude-path-regex".to_owned(),
        "/revoke$".to_owned(),
    ];
    fuzz(&server, extra).await;
}
