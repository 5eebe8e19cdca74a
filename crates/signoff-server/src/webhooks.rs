//! The webhook dispatcher: turns audit entries into deliveries and sends
//! them, signed, with retries.
//!
//! The audit trail is the outbox (see `signoff_core::webhook`): an event is
//! on record in the transaction that made it, so a crash between the change
//! and the notification loses nothing. A pass of the dispatcher
//! 1. reads the entries past each subscription's cursor and writes their
//!    deliveries while moving the cursor, in one transaction (a
//!    compare-and-set, so two replicas never both write them);
//! 2. claims the deliveries that are due (each claim lasts longer than one
//!    try, so no other sender takes them meanwhile), POSTs them, and records
//!    each outcome: delivered, due again after a backoff, or dead.
//!
//! It is woken by every change this process makes or hears of, and
//! otherwise sleeps until the next retry is due; with no subscriptions it
//! does nothing per change.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use signoff_api::{AuditEntryView, RequestView, WebhookEvent};
use signoff_core::webhook::event_name;
use signoff_core::{
    Attempt, AuditEntry, AuditEvent, Backoff, Delivery, DeliveryStatus, Webhook, WebhookFormat,
};
use signoff_store::{AuditQuery, StoreError};
use tokio::sync::watch;
use uuid::Uuid;

use crate::service::Service;

/// Audit entries read per fan-out step.
const FAN_OUT_PAGE: u32 = 256;
/// Deliveries sent at once.
const SEND_BATCH: u32 = 32;
/// How often the subscriptions are read again even without a local change
/// (another replica may have added one).
const REFRESH: Duration = Duration::from_secs(10);
/// Wait after a store error before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Signoff-Signature";
/// The header that carries the signed timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "Signoff-Timestamp";

/// How the dispatcher sends.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The server's address as reviewers reach it, for links to request
    /// pages (no trailing slash).
    pub public_url: String,
    /// Retries.
    pub backoff: Backoff,
    /// The longest one try may take.
    pub timeout: Duration,
}

impl WebhookSettings {
    /// Defaults for a server reached at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into().trim_end_matches('/').to_owned(),
            backoff: Backoff::default(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// `v1=` and the hex HMAC-SHA256, keyed with `secret`, of
/// `"{timestamp}.{body}"`: the value of [`SIGNATURE_HEADER`].
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The page of request `id` in the web inbox.
pub fn request_page(public_url: &str, id: Uuid) -> String {
    format!("{public_url}/ui/requests/{id}")
}

/// Runs until `shutdown` changes.
pub async fn run(service: Service, settings: WebhookSettings, mut shutdown: watch::Receiver<bool>) {
    let client = match reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("signoff/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook HTTP client; webhooks are off");
            return;
        }
    };
    let dispatcher = Dispatcher {
        service,
        settings,
        client,
    };
    let mut changes = dispatcher.service.subscribe_changes();
    let mut hooks_changed = dispatcher.service.subscribe_webhooks();
    let mut have_hooks = false;
    let mut refreshed_at = tokio::time::Instant::now() - REFRESH;
    loop {
        let pause = match dispatcher.pass(&mut have_hooks, &mut refreshed_at).await {
            Ok(pause) => pause,
            Err(error) => {
                tracing::warn!(%error, "webhook dispatch failed; retrying");
                RETRY_AFTER
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            // Events only matter while someone subscribes.
            Ok(()) = changes.changed(), if have_hooks => {}
            Ok(()) = hooks_changed.changed() => refreshed_at -= REFRESH,
            _ = shutdown.changed() => return,
        }
    }
}

struct Dispatcher {
    service: Service,
    settings: WebhookSettings,
    client: reqwest::Client,
}

impl Dispatcher {
    /// One fan-out and send; returns how long to sleep unless woken.
    async fn pass(
        &self,
        have_hooks: &mut bool,
        refreshed_at: &mut tokio::time::Instant,
    ) -> Result<Duration, StoreError> {
        let store = self.service.store();
        // Subscriptions only come and go (none is edited), so one read
        // serves the pass unless a delivery names one it has not seen.
        let mut subscriptions: HashMap<Uuid, Webhook> = HashMap::new();
        if *have_hooks || refreshed_at.elapsed() >= REFRESH {
            let hooks = store.webhooks().await?;
            *refreshed_at = tokio::time::Instant::now();
            *have_hooks = !hooks.is_empty();
            subscriptions.extend(hooks.iter().map(|hook| (hook.id, hook.clone())));
            if *have_hooks {
                self.fan_out(hooks).await?;
            }
        }
        loop {
            let now = self.service.clock().now();
            let claim_until = now + self.claim_length();
            let due = store.claim_deliveries(now, claim_until, SEND_BATCH).await?;
            if due.is_empty() {
                break;
            }
            if due
                .iter()
                .any(|delivery| !subscriptions.contains_key(&delivery.webhook_id))
            {
                subscriptions = store
                    .webhooks()
                    .await?
                    .into_iter()
                    .map(|hook| (hook.id, hook))
                    .collect();
            }
            let sends = due.into_iter().filter_map(|delivery| {
                // A delivery of a deleted subscription is deleted with it.
                let hook = subscriptions.get(&delivery.webhook_id)?;
                Some(self.send(hook, delivery))
            });
            futures_util::future::join_all(sends).await;
        }
        let next = store.next_delivery_due().await?;
        let until_next = next.map(|at| until(self.service.clock().now(), at));
        let refresh = REFRESH.saturating_sub(refreshed_at.elapsed());
        Ok(until_next.map_or(refresh, |next| next.min(refresh)))
    }

    fn claim_length(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.timeout + Duration::from_secs(5))
            .unwrap_or(chrono::Duration::seconds(15))
    }

    /// Writes the deliveries of every entry past each subscription's cursor.
    async fn fan_out(&self, mut hooks: Vec<Webhook>) -> Result<(), StoreError> {
        let store = self.service.store();
        let mut requests: HashMap<Uuid, RequestView> = HashMap::new();
        loop {
            let Some(from) = hooks.iter().map(|hook| hook.cursor).min() else {
                return Ok(());
            };
            let entries = store
                .audit(AuditQuery {
                    request_id: None,
                    after_seq: Some(from),
                    limit: FAN_OUT_PAGE,
                })
                .await?;
            let Some(last) = entries.last().map(|entry| entry.seq) else {
                return Ok(());
            };
            for hook in &mut hooks {
                if hook.cursor >= last {
                    continue;
                }
                let mut deliveries = Vec::new();
                for entry in entries.iter().filter(|e| e.seq > hook.cursor) {
                    if !hook.wants(entry.record.event) {
                        continue;
                    }
                    let request = match requests.get(&entry.record.request_id) {
                        Some(request) => request.clone(),
                        None => match store.get(entry.record.request_id).await? {
                            Some(request) => {
                                let view = RequestView::from(request);
                                requests.insert(view.id, view.clone());
                                view
                            }
                            None => continue,
                        },
                    };
                    deliveries.push(self.delivery(hook, entry, request));
                }
                let count = deliveries.len();
                if store
                    .enqueue_deliveries(hook.id, hook.cursor, last, deliveries)
                    .await?
                {
                    metrics::counter!("signoff_webhook_deliveries_queued_total")
                        .increment(count as u64);
                    hook.cursor = last;
                } else {
                    // Another replica moved it: start again from the store.
                    return Ok(());
                }
            }
            if entries.len() < FAN_OUT_PAGE as usize {
                return Ok(());
            }
        }
    }

    fn delivery(&self, hook: &Webhook, entry: &AuditEntry, request: RequestView) -> Delivery {
        let id = Uuid::now_v7();
        let now = self.service.clock().now();
        let kind = event_name(entry.record.event);
        let url = request_page(&self.settings.public_url, entry.record.request_id);
        let body = match hook.format {
            WebhookFormat::Json => serde_json::to_string(&WebhookEvent {
                id,
                kind: kind.clone(),
                entry: AuditEntryView::from(entry.clone()),
                request,
                url,
            }),
            WebhookFormat::Slack => serde_json::to_string(&slack_message(entry, &request, &url)),
        }
        // Serializing plain data into a String cannot fail.
        .unwrap_or_default();
        Delivery {
            id,
            webhook_id: hook.id,
            seq: entry.seq,
            event: kind,
            request_id: entry.record.request_id,
            body,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: now,
            last_status: None,
            last_error: None,
            created_at: now,
            delivered_at: None,
        }
    }

    /// One try of one delivery, and its record.
    async fn send(&self, hook: &Webhook, delivery: Delivery) {
        let timestamp = self.service.clock().now().timestamp();
        let signature = sign(&hook.secret, timestamp, &delivery.body);
        let answer = self
            .client
            .post(&hook.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Signoff-Delivery", delivery.id.to_string())
            .header("Signoff-Event", &delivery.event)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(delivery.body.clone())
            .send()
            .await;
        let (status, error) = match answer {
            Ok(response) if response.status().is_success() => (Some(response.status()), None),
            Ok(response) => (
                Some(response.status()),
                Some(format!("receiver answered {}", response.status())),
            ),
            Err(error) => (None, Some(describe(&error))),
        };
        let now = self.service.clock().now();
        let failed = delivery.attempts + 1;
        let retry_at = error.as_ref().and_then(|_| {
            self.settings
                .backoff
                .delay(failed)
                .and_then(|delay| chrono::Duration::from_std(delay).ok())
                .map(|delay| now + delay)
        });
        let outcome = match (&error, retry_at) {
            (None, _) => "delivered",
            (Some(_), Some(_)) => "retrying",
            (Some(_), None) => "dead",
        };
        metrics::counter!("signoff_webhook_attempts_total", "outcome" => outcome).increment(1);
        match &error {
            None => tracing::debug!(delivery = %delivery.id, url = %hook.url, "webhook delivered"),
            Some(error) if retry_at.is_none() => tracing::warn!(
                delivery = %delivery.id, url = %hook.url, attempts = failed, %error,
                "webhook delivery dead after its last try"
            ),
            Some(error) => tracing::info!(
                delivery = %delivery.id, url = %hook.url, attempt = failed, %error,
                "webhook delivery failed; will retry"
            ),
        }
        let attempt = Attempt {
            at: now,
            status: status.map(|s| s.as_u16()),
            error,
            retry_at,
        };
        if let Err(error) = self
            .service
            .store()
            .record_attempt(delivery.id, attempt)
            .await
        {
            // The claim runs out and the delivery is tried again: sent at
            // least once, never lost.
            tracing::warn!(delivery = %delivery.id, %error, "cannot record a webhook try");
        }
    }
}

fn until(now: DateTime<Utc>, at: DateTime<Utc>) -> Duration {
    (at - now).to_std().unwrap_or(Duration::ZERO)
}

fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "cannot connect".to_owned()
    } else {
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// Slack's `mrkdwn` treats `&`, `<` and `>` as markup.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook message: `text` for notifications, and one
/// section block with the link to the request page.
fn slack_message(entry: &AuditEntry, request: &RequestView, url: &str) -> serde_json::Value {
    let record = &entry.record;
    let title = slack_escape(&record.title);
    let actor = slack_escape(record.actor.as_deref().unwrap_or("someone"));
    let link = format!("<{url}|{title}>");
    let headline = match record.event {
        AuditEvent::Created => format!(
            "New approval request from {}: {link}",
            slack_escape(&request.requester)
        ),
        AuditEvent::Approved => format!("Approved by {actor}: {link}"),
        AuditEvent::Endorsed => format!("Signed off by {actor}, waiting for more: {link}"),
        AuditEvent::Rejected => format!("Rejected by {actor}: {link}"),
        AuditEvent::Expired => format!("Expired without a decision: {link}"),
        AuditEvent::Cancelled => format!("Cancelled by {actor}: {link}"),
        AuditEvent::Denied => format!("Refused attempt by {actor} to decide {link}"),
        AuditEvent::Reminded => format!("Reminder: still waiting for a decision: {link}"),
    };
    let mut detail = Vec::new();
    if let Some(reason) = &record.reason {
        detail.push(format!("Reason: {}", slack_escape(reason)));
    }
    if let Some(comment) = &record.comment {
        detail.push(format!("Comment: {}", slack_escape(comment)));
    }
    if matches!(record.event, AuditEvent::Created | AuditEvent::Reminded) {
        detail.push(format!(
            "Expires {}",
            request.expires_at.format("%Y-%m-%d %H:%M UTC")
        ));
    }
    let mut text = headline.clone();
    for line in &detail {
        text.push('\n');
        text.push_str(line);
    }
    serde_json::json!({
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "actions", "elements": [{
                "type": "button",
                "text": {"type": "plain_text", "text": "Open in Signoff"},
                "url": url,
            }]},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // From `printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac whsec_test`.
        assert_eq!(
            sign("whsec_test", 1_700_000_000, r#"{"a":1}"#),
            "v1=38877139021993b830af32feea6e18a8da83eb2f6e49ee50bd9e4cf4ca4d3789"
        );
    }

    #[test]
    fn slack_text_is_escaped() {
        assert_eq!(slack_escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    }
}
