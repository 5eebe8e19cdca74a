//! The expiry sweeper: moves overdue pending requests to `expired` without
//! anyone touching them, so waiters and lists see `expired` on time, and
//! gives the reminders of policies that have them (a `reminded` audit
//! entry, which webhooks and event streams carry, and the escalation).
//!
//! It sleeps until the next request or reminder is due (asking the store
//! when that is), and a create due sooner nudges it; it never polls on a
//! fixed tick. Each pass is one [`sweep_once`] step, which a test can call directly.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use crate::service::Service;

/// Requests expired per store transaction.
const BATCH: u32 = 500;
/// Longest sleep, so a clock that jumps is noticed within this.
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// Wait after a store error before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Expires everything overdue now; returns how many were expired.
pub async fn sweep_once(service: &Service) -> Result<usize, signoff_store::StoreError> {
    let mut total = 0;
    loop {
        let expired = service.store().expire_overdue(BATCH).await?;
        total += expired.len();
        if !expired.is_empty() {
            service.changed();
        }
        for request in &expired {
            service.hub().publish(request);
        }
        metrics::counter!("signoff_requests_expired_total").increment(expired.len() as u64);
        if expired.len() < BATCH as usize {
            break;
        }
    }
    loop {
        let reminded = service.store().remind_due(BATCH).await?;
        if !reminded.is_empty() {
            tracing::info!(reminded = reminded.len(), "reminders given");
            service.changed();
        }
        metrics::counter!("signoff_reminders_total").increment(reminded.len() as u64);
        if reminded.len() < BATCH as usize {
            return Ok(total);
        }
    }
}

/// Runs until `shutdown` changes.
pub async fn run(service: Service, mut shutdown: watch::Receiver<bool>) {
    let signal = service.sweeper_signal().clone();
    let mut nudged = signal.nudge.subscribe();
    loop {
        let pause = match sweep_once(&service).await {
            Ok(expired) => {
                if expired > 0 {
                    tracing::info!(expired, "expired overdue requests");
                }
                next_pause(&service).await
            }
            Err(error) => {
                tracing::warn!(%error, "expiry sweep failed; retrying");
                RETRY_AFTER
            }
        };
        let wake_at = service.clock().now()
            + chrono::Duration::from_std(pause).unwrap_or(chrono::Duration::zero());
        signal
            .next_wake
            .store(wake_at.timestamp_micros(), Ordering::Release);
        // A nudge that arrived during the sweep is kept by the watch
        // channel and ends this sleep at once.
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = nudged.changed() => {}
            _ = shutdown.changed() => return,
        }
    }
}

async fn next_pause(service: &Service) -> Duration {
    let store = service.store();
    let next = match (store.next_expiry().await, store.next_reminder().await) {
        (Ok(expiry), Ok(reminder)) => Ok(match (expiry, reminder) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }),
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    match next {
        Ok(Some(due)) => (due - service.clock().now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .min(MAX_SLEEP),
        Ok(None) => MAX_SLEEP,
        Err(error) => {
            tracing::warn!(%error, "cannot read the next expiry; retrying");
            RETRY_AFTER
        }
    }
}
