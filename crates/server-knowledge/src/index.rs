//! The tantivy index: one entry per section of each document (see `chunk`), title, heading path
//! and body with English stemming, BM25 ranking with the title and headings boosted, snippets
//! around the best-matching passage, and each document's access groups, so a search only ever
//! ranks what the caller may read. [`KnowledgeIndex::update`] re-indexes only the documents that
//! changed, were added or went away.

use std::{
    collections::HashMap,
    sync::{Mutex, RwLock},
};

use schemars::JsonSchema;
use serde::Serialize;
use tantivy::{
    Index, IndexReader, TantivyDocument, Term,
    collector::TopDocs,
    doc,
    query::{BooleanQuery, Occur, Query, QueryParser, TermSetQuery},
    schema::{
        Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
        Value,
    },
    snippet::SnippetGenerator,
};

use crate::{Document, chunk};

/// The group token of documents everyone may read.
const EVERYONE: &str = "*";

/// One search hit: a section of a document.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Hit {
    pub title: String,
    /// Pass this to `get_doc` to read the whole document.
    pub path: String,
    /// The headings above the passage, outermost first ("Runbook › 2. Executor out of memory").
    pub section: String,
    /// The lines of the file the section spans (1-based).
    pub line_start: u64,
    pub line_end: u64,
    /// How to cite it: `runbooks/spark-failed-job.md § Runbook › 2. Memory (lines 9-16)`.
    pub citation: String,
    pub snippet: String,
    /// BM25 relevance; higher is better.
    pub score: f32,
}

pub struct KnowledgeIndex {
    index: Index,
    reader: IndexReader,
    path: Field,
    title: Field,
    section: Field,
    body: Field,
    groups: Field,
    line_start: Field,
    line_end: Field,
    writer: Mutex<tantivy::IndexWriter>,
    documents: RwLock<HashMap<String, Document>>,
}

/// What an update changed, by path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl KnowledgeIndex {
    pub fn build(documents: Vec<Document>) -> tantivy::Result<KnowledgeIndex> {
        let mut schema = Schema::builder();
        let text = TextOptions::default()
            .set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("en_stem")
                    .set_index_option(IndexRecordOption::WithFreqsAndPositions),
            )
            .set_stored();
        let path = schema.add_text_field("path", STRING | STORED);
        let title = schema.add_text_field("title", text.clone());
        let section = schema.add_text_field("section", text.clone());
        let body = schema.add_text_field("body", text);
        let groups = schema.add_text_field("groups", STRING);
        let line_start = schema.add_u64_field("line_start", STORED | INDEXED);
        let line_end = schema.add_u64_field("line_end", STORED);
        let index = Index::create_in_ram(schema.build());
        let writer = index.writer_with_num_threads(1, 15_000_000)?;
        let reader = index
            .reader_builder()
            .reload_policy(tantivy::ReloadPolicy::Manual)
            .try_into()?;
        let built = KnowledgeIndex {
            index,
            reader,
            path,
            title,
            section,
            body,
            groups,
            line_start,
            line_end,
            writer: Mutex::new(writer),
            documents: RwLock::new(HashMap::new()),
        };
        built.update(documents)?;
        Ok(built)
    }

    /// Makes the index hold exactly `documents`: those new or changed since the last update are
    /// (re-)indexed, those gone are removed, the rest are left as they are.
    pub fn update(&self, documents: Vec<Document>) -> tantivy::Result<Changes> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut known = self.documents.write().unwrap_or_else(|p| p.into_inner());
        let mut changes = Changes::default();
        let incoming: HashMap<String, Document> =
            documents.into_iter().map(|d| (d.path.clone(), d)).collect();
        for path in known.keys() {
            if !incoming.contains_key(path) {
                writer.delete_term(Term::from_field_text(self.path, path));
                changes.removed.push(path.clone());
            }
        }
        for (path, d) in &incoming {
            match known.get(path) {
                Some(old) if old == d => continue,
                Some(_) => {
                    writer.delete_term(Term::from_field_text(self.path, path));
                    changes.changed.push(path.clone());
                }
                None => changes.added.push(path.clone()),
            }
            for s in chunk::sections(&d.content, d.first_line, d.is_markdown()) {
                let mut entry = doc!(
                    self.path => d.path.clone(),
                    self.title => d.title.clone(),
                    self.section => s.heading,
                    self.body => s.text,
                    self.line_start => s.line_start as u64,
                    self.line_end => s.line_end as u64,
                );
                if d.groups.is_empty() {
                    entry.add_text(self.groups, EVERYONE);
                }
                for group in &d.groups {
                    entry.add_text(self.groups, group);
                }
                writer.add_document(entry)?;
            }
        }
        if !changes.is_empty() {
            writer.commit()?;
            self.reader.reload()?;
        }
        *known = incoming;
        for list in [
            &mut changes.added,
            &mut changes.changed,
            &mut changes.removed,
        ] {
            list.sort();
        }
        Ok(changes)
    }

    /// Documents indexed.
    pub fn len(&self) -> usize {
        self.documents
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The document at `path`, if a caller in `groups` may read it.
    pub fn document(&self, path: &str, groups: &[String]) -> Option<Document> {
        self.documents
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(path)
            .filter(|d| d.readable_by(groups))
            .cloned()
    }

    /// The best `limit` sections for `query` that a caller in `groups` may read. Query syntax
    /// errors are forgiven: the parser keeps what it understood, so a stray quote or colon still
    /// searches.
    pub fn search(
        &self,
        query: &str,
        limit: usize,
        groups: &[String],
    ) -> tantivy::Result<Vec<Hit>> {
        let searcher = self.reader.searcher();
        let mut parser =
            QueryParser::for_index(&self.index, vec![self.title, self.section, self.body]);
        parser.set_field_boost(self.title, 2.0);
        parser.set_field_boost(self.section, 1.5);
        let (text_query, _ignored) = parser.parse_query_lenient(query);
        let readable = TermSetQuery::new(
            groups
                .iter()
                .map(String::as_str)
                .chain([EVERYONE])
                .map(|g| Term::from_field_text(self.groups, g)),
        );
        let query = BooleanQuery::new(vec![
            (Occur::Must, text_query.box_clone()),
            (Occur::Must, Box::new(readable) as Box<dyn Query>),
        ]);
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut snippets = SnippetGenerator::create(&searcher, &*text_query, self.body)?;
        snippets.set_max_num_chars(240);
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let doc: TantivyDocument = searcher.doc(address)?;
            let field = |f: Field| {
                doc.get_first(f)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let number = |f: Field| doc.get_first(f).and_then(|v| v.as_u64()).unwrap_or(0);
            let snippet = snippets.snippet_from_doc(&doc);
            let mut text = snippet.fragment().trim().to_owned();
            if text.is_empty() {
                text = field(self.body).chars().take(240).collect();
            }
            let (path, section) = (field(self.path), field(self.section));
            let (line_start, line_end) = (number(self.line_start), number(self.line_end));
            let citation = if section.is_empty() {
                format!("{path} (lines {line_start}-{line_end})")
            } else {
                format!("{path} § {section} (lines {line_start}-{line_end})")
            };
            hits.push(Hit {
                title: field(self.title),
                path,
                section,
                line_start,
                line_end,
                citation,
                snippet: text,
                score,
            });
        }
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundled_corpus;

    fn check(query: &str, expected_first: &str) {
        let index = KnowledgeIndex::build(bundled_corpus()).unwrap();
        let hits = index.search(query, 3, &[]).unwrap();
        assert_eq!(
            hits.first().map(|h| h.path.as_str()),
            Some(expected_first),
            "{hits:?}"
        );
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    }

    #[test]
    fn ranks_the_relevant_runbook_first() {
        check(
            "spark executor out of memory",
            "runbooks/spark-failed-job.md",
        );
        check("rerun failed tasks", "runbooks/airflow-backfill.md");
        check("how do I get presto access", "guides/presto-access.md");
        // Stemming: "backfilling" matches "backfill".
        check("backfilling", "runbooks/airflow-backfill.md");
    }

    #[test]
    fn hits_cite_the_section_and_its_lines() {
        let index = KnowledgeIndex::build(bundled_corpus()).unwrap();
        let hit = &index
            .search("executor out of memory exit code 137", 1, &[])
            .unwrap()[0];
        assert_eq!(hit.path, "runbooks/spark-failed-job.md");
        assert_eq!(
            hit.section,
            "Debugging a failed Spark job › 2. Executor out of memory"
        );
        let text = &index.document(&hit.path, &[]).unwrap().content;
        let heading = text
            .lines()
            .position(|l| l == "## 2. Executor out of memory")
            .unwrap()
            + 1;
        assert_eq!(hit.line_start as usize, heading);
        assert!(hit.line_end > hit.line_start);
        assert!(
            hit.citation
                .ends_with(&format!("(lines {}-{})", hit.line_start, hit.line_end))
        );
    }

    #[test]
    fn a_document_for_some_groups_is_found_and_read_only_by_them() {
        let secret = Document::new(
            "finance/close.md".into(),
            "---\ntitle: Month-end close\ngroups: [finance, finance-leads]\n---\n# Close\nReconcile the ledger before the quarterly close.\n".into(),
        );
        assert_eq!(secret.title, "Month-end close");
        assert_eq!(secret.first_line, 5);
        let index = KnowledgeIndex::build(vec![secret]).unwrap();
        assert!(index.search("reconcile ledger", 5, &[]).unwrap().is_empty());
        assert!(
            index
                .search("reconcile ledger", 5, &["eng".into()])
                .unwrap()
                .is_empty()
        );
        let hits = index
            .search("reconcile ledger", 5, &["finance".into()])
            .unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].line_start, hits[0].line_end), (5, 6));
        assert!(index.document("finance/close.md", &[]).is_none());
        assert!(
            index
                .document("finance/close.md", &["finance-leads".into()])
                .is_some()
        );
    }

    #[test]
    fn updates_reindex_only_what_changed() {
        let doc = |path: &str, text: &str| Document::new(path.into(), text.into());
        let index = KnowledgeIndex::build(vec![
            doc("a.md", "# A\nalpha kestrel"),
            doc("b.md", "# B\nbeta heron"),
        ])
        .unwrap();
        assert_eq!(index.search("kestrel", 5, &[]).unwrap().len(), 1);
        let changes = index
            .update(vec![
                doc("a.md", "# A\nalpha osprey"),
                doc("c.md", "# C\ngamma heron"),
            ])
            .unwrap();
        assert_eq!(
            changes,
            Changes {
                added: vec!["c.md".into()],
                changed: vec!["a.md".into()],
                removed: vec!["b.md".into()],
            }
        );
        assert!(index.search("kestrel", 5, &[]).unwrap().is_empty());
        assert_eq!(index.search("osprey", 5, &[]).unwrap()[0].path, "a.md");
        let herons: Vec<String> = index
            .search("heron", 5, &[])
            .unwrap()
            .into_iter()
            .map(|h| h.path)
            .collect();
        assert_eq!(herons, ["c.md"]);
        assert!(index.document("b.md", &[]).is_none());
        assert!(
            index
                .update(vec![
                    doc("a.md", "# A\nalpha osprey"),
                    doc("c.md", "# C\ngamma heron")
                ])
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn forgives_query_syntax_and_finds_nothing_gracefully() {
        let index = KnowledgeIndex::build(bundled_corpus()).unwrap();
        assert!(index.search("title:(unbalanced \"quote", 5, &[]).is_ok());
        assert!(index.search("zzzyyyxxx", 5, &[]).unwrap().is_empty());
        assert_eq!(index.len(), 6);
        assert_eq!(
            index
                .document("runbooks/on-call-handoff.md", &[])
                .unwrap()
                .title,
            "On-call handoff"
        );
    }
}
