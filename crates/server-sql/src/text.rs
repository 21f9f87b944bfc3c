//! The compact text table a model reads next to the structured result: a header, aligned
//! columns, long cells cut, at most [`MAX_TEXT_ROWS`] rows, and a last line that says how many
//! rows there are and why the result stops short when it does.

use serde_json::Value;

use crate::engine::Rows;

/// Rows shown in the text; the structured result carries them all.
pub(crate) const MAX_TEXT_ROWS: usize = 50;
/// Characters of one cell shown in the text.
const MAX_CELL_CHARS: usize = 40;

fn cell(value: &Value) -> String {
    let text = match value {
        Value::Null => "NULL".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let text = text.replace(['\n', '\r', '\t'], " ");
    if text.chars().count() > MAX_CELL_CHARS {
        let cut: String = text.chars().take(MAX_CELL_CHARS - 1).collect();
        format!("{cut}…")
    } else {
        text
    }
}

/// `rows` as a text table.
pub(crate) fn table(rows: &Rows) -> String {
    let header: Vec<String> = rows
        .columns
        .iter()
        .map(|c| cell(&Value::String(c.name.clone())))
        .collect();
    let shown: Vec<Vec<String>> = rows
        .rows
        .iter()
        .take(MAX_TEXT_ROWS)
        .map(|row| row.iter().map(cell).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &shown {
        for (i, value) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(value.chars().count());
            }
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(c.chars().count());
                format!("{c}{}", " ".repeat(pad))
            })
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_owned()
    };
    let mut out = vec![
        line(&header),
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-"),
    ];
    out.extend(shown.iter().map(|row| line(row)));
    let count = rows.rows.len();
    let mut footer = format!("({count} row{})", if count == 1 { "" } else { "s" });
    if count > MAX_TEXT_ROWS {
        footer = format!(
            "(first {MAX_TEXT_ROWS} of {count} rows shown here; the structured result has all {count})"
        );
    }
    out.push(footer);
    if let Some(why) = &rows.truncated {
        out.push(format!("Truncated: {why}."));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Column;
    use serde_json::json;

    #[test]
    fn results_read_as_an_aligned_table_with_a_footer() {
        let rows = Rows {
            columns: vec![
                Column {
                    name: "region".into(),
                    data_type: "Utf8".into(),
                },
                Column {
                    name: "total".into(),
                    data_type: "Float64".into(),
                },
            ],
            rows: vec![
                vec![json!("na-east"), json!(12.5)],
                vec![json!("anz"), Value::Null],
            ],
            truncated: Some("the result has more than 2 rows".into()),
        };
        assert_eq!(
            table(&rows),
            "region  | total\n--------+------\nna-east | 12.5\nanz     | NULL\n(2 rows)\nTruncated: the result has more than 2 rows."
        );
    }

    #[test]
    fn long_cells_and_long_results_are_cut() {
        let rows = Rows {
            columns: vec![Column {
                name: "memo".into(),
                data_type: "Utf8".into(),
            }],
            rows: (0..60).map(|_| vec![json!("x".repeat(100))]).collect(),
            truncated: None,
        };
        let text = table(&rows);
        assert!(text.lines().nth(2).unwrap().ends_with('…'));
        assert_eq!(text.lines().count(), 2 + MAX_TEXT_ROWS + 1);
        assert!(text.ends_with("the structured result has all 60)"));
    }
}
