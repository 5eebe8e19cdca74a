//! Wake-ups for long polls.
//!
//! A waiter subscribes to a request id *before* it reads the request, and
//! whoever changes that request calls [`Hub::publish`] (or, when it does
//! not hold the request, [`Hub::notify`]) after the change is committed. A
//! `watch` channel remembers a change made between the subscription and
//! the wait, so no wake-up is lost, and nothing polls.
//!
//! A published request in a final state travels with the wake-up, so the
//! waiter answers without reading the store again: a final request never
//! changes, so no later wake-up can make it stale. Any other change only
//! says "look again".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use signoff_core::Request;
use tokio::sync::watch;
use uuid::Uuid;

/// What a wake-up carries: the request when it reached a final state,
/// `None` for "it changed, read it again".
type News = Option<Arc<Request>>;

/// The registry of waiters, by request id.
#[derive(Debug, Default, Clone)]
pub struct Hub {
    waiters: Arc<Mutex<HashMap<Uuid, watch::Sender<News>>>>,
}

/// One waiter's interest in one request; dropping it unregisters.
#[derive(Debug)]
pub struct Subscription {
    hub: Hub,
    id: Uuid,
    receiver: Option<watch::Receiver<News>>,
}

impl Hub {
    /// Registers interest in `id`. Call before reading the request.
    pub fn subscribe(&self, id: Uuid) -> Subscription {
        let receiver = match self.waiters.lock() {
            Ok(mut waiters) => Some(
                waiters
                    .entry(id)
                    .or_insert_with(|| watch::channel(None).0)
                    .subscribe(),
            ),
            Err(_) => None,
        };
        metrics::gauge!("signoff_waiters").increment(1.0);
        Subscription {
            hub: self.clone(),
            id,
            receiver,
        }
    }

    /// Wakes every waiter of `id`, which reads the request again. Call
    /// after the change is committed.
    pub fn notify(&self, id: Uuid) {
        if let Some(sender) = self.sender(id) {
            sender.send_replace(None);
        }
    }

    /// Wakes every waiter of `request` with the request itself when it is
    /// final (copied only when someone waits). Call after the change is
    /// committed.
    pub fn publish(&self, request: &Request) {
        if let Some(sender) = self.sender(request.id) {
            let news = request.status.is_final().then(|| Arc::new(request.clone()));
            sender.send_replace(news);
        }
    }

    /// The channel of `id`'s waiters, cloned out of the lock: never wake
    /// tasks while holding it.
    fn sender(&self, id: Uuid) -> Option<watch::Sender<News>> {
        self.waiters
            .lock()
            .ok()
            .and_then(|waiters| waiters.get(&id).cloned())
    }
}

impl Hub {
    /// Wakes every waiter (changes may have been missed): each looks again.
    pub fn notify_all(&self) {
        let senders: Vec<watch::Sender<News>> = match self.waiters.lock() {
            Ok(waiters) => waiters.values().cloned().collect(),
            Err(_) => return,
        };
        for sender in senders {
            sender.send_replace(None);
        }
    }
}

impl Subscription {
    /// Resolves once the request changed after the subscription was made,
    /// with the request when the change made it final.
    pub async fn changed(&mut self) -> Option<Arc<Request>> {
        match self.receiver.as_mut() {
            Some(receiver) => {
                if receiver.changed().await.is_err() {
                    // The sender cannot go while we hold a receiver; if it
                    // somehow did, never resolve rather than spin.
                    std::future::pending::<()>().await;
                }
                receiver.borrow_and_update().clone()
            }
            None => std::future::pending().await,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        metrics::gauge!("signoff_waiters").decrement(1.0);
        drop(self.receiver.take());
        if let Ok(mut waiters) = self.hub.waiters.lock()
            && waiters
                .get(&self.id)
                .is_some_and(|sender| sender.receiver_count() == 0)
        {
            waiters.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_change_between_subscribe_and_wait_is_not_lost() {
        let hub = Hub::default();
        let id = Uuid::now_v7();
        let mut sub = hub.subscribe(id);
        hub.notify(id);
        tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .expect("woken");
    }

    /// A request opened now that expires in `seconds` (0: already expired).
    fn request(seconds: u64) -> Request {
        signoff_store::suite::draft("Waited on", seconds)
            .open(Uuid::now_v7(), chrono::Utc::now())
            .0
    }

    /// What a waiter of `request` hears when it is published.
    async fn news_of(hub: &Hub, request: &Request) -> News {
        let mut sub = hub.subscribe(request.id);
        hub.publish(request);
        tokio::time::timeout(Duration::from_secs(1), sub.changed())
            .await
            .expect("woken")
    }

    #[tokio::test]
    async fn a_final_request_travels_with_its_wake_up_and_a_pending_one_does_not() {
        let hub = Hub::default();
        let expired = request(0);
        assert_eq!(news_of(&hub, &expired).await.as_deref(), Some(&expired));
        let pending = request(3600);
        assert!(
            news_of(&hub, &pending).await.is_none(),
            "a pending request must be read again"
        );
    }

    #[tokio::test]
    async fn dropping_the_last_subscription_unregisters() {
        let hub = Hub::default();
        let id = Uuid::now_v7();
        let a = hub.subscribe(id);
        let b = hub.subscribe(id);
        drop(a);
        assert_eq!(hub.waiters.lock().unwrap().len(), 1);
        drop(b);
        assert!(hub.waiters.lock().unwrap().is_empty());
    }
}
