//! Fuzzes the served OpenAPI document with schemathesis: no input may make
//! the server answer 5xx, and every answer must match the documented schema.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::TestServer;

fn schemathesis() -> Option<PathBuf> {
    let venv = std::env::var_os("SIGNOFF_VENV")?;
    let bin = PathBuf::from(venv).join("bin").join("schemathesis");
    bin.exists().then_some(bin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_holds_under_fuzzing() {
    let Some(schemathesis) = schemathesis() else {
        assert!(
            std::env::var_os("SIGNOFF_REQUIRE_TOOLS").is_none(),
            "schemathesis not found in $SIGNOFF_VENV; run scripts/test.sh"
        );
        eprintln!("skipped: schemathesis not installed (scripts/test.sh installs it)");
        return;
    };
    // Fuzzed long polls may ask for up to 300 s; the server's cap keeps
    // each one short (the answer is the same "still pending" document).
    let server = TestServer::start_with(&["--max-wait", "2s"]).await;
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
                "--workers",
                "2",
                "--request-timeout",
                "20",
            ])
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
