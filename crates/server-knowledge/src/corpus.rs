//! Where documents come from: the bundled sample corpus compiled into the binary, or a folder of
//! `.md` / `.markdown` / `.txt` / `.html` files read recursively (HTML rendered to text with its
//! headings kept as Markdown headings, scripts and styles dropped). A document may open with front matter
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

    /// Whether it is Markdown (or HTML rendered as such: split at headings) rather than plain
    /// text.
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
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if kind.is_dir() && !hidden {
                stack.push(path);
            } else if kind.is_file()
                && matches!(
                    path.extension().and_then(|e| e.to_str()),
                    Some("md" | "markdown" | "txt" | "html" | "htm")
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

/// Reads every Markdown, text and HTML file under `root`. Unreadable or non-UTF-8 files are
/// reported, not skipped silently.
pub fn load_folder(root: &Path) -> anyhow::Result<Vec<Document>> {
    document_files(root)?
        .into_iter()
        .map(|(path, relative)| {
            let content = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?;
            let content = if relative.ends_with(".html") || relative.ends_with(".htm") {
                html_text(&content)
                    .map_err(|e| anyhow::anyhow!("read the HTML of {}: {e}", path.display()))?
            } else {
                content
            };
            Ok(Document::new(relative, content))
        })
        .collect()
}

/// HTML as text: headings become Markdown headings (so sections split there), lists and
/// paragraphs stay on their own lines, scripts and styles go; lines are not wrapped.
pub(crate) fn html_text(html: &str) -> Result<String, html2text::Error> {
    html2text::config::plain()
        .no_link_wrapping()
        .string_from_read(html.as_bytes(), 100_000)
}

/// Where a Knowledge server's documents come from: a folder of documents or a git repository's
/// checkout (else the bundled corpus) and, optionally, a folder of records other servers write
/// (a Spark root-cause analysis, say), indexed under `records/`.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub docs: Option<std::path::PathBuf>,
    /// A git repository to check out into `docs` and keep fetching.
    pub git: Option<GitSource>,
    pub records: Option<std::path::PathBuf>,
}

/// A git repository whose files are the documents: checked out (shallow) into `dir`, and brought
/// up to date with the remote before each look at the folder.
#[derive(Debug, Clone)]
pub struct GitSource {
    pub url: String,
    /// The branch (default: the remote's default).
    pub branch: Option<String>,
    pub dir: std::path::PathBuf,
}

impl GitSource {
    /// Clones the repository, or brings the checkout to the remote's latest commit.
    pub fn sync(&self) -> anyhow::Result<()> {
        let git = |args: &[&str]| -> anyhow::Result<()> {
            let out = std::process::Command::new("git")
                .args(args)
                .env("GIT_TERMINAL_PROMPT", "0")
                .output()
                .map_err(|e| anyhow::anyhow!("run git (is it installed?): {e}"))?;
            anyhow::ensure!(
                out.status.success(),
                "git {} failed: {}",
                args.first().copied().unwrap_or_default(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            Ok(())
        };
        let dir = self.dir.to_string_lossy().into_owned();
        if !self.dir.join(".git").exists() {
            if let Some(parent) = self.dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut args = vec!["clone", "--quiet", "--depth", "1"];
            if let Some(branch) = &self.branch {
                args.extend(["--branch", branch]);
            }
            args.extend(["--", &self.url, &dir]);
            return git(&args);
        }
        let refspec = self.branch.as_deref().unwrap_or("HEAD");
        git(&[
            "-C", &dir, "fetch", "--quiet", "--depth", "1", "origin", refspec,
        ])?;
        git(&["-C", &dir, "reset", "--quiet", "--hard", "FETCH_HEAD"])
    }
}

/// The prefix of records' paths.
pub const RECORDS: &str = "records/";

impl Sources {
    /// Every document of every source.
    pub fn load(&self) -> anyhow::Result<Vec<Document>> {
        if let Some(git) = &self.git
            && !git.dir.join(".git").exists()
        {
            git.sync()?;
        }
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

    /// What the folders look like on disk (a git checkout brought up to date first); `None` when
    /// nothing is read from disk.
    pub fn fingerprint(&self) -> anyhow::Result<Option<Fingerprint>> {
        if self.docs.is_none() && self.records.is_none() {
            return Ok(None);
        }
        if let Some(git) = &self.git {
            git.sync()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_keeps_its_headings_and_text_and_drops_scripts() {
        let text = html_text(
            "<html><head><title>T</title><style>p{color:red}</style><script>alert(1)</script></head>\
             <body><h1>Payments</h1><p>Refunds take &amp; settle in <b>3 days</b>.</p>\
             <h2>Disputes</h2><ul><li>Open a ticket</li><li>Wait</li></ul></body></html>",
        )
        .unwrap();
        assert!(text.lines().any(|l| l == "# Payments"), "{text}");
        assert!(text.lines().any(|l| l == "## Disputes"), "{text}");
        assert!(text.contains("Refunds take & settle in"), "{text}");
        assert!(text.contains("Open a ticket"), "{text}");
        assert!(!text.contains("alert"), "{text}");
        assert!(!text.contains("color:red"), "{text}");
        let doc = Document::new("pay.html".into(), text);
        assert_eq!(doc.title, "Payments");
    }
}
