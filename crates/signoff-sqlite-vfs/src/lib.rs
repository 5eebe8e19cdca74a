//! A SQLite VFS that writes each WAL commit with one system call.
//!
//! SQLite appends a commit to its WAL one frame at a time, and each frame
//! with two `pwrite`s (its 24-byte header, then the page), so a commit of
//! twenty pages is forty writes; with frames of 4,120 bytes every one of
//! them also straddles two pages of the kernel's page cache. Measured on
//! the benchmark VM, forty small writes cost the kernel about three times
//! what one write of the same bytes does (docs/BENCHMARKS.md, ninth
//! session), and the store's single writer pays it on every commit.
//!
//! This VFS sits over the default one ("unix" on Linux, whose files,
//! locks and shared memory it uses unchanged) and, for WAL files only,
//! holds consecutive writes in a buffer and hands them to the kernel as one
//! write when SQLite next does anything else with the file: syncs it (every
//! commit at `synchronous=FULL`), reads, truncates or sizes it, or closes it.
//!
//! **Only for connections at `synchronous=FULL`.** Other connections see a
//! commit once SQLite updates the WAL index in shared memory, which it does
//! after the commit's sync and so after the buffer is written. Without
//! that sync, a reader could be told of frames still in the buffer.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::mem::{align_of, size_of};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name to open connections with ([`rusqlite::Connection::open_with_flags_and_vfs`]).
pub const NAME: &CStr = c"signoff-walbuf";

/// Writes buffered past this many bytes go to the kernel at once: bounds the
/// buffer of a very large transaction; a commit of a few hundred frames fits.
const MAX_BUFFERED: usize = 1 << 20;

/// The most the unix VFS writes in one call (it keeps the low 17 bits of
/// the length), rounded down to whole pages of the page cache.
const MAX_WRITE: usize = 0x1ffff & !4095;

/// Registers the VFS with SQLite (once per process, later calls return the
/// first outcome) and returns its name. Fails with SQLite's error code if
/// there is no default VFS to build on.
pub fn register() -> Result<&'static CStr, i32> {
    static REGISTERED: OnceLock<Result<(), i32>> = OnceLock::new();
    (*REGISTERED.get_or_init(register_once)).map(|()| NAME)
}

fn register_once() -> Result<(), i32> {
    // SAFETY: sqlite3_vfs_find initialises the library and returns the
    // default VFS, which SQLite keeps alive for the life of the process.
    let real = unsafe { ffi::sqlite3_vfs_find(ptr::null()) };
    if real.is_null() {
        return Err(ffi::SQLITE_ERROR);
    }
    // SAFETY: `real` is a registered VFS; copying its description is how a
    // shim inherits everything it does not override.
    let mut vfs = unsafe { ptr::read(real) };
    let real_size = usize::try_from(vfs.szOsFile).map_err(|_| ffi::SQLITE_ERROR)?;
    vfs.szOsFile = c_int::try_from(REAL_OFFSET + real_size).map_err(|_| ffi::SQLITE_ERROR)?;
    vfs.pNext = ptr::null_mut();
    vfs.zName = NAME.as_ptr();
    vfs.pAppData = real.cast();
    vfs.xOpen = Some(open);
    vfs.xDelete = Some(delete);
    vfs.xAccess = Some(access);
    vfs.xFullPathname = Some(full_pathname);
    // Leaked on purpose: SQLite holds the pointer until the process ends.
    let vfs = Box::into_raw(Box::new(vfs));
    // SAFETY: `vfs` is a complete, 'static VFS description; 0 = not default.
    let rc = unsafe { ffi::sqlite3_vfs_register(vfs, 0) };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(rc)
    }
}

/// A WAL file as SQLite sees it: the methods below, the real file's
/// handle (kept in the same allocation, after this header) and the bytes
/// not yet written.
#[repr(C)]
struct WalFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    /// Bytes written by SQLite but not yet by the kernel, starting at
    /// `start` in the file.
    pending: Vec<u8>,
    start: i64,
}

/// Where the real file's handle starts inside the space SQLite allocates.
const REAL_OFFSET: usize = size_of::<WalFile>().next_multiple_of(align_of::<u64>());

/// The default VFS this one is built over.
///
/// # Safety
/// `vfs` must be this VFS, as registered by [`register_once`].
unsafe fn real_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: per the contract, pAppData holds the default VFS.
    unsafe { (*vfs).pAppData.cast() }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    // SAFETY: SQLite calls this with our VFS.
    let real = unsafe { real_vfs(vfs) };
    // SAFETY: the default VFS always has xOpen.
    let Some(real_open) = (unsafe { (*real).xOpen }) else {
        return ffi::SQLITE_ERROR;
    };
    if flags & ffi::SQLITE_OPEN_WAL == 0 {
        // Everything but the WAL is the real file itself, in the space
        // SQLite gave us (larger than the real VFS asks for), so SQLite
        // calls the real methods directly.
        // SAFETY: `file` has room for the real VFS's file.
        return unsafe { real_open(real, name, file, flags, out_flags) };
    }
    // SAFETY: SQLite allocated szOsFile bytes, REAL_OFFSET + the real size.
    let real_file = unsafe { file.cast::<u8>().add(REAL_OFFSET) }.cast::<ffi::sqlite3_file>();
    // SAFETY: as above; the real VFS initialises its own file.
    let rc = unsafe { real_open(real, name, real_file, flags, out_flags) };
    if rc != ffi::SQLITE_OK {
        // SQLite calls xClose only on a file whose methods are set.
        // SAFETY: `file` is writable for at least a sqlite3_file.
        unsafe { (*file).pMethods = ptr::null() };
        return rc;
    }
    let wal = WalFile {
        base: ffi::sqlite3_file { pMethods: &METHODS },
        real: real_file,
        pending: Vec::new(),
        start: 0,
    };
    // SAFETY: `file` is suitably sized and aligned (SQLite allocates 8-byte
    // aligned memory) and holds nothing that needs dropping yet.
    unsafe { ptr::write(file.cast::<WalFile>(), wal) };
    ffi::SQLITE_OK
}

unsafe extern "C" fn delete(vfs: *mut ffi::sqlite3_vfs, name: *const c_char, sync: c_int) -> c_int {
    // SAFETY: SQLite calls this with our VFS; the real one has xDelete.
    unsafe {
        let real = real_vfs(vfs);
        match (*real).xDelete {
            Some(f) => f(real, name, sync),
            None => ffi::SQLITE_IOERR_DELETE,
        }
    }
}

unsafe extern "C" fn access(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    // SAFETY: SQLite calls this with our VFS; the real one has xAccess.
    unsafe {
        let real = real_vfs(vfs);
        match (*real).xAccess {
            Some(f) => f(real, name, flags, out),
            None => ffi::SQLITE_IOERR_ACCESS,
        }
    }
}

unsafe extern "C" fn full_pathname(
    vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    size: c_int,
    out: *mut c_char,
) -> c_int {
    // SAFETY: SQLite calls this with our VFS; the real one has xFullPathname.
    unsafe {
        let real = real_vfs(vfs);
        match (*real).xFullPathname {
            Some(f) => f(real, name, size, out),
            None => ffi::SQLITE_CANTOPEN,
        }
    }
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// Our file behind SQLite's pointer.
///
/// # Safety
/// `file` must be a WAL file opened by [`open`] and not yet closed.
unsafe fn wal<'a>(file: *mut ffi::sqlite3_file) -> &'a mut WalFile {
    // SAFETY: per the contract, `open` wrote a WalFile there.
    unsafe { &mut *file.cast::<WalFile>() }
}

/// The real file's methods.
///
/// # Safety
/// As for [`wal`].
unsafe fn real_methods<'a>(wal: &WalFile) -> &'a ffi::sqlite3_io_methods {
    // SAFETY: the real file was opened successfully, so its methods are set
    // and live as long as the VFS.
    unsafe { &*(*wal.real).pMethods }
}

impl WalFile {
    /// Hands the buffered bytes to the kernel. On failure they are dropped
    /// (SQLite treats the error as a failed write and rolls back, so none of
    /// them was acknowledged) and the error is returned.
    ///
    /// # Safety
    /// The real file must be open.
    unsafe fn flush(&mut self) -> c_int {
        if self.pending.is_empty() {
            return ffi::SQLITE_OK;
        }
        // SAFETY: the real file is open.
        let methods = unsafe { real_methods(self) };
        let mut rc = ffi::SQLITE_OK;
        let mut offset = self.start;
        for chunk in self.pending.chunks(MAX_WRITE) {
            rc = match (methods.xWrite, c_int::try_from(chunk.len())) {
                // SAFETY: the chunk holds `len` initialised bytes.
                (Some(write), Ok(len)) => unsafe {
                    write(self.real, chunk.as_ptr().cast(), len, offset)
                },
                _ => ffi::SQLITE_IOERR_WRITE,
            };
            if rc != ffi::SQLITE_OK {
                break;
            }
            offset += chunk.len() as i64;
        }
        self.pending.clear();
        #[cfg(test)]
        tests::FLUSHES.with(|n| n.set(n.get() + 1));
        rc
    }
}

/// Flushes, then runs `call` on the real file unless the flush failed.
///
/// # Safety
/// `file` must be an open WAL file of this VFS.
unsafe fn flushed(
    file: *mut ffi::sqlite3_file,
    call: impl FnOnce(&ffi::sqlite3_io_methods, *mut ffi::sqlite3_file) -> c_int,
) -> c_int {
    // SAFETY: per the contract; the real file is open.
    let rc = unsafe { wal(file).flush() };
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    // SAFETY: as above.
    unsafe { direct(file, call) }
}

/// Runs `call` on the real file as it is.
///
/// # Safety
/// `file` must be an open WAL file of this VFS.
unsafe fn direct(
    file: *mut ffi::sqlite3_file,
    call: impl FnOnce(&ffi::sqlite3_io_methods, *mut ffi::sqlite3_file) -> c_int,
) -> c_int {
    // SAFETY: per the contract.
    let wal = unsafe { wal(file) };
    // SAFETY: the real file is open.
    call(unsafe { real_methods(wal) }, wal.real)
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes a file it opened through `open`, once.
    let wal = unsafe { wal(file) };
    // SAFETY: the real file is still open.
    let flushed = unsafe { wal.flush() };
    // SAFETY: as above.
    let closed = match unsafe { real_methods(wal) }.xClose {
        // SAFETY: closing the real file, once.
        Some(close) => unsafe { close(wal.real) },
        None => ffi::SQLITE_OK,
    };
    // SAFETY: the WalFile written by `open` is dropped once, here; SQLite
    // frees the memory itself.
    unsafe { ptr::drop_in_place(file.cast::<WalFile>()) };
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    // SAFETY: SQLite passes an open file and a buffer of `amount` bytes.
    unsafe {
        flushed(file, |m, real| match m.xRead {
            Some(f) => f(real, buf, amount, offset),
            None => ffi::SQLITE_IOERR_READ,
        })
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    // SAFETY: SQLite passes an open file.
    let wal = unsafe { wal(file) };
    let follows = i64::try_from(wal.pending.len())
        .ok()
        .and_then(|buffered| wal.start.checked_add(buffered))
        == Some(offset);
    // SQLite writes at most a page and its header at a time, so the buffer
    // ends up at most that much over the bound.
    if !(follows || wal.pending.is_empty()) || wal.pending.len() + len > MAX_BUFFERED {
        // SAFETY: the real file is open.
        let rc = unsafe { wal.flush() };
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if wal.pending.is_empty() {
        wal.start = offset;
    }
    // SAFETY: SQLite passes `amount` readable bytes at `buf`.
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) };
    wal.pending.extend_from_slice(bytes);
    ffi::SQLITE_OK
}

unsafe extern "C" fn truncate(file: *mut ffi::sqlite3_file, size: i64) -> c_int {
    // SAFETY: SQLite passes an open file.
    unsafe {
        flushed(file, |m, real| match m.xTruncate {
            Some(f) => f(real, size),
            None => ffi::SQLITE_IOERR_TRUNCATE,
        })
    }
}

unsafe extern "C" fn sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    // SAFETY: SQLite passes an open file.
    unsafe {
        flushed(file, |m, real| match m.xSync {
            Some(f) => f(real, flags),
            None => ffi::SQLITE_IOERR_FSYNC,
        })
    }
}

unsafe extern "C" fn file_size(file: *mut ffi::sqlite3_file, size: *mut i64) -> c_int {
    // SAFETY: SQLite passes an open file and somewhere to put the size.
    unsafe {
        flushed(file, |m, real| match m.xFileSize {
            Some(f) => f(real, size),
            None => ffi::SQLITE_IOERR_FSTAT,
        })
    }
}

unsafe extern "C" fn lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite passes an open file.
    unsafe {
        direct(file, |m, real| match m.xLock {
            Some(f) => f(real, level),
            None => ffi::SQLITE_IOERR_LOCK,
        })
    }
}

unsafe extern "C" fn unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    // SAFETY: SQLite passes an open file.
    unsafe {
        direct(file, |m, real| match m.xUnlock {
            Some(f) => f(real, level),
            None => ffi::SQLITE_IOERR_UNLOCK,
        })
    }
}

unsafe extern "C" fn check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    // SAFETY: SQLite passes an open file and somewhere to put the answer.
    unsafe {
        direct(file, |m, real| match m.xCheckReservedLock {
            Some(f) => f(real, out),
            None => ffi::SQLITE_IOERR_CHECKRESERVEDLOCK,
        })
    }
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // Flushed first: some controls (size hints, persistence) act on the
    // file's contents.
    // SAFETY: SQLite passes an open file and the argument `op` expects.
    unsafe {
        flushed(file, |m, real| match m.xFileControl {
            Some(f) => f(real, op, arg),
            None => ffi::SQLITE_NOTFOUND,
        })
    }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite passes an open file.
    unsafe { direct(file, |m, real| m.xSectorSize.map_or(4096, |f| f(real))) }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite passes an open file.
    unsafe {
        direct(file, |m, real| {
            m.xDeviceCharacteristics.map_or(0, |f| f(real))
        })
    }
}

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: SQLite passes an open file and somewhere to put the mapping.
    unsafe {
        direct(file, |m, real| match m.xShmMap {
            Some(f) => f(real, region, size, extend, out),
            None => ffi::SQLITE_IOERR_SHMMAP,
        })
    }
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    // SAFETY: SQLite passes an open file.
    unsafe {
        direct(file, |m, real| match m.xShmLock {
            Some(f) => f(real, offset, n, flags),
            None => ffi::SQLITE_IOERR_SHMLOCK,
        })
    }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite passes an open file.
    unsafe {
        direct(file, |m, real| {
            if let Some(f) = m.xShmBarrier {
                f(real);
            }
            ffi::SQLITE_OK
        });
    }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    // SAFETY: SQLite passes an open file.
    unsafe {
        direct(file, |m, real| {
            m.xShmUnmap.map_or(ffi::SQLITE_OK, |f| f(real, delete))
        })
    }
}

unsafe extern "C" fn fetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // A mapping shows the file's bytes, so the buffer goes first.
    // SAFETY: SQLite passes an open file and somewhere to put the pointer.
    unsafe {
        flushed(file, |m, real| match m.xFetch {
            Some(f) => f(real, offset, amount, out),
            None => {
                *out = ptr::null_mut();
                ffi::SQLITE_OK
            }
        })
    }
}

unsafe extern "C" fn unfetch(
    file: *mut ffi::sqlite3_file,
    offset: i64,
    page: *mut c_void,
) -> c_int {
    // SAFETY: SQLite passes an open file and a pointer `fetch` gave it.
    unsafe {
        direct(file, |m, real| {
            m.xUnfetch.map_or(ffi::SQLITE_OK, |f| f(real, offset, page))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::cell::Cell;

    use rusqlite::{Connection, OpenFlags};

    use super::*;

    thread_local! {
        /// Writes this thread's WAL buffers handed to the kernel.
        pub(super) static FLUSHES: Cell<u64> = const { Cell::new(0) };
    }

    fn flushes() -> u64 {
        FLUSHES.with(Cell::get)
    }

    fn open(path: &std::path::Path) -> Connection {
        let conn =
            Connection::open_with_flags_and_vfs(path, OpenFlags::default(), register().unwrap())
                .unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
        )
        .unwrap();
        conn
    }

    fn insert(conn: &Connection, from: i64, rows: i64) {
        let tx = conn.unchecked_transaction().unwrap();
        for id in from..from + rows {
            tx.execute(
                "INSERT INTO t VALUES (?1, ?2)",
                (id, "x".repeat(1000 + id as usize % 700)),
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }

    #[test]
    fn a_commit_reaches_the_kernel_in_one_write_and_other_connections_see_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = open(&path);
        insert(&conn, 0, 1);
        let before = flushes();
        // About 25 pages: 50 WAL writes without the buffer.
        insert(&conn, 1, 80);
        assert_eq!(flushes() - before, 1, "one write for the whole commit");
        let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let (count, bytes): (i64, i64) = reader
            .query_row("SELECT count(*), sum(length(body)) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!(count, 81);
        assert_eq!(bytes, (0..81).map(|id| 1000 + id % 700).sum::<i64>());
    }

    #[test]
    fn pages_spilled_mid_transaction_read_back_from_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = open(&path);
        // A tiny cache makes SQLite write pages to the WAL before the commit
        // and read them back from it while the transaction goes on.
        conn.execute_batch("PRAGMA cache_size = 8;").unwrap();
        let tx = conn.unchecked_transaction().unwrap();
        for id in 0..2_000_i64 {
            tx.execute(
                "INSERT INTO t VALUES (?1, ?2)",
                (id, format!("row {id} {}", "y".repeat(300))),
            )
            .unwrap();
        }
        let total: i64 = tx
            .query_row("SELECT sum(id) FROM t WHERE body LIKE 'row %'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(total, (0..2_000).sum::<i64>());
        tx.commit().unwrap();
        assert_eq!(
            conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
                .unwrap(),
            "ok"
        );
    }

    #[test]
    fn the_file_survives_checkpoints_restarts_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let conn = open(&path);
            for round in 0..20 {
                insert(&conn, round * 50, 50);
                if round % 5 == 4 {
                    // Copies the WAL into the database and starts it over,
                    // so later commits overwrite it from the beginning.
                    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                        .unwrap();
                }
            }
        }
        // Opened with the default VFS: the files are ordinary SQLite files.
        let conn = Connection::open(&path).unwrap();
        assert_eq!(
            conn.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
                .unwrap(),
            "ok"
        );
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1_000);
    }

    #[test]
    fn registering_twice_gives_the_same_vfs() {
        assert_eq!(register().unwrap(), register().unwrap());
        // SAFETY: looking a VFS up by name.
        assert!(!unsafe { ffi::sqlite3_vfs_find(NAME.as_ptr()) }.is_null());
    }
}
