//! POSTing JSON to a peer and reading its answer, with every failure as a
//! [`ConnectorError`].

use std::time::Duration;

use serde_json::Value;

use crate::ConnectorError;

/// The most of an error body kept in the error.
const BODY_SNIPPET: usize = 500;

/// POSTs `body` to `url`; returns the status and the answer parsed as JSON
/// (`None` when the body is not JSON). A non-2xx answer is
/// [`ConnectorError::Failed`].
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    timeout: Duration,
    headers: &[(&str, &str)],
) -> Result<(u16, Option<Value>), ConnectorError> {
    let mut request = client.post(url).json(body).timeout(timeout);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request
        .send()
        .await
        .map_err(|error| transport(url, timeout, &error))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|error| transport(url, timeout, &error))?;
    if !status.is_success() {
        let snippet: String = text.trim().chars().take(BODY_SNIPPET).collect();
        return Err(ConnectorError::Failed {
            peer: url.to_owned(),
            message: format!("HTTP {status}: {snippet}"),
        });
    }
    Ok((status.as_u16(), serde_json::from_str(&text).ok()))
}

/// A reqwest error as the connector error it amounts to.
pub(crate) fn transport(url: &str, timeout: Duration, error: &reqwest::Error) -> ConnectorError {
    if error.is_timeout() {
        return ConnectorError::Timeout {
            peer: url.to_owned(),
            after: timeout,
        };
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_connect() || error.is_request() || error.is_builder() {
        ConnectorError::Unreachable {
            peer: url.to_owned(),
            message,
        }
    } else {
        ConnectorError::BadAnswer {
            peer: url.to_owned(),
            message,
        }
    }
}
