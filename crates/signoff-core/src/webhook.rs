//! Outbound webhooks: who is told about which events, and the record of
//! each delivery.
//!
//! The audit trail is the outbox. Every state change appends its entry in
//! the same transaction as the change, so an event cannot be lost or
//! invented; each subscription keeps a cursor into the trail, and a
//! dispatcher turns the entries past the cursor into [`Delivery`] rows (in
//! one transaction with moving the cursor) and sends them.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::AuditEvent;

/// The names a subscription may list, besides `request.<event>` for each
/// audit event: `request.decided` (approved or rejected) and `*` (all).
pub const DECIDED: &str = "request.decided";

/// The event name of an audit event, as webhooks and `/v1/events` call it.
pub fn event_name(event: AuditEvent) -> String {
    format!("request.{}", event.as_str())
}

/// Every name a subscription may list.
pub fn known_events() -> Vec<String> {
    let mut names = vec!["*".to_owned(), DECIDED.to_owned()];
    names.extend(AuditEvent::ALL.into_iter().map(event_name));
    names
}

/// How a delivery's body is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// Signoff's own JSON event (documented in the README).
    #[default]
    Json,
    /// A Slack incoming-webhook message (`text` and `blocks`) with a link to
    /// the request page.
    Slack,
}

impl WebhookFormat {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
        }
    }

    /// The format named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "json" => Some(WebhookFormat::Json),
            "slack" => Some(WebhookFormat::Slack),
            _ => None,
        }
    }
}

/// A subscription: where to send which events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event names it wants (see [`known_events`]).
    pub events: Vec<String>,
    /// The key of the HMAC-SHA256 signature; kept in clear because every
    /// delivery is signed with it, and never shown again after creation.
    pub secret: String,
    /// The body's shape.
    pub format: WebhookFormat,
    /// Who created it.
    pub created_by: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The last audit position turned into deliveries: events after it
    /// are still to be sent. Set by the store at creation to the head of
    /// the trail, so a new subscription starts with the next event.
    pub cursor: i64,
}

impl Webhook {
    /// Whether an audit event of kind `event` is sent to this subscription.
    pub fn wants(&self, event: AuditEvent) -> bool {
        let name = event_name(event);
        self.events.iter().any(|wanted| {
            wanted == "*"
                || *wanted == name
                || (wanted == DECIDED
                    && matches!(event, AuditEvent::Approved | AuditEvent::Rejected))
        })
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not yet accepted by the receiver; tried again at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every try failed; kept for inspection and `redeliver`.
    Dead,
}

impl DeliveryStatus {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "dead" => Some(DeliveryStatus::Dead),
            _ => None,
        }
    }
}

/// One event for one subscription, and how sending it went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Its id (also sent as `Signoff-Delivery`, so receivers can drop
    /// repeats).
    pub id: Uuid,
    /// The subscription.
    pub webhook_id: Uuid,
    /// The audit position of the event.
    pub seq: i64,
    /// The event name (`request.approved`, ...).
    pub event: String,
    /// The request it is about.
    pub request_id: Uuid,
    /// The exact body sent on every try.
    pub body: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Tries so far.
    pub attempts: u32,
    /// When it is (next) due; for a delivery being sent, when its claim
    /// runs out.
    pub next_attempt_at: DateTime<Utc>,
    /// The HTTP status of the last try, if the receiver answered.
    pub last_status: Option<u16>,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// How one try went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// When it ended.
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    pub status: Option<u16>,
    /// Why it failed (`None`: it succeeded).
    pub error: Option<String>,
    /// After a failure, when to try again; `None` after the last try.
    pub retry_at: Option<DateTime<Utc>>,
}

/// When to retry, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay after the first failure; doubled after each further one.
    pub first: Duration,
    /// The longest delay.
    pub max: Duration,
    /// Tries in all, the first included; after the last failure the
    /// delivery is dead.
    pub attempts: u32,
}

impl Default for Backoff {
    /// 8 tries over about 10 minutes: 5 s, 10 s, 20 s ... capped at 5 min.
    fn default() -> Self {
        Self {
            first: Duration::from_secs(5),
            max: Duration::from_secs(300),
            attempts: 8,
        }
    }
}

impl Backoff {
    /// The delay before the next try after `failed` failures in a row, or
    /// `None` when that was the last try.
    pub fn delay(&self, failed: u32) -> Option<Duration> {
        if failed >= self.attempts {
            return None;
        }
        let doublings = failed.saturating_sub(1).min(31);
        Some(self.first.saturating_mul(1 << doublings).min(self.max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(events: &[&str]) -> Webhook {
        Webhook {
            id: Uuid::nil(),
            url: "http://127.0.0.1/".into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            secret: "s".into(),
            format: WebhookFormat::Json,
            created_by: None,
            created_at: DateTime::UNIX_EPOCH,
            cursor: 0,
        }
    }

    #[test]
    fn decided_means_approved_or_rejected() {
        let decided = hook(&["request.created", DECIDED]);
        assert!(decided.wants(AuditEvent::Created));
        assert!(decided.wants(AuditEvent::Approved));
        assert!(decided.wants(AuditEvent::Rejected));
        assert!(!decided.wants(AuditEvent::Endorsed));
        assert!(!decided.wants(AuditEvent::Expired));
        assert!(hook(&["*"]).wants(AuditEvent::Denied));
        assert!(hook(&["request.expired"]).wants(AuditEvent::Expired));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_gives_up() {
        let backoff = Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(5),
            attempts: 5,
        };
        let delays: Vec<_> = (1..=5).map(|n| backoff.delay(n)).collect();
        assert_eq!(
            delays,
            vec![
                Some(Duration::from_secs(1)),
                Some(Duration::from_secs(2)),
                Some(Duration::from_secs(4)),
                Some(Duration::from_secs(5)),
                None
            ]
        );
    }
}
