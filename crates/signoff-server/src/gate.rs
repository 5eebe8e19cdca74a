//! The service as the workflow engine's approval gate: a run's approval
//! request is an ordinary request, created and awaited through the same
//! service calls as `/v1`, so it has the same audit trail and wake-ups.

use std::time::Duration;

use async_trait::async_trait;
use signoff_api::{ExpiresIn, NewRequest};
use signoff_core::Request;
use signoff_workflow::engine::{Gate, GateError, NewApproval};
use uuid::Uuid;

use crate::service::Service;

/// How long one wait on the hub lasts before it is renewed; the request's
/// own expiry (recorded by the sweeper) ends any wait sooner.
const WAIT_CHUNK: Duration = Duration::from_secs(3600);

#[async_trait]
impl Gate for Service {
    async fn open(&self, approval: NewApproval, key: &str) -> Result<Request, GateError> {
        let body = NewRequest {
            title: approval.title,
            description: approval.description,
            proposed_action: approval.proposed_action,
            requester: Some(approval.requester),
            labels: approval.labels,
            expires_in: Some(ExpiresIn::Seconds(approval.expires_in.seconds())),
        };
        self.create(body, Some(key.to_owned()))
            .await
            .map(|created| created.request)
            .map_err(|error| GateError(error.to_string()))
    }

    async fn decided(&self, id: Uuid) -> Result<Request, GateError> {
        loop {
            if self.is_closing() {
                return Err(GateError("the server is shutting down".into()));
            }
            let request = self
                .wait(id, WAIT_CHUNK)
                .await
                .map_err(|error| GateError(error.to_string()))?;
            if request.status.is_final() {
                return Ok(request);
            }
        }
    }

    fn run_changed(&self, _id: Uuid) {
        self.changed();
    }
}
