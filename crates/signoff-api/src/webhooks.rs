//! Bodies of `/v1/webhooks` and `/v1/deliveries`: outbound notifications,
//! for admins, and the JSON event a `json` subscription receives.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use signoff_core::{Delivery, DeliveryStatus, Webhook, WebhookFormat};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::v1::{AuditEntryView, RequestView};

/// A body format on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum FormatView {
    /// Signoff's JSON event ([`WebhookEvent`]).
    #[default]
    Json,
    /// A Slack incoming-webhook message with a link to the request page.
    Slack,
}

impl From<FormatView> for WebhookFormat {
    fn from(format: FormatView) -> Self {
        match format {
            FormatView::Json => WebhookFormat::Json,
            FormatView::Slack => WebhookFormat::Slack,
        }
    }
}

impl From<WebhookFormat> for FormatView {
    fn from(format: WebhookFormat) -> Self {
        match format {
            WebhookFormat::Json => FormatView::Json,
            WebhookFormat::Slack => FormatView::Slack,
        }
    }
}

/// An event a subscription may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum EventName {
    /// Every event.
    #[serde(rename = "*")]
    All,
    /// Approved or rejected.
    #[serde(rename = "request.decided")]
    Decided,
    /// Proposed.
    #[serde(rename = "request.created")]
    Created,
    /// Approved (the last sign-off, or a rule).
    #[serde(rename = "request.approved")]
    Approved,
    /// One sign-off of a chain or quorum; more are needed.
    #[serde(rename = "request.endorsed")]
    Endorsed,
    /// Rejected.
    #[serde(rename = "request.rejected")]
    Rejected,
    /// Ran out of time.
    #[serde(rename = "request.expired")]
    Expired,
    /// Withdrawn.
    #[serde(rename = "request.cancelled")]
    Cancelled,
    /// A refused attempt to decide it.
    #[serde(rename = "request.denied")]
    Denied,
    /// Still pending at its policy's reminder point (and maybe escalated).
    #[serde(rename = "request.reminded")]
    Reminded,
}

impl EventName {
    /// The name as subscriptions store it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::All => "*",
            EventName::Decided => "request.decided",
            EventName::Created => "request.created",
            EventName::Approved => "request.approved",
            EventName::Endorsed => "request.endorsed",
            EventName::Rejected => "request.rejected",
            EventName::Expired => "request.expired",
            EventName::Cancelled => "request.cancelled",
            EventName::Denied => "request.denied",
            EventName::Reminded => "request.reminded",
        }
    }
}

/// Body of `POST /v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// Where to POST events: an `http` or `https` URL (one that does not
    /// parse as a URL is refused with 422).
    #[schema(max_length = 2000, pattern = r"^https?://\S+$")]
    pub url: String,
    /// Which events.
    #[schema(min_items = 1, max_items = 16)]
    pub events: Vec<EventName>,
    /// The HMAC-SHA256 key (16 to 256 characters); absent: one is made and
    /// shown in the answer, once.
    #[serde(default)]
    #[schema(min_length = 16, max_length = 256, pattern = r"^[^\u0000]*$")]
    pub secret: Option<String>,
    /// The body's shape (default `json`).
    #[serde(default)]
    pub format: FormatView,
}

/// A subscription as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    /// Its id.
    pub id: Uuid,
    /// Where events go.
    pub url: String,
    /// Which events.
    pub events: Vec<String>,
    /// The body's shape.
    pub format: FormatView,
    /// Who made it.
    pub created_by: Option<String>,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<Webhook> for WebhookView {
    fn from(hook: Webhook) -> Self {
        Self {
            id: hook.id,
            url: hook.url,
            events: hook.events,
            format: hook.format.into(),
            created_by: hook.created_by,
            created_at: hook.created_at,
        }
    }
}

/// Answer to `POST /v1/webhooks`: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedWebhook {
    /// The signing key.
    pub secret: String,
    /// What was stored.
    #[serde(flatten)]
    pub webhook: WebhookView,
}

/// Every subscription.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    /// Oldest first.
    pub webhooks: Vec<WebhookView>,
}

/// Where a delivery stands, on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatusView {
    /// Not yet accepted; tried again at `next_attempt_at`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Every try failed.
    Dead,
}

impl From<DeliveryStatusView> for DeliveryStatus {
    fn from(status: DeliveryStatusView) -> Self {
        match status {
            DeliveryStatusView::Pending => DeliveryStatus::Pending,
            DeliveryStatusView::Delivered => DeliveryStatus::Delivered,
            DeliveryStatusView::Dead => DeliveryStatus::Dead,
        }
    }
}

impl From<DeliveryStatus> for DeliveryStatusView {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => DeliveryStatusView::Pending,
            DeliveryStatus::Delivered => DeliveryStatusView::Delivered,
            DeliveryStatus::Dead => DeliveryStatusView::Dead,
        }
    }
}

/// One event for one subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// Its id, sent as `Signoff-Delivery`.
    pub id: Uuid,
    /// The subscription.
    pub webhook_id: Uuid,
    /// The audit entry of the event.
    pub seq: i64,
    /// The event name.
    pub event: String,
    /// The request.
    pub request_id: Uuid,
    /// Where it stands.
    pub status: DeliveryStatusView,
    /// Tries so far.
    pub attempts: u32,
    /// When it is next tried (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// The HTTP status of the last try.
    pub last_status: Option<u16>,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<Delivery> for DeliveryView {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            webhook_id: d.webhook_id,
            seq: d.seq,
            event: d.event,
            request_id: d.request_id,
            status: d.status.into(),
            attempts: d.attempts,
            next_attempt_at: (d.status == DeliveryStatus::Pending).then_some(d.next_attempt_at),
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
        }
    }
}

/// Deliveries, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    /// The deliveries.
    pub deliveries: Vec<DeliveryView>,
}

/// Query of `GET /v1/deliveries`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// Only those of this subscription.
    pub webhook_id: Option<Uuid>,
    /// Only those in this state.
    pub status: Option<DeliveryStatusView>,
    /// Only those about this request.
    pub request_id: Option<Uuid>,
    /// At most this many, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The body a `json` subscription receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookEvent {
    /// The delivery's id (also the `Signoff-Delivery` header): the same on
    /// every try, so receivers can drop repeats.
    pub id: Uuid,
    /// `request.created`, `request.approved`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// The audit entry that is the event.
    pub entry: AuditEntryView,
    /// The request as it was when the event was dispatched.
    pub request: RequestView,
    /// The request's page in the web inbox.
    pub url: String,
}
