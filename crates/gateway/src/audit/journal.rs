//! Appends to the audit journal, group-committed with the caller as the leader. A call whose
//! record finds no write under way writes it itself, on its own thread (`block_in_place`), so an
//! idle gateway answers a call without handing its record to another thread and waiting to be
//! woken; records that arrive while a write is under way wait for it and go together in the next
//! one, written by a task of their own (on a blocking thread, unless the write only hands the
//! lines to the operating system). The journal's file and its lock file stay open between
//! writes: a write checks, under the lock, that the open file is still the one at the journal's
//! path (the shipper swaps it aside) and opens the new one if not. With `--audit-sync os` the
//! sync to disk runs on a thread of its own, at most once every [`OS_SYNC_EVERY`].

use std::{
    fs::File,
    io::Write,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
        mpsc,
    },
    time::{Duration, Instant},
};

use registry_api::AuditRecord;
use registry_client::RegistryClient;
use tokio::sync::Notify;

use super::AuditSync;

/// With [`AuditSync::Os`], how long a written record waits at most for its sync to disk to
/// begin (PostgreSQL's `synchronous_commit = off` leaves up to three times its 200 ms writer
/// delay): what a crash of the machine itself can lose.
pub(crate) const OS_SYNC_EVERY: Duration = Duration::from_millis(100);

/// Records one write carries at most (the registry takes 1000 per request, should the batch
/// go there instead).
const MAX_BATCH: usize = 500;

pub(super) struct Journal {
    path: PathBuf,
    lock_path: PathBuf,
    pending: Mutex<Pending>,
    /// Told whenever records were stored.
    stored: Notify,
    /// The open files; only the leader touches them.
    files: Mutex<Files>,
    /// With [`AuditSync::Os`]: the thread that syncs what was written, after the calls were
    /// answered.
    syncer: Option<mpsc::Sender<SyncJob>>,
    /// Syncs of the journal to disk so far, in either mode.
    syncs: Arc<AtomicU64>,
    /// Where a batch goes when the journal cannot take it.
    registry: RegistryClient,
}

/// Records accepted but not yet written, and how far the writes have got.
#[derive(Default)]
struct Pending {
    records: Vec<AuditRecord>,
    /// `records`, encoded as the journal's lines.
    lines: Vec<u8>,
    /// The length of each record's line.
    lengths: Vec<usize>,
    /// Records accepted so far: the sequence number of the latest.
    accepted: u64,
    /// Records stored so far, in order of acceptance.
    stored: u64,
    /// A write (or the task that goes on writing) is under way.
    leading: bool,
}

/// One batch taken for writing: its records, their lines, and the sequence number of the last.
struct Batch {
    records: Vec<AuditRecord>,
    lines: Vec<u8>,
    last: u64,
}

#[derive(Default)]
struct Files {
    lock: Option<File>,
    journal: Option<Opened>,
}

/// The journal file open for appending, and which file it is.
struct Opened {
    file: Arc<File>,
    device: u64,
    inode: u64,
}

enum SyncJob {
    File(Arc<File>),
    /// The journal was created: make its entry in the folder durable.
    Folder(PathBuf),
}

impl Journal {
    pub(super) fn new(
        path: PathBuf,
        lock_path: PathBuf,
        sync: AuditSync,
        registry: RegistryClient,
    ) -> std::io::Result<Journal> {
        let syncs = Arc::new(AtomicU64::new(0));
        let syncer = match sync {
            AuditSync::Disk => None,
            AuditSync::Os => Some(spawn_syncer(OS_SYNC_EVERY, syncs.clone())?),
        };
        Ok(Journal {
            path,
            lock_path,
            pending: Mutex::default(),
            stored: Notify::new(),
            files: Mutex::default(),
            syncer,
            syncs,
            registry,
        })
    }

    /// Appends `record` and returns once it is as durable as [`AuditSync`] asks (or, the
    /// journal failing, stored elsewhere). A caller that goes away while it waits does not take
    /// its record with it: the write that carries it happens all the same.
    pub(super) async fn append(self: &Arc<Self>, record: AuditRecord) {
        let line = line(&record);
        let (seq, lead) = {
            let mut pending = lock(&self.pending);
            pending.records.push(record);
            pending.lines.extend_from_slice(&line);
            pending.lengths.push(line.len());
            pending.accepted += 1;
            let lead = !pending.leading;
            pending.leading = true;
            (pending.accepted, lead)
        };
        if lead {
            self.lead();
        }
        loop {
            let stored = self.stored.notified();
            tokio::pin!(stored);
            stored.as_mut().enable();
            if lock(&self.pending).stored >= seq {
                return;
            }
            stored.await;
        }
    }

    /// Writes the batch waiting, here if the runtime lets this thread block, and leaves what
    /// arrived meanwhile to a task of its own.
    fn lead(self: &Arc<Self>) {
        let here = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if !here {
            tokio::spawn(self.clone().lead_task());
            return;
        }
        let batch = self.take();
        // A write that may block (a sync to disk, or the lock while the journal is swapped
        // aside) moves this worker's other tasks to another thread first.
        let written = self.write_in_place(&batch.lines).unwrap_or_else(|| {
            tokio::task::block_in_place(|| self.write(&batch.lines, Take::Wait))
        });
        match written {
            Ok(_) => {
                if self.finish(batch.last) {
                    tokio::spawn(self.clone().lead_task());
                }
            }
            Err(e) => {
                // Stored elsewhere by a task, so a caller that goes away cannot stop it.
                let journal = self.clone();
                tokio::spawn(async move {
                    journal.refused(e, &batch.records).await;
                    if journal.finish(batch.last) {
                        journal.lead_task().await;
                    }
                });
            }
        }
    }

    /// Writes batch after batch until none is waiting: in place where it can be (see
    /// [`Journal::write_in_place`]; handing each batch to a blocking thread and being woken
    /// again cost two thread switches a batch under load), else on a blocking thread.
    async fn lead_task(self: Arc<Self>) {
        loop {
            let batch = self.take();
            let written = match self.write_in_place(&batch.lines) {
                Some(done) => done,
                None => {
                    let journal = self.clone();
                    let lines = batch.lines;
                    tokio::task::spawn_blocking(move || journal.write(&lines, Take::Wait))
                        .await
                        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
                }
            };
            if let Err(e) = written {
                self.refused(e, &batch.records).await;
            }
            if !self.finish(batch.last) {
                return;
            }
        }
    }

    /// Writes `lines` on this thread where that cannot block: the write only hands them to
    /// the operating system (`--audit-sync os`) and the journal's lock is free. `None`, having
    /// written nothing, where the write must be made where it may block.
    fn write_in_place(&self, lines: &[u8]) -> Option<std::io::Result<bool>> {
        self.syncer.as_ref()?;
        match self.write(lines, Take::IfFree) {
            Ok(false) => None,
            done => Some(done),
        }
    }

    /// The records waiting, the oldest first, up to [`MAX_BATCH`].
    fn take(&self) -> Batch {
        let mut pending = lock(&self.pending);
        let pending = &mut *pending;
        if pending.records.len() <= MAX_BATCH {
            pending.lengths.clear();
            return Batch {
                records: std::mem::take(&mut pending.records),
                lines: std::mem::take(&mut pending.lines),
                last: pending.accepted,
            };
        }
        let rest = pending.records.split_off(MAX_BATCH);
        let records = std::mem::replace(&mut pending.records, rest);
        let bytes = pending.lengths.drain(..MAX_BATCH).sum();
        let rest = pending.lines.split_off(bytes);
        let lines = std::mem::replace(&mut pending.lines, rest);
        Batch {
            records,
            lines,
            last: pending.accepted - pending.records.len() as u64,
        }
    }

    /// Stores a batch the journal could not take in the registry directly (tried twice), or
    /// logs it whole when that fails too.
    async fn refused(&self, error: std::io::Error, records: &[AuditRecord]) {
        tracing::error!(error = %error, count = records.len(), "cannot write the audit journal; sending the records to the registry directly");
        for attempt in 0..2 {
            match self.registry.append_audit(records).await {
                Ok(()) => return,
                Err(e) if attempt == 0 => {
                    tracing::debug!(error = %e, "retrying audit write");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => {
                    // Nowhere left to put them: say so loudly, with the records (which hold no
                    // secrets).
                    tracing::error!(error = %e, records = ?records, "failed to store audit records")
                }
            }
        }
    }

    /// Marks the records up to `last` stored and tells their callers; true when more are
    /// waiting (the caller goes on leading), false when the lead is given up.
    fn finish(&self, last: u64) -> bool {
        let more = {
            let mut pending = lock(&self.pending);
            pending.stored = last;
            let more = !pending.records.is_empty();
            pending.leading = more;
            more
        };
        self.stored.notify_waiters();
        more
    }

    /// Appends `lines` to the journal and makes them as durable as [`AuditSync`] asks; false
    /// when `take` is [`Take::IfFree`] and the journal's lock was held (nothing was written).
    fn write(&self, lines: &[u8], take: Take) -> std::io::Result<bool> {
        let mut files = lock(&self.files);
        let Files {
            lock: lock_file,
            journal,
        } = &mut *files;
        let lock_file = match lock_file {
            Some(file) => file,
            None => lock_file.insert(open_lock_file(&self.lock_path)?),
        };
        // Across processes sharing the folder: appends and the shipper's swap take turns.
        match take {
            Take::Wait => lock_file.lock()?,
            Take::IfFree => match lock_file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
                Err(std::fs::TryLockError::Error(e)) => return Err(e),
            },
        }
        let appended = current(journal, &self.path).and_then(|(file, created)| {
            (&*file).write_all(lines)?;
            Ok((file, created))
        });
        if let Err(e) = lock_file.unlock() {
            tracing::warn!(error = %e, "cannot unlock the audit journal's lock file");
        }
        let (file, created) = appended?;
        drop(files);
        // The sync needs no lock: a journal swapped aside meanwhile is the same file, synced all
        // the same, and the other writers' appends need not wait for this one's sync.
        match &self.syncer {
            None => {
                file.sync_data()?;
                self.syncs.fetch_add(1, Ordering::Relaxed);
                if created {
                    super::sync_folder(&self.path);
                }
            }
            Some(syncer) => {
                let sent = syncer.send(SyncJob::File(file)).is_ok()
                    && (!created || syncer.send(SyncJob::Folder(self.path.clone())).is_ok());
                if !sent {
                    tracing::error!("the audit journal's sync thread is gone");
                }
            }
        }
        Ok(true)
    }
}

/// How a write takes the journal's lock.
#[derive(Clone, Copy)]
enum Take {
    /// Waiting for it if another writer or a swap holds it.
    Wait,
    /// Only if nobody holds it.
    IfFree,
}

/// The journal file at `path`, opened (created if need be) unless the one open is still it;
/// true when it was created.
fn current(journal: &mut Option<Opened>, path: &Path) -> std::io::Result<(Arc<File>, bool)> {
    let created = match std::fs::metadata(path) {
        Ok(meta) => {
            if let Some(open) = journal
                && open.device == meta.dev()
                && open.inode == meta.ino()
            {
                return Ok((open.file.clone(), false));
            }
            false
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let meta = file.metadata()?;
    let file = Arc::new(file);
    *journal = Some(Opened {
        file: file.clone(),
        device: meta.dev(),
        inode: meta.ino(),
    });
    Ok((file, created))
}

/// The lock file beside the journal, created if need be.
pub(super) fn open_lock_file(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// The thread that syncs what [`AuditSync::Os`] wrote, after the calls were answered: at most
/// once every `every`, each time taking every job waiting and syncing each file once (counted
/// in `syncs`). It ends when the journal is dropped.
fn spawn_syncer(every: Duration, syncs: Arc<AtomicU64>) -> std::io::Result<mpsc::Sender<SyncJob>> {
    let (send, jobs) = mpsc::channel::<SyncJob>();
    std::thread::Builder::new()
        .name("audit-sync".into())
        .spawn(move || {
            let mut last: Option<Instant> = None;
            while let Ok(job) = jobs.recv() {
                // The writes of the rest of the period join this sync: a sync a call costs the
                // machine (a device round trip, a VM exit or several) is paid once a period,
                // not once a write.
                if let Some(last) = last {
                    let wait = (last + every).saturating_duration_since(Instant::now());
                    if !wait.is_zero() {
                        std::thread::sleep(wait);
                    }
                }
                last = Some(Instant::now());
                let mut files: Vec<Arc<File>> = Vec::new();
                let mut folders: Vec<PathBuf> = Vec::new();
                for job in std::iter::once(job).chain(jobs.try_iter()) {
                    match job {
                        SyncJob::File(file) => {
                            if !files.iter().any(|f| Arc::ptr_eq(f, &file)) {
                                files.push(file);
                            }
                        }
                        SyncJob::Folder(path) => {
                            if !folders.contains(&path) {
                                folders.push(path);
                            }
                        }
                    }
                }
                for file in files {
                    match file.sync_data() {
                        Ok(()) => {
                            syncs.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "cannot sync the audit journal to disk")
                        }
                    }
                }
                for path in folders {
                    super::sync_folder(&path);
                }
            }
        })?;
    Ok(send)
}

/// One record as a journal line.
fn line(record: &AuditRecord) -> Vec<u8> {
    match serde_json::to_vec(record) {
        Ok(mut line) => {
            line.push(b'\n');
            line
        }
        Err(e) => {
            // An audit record is plain data; this cannot happen, and must not pass silently.
            tracing::error!(error = %e, id = %record.id, "cannot encode an audit record");
            Vec::new()
        }
    }
}

/// A lock that a panic elsewhere did not leave unusable (the data it guards stays consistent
/// at every unlock).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use registry_client::Credentials;

    use super::*;

    fn journal(dir: &Path, sync: AuditSync) -> Arc<Journal> {
        // Nothing here reaches the registry: the journal takes every record.
        let registry = RegistryClient::new("http://127.0.0.1:9", Credentials::Static("-".into()));
        Arc::new(
            Journal::new(
                dir.join("audit-spool.jsonl"),
                dir.join("audit-spool.jsonl.lock"),
                sync,
                registry,
            )
            .unwrap(),
        )
    }

    fn record(id: &str) -> AuditRecord {
        let json = r#"{"id": "", "time_ms": 1, "user": "alice", "groups": [], "server": "knowledge",
            "method": "tools/call", "outcome": "ok", "is_error": false, "latency_ms": 3}"#;
        let mut record: AuditRecord = serde_json::from_str(json).unwrap();
        record.id = id.into();
        record
    }

    /// With `disk` every write is synced before its call returns; with `os` the writes of a
    /// period share one sync, and the last write is synced too, after its call returned.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn os_mode_syncs_once_a_period_and_disk_mode_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let disk = journal(dir.path(), AuditSync::Disk);
        for i in 0..5 {
            disk.append(record(&format!("d{i}"))).await;
        }
        assert_eq!(disk.syncs.load(Ordering::Relaxed), 5);

        let dir = tempfile::tempdir().unwrap();
        let os = journal(dir.path(), AuditSync::Os);
        let started = Instant::now();
        for i in 0..40 {
            os.append(record(&format!("o{i}"))).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let periods = started.elapsed().as_millis() / OS_SYNC_EVERY.as_millis() + 1;
        tokio::time::sleep(OS_SYNC_EVERY * 3).await;
        let syncs = u128::from(os.syncs.load(Ordering::Relaxed));
        assert!(
            (1..=periods + 1).contains(&syncs),
            "{syncs} syncs for 40 writes over {periods} periods"
        );
        let text = std::fs::read_to_string(dir.path().join("audit-spool.jsonl")).unwrap();
        assert_eq!(text.lines().count(), 40);
    }
}
