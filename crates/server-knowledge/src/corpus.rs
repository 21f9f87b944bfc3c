//! Where documents come from: the bundled sample corpus compiled into the binary, or a folder of
//! `.md` / `.markdown` / `.txt` files read recursively.

use std::path::Path;

/// One document: a path relative to the corpus root (forward slashes), its title and content.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub path: String,
    pub title: String,
    pub content: String,
}

impl Document {
    /// The title is the first Markdown heading, else the file name.
    pub fn new(path: String, content: String) -> Document {
        let title = content
            .lines()
            .find_map(|l| l.strip_prefix("# "))
            .map(|t| t.trim().to_owned())
            .unwrap_or_else(|| path.rsplit('/').next().unwrap_or(&path).to_owned());
        Document {
            path,
            title,
            content,
        }
    }
}

const BUNDLED: &[(&str, &str)] = &[
    (
        "guides/presto-access.md",
        include_str!("../corpus/guides/presto-access.md"),
    ),
    (
        "guides/writing-an-mcp-server.md",
        include_str!("../corpus/guides/writing-an-mcp-server.md"),
    ),
    (
        "policies/mcp-security-standard.md",
        include_str!("../corpus/policies/mcp-security-standard.md"),
    ),
    (
        "runbooks/airflow-backfill.md",
        include_str!("../corpus/runbooks/airflow-backfill.md"),
    ),
    (
        "runbooks/on-call-handoff.md",
        include_str!("../corpus/runbooks/on-call-handoff.md"),
    ),
    (
        "runbooks/spark-failed-job.md",
        include_str!("../corpus/runbooks/spark-failed-job.md"),
    ),
];

/// The sample runbooks and guides shipped with Switchboard.
pub fn bundled_corpus() -> Vec<Document> {
    BUNDLED
        .iter()
        .map(|(p, c)| Document::new((*p).to_owned(), (*c).to_owned()))
        .collect()
}

/// Reads every Markdown and text file under `root`. Unreadable or non-UTF-8 files are reported, not
/// skipped silently.
pub fn load_folder(root: &Path) -> anyhow::Result<Vec<Document>> {
    let mut documents = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| anyhow::anyhow!("read folder {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("md" | "markdown" | "txt")
                )
            {
                let content = std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?;
                let relative = path.strip_prefix(root).unwrap_or(&path);
                let relative = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                documents.push(Document::new(relative, content));
            }
        }
    }
    documents.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(documents)
}
