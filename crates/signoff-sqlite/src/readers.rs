//! A small pool of read-only connections, used from blocking threads so a
//! slow query never stalls the async runtime.

use std::sync::{Arc, Mutex};

use rusqlite::Connection;
use signoff_store::{StoreError, StoreResult};

use crate::SqliteOptions;
use crate::schema::open_reader;

pub(crate) struct Readers {
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(options: SqliteOptions) -> StoreResult<Self> {
        let idle = (0..options.readers.max(1))
            .map(|_| open_reader(&options))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Self {
            options,
            idle: Mutex::new(idle),
        })
    }

    fn take(&self) -> StoreResult<Connection> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match pooled {
            Some(conn) => Ok(conn),
            // All busy: open another rather than wait; it joins the pool.
            None => open_reader(&self.options),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < self.options.readers.max(1) * 4
        {
            idle.push(conn);
        }
    }

    /// Runs `read` on a pooled connection on the blocking thread pool.
    pub(crate) async fn run<T, F>(self: &Arc<Self>, read: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let readers = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = readers.take()?;
            let result = read(&conn);
            readers.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }
}
