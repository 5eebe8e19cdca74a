//! Wake-ups for long polls.
//!
//! A waiter subscribes to a request id *before* it reads the request, and
//! whoever changes that request calls [`Hub::notify`] after the change is
//! committed. A `watch` channel remembers a change made between the
//! subscription and the wait, so no wake-up is lost, and nothing polls.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use uuid::Uuid;

/// The registry of waiters, by request id.
#[derive(Debug, Default, Clone)]
pub struct Hub {
    waiters: Arc<Mutex<HashMap<Uuid, watch::Sender<()>>>>,
}

/// One waiter's interest in one request; dropping it unregisters.
#[derive(Debug)]
pub struct Subscription {
    hub: Hub,
    id: Uuid,
    receiver: Option<watch::Receiver<()>>,
}

impl Hub {
    /// Registers interest in `id`. Call before reading the request.
    pub fn subscribe(&self, id: Uuid) -> Subscription {
        let receiver = match self.waiters.lock() {
            Ok(mut waiters) => Some(
                waiters
                    .entry(id)
                    .or_insert_with(|| watch::channel(()).0)
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

    /// Wakes every waiter of `id`. Call after the change is committed.
    pub fn notify(&self, id: Uuid) {
        // Clone out of the lock: never wake tasks while holding it.
        let sender = self
            .waiters
            .lock()
            .ok()
            .and_then(|waiters| waiters.get(&id).cloned());
        if let Some(sender) = sender {
            sender.send_replace(());
        }
    }
}

impl Hub {
    /// Wakes every waiter (changes may have been missed): each looks again.
    pub fn notify_all(&self) {
        let senders: Vec<watch::Sender<()>> = match self.waiters.lock() {
            Ok(waiters) => waiters.values().cloned().collect(),
            Err(_) => return,
        };
        for sender in senders {
            sender.send_replace(());
        }
    }
}

impl Subscription {
    /// Resolves once the request changed after the subscription was made.
    pub async fn changed(&mut self) {
        match self.receiver.as_mut() {
            Some(receiver) => {
                if receiver.changed().await.is_err() {
                    // The sender cannot go while we hold a receiver; if it
                    // somehow did, never resolve rather than spin.
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
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
