//! The sample event logs `switchboard up` serves with no Spark around: written by real pyspark
//! 4.3 jobs (`samples/jobs.py`) that fail in different ways, in Spark's default layout (rolling,
//! zstd-compressed). [`ensure`] copies them into a folder on first run.

use std::path::Path;

use crate::Category;

/// Each sample file: its path below the event-log folder, and its bytes.
pub const FILES: &[(&str, &[u8])] = &[
    (
        "eventlog_v2_app-20261122212347-0000/appstatus_app-20261122212347-0000",
        include_bytes!(
            "../samples/eventlogs/eventlog_v2_app-20261122212347-0000/appstatus_app-20261122212347-0000"
        ),
    ),
    (
        "eventlog_v2_app-20261122212347-0000/events_1_app-20261122212347-0000.zstd",
        include_bytes!(
            "../samples/eventlogs/eventlog_v2_app-20261122212347-0000/events_1_app-20261122212347-0000.zstd"
        ),
    ),
    (
        "eventlog_v2_app-20261122212828-0000/appstatus_app-20261122212828-0000",
        include_bytes!(
            "../samples/eventlogs/eventlog_v2_app-20261122212828-0000/appstatus_app-20261122212828-0000"
        ),
    ),
    (
        "eventlog_v2_app-20261122212828-0000/events_1_app-20261122212828-0000.zstd",
        include_bytes!(
            "../samples/eventlogs/eventlog_v2_app-20261122212828-0000/events_1_app-20261122212828-0000.zstd"
        ),
    ),
    (
        "eventlog_v2_local-1795382356147/appstatus_local-1795382356147",
        include_bytes!(
            "../samples/eventlogs/eventlog_v2_local-1795382356147/appstatus_local-1795382356147"
        ),
    ),
    (
        "eventlog_v2_local-1795382356147/events_1_local-1795382356147.zstd",
        include_bytes!(
            "../samples/eventlogs/eventlog_v2_local-1795382356147/events_1_local-1795382356147.zstd"
        ),
    ),
    (
        "eventlog_v2_local-1795382389594/appstatus_local-1795382389594",
        include_bytes!(
            "../samples/eventlogs/eventlog_v2_local-1795382389594/appstatus_local-1795382389594"
        ),
    ),
    (
        "eventlog_v2_local-1795382389594/events_1_local-1795382389594.zstd",
        include_bytes!(
            "../samples/eventlogs/eventlog_v2_local-1795382389594/events_1_local-1795382389594.zstd"
        ),
    ),
    (
        "eventlog_v2_local-1795382423874/appstatus_local-1795382423874",
        include_bytes!(
            "../samples/eventlogs/eventlog_v2_local-1795382423874/appstatus_local-1795382423874"
        ),
    ),
    (
        "eventlog_v2_local-1795382423874/events_1_local-1795382423874.zstd",
        include_bytes!(
            "../samples/eventlogs/eventlog_v2_local-1795382423874/events_1_local-1795382423874.zstd"
        ),
    ),
];

/// The sample applications: each id, the kind of failure `samples/jobs.py` gave it, and the
/// category its diagnosis must have.
pub const APPLICATIONS: &[(&str, &str, Category)] = &[
    (
        "app-20261122212347-0000",
        "executor_lost",
        Category::ExecutorLost,
    ),
    (
        "app-20261122212828-0000",
        "out_of_memory",
        Category::OutOfMemory,
    ),
    (
        "local-1795382356147",
        "user_code",
        Category::UserCodeException,
    ),
    ("local-1795382389594", "ansi_sql", Category::AnsiSqlError),
    ("local-1795382423874", "bad_data", Category::BadData),
];

/// Writes the samples into `dir` (creating it), leaving files already there alone.
pub fn ensure(dir: &Path) -> std::io::Result<()> {
    for (path, bytes) in FILES {
        let file = dir.join(path);
        if file.exists() {
            continue;
        }
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let partial = file.with_extension("partial");
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, &file)?;
    }
    Ok(())
}
