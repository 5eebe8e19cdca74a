//! Outbound webhooks against a real HTTP receiver on loopback: signed
//! deliveries, retries after a 500, dead letters, the outbox surviving a
//! `kill -9`, no repeat of a delivery that succeeded, and the Slack format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use common::{TestServer, binary, get, post, token};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }
}

#[derive(Default)]
struct Inbox {
    received: Vec<Received>,
    /// Answer 500 to this many more POSTs.
    fail_next: usize,
    /// Answer 500 to every POST.
    fail_all: bool,
}

/// A webhook receiver: an HTTP server on a loopback port that records
/// every POST and answers 200, or 500 when told to.
struct Receiver {
    addr: SocketAddr,
    inbox: Arc<Mutex<Inbox>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap()).await
    }

    async fn start_on(addr: SocketAddr) -> Self {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inbox.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, inbox, task }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().received.clone()
    }

    /// Waits until `count` POSTs arrived (or fails after `within`).
    async fn wait_for(&self, count: usize, within: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "receiver got {} of {count} deliveries: {received:#?}",
                received.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(inbox): State<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut inbox = inbox.lock().unwrap();
    inbox.received.push(Received {
        headers: headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if inbox.fail_all {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    if inbox.fail_next > 0 {
        inbox.fail_next -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    StatusCode::OK
}

const SECRET: &str = "whsec_0123456789abcdef";

/// Checks the signature as the README tells receivers to.
fn assert_signed(received: &Received, secret: &str) {
    let timestamp = received.header("signoff-timestamp");
    let signed_at: i64 = timestamp
        .parse()
        .expect("Signoff-Timestamp is Unix seconds");
    let age = chrono::Utc::now().timestamp() - signed_at;
    assert!(
        (0..300).contains(&age),
        "timestamp {signed_at} is {age}s old"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{}", received.body).as_bytes());
    let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(received.header("signoff-signature"), expected);
}

/// `signoff webhook add`, as an admin would run it.
fn add_webhook(server: &TestServer, admin: Option<&str>, args: &[&str]) -> Value {
    let mut command = Command::new(binary());
    command.args(["--json", "--server", &server.url, "webhook", "add"]);
    command.args(args);
    if let Some(token) = admin {
        command.env("SIGNOFF_TOKEN", token);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "webhook add failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `signoff webhook deliveries --json`.
fn deliveries(server: &TestServer, admin: Option<&str>, extra: &[&str]) -> Vec<Value> {
    let mut command = Command::new(binary());
    command.args(["--json", "--server", &server.url, "webhook", "deliveries"]);
    command.args(extra);
    if let Some(token) = admin {
        command.env("SIGNOFF_TOKEN", token);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let list: Value = serde_json::from_slice(&output.stdout).unwrap();
    list["deliveries"].as_array().unwrap().clone()
}

async fn create(server: &TestServer, token: Option<&str>, title: &str) -> String {
    let mut body = json!({"title": title, "proposed_action": {"refund": 42}});
    if token.is_none() {
        body["requester"] = json!("agent");
    }
    let (status, body) = post(server, "/v1/requests", token, body).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn deliveries_are_signed_retried_after_a_500_and_listed() {
    let receiver = Receiver::start().await;
    receiver.inbox.lock().unwrap().fail_next = 1;
    let mut server = TestServer::start_with(&[
        "--auth",
        "on",
        "--webhook-retry-delay",
        "1s",
        "--public-url",
        "https://signoff.example.com/",
    ])
    .await;
    let dir = server.take_dir();
    let admin = token(&server.database, "ada", "admin", &[]);
    let agent = token(&server.database, "bot", "agent", &[]);
    let reviewer = token(&server.database, "rita", "reviewer", &[]);
    let before = create(&server, Some(&agent), "before the subscription").await;
    let hook = add_webhook(
        &server,
        Some(&admin),
        &[
            &receiver.url(),
            "--events",
            "request.created,request.decided",
            "--secret",
            SECRET,
        ],
    );
    assert_eq!(hook["secret"], SECRET);
    assert_eq!(hook["created_by"], "ada");
    let hook_id = hook["id"].as_str().unwrap().to_owned();

    // Only admins manage webhooks.
    let (status, _) = get(&server, "/v1/webhooks", Some(&reviewer)).await;
    assert_eq!(status, 403);
    let (status, listed) = get(&server, "/v1/webhooks", Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(listed["webhooks"][0]["id"], hook_id.as_str());
    assert!(listed["webhooks"][0].get("secret").is_none(), "{listed}");

    let id = create(&server, Some(&agent), "refund order 1042").await;
    let (status, _) = post(
        &server,
        &format!("/v1/requests/{id}/approve"),
        Some(&reviewer),
        json!({"comment": "fine"}),
    )
    .await;
    assert_eq!(status, 200);

    // created: refused once with a 500, then accepted; approved: at once.
    let received = receiver.wait_for(3, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let received = if receiver.received().len() > received.len() {
        receiver.received()
    } else {
        received
    };
    assert_eq!(received.len(), 3, "{received:#?}");
    for r in &received {
        assert_signed(r, SECRET);
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(
            r.json()["request"]["id"],
            id.as_str(),
            "nothing of {before}"
        );
    }
    let created: Vec<&Received> = received
        .iter()
        .filter(|r| r.header("signoff-event") == "request.created")
        .collect();
    assert_eq!(created.len(), 2, "the 500 was retried");
    assert_eq!(
        created[0].body, created[1].body,
        "a retry sends the same body"
    );
    assert_eq!(
        created[0].header("signoff-delivery"),
        created[1].header("signoff-delivery")
    );
    let event = created[0].json();
    assert_eq!(event["type"], "request.created");
    assert_eq!(event["id"], created[0].header("signoff-delivery"));
    assert_eq!(event["entry"]["event"], "created");
    assert_eq!(event["entry"]["title"], "refund order 1042");
    assert_eq!(
        event["url"],
        format!("https://signoff.example.com/ui/requests/{id}")
    );
    let approved = received
        .iter()
        .find(|r| r.header("signoff-event") == "request.approved")
        .expect("the approval was delivered");
    let approved = approved.json();
    assert_eq!(approved["entry"]["actor"], "rita");
    assert_eq!(approved["entry"]["comment"], "fine");

    // Both are on record as delivered, the first after two tries.
    let listed = deliveries(&server, Some(&admin), &["--webhook", &hook_id]);
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let by_event = |name: &str| {
        listed
            .iter()
            .find(|d| d["event"] == name)
            .unwrap_or_else(|| panic!("no {name} in {listed:#?}"))
            .clone()
    };
    let created = by_event("request.created");
    assert_eq!(created["status"], "delivered");
    assert_eq!(created["attempts"], 2);
    assert_eq!(created["last_status"], 200);
    assert_eq!(by_event("request.approved")["attempts"], 1);

    // A bad subscription is refused with the field named.
    let (status, body) = post(
        &server,
        "/v1/webhooks",
        Some(&admin),
        json!({"url": "ftp://example.com/", "events": ["request.created"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("url:")
    );
    let (status, body) = post(
        &server,
        "/v1/webhooks",
        Some(&admin),
        json!({"url": receiver.url(), "events": ["request.exploded"]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("request.exploded")
    );

    // Removing the subscription stops deliveries.
    let output = Command::new(binary())
        .args(["--server", &server.url, "webhook", "remove", &hook_id])
        .env("SIGNOFF_TOKEN", &admin)
        .output()
        .unwrap();
    assert!(output.status.success());
    create(&server, Some(&agent), "after removal").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 3);
    server.kill();
    drop(dir);
}

#[tokio::test]
async fn a_delivery_is_dead_after_its_last_try_and_can_be_sent_again() {
    let receiver = Receiver::start().await;
    receiver.inbox.lock().unwrap().fail_all = true;
    let server =
        TestServer::start_with(&["--webhook-retry-delay", "1s", "--webhook-attempts", "2"]).await;
    add_webhook(
        &server,
        None,
        &[&receiver.url(), "--events", "*", "--secret", SECRET],
    );
    let id = create(&server, None, "never accepted").await;
    receiver.wait_for(2, Duration::from_secs(20)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let dead = loop {
        let dead = deliveries(&server, None, &["--status", "dead"]);
        if !dead.is_empty() {
            break dead;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["request_id"], id.as_str());
    assert_eq!(dead[0]["attempts"], 2);
    assert_eq!(dead[0]["last_status"], 500);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(receiver.received().len(), 2, "no try after the last");

    // The receiver is fixed; the dead letter is sent again on request.
    receiver.inbox.lock().unwrap().fail_all = false;
    let delivery = dead[0]["id"].as_str().unwrap();
    let output = Command::new(binary())
        .args(["--server", &server.url, "webhook", "redeliver", delivery])
        .output()
        .unwrap();
    assert!(output.status.success());
    let received = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(received[2].header("signoff-delivery"), delivery);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while deliveries(&server, None, &["--status", "delivered"]).is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

async fn restart(database: &Path) -> TestServer {
    TestServer::start_on_with(database, &["--webhook-retry-delay", "1s"]).await
}

#[tokio::test]
async fn the_outbox_survives_a_crash_and_a_delivery_is_never_repeated() {
    // The receiver is down while the events happen.
    let receiver_addr = free_port();
    let mut server = TestServer::start_with(&["--webhook-retry-delay", "1s"]).await;
    let dir = server.take_dir();
    let database = server.database.clone();
    add_webhook(
        &server,
        None,
        &[
            &format!("http://{receiver_addr}/hook"),
            "--events",
            "*",
            "--secret",
            SECRET,
        ],
    );
    let first = create(&server, None, "while the receiver is down").await;
    let second = create(&server, None, "just before the crash").await;
    // Both tried and failed (not mid-try, when the crash would leave them
    // claimed until the claim runs out).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pending = deliveries(&server, None, &["--status", "pending"]);
        if pending.len() == 2 && pending.iter().all(|d| d["attempts"].as_u64() >= Some(1)) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{pending:#?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill();

    // Back up, with the receiver listening: both events arrive, once each.
    let receiver = Receiver::start_on(receiver_addr).await;
    let mut server = restart(&database).await;
    let received = receiver.wait_for(2, Duration::from_secs(20)).await;
    let mut ids: Vec<String> = received
        .iter()
        .map(|r| r.json()["request"]["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    for r in &received {
        assert_signed(r, SECRET);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while deliveries(&server, None, &["--status", "delivered"]).len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "not recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Delivered is final: another crash and restart sends nothing again.
    server.kill();
    let server = restart(&database).await;
    let third = create(&server, None, "after the second restart").await;
    let received = receiver.wait_for(3, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received = receiver.received().len().max(received.len());
    assert_eq!(received, 3, "exactly one more delivery, for {third}");
    drop(server);
    drop(dir);
}

#[tokio::test]
async fn slack_format_posts_a_message_with_a_link_to_the_request_page() {
    let receiver = Receiver::start().await;
    let server = TestServer::start().await;
    add_webhook(
        &server,
        None,
        &[
            &receiver.url(),
            "--events",
            "request.created",
            "--format",
            "slack",
        ],
    );
    let id = create(&server, None, "raise limit <fast> & now").await;
    let received = receiver.wait_for(1, Duration::from_secs(10)).await;
    let message = received[0].json();
    let text = message["text"].as_str().unwrap();
    let link = format!("{}/ui/requests/{id}", server.url);
    assert!(
        text.contains(&format!("<{link}|raise limit &lt;fast&gt; &amp; now>")),
        "{text}"
    );
    assert_eq!(message["blocks"][0]["type"], "section");
    assert_eq!(message["blocks"][1]["elements"][0]["url"], link.as_str());
}

#[tokio::test]
async fn a_reminder_notifies_again_and_escalates_to_another_group() {
    let receiver = Receiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = common::fresh_database(dir.path()).await;
    let config = dir.path().join("signoff.yaml");
    std::fs::write(
        &config,
        r#"
policies:
  finance:
    stages:
      - { name: finance, groups: [finance] }
    remind_at: 0.5
    escalate_to: oncall
default_policy: finance
"#,
    )
    .unwrap();
    let admin = token(&db, "ada", "admin", &[]);
    let agent = token(&db, "bot", "agent", &[]);
    let otto = token(&db, "otto", "reviewer", &["--group", "oncall"]);
    let server =
        TestServer::start_on_with(&db, &["--auth", "on", "--config", config.to_str().unwrap()])
            .await;
    add_webhook(
        &server,
        Some(&admin),
        &[
            &receiver.url(),
            "--events",
            "request.reminded",
            "--secret",
            SECRET,
        ],
    );
    let (status, created) = post(
        &server,
        "/v1/requests",
        Some(&agent),
        // Long enough that, even on a loaded machine, the approval after
        // the reminder lands before the expiry.
        json!({"title": "Pay the invoice", "proposed_action": {"pay": 900}, "expires_in": 12}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let remind_at: chrono::DateTime<chrono::Utc> = created["approval"]["remind_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let created_at: chrono::DateTime<chrono::Utc> =
        created["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((remind_at - created_at).num_milliseconds(), 6000);
    assert_eq!(created["approval"]["escalate_to"], "oncall");

    // Before the reminder, on-call is not a reviewer of this request.
    let approve = format!("/v1/requests/{id}/approve");
    let (status, refused) = post(&server, &approve, Some(&otto), json!({})).await;
    assert_eq!(status, 403, "{refused}");

    // Half-way through its life: one signed reminder, then on-call may sign.
    let received = receiver.wait_for(1, Duration::from_secs(11)).await;
    assert!(chrono::Utc::now() >= remind_at, "reminded early");
    assert_signed(&received[0], SECRET);
    let event = received[0].json();
    assert_eq!(event["type"], "request.reminded");
    assert_eq!(event["entry"]["stage"], "finance");
    assert!(
        event["entry"]["comment"]
            .as_str()
            .unwrap()
            .contains("oncall"),
        "{event}"
    );
    let groups = &event["request"]["approval"]["stages"][0]["eligible"]["groups"];
    assert_eq!(groups, &json!(["finance", "oncall"]));
    let (status, approved) = post(&server, &approve, Some(&otto), json!({})).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["status"], "approved");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), 1, "one reminder only");
}
