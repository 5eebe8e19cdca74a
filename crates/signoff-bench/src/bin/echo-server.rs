//! The baseline: a bare axum handler that parses the same JSON body Signoff
//! gets and echoes it back with 201. No validation, no storage: what the
//! framework and the machine can do, measured in the same run as Signoff.

use axum::Json;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let app = axum::Router::new().route(
        "/v1/requests",
        post(|Json(body): Json<Value>| async move { (StatusCode::CREATED, Json(body)) }),
    );
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("echo listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
