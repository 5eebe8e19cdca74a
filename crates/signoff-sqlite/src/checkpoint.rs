//! WAL checkpoints beside the writer instead of inside it.
//!
//! SQLite's automatic checkpoint runs in the commit that crosses its
//! threshold: the writer copies every page the WAL holds into the database
//! file and fsyncs it, and no write commits meanwhile. Under load that is a
//! stall of several milliseconds about ten times a second, with every
//! caller waiting behind it.
//!
//! Here the writer's connection checkpoints nothing by itself. Once the WAL
//! holds [`SqliteOptions::checkpoint_frames`] frames (4 MiB by default),
//! the writer asks the [`Checkpointer`]'s
//! thread, which has a connection of its own, to run passive checkpoints
//! (they copy pages while the writer goes on appending) until it has nearly
//! caught up. The writer then copies the last few frames itself between two
//! batches, so that the WAL is fully checkpointed when its next transaction
//! starts, and SQLite starts the WAL again from the beginning instead of
//! letting it grow.

use std::cell::Cell;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::thread::JoinHandle;

use rusqlite::Connection;
use signoff_store::StoreError;

use crate::{SqliteOptions, schema};

/// When to checkpoint, in WAL frames (pages).
#[derive(Clone, Copy)]
struct Thresholds {
    /// The helper is asked to start.
    start: i64,
    /// Few enough left for the writer to copy itself: an eighth of `start`,
    /// a few milliseconds of writes.
    finish: i64,
    /// The writer checkpoints by itself whatever the helper is doing (it may
    /// be stuck behind a slow disk), so the WAL stays bounded.
    limit: i64,
}

impl Thresholds {
    fn new(start: u32) -> Self {
        let start = i64::from(start.max(8));
        Self {
            start,
            finish: start / 8,
            limit: start * 8,
        }
    }
}

thread_local! {
    /// Frames in the WAL after the last commit on this thread's connection,
    /// as SQLite's WAL hook reports them (a hook is a plain `fn`, so it
    /// cannot capture the writer's state).
    static WAL_FRAMES: Cell<i64> = const { Cell::new(0) };
}

fn record_frames(_wal: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|cell| cell.set(i64::from(frames)));
    Ok(())
}

/// What the writer and the helper thread share.
#[derive(Default)]
struct Progress {
    /// Held for the length of a checkpoint pass, by whichever of the two
    /// makes it: they never contend inside SQLite, and the writer can wait
    /// for the helper's pass to end.
    pass: Mutex<()>,
    /// The frames the helper has copied, in generation `generation` of the
    /// WAL.
    backfilled: AtomicI64,
    /// Bumped by the writer each time the WAL starts over, so that a pass
    /// over the previous WAL cannot report into the new one.
    generation: AtomicU64,
    /// Passes the helper has made.
    passes: AtomicU64,
    /// Checkpoints the writer finished with only a few frames left to copy.
    finished: AtomicU64,
}

impl Progress {
    fn lock(&self) -> MutexGuard<'_, ()> {
        // The guarded value is `()`: a panic while holding it broke nothing.
        self.pass.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The helper thread and the writer's side of the protocol.
pub(crate) struct Checkpointer {
    thresholds: Thresholds,
    /// The WAL's frames after the writer's previous commit: fewer now means
    /// it started over.
    last_frames: Cell<i64>,
    wake: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    progress: Arc<Progress>,
}

impl Checkpointer {
    /// Takes over checkpoints of `writer` (run on the writer's thread, where
    /// its WAL hook reports): opens the helper's connection and starts it.
    pub(crate) fn start(options: &SqliteOptions, writer: &Connection) -> Result<Self, StoreError> {
        let conn = schema::open_checkpointer(options)?;
        // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
        writer.wal_hook(Some(record_frames));
        let progress = Arc::new(Progress::default());
        let (wake, woken) = mpsc::sync_channel(1);
        let shared = progress.clone();
        let thread = std::thread::Builder::new()
            .name("signoff-sqlite-checkpoint".into())
            .spawn(move || run(&conn, &shared, &woken))
            .map_err(|e| StoreError::Unavailable(format!("cannot start checkpoint thread: {e}")))?;
        Ok(Self {
            thresholds: Thresholds::new(options.checkpoint_frames),
            last_frames: Cell::new(0),
            wake: Some(wake),
            thread: Some(thread),
            progress,
        })
    }

    /// Called by the writer after each commit: asks the helper for a pass,
    /// or finishes the checkpoint, as the WAL's size says.
    pub(crate) fn after_commit(&self, writer: &Connection) {
        let frames = WAL_FRAMES.with(Cell::get);
        if frames < self.last_frames.replace(frames) {
            self.started_over();
        }
        let Thresholds {
            start,
            finish,
            limit,
        } = self.thresholds;
        if frames < start {
            return;
        }
        if frames >= limit {
            // The helper falls behind: wait for its pass, then copy the rest.
            let _pass = self.progress.lock();
            self.finish(writer);
            return;
        }
        let left = frames - self.progress.backfilled.load(Ordering::Acquire);
        match self.progress.pass.try_lock() {
            Ok(_pass) if left <= finish => {
                self.finish(writer);
                self.progress.finished.fetch_add(1, Ordering::Relaxed);
            }
            // Full means a request is already waiting.
            Ok(_) => {
                if let Some(wake) = &self.wake {
                    let _ = wake.try_send(());
                }
            }
            // The helper is in a pass; it reports when done.
            Err(_) => {}
        }
    }

    /// Copies what is left on the writer's own connection, between two of
    /// its transactions (the caller holds the pass lock): with nothing left
    /// when the next one begins, SQLite starts the WAL over.
    fn finish(&self, writer: &Connection) {
        if let Err(error) = passive(writer) {
            // Left for a later commit to try again; the data is safe in the
            // WAL meanwhile.
            tracing::warn!(%error, "WAL checkpoint failed");
        }
    }

    /// The WAL started over: what the helper copied was of the old one.
    fn started_over(&self) {
        self.progress.generation.fetch_add(1, Ordering::AcqRel);
        self.progress.backfilled.store(0, Ordering::Release);
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The helper: one passive checkpoint per request. The writer asks again
/// while more than a few frames are left.
fn run(conn: &Connection, progress: &Progress, woken: &mpsc::Receiver<()>) {
    while woken.recv().is_ok() {
        let _pass = progress.lock();
        progress.passes.fetch_add(1, Ordering::Relaxed);
        let generation = progress.generation.load(Ordering::Acquire);
        match passive(conn) {
            // Only the writer's own checkpoint, between its transactions,
            // can leave nothing to copy when the next one begins; this pass
            // reports how far it got.
            Ok(Pass { copied, .. }) => {
                if progress.generation.load(Ordering::Acquire) == generation {
                    progress.backfilled.store(copied, Ordering::Release);
                }
            }
            Err(error) => tracing::warn!(%error, "WAL checkpoint failed"),
        }
    }
}

/// What a passive checkpoint reports.
struct Pass {
    /// Frames copied into the database file so far.
    copied: i64,
}

/// Copies into the database file every WAL frame no reader still needs,
/// without waiting for the writer or readers.
fn passive(conn: &Connection) -> rusqlite::Result<Pass> {
    let started = std::time::Instant::now();
    let pass = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(Pass {
            copied: row.get(2)?,
        })
    })?;
    metrics::histogram!("signoff_store_checkpoint_seconds").record(started.elapsed().as_secs_f64());
    Ok(pass)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::{Checkpointer, Thresholds};
    use crate::{Durability, SqliteOptions, schema};

    /// SQLite's own checkpoint is off, so without these the WAL would hold
    /// every frame written. With them the helper copies most of it, the
    /// writer finishes with a few frames left, and the WAL starts over: its
    /// file stays near the threshold.
    #[test]
    fn the_helper_copies_the_wal_and_it_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = SqliteOptions::new(dir.path().join("db"));
        options.durability = Durability::Normal;
        options.checkpoint_frames = 256;
        let thresholds = Thresholds::new(options.checkpoint_frames);
        let conn = schema::open_writer(&options).unwrap();
        let checkpointer = Checkpointer::start(&options, &conn).unwrap();
        let commits = 4000;
        for n in 0..commits {
            // One commit each, of a few pages: thousands of frames in all,
            // at a pace a helper's pass can follow.
            conn.execute(
                "INSERT INTO idempotency_keys (key, fingerprint, request_id) VALUES (?1, 'f', 'r')",
                [format!("key-{n:06}")],
            )
            .unwrap();
            checkpointer.after_commit(&conn);
            std::thread::sleep(Duration::from_micros(50));
        }
        let progress = checkpointer.progress.clone();
        assert!(
            progress.passes.load(Ordering::Relaxed) > 0,
            "the helper never checkpointed"
        );
        assert!(
            progress.finished.load(Ordering::Relaxed) > 0,
            "the writer never finished a checkpoint the helper began"
        );
        let frame = 4096 + 24;
        let limit = u64::try_from(thresholds.limit).unwrap();
        let wal = std::fs::metadata(dir.path().join("db-wal")).unwrap().len();
        assert!(wal <= (limit + 16) * frame, "the WAL grew to {wal} bytes");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM idempotency_keys", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(rows, commits);
        drop(checkpointer);
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
    }
}
