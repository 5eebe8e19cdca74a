//! `HttpExecutor` against a small axum webhook started per test: what the
//! receiver gets (body and `Idempotency-Key` header), how its answers become
//! results, and how each failure is classified.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use signoff_workflow::executor::HttpExecutor;
use signoff_workflow::{ConnectorError, Executor};

/// What the webhook received: the `Idempotency-Key` header and the body.
type Received = Arc<Mutex<Vec<(Option<String>, Value)>>>;

/// A webhook whose answer depends on the path; returns its base URL.
async fn webhook() -> (String, Received) {
    let received: Received = Arc::default();
    let log = received.clone();
    let app = axum::Router::new()
        .route(
            "/apply",
            post(
                move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                    let log = log.clone();
                    async move {
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|k| k.to_str().ok())
                            .map(str::to_owned);
                        log.lock().unwrap().push((key, body.clone()));
                        (
                            StatusCode::CREATED,
                            axum::Json(json!({"applied": true, "echo": body})),
                        )
                    }
                },
            ),
        )
        .route(
            "/plain",
            post(|| async { (StatusCode::ACCEPTED, "queued").into_response() }),
        )
        .route(
            "/broken",
            post(|| async {
                (StatusCode::INTERNAL_SERVER_ERROR, "policy store is down").into_response()
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Response::new(axum::body::Body::empty())
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

fn executor(url: String, timeout: Duration) -> HttpExecutor {
    HttpExecutor {
        url,
        timeout,
        client: reqwest::Client::new(),
    }
}

#[tokio::test]
async fn the_webhook_gets_the_action_and_the_key_in_body_and_header() {
    let (url, received) = webhook().await;
    let action = json!({"title": "t", "changes": {"max": 5000}});
    let result = executor(format!("{url}/apply"), Duration::from_secs(5))
        .execute(&action, "run-7-attempt-1")
        .await
        .unwrap();
    let expected_body = json!({"action": action, "idempotency_key": "run-7-attempt-1"});
    // A JSON answer is the result, as it came.
    assert_eq!(result, json!({"applied": true, "echo": expected_body}));
    let received = received.lock().unwrap().clone();
    assert_eq!(
        received,
        [(Some("run-7-attempt-1".to_owned()), expected_body)]
    );
}

#[tokio::test]
async fn a_plain_answer_is_kept_with_its_status() {
    let (url, _) = webhook().await;
    let result = executor(format!("{url}/plain"), Duration::from_secs(5))
        .execute(&json!({}), "k")
        .await
        .unwrap();
    assert_eq!(result, json!({"status": 202, "body": "queued"}));
}

#[tokio::test]
async fn an_error_status_is_a_failure_with_the_body() {
    let (url, _) = webhook().await;
    let error = executor(format!("{url}/broken"), Duration::from_secs(5))
        .execute(&json!({}), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Failed { message, .. }
            if message.contains("500") && message.contains("policy store is down")),
        "{error:?}"
    );
    // No such route: 404 is a failure too.
    let error = executor(format!("{url}/nowhere"), Duration::from_secs(5))
        .execute(&json!({}), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Failed { message, .. } if message.contains("404")),
        "{error:?}"
    );
}

#[tokio::test]
async fn no_answer_is_unreachable_or_a_timeout() {
    let error = executor("http://127.0.0.1:1/apply".into(), Duration::from_secs(5))
        .execute(&json!({}), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Unreachable { .. }),
        "{error:?}"
    );
    let (url, _) = webhook().await;
    let started = Instant::now();
    let error = executor(format!("{url}/slow"), Duration::from_millis(300))
        .execute(&json!({}), "k")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ConnectorError::Timeout { after, .. } if *after == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}
