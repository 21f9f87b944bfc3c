//! Chunking: a document is searched section by section. A Markdown document splits at its
//! headings (outside code fences), each section keeping the path of headings above it
//! ("Debugging a failed Spark job › 2. Executor out of memory") and the lines it spans, so a hit
//! can be cited precisely; long sections and plain text split into windows of lines.

/// Lines one chunk holds at most.
const MAX_LINES: usize = 40;

/// One searchable piece of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The headings above it, outermost first, joined by " › " (empty before the first heading).
    pub heading: String,
    /// First and last line, 1-based, in the document's file.
    pub line_start: usize,
    pub line_end: usize,
    pub text: String,
}

/// The sections of `content`, whose first line is line `first_line` (1-based) of its file.
pub fn sections(content: &str, first_line: usize, markdown: bool) -> Vec<Section> {
    let mut out = Vec::new();
    let mut headings: Vec<(usize, String)> = Vec::new();
    let mut current: Vec<&str> = Vec::new();
    let mut start = first_line;
    let mut fence: Option<&str> = None;
    let flush = |out: &mut Vec<Section>, lines: &mut Vec<&str>, start: usize, heading: String| {
        // Windows of at most MAX_LINES, blank edges trimmed.
        for (i, window) in lines.chunks(MAX_LINES).enumerate() {
            let text = window.join("\n");
            if text.trim().is_empty() {
                continue;
            }
            let first = start + i * MAX_LINES;
            let leading = window.iter().take_while(|l| l.trim().is_empty()).count();
            let trailing = window
                .iter()
                .rev()
                .take_while(|l| l.trim().is_empty())
                .count();
            out.push(Section {
                heading: heading.clone(),
                line_start: first + leading,
                line_end: first + window.len() - 1 - trailing,
                text: text.trim().to_owned(),
            });
        }
        lines.clear();
    };
    for (offset, line) in content.lines().enumerate() {
        let number = first_line + offset;
        let trimmed = line.trim_start();
        if markdown {
            if let Some(open) = fence {
                if trimmed.starts_with(open) {
                    fence = None;
                }
            } else if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                fence = Some(&trimmed[..3]);
            } else if let Some(level) = heading_level(trimmed) {
                let heading = path_of(&headings);
                flush(&mut out, &mut current, start, heading);
                headings.retain(|(l, _)| *l < level);
                headings.push((
                    level,
                    trimmed[level..]
                        .trim()
                        .trim_end_matches('#')
                        .trim()
                        .to_owned(),
                ));
                start = number;
            }
        }
        current.push(line);
    }
    flush(&mut out, &mut current, start, path_of(&headings));
    out
}

/// `#` to `######` followed by a space.
fn heading_level(line: &str) -> Option<usize> {
    let level = line.chars().take_while(|c| *c == '#').count();
    ((1..=6).contains(&level) && line[level..].starts_with(' ')).then_some(level)
}

fn path_of(headings: &[(usize, String)]) -> String {
    headings
        .iter()
        .map(|(_, h)| h.as_str())
        .collect::<Vec<_>>()
        .join(" › ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_splits_at_headings_keeping_their_path_and_lines() {
        let text = "# Runbook\nIntro.\n\n## Memory\nRaise it.\n```sh\n# not a heading\n```\n### Overhead\nMore.\n## Fetch\nLast.";
        let s = sections(text, 4, true);
        let summary: Vec<(&str, usize, usize)> = s
            .iter()
            .map(|s| (s.heading.as_str(), s.line_start, s.line_end))
            .collect();
        assert_eq!(
            summary,
            [
                ("Runbook", 4, 5),
                ("Runbook › Memory", 7, 11),
                ("Runbook › Memory › Overhead", 12, 13),
                ("Runbook › Fetch", 14, 15),
            ]
        );
        assert!(s[1].text.contains("# not a heading"));
    }

    #[test]
    fn long_text_splits_into_windows() {
        let text: String = (1..=95).map(|i| format!("line {i}\n")).collect();
        let s = sections(&text, 1, false);
        assert_eq!(s.len(), 3);
        assert_eq!((s[0].line_start, s[0].line_end), (1, 40));
        assert_eq!((s[2].line_start, s[2].line_end), (81, 95));
    }
}
