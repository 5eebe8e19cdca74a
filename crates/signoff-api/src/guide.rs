//! Bodies of the guide's `/approval` routes, field for field as the Flask
//! sketch wrote them, so clients written against it keep working.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Body of `POST /approval` (our addition: the guide created requests in
/// process).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GuideCreate {
    /// 1 to 200 characters, not all white space.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub title: String,
    /// Free text.
    #[serde(default)]
    #[schema(max_length = 20000, pattern = r"^[^\u0000]*$")]
    pub description: String,
    /// The change to approve (default `{}`).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub proposed_action: Map<String, Value>,
    /// Hours until it expires, as `create_request(expires_in_hours=...)` (default 24).
    #[serde(default, deserialize_with = "whole_hours")]
    #[schema(minimum = 0, maximum = 277_777)]
    pub expires_in_hours: Option<u32>,
}

/// Reads hours as an integer, accepting a whole float (`24.0`): JSON Schema
/// counts it as an integer and Python clients send it.
fn whole_hours<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    number
        .as_u64()
        .or_else(|| number.as_f64().and_then(crate::v1::whole))
        .and_then(|hours| u32::try_from(hours).ok())
        .filter(|hours| *hours <= 277_777)
        .map(Some)
        .ok_or_else(|| D::Error::custom("expires_in_hours must be a whole number from 0 to 277777"))
}

/// One entry of `GET /approval/pending`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GuideSummary {
    /// The request id.
    pub request_id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Creation time.
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    /// Expiry time.
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub expires_at: DateTime<Utc>,
}

/// Body of `GET /approval/pending`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GuidePending {
    /// How many requests are pending.
    pub pending_count: u64,
    /// The pending requests, newest first (at most 1000).
    pub requests: Vec<GuideSummary>,
}

/// Body of `GET /approval/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GuideRequest {
    /// The request id.
    pub request_id: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// The change to approve.
    #[schema(value_type = Object)]
    pub proposed_action: signoff_core::Action,
    /// pending, approved, rejected, expired or cancelled.
    pub status: String,
    /// Creation time.
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    /// Expiry time.
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub expires_at: DateTime<Utc>,
}

/// Body of `POST /approval/{id}/approve`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct GuideApprove {
    /// Who signs off (the guide defaults to "unknown").
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub reviewer: Option<String>,
}

/// Body of `POST /approval/{id}/reject`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct GuideReject {
    /// Who refuses (the guide defaults to "unknown").
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub reviewer: Option<String>,
    /// Why (the guide defaults to "No reason provided").
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 4000,
        pattern = r"^[^\u0000]*[^\u0000\u0009-\u000d\u0020\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub reason: Option<String>,
}

/// Answer to an approval on the guide's route.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GuideApproved {
    /// "approved", or "pending" when the sign-off completed one stage of an
    /// approval chain and more are needed.
    pub status: String,
    /// The request id.
    pub request_id: String,
    /// Who signed off.
    pub reviewer: String,
    /// When.
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub approved_at: DateTime<Utc>,
}

/// Answer to a rejection on the guide's route.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GuideRejected {
    /// "rejected".
    pub status: String,
    /// The request id.
    pub request_id: String,
    /// Who refused.
    pub reviewer: String,
    /// Why.
    pub reason: String,
    /// When.
    #[serde(serialize_with = "signoff_core::rfc3339::serialize")]
    pub rejected_at: DateTime<Utc>,
}

/// The guide's error body: `{"error": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GuideError {
    /// What went wrong.
    pub error: String,
}
