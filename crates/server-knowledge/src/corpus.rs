//! Where documents come from: the bundled sample corpus compiled into the binary, or a folder of
//! `.md` / `.markdown` / `.txt` files read recursively. A document may open with front matter
//! (`---` lines around `key: value` lines) naming its `title` and the `groups` whose members may
//! read it; without `groups`, everyone may.

use std::path::Path;

/// One document: a path relative to the corpus root (forward slashes), its title, who may read it,
/// and its content (front matter left out).
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub path: String,
    pub title: String,
    /// Groups whose members may read it; empty: everyone.
    pub groups: Vec<String>,
    pub content: String,
    /// The file's line on which `content` starts (1-based): after the front matter.
    pub first_line: usize,
}

impl Document {
    /// Reads the front matter; the title is its `title`, else the first Markdown heading, else
    /// the file name.
    pub fn new(path: String, text: String) -> Document {
        let (front, content, first_line) = front_matter(&text);
        let field = |key: &str| {
            front
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        let title = field("title")
            .filter(|t| !t.is_empty())
            .or_else(|| {
                content
                    .lines()
                    .find_map(|l| l.strip_prefix("# "))
                    .map(|t| t.trim().to_owned())
            })
            .unwrap_or_else(|| path.rsplit('/').next().unwrap_or(&path).to_owned());
        let groups = field("groups")
            .map(|g| catalog::parse_groups(g.trim_start_matches('[').trim_end_matches(']')))
            .unwrap_or_default();
        Document {
            path,
            title,
            groups,
            content: content.to_owned(),
            first_line,
        }
    }

    /// Whether a caller in `groups` may read it.
    pub fn readable_by(&self, groups: &[String]) -> bool {
        self.groups.is_empty() || self.groups.iter().any(|g| groups.contains(g))
    }

    /// Whether it is Markdown (split at headings) rather than plain text.
    pub fn is_markdown(&self) -> bool {
        !self.path.ends_with(".txt")
    }
}

/// `key: value` pairs of a leading front matter block, the text after it, and the line that
/// text starts on. Text without front matter is returned whole.
fn front_matter(text: &str) -> (Vec<(String, String)>, &str, usize) {
    let Some(rest) = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
    else {
        return (Vec::new(), text, 1);
    };
    let mut pairs = Vec::new();
    let mut consumed = text.len() - rest.len();
    for (i, line) in rest.split_inclusive('\n').enumerate() {
        consumed += line.len();
        let line = line.trim_end();
        if line == "---" {
            return (pairs, &text[consumed..], i + 3);
        }
        if let Some((key, value)) = line.split_once(':') {
            pairs.push((
                key.trim().to_owned(),
                value.trim().trim_matches('"').to_owned(),
            ));
        }
    }
    // No closing line: not front matter after all.
    (Vec::new(), text, 1)
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

/// The Markdown and text files under `root`, each with its path relative to `root` (forward
/// slashes), sorted by that path.
fn document_files(root: &Path) -> anyhow::Result<Vec<(std::path::PathBuf, String)>> {
    let mut files = Vec::new();
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
                let relative = path
                    .strip_prefix(root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                files.push((path, relative));
            }
        }
    }
    files.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(files)
}

/// Reads every Markdown and text file under `root`. Unreadable or non-UTF-8 files are reported, not
/// skipped silently.
pub fn load_folder(root: &Path) -> anyhow::Result<Vec<Document>> {
    document_files(root)?
        .into_iter()
        .map(|(path, relative)| {
            let content = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?;
            Ok(Document::new(relative, content))
        })
        .collect()
}

/// Where a Knowledge server's documents come from: a folder of documents (else the bundled
/// corpus) and, optionally, a folder of records other servers write (a Spark root-cause
/// analysis, say), indexed under `records/`.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub docs: Option<std::path::PathBuf>,
    pub records: Option<std::path::PathBuf>,
}

/// The prefix of records' paths.
pub const RECORDS: &str = "records/";

impl Sources {
    /// Every document of every source.
    pub fn load(&self) -> anyhow::Result<Vec<Document>> {
        let mut documents = match &self.docs {
            Some(dir) => load_folder(dir)?,
            None => bundled_corpus(),
        };
        if let Some(dir) = &self.records {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("create {}: {e}", dir.display()))?;
            documents.extend(load_folder(dir)?.into_iter().map(|mut d| {
                d.path = format!("{RECORDS}{}", d.path);
                d
            }));
        }
        Ok(documents)
    }

    /// What the folders look like on disk; `None` when nothing is read from disk.
    pub fn fingerprint(&self) -> anyhow::Result<Option<Fingerprint>> {
        if self.docs.is_none() && self.records.is_none() {
            return Ok(None);
        }
        let mut all = Vec::new();
        for (dir, prefix) in [(&self.docs, ""), (&self.records, RECORDS)] {
            if let Some(dir) = dir
                && dir.exists()
            {
                all.extend(
                    fingerprint(dir)?
                        .into_iter()
                        .map(|(path, len, at)| (format!("{prefix}{path}"), len, at)),
                );
            }
        }
        Ok(Some(all))
    }
}

/// Each document file's path, size and modification time.
pub type Fingerprint = Vec<(String, u64, std::time::SystemTime)>;

/// What the folder's documents look like on disk (paths, sizes, modification times): when it
/// changes, the folder is read again.
pub fn fingerprint(root: &Path) -> anyhow::Result<Fingerprint> {
    document_files(root)?
        .into_iter()
        .map(|(path, relative)| {
            let meta = std::fs::metadata(&path)
                .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?;
            Ok((
                relative,
                meta.len(),
                meta.modified().unwrap_or(std::time::UNIX_EPOCH),
            ))
        })
        .collect()
}
