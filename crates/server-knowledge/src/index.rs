//! The tantivy index: title and body with English stemming, BM25 ranking with the title boosted,
//! and snippets around the best-matching passage.

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::Serialize;
use tantivy::{
    Index, IndexReader, TantivyDocument,
    collector::TopDocs,
    doc,
    query::QueryParser,
    schema::{
        Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
    },
    snippet::SnippetGenerator,
};

use crate::Document;

/// One search hit.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Hit {
    pub title: String,
    /// Pass this to `get_doc` to read the whole document.
    pub path: String,
    pub snippet: String,
    /// BM25 relevance; higher is better.
    pub score: f32,
}

pub struct KnowledgeIndex {
    index: Index,
    reader: IndexReader,
    path: Field,
    title: Field,
    body: Field,
    documents: HashMap<String, Document>,
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
        let body = schema.add_text_field("body", text);
        let index = Index::create_in_ram(schema.build());
        let mut writer: tantivy::IndexWriter = index.writer_with_num_threads(1, 15_000_000)?;
        for d in &documents {
            writer.add_document(
                doc!(path => d.path.clone(), title => d.title.clone(), body => d.content.clone()),
            )?;
        }
        writer.commit()?;
        let reader = index.reader()?;
        let documents = documents.into_iter().map(|d| (d.path.clone(), d)).collect();
        Ok(KnowledgeIndex {
            index,
            reader,
            path,
            title,
            body,
            documents,
        })
    }

    pub fn len(&self) -> usize {
        self.documents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }

    pub fn document(&self, path: &str) -> Option<&Document> {
        self.documents.get(path)
    }

    /// The best `limit` hits for `query`. Query syntax errors are forgiven: the parser keeps what
    /// it understood, so a stray quote or colon still searches.
    pub fn search(&self, query: &str, limit: usize) -> tantivy::Result<Vec<Hit>> {
        let searcher = self.reader.searcher();
        let mut parser = QueryParser::for_index(&self.index, vec![self.title, self.body]);
        parser.set_field_boost(self.title, 2.0);
        let (query, _ignored) = parser.parse_query_lenient(query);
        let top = searcher.search(&query, &TopDocs::with_limit(limit).order_by_score())?;
        let mut snippets = SnippetGenerator::create(&searcher, &*query, self.body)?;
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
            let snippet = snippets.snippet_from_doc(&doc);
            let mut text = snippet.fragment().trim().to_owned();
            if text.is_empty() {
                text = field(self.body).chars().take(240).collect();
            }
            hits.push(Hit {
                title: field(self.title),
                path: field(self.path),
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
        let hits = index.search(query, 3).unwrap();
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
    fn forgives_query_syntax_and_finds_nothing_gracefully() {
        let index = KnowledgeIndex::build(bundled_corpus()).unwrap();
        assert!(index.search("title:(unbalanced \"quote", 5).is_ok());
        assert!(index.search("zzzyyyxxx", 5).unwrap().is_empty());
        assert_eq!(index.len(), 6);
        assert_eq!(
            index.document("runbooks/on-call-handoff.md").unwrap().title,
            "On-call handoff"
        );
    }
}
