//! Writing audit records. A call's record is stored before the caller sees the result: in the
//! registry, or, if the registry cannot take it, appended to a local spool file (synced to disk)
//! that a background task re-sends. Records are group-committed: one writer task takes every
//! record waiting and stores them in one request (one transaction, one sync, at the registry), so
//! under load calls share the cost of durability instead of queueing for it, and when idle a
//! record goes out at once. Record ids are unique, so a re-sent record is stored once.

use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use registry_api::AuditRecord;
use registry_client::RegistryClient;
use service_kit::Shutdown;
use tokio::sync::{mpsc, oneshot};

const DRAIN_EVERY: Duration = Duration::from_secs(5);
/// Records one write carries at most (the registry takes 1000 per request).
const MAX_BATCH: usize = 500;

#[derive(Clone)]
pub struct AuditSink {
    inner: Arc<Inner>,
    /// To the writer task: a record, and who to tell once it is durable.
    queue: mpsc::UnboundedSender<(AuditRecord, oneshot::Sender<()>)>,
    /// Counted from each record as it is written.
    metrics: crate::metrics::Metrics,
}

struct Inner {
    registry: RegistryClient,
    spool: PathBuf,
    /// Serializes spool appends and drains.
    lock: tokio::sync::Mutex<()>,
}

impl AuditSink {
    /// The sink, with its writer task (on the current runtime).
    pub fn new(registry: RegistryClient, spool: PathBuf) -> anyhow::Result<AuditSink> {
        if let Some(dir) = spool.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("create audit spool folder {}: {e}", dir.display()))?;
        }
        let inner = Arc::new(Inner {
            registry,
            spool,
            lock: tokio::sync::Mutex::new(()),
        });
        let (queue, waiting) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(inner.clone(), waiting));
        Ok(AuditSink {
            inner,
            queue,
            metrics: crate::metrics::Metrics::default(),
        })
    }

    /// Records `record` durably: in the registry, or failing that in the spool; returns once it
    /// is. The write runs on the writer task, so a caller that goes away mid-write (a client
    /// disconnecting) cannot cancel it.
    pub async fn record(&self, record: AuditRecord) {
        self.metrics.observe(&record);
        let (done, durable) = oneshot::channel();
        match self.queue.send((record, done)) {
            Ok(()) => {
                if durable.await.is_err() {
                    tracing::error!("the audit writer stopped before a record was stored");
                }
            }
            // The writer is gone (the runtime is shutting down): write this one directly.
            Err(mpsc::error::SendError((record, _))) => {
                write_batch(&self.inner, std::slice::from_ref(&record)).await
            }
        }
    }

    /// The gateway's metrics, in the Prometheus text format.
    pub fn metrics_text(&self) -> String {
        self.metrics.encode(self.spooled())
    }

    /// How many records the spool holds (waiting for the registry).
    pub fn spooled(&self) -> usize {
        std::fs::read_to_string(&self.inner.spool)
            .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0)
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
        for chunk in records.chunks(MAX_BATCH) {
            if let Err(e) = self.inner.registry.append_audit(chunk).await {
                tracing::warn!(error = %e, pending = records.len(), "registry still refuses spooled audit records");
                return;
            }
        }
        if let Err(e) = std::fs::write(&self.inner.spool, b"") {
            tracing::error!(error = %e, "failed to empty the audit spool");
        } else {
            tracing::info!(count = records.len(), "sent spooled audit records");
        }
    }
}

/// The writer task: takes every record waiting (up to [`MAX_BATCH`]), stores them in one write,
/// then tells each caller.
async fn write_batches(
    inner: Arc<Inner>,
    mut waiting: mpsc::UnboundedReceiver<(AuditRecord, oneshot::Sender<()>)>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (records, done): (Vec<_>, Vec<_>) = std::mem::take(&mut batch).into_iter().unzip();
        write_batch(&inner, &records).await;
        for tell in done {
            let _ = tell.send(());
        }
    }
}

/// Stores `records` in the registry (one retry), else in the spool.
async fn write_batch(inner: &Inner, records: &[AuditRecord]) {
    for attempt in 0..2 {
        match inner.registry.append_audit(records).await {
            Ok(()) => return,
            Err(e) if attempt == 0 => {
                tracing::debug!(error = %e, "retrying audit write");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, count = records.len(), "registry refused audit records; spooling them")
            }
        }
    }
    let _guard = inner.lock.lock().await;
    if let Err(e) = append_lines(&inner.spool, records) {
        // Nowhere left to put them: say so loudly, with the records (which hold no secrets).
        tracing::error!(error = %e, records = ?records, "failed to spool audit records");
    }
}

fn append_lines(path: &Path, records: &[AuditRecord]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut lines = Vec::new();
    for record in records {
        lines.extend(serde_json::to_vec(record).map_err(std::io::Error::other)?);
        lines.push(b'\n');
    }
    file.write_all(&lines)?;
    file.sync_data()
}

/// What the audit keeps of a call's arguments: redacted as the tool's manifest says
/// (`catalog::redact_arguments`); `{}` when the client sent none.
pub(crate) fn kept_arguments(
    server: &registry_api::ServerView,
    tool: &str,
    arguments: Option<&serde_json::Value>,
) -> Option<serde_json::Value> {
    let sensitive = server
        .tools
        .iter()
        .find(|t| t.definition.name == tool)
        .map(|t| t.sensitive_arguments.as_slice())
        .unwrap_or_default();
    let empty = serde_json::Value::Object(Default::default());
    catalog::redact_arguments(arguments.unwrap_or(&empty), sensitive)
}

/// The owner's estimate of the minutes one successful call of `tool` saves, now.
pub(crate) fn minutes_saved(server: &registry_api::ServerView, tool: &str) -> Option<f64> {
    server
        .tools
        .iter()
        .find(|t| t.definition.name == tool)
        .map(|t| t.minutes_saved)
}
