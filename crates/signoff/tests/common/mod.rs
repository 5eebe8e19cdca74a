//! The one test harness: the real `signoff` binary serving on a random port
//! over a fresh SQLite file, and a few helpers to talk to it over HTTP.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // a test harness: failing loudly is its job

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// A running `signoff serve`, killed when dropped.
pub struct TestServer {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// The database file.
    pub database: PathBuf,
    child: Option<Child>,
    // Held so the directory lives as long as the server.
    _dir: Option<tempfile::TempDir>,
    http: reqwest::Client,
}

/// Which backend the tests run on: `SIGNOFF_TEST_BACKEND=postgres` runs
/// every server test on scratch PostgreSQL databases; otherwise SQLite.
pub fn on_postgres() -> bool {
    std::env::var("SIGNOFF_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// A new, empty database for a server: a SQLite file in `dir`, or a
/// scratch PostgreSQL database (its URL, as a path, is what `--database`
/// takes).
pub async fn fresh_database(dir: &Path) -> PathBuf {
    if on_postgres() {
        PathBuf::from(signoff_postgres::testing::scratch_database().await)
    } else {
        dir.join("signoff.db")
    }
}

/// Runs `sql` directly on a server's database (to tamper with it).
pub async fn execute_sql(database: &Path, sql: &str) {
    let name = database.to_string_lossy().into_owned();
    if name.starts_with("postgres://") {
        use sqlx::Connection as _;
        let mut conn = sqlx::PgConnection::connect(&name).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap();
    } else {
        let conn = rusqlite::Connection::open(database).unwrap();
        conn.execute_batch(sql).unwrap();
    }
}

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_signoff")
}

impl TestServer {
    /// A server over a new, empty database.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A server over a new, empty database, with extra `serve` flags.
    pub async fn start_with(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = fresh_database(dir.path()).await;
        let mut server = Self::launch(&database, args).await;
        server._dir = Some(dir);
        server
    }

    /// A server over the database at `database` (for restarts).
    pub async fn start_on(database: &Path) -> Self {
        Self::launch(database, &[]).await
    }

    /// A server over the database at `database`, with extra `serve` flags.
    pub async fn start_on_with(database: &Path, args: &[&str]) -> Self {
        Self::launch(database, args).await
    }

    async fn launch(database: &Path, args: &[&str]) -> Self {
        let database = database.to_path_buf();
        let db = database.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        let (child, url) = tokio::task::spawn_blocking(move || spawn(&db, &args))
            .await
            .expect("spawn task");
        Self {
            url,
            database,
            child: Some(child),
            _dir: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        }
    }

    /// Hands the temp directory over (so it survives this server).
    pub fn take_dir(&mut self) -> Option<tempfile::TempDir> {
        self._dir.take()
    }

    /// `kill -9`: no chance to flush or finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for a clean exit; returns the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().ok()
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A reqwest client.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// GET `path`; returns status and JSON body (Null when not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET");
        read(response).await
    }

    /// POST `body` as JSON to `path`.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .await
            .expect("POST");
        read(response).await
    }

    /// Creates a request titled `title` with default settings; returns its id.
    pub async fn create(&self, title: &str) -> String {
        let (status, body) = self
            .post(
                "/v1/requests",
                json!({"title": title, "proposed_action": {"action": "test"}}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("id").to_owned()
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn spawn(database: &Path, args: &[String]) -> (Child, String) {
    let mut child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--database"])
        .arg(database)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start signoff serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let url = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("signoff listening on ") {
                    break url.trim().to_owned();
                }
            }
            _ => {
                let _ = child.kill();
                panic!("signoff serve exited before listening");
            }
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, url)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Makes a token in the database with the CLI; returns it.
pub fn token(db: &Path, name: &str, role: &str, extra: &[&str]) -> String {
    let output = Command::new(binary())
        .args([
            "--json",
            "token",
            "create",
            "--name",
            name,
            "--role",
            role,
            "--database",
        ])
        .arg(db)
        .args(extra)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let created: Value = serde_json::from_slice(&output.stdout).unwrap();
    created["token"].as_str().unwrap().to_owned()
}

pub async fn call(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server
        .http()
        .request(method, format!("{}{path}", server.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn get(server: &TestServer, path: &str, token: Option<&str>) -> (u16, Value) {
    call(server, reqwest::Method::GET, path, token, None).await
}

pub async fn post(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Value) {
    call(server, reqwest::Method::POST, path, token, Some(body)).await
}
