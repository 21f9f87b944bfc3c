//! Writing audit records. A call's record is durable before the caller sees the result: it is
//! appended to the gateway's local journal (`audit-spool.jsonl`, synced to disk) and a shipper
//! task delivers the journal to the registry in batches right after, retrying until the registry
//! takes it. Appends are group-committed (`journal.rs`): a call that finds no write under way
//! writes its record itself, and the records that arrive meanwhile go together in the next
//! write with one sync, so under load calls share the cost of durability instead of queueing
//! for it, and no call waits on the registry. Delivery swaps the journal aside
//! (`audit-spool.jsonl.sending`) and removes it once the registry holds every record in it; record
//! ids are unique, so a record delivered twice (a crash between delivery and removal) is stored
//! once. If the journal cannot be written, the batch goes to the registry directly instead.
//! Gateway processes that share a data folder share its journal: file locks (`.lock` beside the
//! journal for appends and the swap, `.delivery.lock` for a delivery) keep them from losing
//! each other's records.

mod journal;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use registry_api::AuditRecord;
use registry_client::RegistryClient;
use service_kit::Shutdown;
use tokio::sync::Notify;

use self::journal::Journal;

use crate::catalog_cache::Server;

/// How often the shipper looks at the journal when no write woke it (a registry that was down).
const DRAIN_EVERY: Duration = Duration::from_secs(5);
/// How long the shipper, woken by a write, waits for more before delivering: each delivery
/// syncs the journal's folder twice and commits in the registry, and under a steady trickle of
/// calls doing that per call would compete with the calls' own syncs.
const GATHER_FOR: Duration = Duration::from_millis(200);
/// Records one delivery request carries at most (the registry takes 1000 per request).
const DELIVERY_BATCH: usize = 500;

/// How durable a call's audit record is before the call is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuditSync {
    /// Synced to disk (`fdatasync`): the record survives a crash of the machine too.
    #[default]
    Disk,
    /// Written to the journal, in the operating system's hands: it survives a crash of the
    /// gateway (SIGKILL, an abort); it is synced to disk within 0.1 s without the call waiting
    /// (one sync a period serves every write in it), so a crash of the machine itself can lose
    /// up to the last 0.1 s of records.
    Os,
}

#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<Inner>,
    /// Where records are appended.
    journal: Arc<Journal>,
    /// Counted from each record as it is written.
    metrics: crate::metrics::Metrics,
}

struct Inner {
    registry: RegistryClient,
    /// The journal appends go to.
    spool: PathBuf,
    /// The journal being delivered.
    sending: PathBuf,
    /// Locked (across processes) while the journal is appended to or swapped aside.
    journal_lock: PathBuf,
    /// Locked (across processes) while a delivery runs.
    delivery_lock: PathBuf,
    /// One delivery at a time.
    delivering: tokio::sync::Mutex<()>,
    /// Wakes the shipper when records were written.
    written: Notify,
}

impl AuditSink {
    /// The sink. Call [`AuditSink::spawn_drain`] to deliver what it writes.
    pub fn new(
        registry: RegistryClient,
        spool: PathBuf,
        sync: AuditSync,
    ) -> anyhow::Result<AuditSink> {
        if let Some(dir) = spool.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("create audit spool folder {}: {e}", dir.display()))?;
        }
        let beside = |suffix: &str| {
            let mut path = spool.clone().into_os_string();
            path.push(suffix);
            PathBuf::from(path)
        };
        let journal = Journal::new(spool.clone(), beside(".lock"), sync, registry.clone())
            .map_err(|e| anyhow::anyhow!("start the audit journal's sync thread: {e}"))?;
        let inner = Arc::new(Inner {
            registry,
            sending: beside(".sending"),
            journal_lock: beside(".lock"),
            delivery_lock: beside(".delivery.lock"),
            spool,
            delivering: tokio::sync::Mutex::new(()),
            written: Notify::new(),
        });
        Ok(AuditSink {
            inner,
            journal: Arc::new(journal),
            metrics: crate::metrics::Metrics::default(),
        })
    }

    /// Records `record` durably, in the journal (or, failing that, in the registry); returns
    /// once it is. A caller that goes away mid-write (a client disconnecting) cannot cancel
    /// the write.
    pub async fn record(&self, record: AuditRecord) {
        self.metrics.observe(&record);
        self.journal.append(record).await;
        self.inner.written.notify_one();
    }

    /// The gateway's metrics, in the Prometheus text format. Counting the journal's records
    /// reads its files, off the async workers (a registry down for hours leaves a long one).
    pub async fn metrics_text(&self) -> String {
        let sink = self.clone();
        let spooled = tokio::task::spawn_blocking(move || sink.spooled())
            .await
            .unwrap_or(0);
        self.metrics.encode(spooled)
    }

    /// How many records the journal holds (not yet delivered to the registry): its lines,
    /// counted as the files stream by. Blocks while it reads them.
    pub fn spooled(&self) -> usize {
        [&self.inner.spool, &self.inner.sending]
            .iter()
            .map(|path| count_records(path).unwrap_or(0))
            .sum()
    }

    /// Delivers the journal shortly after records are written (and every few seconds, for a
    /// registry that was down), and once more at `shutdown`.
    pub fn spawn_drain(&self, shutdown: Shutdown) {
        let sink = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => {
                        sink.drain().await;
                        return;
                    }
                    () = sink.inner.written.notified() => {
                        // Let the records of the next moments join this delivery.
                        tokio::select! {
                            () = shutdown.cancelled() => {}
                            () = tokio::time::sleep(GATHER_FOR) => {}
                        }
                    }
                    () = tokio::time::sleep(DRAIN_EVERY) => {}
                }
                sink.drain().await;
            }
        });
    }

    /// Delivers everything in the journal; a part is removed only once the registry took every
    /// record in it.
    pub async fn drain(&self) {
        let _one = self.inner.delivering.lock().await;
        // Another process delivering the shared journal delivers these records too.
        let Some(_delivery) = try_lock_file(&self.inner.delivery_lock) else {
            return;
        };
        // A part left by a failed delivery goes first, then what was written since.
        for _ in 0..2 {
            if !self.inner.sending.exists() {
                let inner = self.inner.clone();
                let swapped = tokio::task::spawn_blocking(move || {
                    let _journal = lock_file(&inner.journal_lock)?;
                    std::fs::rename(&inner.spool, &inner.sending)?;
                    // The next journal is made here, so that no call waits for a file to be
                    // created (and its folder synced) before its record is.
                    std::fs::File::create(&inner.spool)?;
                    sync_folder(&inner.spool);
                    Ok::<_, std::io::Error>(())
                })
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                match swapped {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot set the audit journal aside for delivery");
                        return;
                    }
                }
            }
            if !self.deliver_sending().await {
                return;
            }
        }
    }

    /// Sends the part set aside; true when the registry took all of it.
    async fn deliver_sending(&self) -> bool {
        let text = match tokio::fs::read_to_string(&self.inner.sending).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return true,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the audit journal");
                return false;
            }
        };
        let records: Vec<AuditRecord> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|line| match serde_json::from_str(line) {
                Ok(r) => Some(r),
                Err(e) => {
                    // A line cut short by a crash mid-append (its call was never answered).
                    tracing::error!(error = %e, "skipping an unreadable audit journal line");
                    None
                }
            })
            .collect();
        for chunk in records.chunks(DELIVERY_BATCH) {
            if let Err(e) = self.inner.registry.append_audit(chunk).await {
                tracing::warn!(error = %e, pending = records.len(), "registry does not take audit records yet");
                return false;
            }
        }
        // Removing the part and syncing its folder block: off the async workers.
        let sending = self.inner.sending.clone();
        let removed = tokio::task::spawn_blocking(move || {
            std::fs::remove_file(&sending)?;
            sync_folder(&sending);
            Ok::<_, std::io::Error>(())
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        match removed {
            Ok(()) => {
                tracing::debug!(count = records.len(), "delivered audit records");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "failed to remove the delivered audit journal");
                false
            }
        }
    }
}

/// The records in a journal file: its non-empty lines, read a block at a time.
fn count_records(path: &Path) -> std::io::Result<usize> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut block = vec![0u8; 64 * 1024];
    let (mut records, mut in_line) = (0, false);
    loop {
        let read = file.read(&mut block)?;
        if read == 0 {
            break;
        }
        for &byte in &block[..read] {
            match byte {
                b'\n' => {
                    records += usize::from(in_line);
                    in_line = false;
                }
                b' ' | b'\t' | b'\r' => {}
                _ => in_line = true,
            }
        }
    }
    // A last line without its newline (cut short by a crash) is in the journal until delivery
    // sets it aside, so it is counted as before.
    Ok(records + usize::from(in_line))
}

/// An exclusive lock on `path` (created if need be), held until the file is dropped; shared
/// with every process that locks the same path.
fn lock_file(path: &Path) -> std::io::Result<std::fs::File> {
    let file = journal::open_lock_file(path)?;
    file.lock()?;
    Ok(file)
}

/// [`lock_file`] without waiting: None when another process holds it (or it cannot be made).
fn try_lock_file(path: &Path) -> Option<std::fs::File> {
    let file = journal::open_lock_file(path).ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// Makes a file's creation, renaming or removal durable: syncs the folder that holds it.
fn sync_folder(file: &Path) {
    if let Some(dir) = file.parent()
        && let Ok(dir) = std::fs::File::open(dir)
        && let Err(e) = dir.sync_all()
    {
        tracing::warn!(error = %e, "cannot sync the audit journal's folder");
    }
}

/// What the audit keeps of a call's arguments: redacted as the tool's manifest says
/// (`catalog::redact_arguments`); `{}` when the client sent none.
pub(crate) fn kept_arguments(
    server: &Server,
    tool: &str,
    arguments: Option<&serde_json::Value>,
) -> Option<serde_json::Value> {
    let sensitive = server
        .tool(tool)
        .map(|t| t.sensitive_arguments.as_slice())
        .unwrap_or_default();
    let empty = serde_json::Value::Object(Default::default());
    catalog::redact_arguments(arguments.unwrap_or(&empty), sensitive)
}

/// The owner's estimate of the minutes one successful call of `tool` saves, now.
pub(crate) fn minutes_saved(server: &Server, tool: &str) -> Option<f64> {
    server.tool(tool).map(|t| t.minutes_saved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_journal_counts_its_records_however_its_lines_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        assert!(count_records(&path).is_err(), "no journal yet");
        for (text, records) in [
            ("", 0),
            ("{\"id\":\"a\"}\n", 1),
            ("{\"id\":\"a\"}\n\n  \r\n{\"id\":\"b\"}\r\n", 2),
            // A last line cut short by a crash is in the journal all the same.
            ("{\"id\":\"a\"}\n{\"id\":\"b", 2),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(count_records(&path).unwrap(), records, "{text:?}");
        }
        // Longer than one block read.
        let many = "{\"id\":\"x\"}\n".repeat(20_000);
        std::fs::write(&path, many).unwrap();
        assert_eq!(count_records(&path).unwrap(), 20_000);
    }
}
