//! Writing audit records. A record is sent to the registry before the caller sees the result; if the
//! registry cannot take it, the record is appended to a local spool file (flushed to disk) and a
//! background task re-sends it. Record ids are unique, so a re-sent record is stored once.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use registry_api::AuditRecord;
use registry_client::RegistryClient;
use service_kit::Shutdown;

const DRAIN_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<Inner>,
}

struct Inner {
    registry: RegistryClient,
    spool: PathBuf,
    /// Serializes spool appends and drains.
    lock: tokio::sync::Mutex<()>,
}

impl AuditSink {
    pub fn new(registry: RegistryClient, spool: PathBuf) -> anyhow::Result<AuditSink> {
        if let Some(dir) = spool.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("create audit spool folder {}: {e}", dir.display()))?;
        }
        Ok(AuditSink {
            inner: Arc::new(Inner {
                registry,
                spool,
                lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Records `record` durably: in the registry, or failing that in the spool. The write runs on
    /// its own task, so a caller that goes away mid-write (a client disconnecting) cannot cancel it.
    pub async fn record(&self, record: AuditRecord) {
        let sink = self.clone();
        if let Err(e) = tokio::spawn(async move { sink.write(record).await }).await {
            tracing::error!(error = %e, "the audit writer task failed");
        }
    }

    async fn write(&self, record: AuditRecord) {
        for attempt in 0..2 {
            match self
                .inner
                .registry
                .append_audit(std::slice::from_ref(&record))
                .await
            {
                Ok(()) => return,
                Err(e) if attempt == 0 => {
                    tracing::debug!(error = %e, "retrying audit write");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, id = %record.id, "registry refused an audit record; spooling it")
                }
            }
        }
        let _guard = self.inner.lock.lock().await;
        if let Err(e) = append_line(&self.inner.spool, &record) {
            // Nowhere left to put it: say so loudly, with the record (which holds no secrets).
            tracing::error!(error = %e, record = ?record, "failed to spool an audit record");
        }
    }

    /// Re-sends spooled records every few seconds until `shutdown`.
    pub fn spawn_drain(&self, shutdown: Shutdown) {
        let sink = self.clone();
        service_kit::spawn_every(DRAIN_EVERY, shutdown, move || {
            let sink = sink.clone();
            async move { sink.drain().await }
        });
    }

    /// Sends everything in the spool; empties it only when the registry took every record.
    pub async fn drain(&self) {
        let _guard = self.inner.lock.lock().await;
        let text = match std::fs::read_to_string(&self.inner.spool) {
            Ok(t) if !t.trim().is_empty() => t,
            _ => return,
        };
        let records: Vec<AuditRecord> = text
            .lines()
            .filter_map(|line| match serde_json::from_str(line) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!(error = %e, "skipping an unreadable spooled audit line");
                    None
                }
            })
            .collect();
        match self.inner.registry.append_audit(&records).await {
            Ok(()) => {
                if let Err(e) = std::fs::write(&self.inner.spool, b"") {
                    tracing::error!(error = %e, "failed to empty the audit spool");
                } else {
                    tracing::info!(count = records.len(), "sent spooled audit records");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, pending = records.len(), "registry still refuses spooled audit records")
            }
        }
    }
}

fn append_line(path: &Path, record: &AuditRecord) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    file.write_all(&line)?;
    file.sync_data()
}
