//! Root-cause analyses as Knowledge records: a diagnosis, and the engineer's note, written as a
//! Markdown document into the Knowledge server's records folder, where it is indexed like any
//! document, so `search_docs` finds it for the next similar failure.

use std::path::Path;

use crate::Diagnosis;

/// The record's title.
pub fn title(d: &Diagnosis) -> String {
    format!(
        "Spark RCA: {} ({}): {}",
        d.name,
        d.application,
        d.category.as_str().replace('_', " ")
    )
}

/// The record's file name and Markdown text.
pub fn markdown(d: &Diagnosis, note: Option<&str>, by: &str) -> (String, String) {
    let mut text = format!(
        "---\ntitle: {}\nsource: spark\napplication: {}\ncategory: {}\nrecorded_by: {}\n---\n# {}\n\n{}\n",
        one_line(&title(d)),
        d.application,
        d.category.as_str(),
        one_line(by),
        one_line(&title(d)),
        d.summary
    );
    if let Some(f) = &d.failing {
        text.push_str("\n## Where it failed\n");
        text.push_str(&format!("- job {}\n", f.job_id));
        if let Some(stage) = f.stage_id {
            text.push_str(&format!(
                "- stage {stage}{}\n",
                f.stage_name
                    .as_deref()
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default()
            ));
        }
        if let Some(task) = f.task_id {
            text.push_str(&format!(
                "- task {task} on executor {}\n",
                f.executor_id.as_deref().unwrap_or("?")
            ));
        }
    }
    if !d.evidence.is_empty() {
        text.push_str("\n## Evidence\n");
        for e in &d.evidence {
            text.push_str(&format!("- {}: `{}`\n", e.source, e.line.replace('`', "'")));
        }
    }
    if !d.contributing.is_empty() {
        text.push_str("\n## Contributing factors\n");
        for c in &d.contributing {
            text.push_str(&format!("- {c}\n"));
        }
    }
    if !d.next_steps.is_empty() {
        text.push_str("\n## Next steps\n");
        for s in &d.next_steps {
            text.push_str(&format!("- {s}\n"));
        }
    }
    if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
        text.push_str(&format!(
            "\n## Notes from {}\n{}\n",
            one_line(by),
            note.trim()
        ));
    }
    (format!("{}.md", file_stem(&d.application)), text)
}

/// Writes `text` as `dir/file`, whole or not at all (a new file renamed into place).
pub fn write(dir: &Path, file: &str, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let partial = dir.join(format!(".{file}.partial"));
    std::fs::write(&partial, text)?;
    std::fs::rename(&partial, dir.join(file))
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// An application id as a file name: letters, digits, `-`, `_` and `.` kept, the rest `_`.
fn file_stem(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}
