//! The tools an agent may offer its model: exactly what discovery returned for the person on
//! this surface (and channel), named `<server>__<tool>`. When there are many, the model gets the
//! ones most relevant to the question (BM25 over names, titles and descriptions) and a
//! `search_tools` tool to find the rest, so its context is not crowded.

use std::collections::HashMap;

use registry_api::Discovery;
use serde_json::{Value, json};

/// Between a server's name and its tool's (as `switchboard connect` names them).
pub const SEPARATOR: &str = "__";
/// The tool that searches the rest of the toolset.
pub const SEARCH_TOOL: &str = "search_tools";

/// One tool the person may call.
#[derive(Debug, Clone)]
pub struct ToolEntry {
    pub server: String,
    pub tool: String,
    /// `<server>__<tool>`: what the model calls it.
    pub name: String,
    pub description: String,
    pub input_schema: Value,
    terms: Vec<String>,
}

/// The person's tools, indexed for ranking.
#[derive(Debug, Default)]
pub struct Toolset {
    entries: Vec<ToolEntry>,
    by_name: HashMap<String, usize>,
    /// In how many tools each term appears.
    document_frequency: HashMap<String, usize>,
    average_length: f64,
}

/// Words that say nothing about which tool fits.
const STOPWORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "by", "can", "do", "for", "from", "how", "i", "in",
    "is", "it", "me", "my", "of", "on", "or", "the", "this", "to", "what", "which", "with", "you",
];

/// Lower-case words of `text`, split at anything not alphanumeric (so `run_query` is two
/// words), plurals folded.
fn terms(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOPWORDS.contains(&w.as_str()))
        .map(|w| match w.strip_suffix('s') {
            Some(stem) if stem.len() >= 3 && !stem.ends_with('s') => stem.to_owned(),
            _ => w,
        })
}

impl Toolset {
    pub fn from_discovery(discovery: &Discovery) -> Toolset {
        let mut set = Toolset::default();
        for server in &discovery.servers {
            for tool in &server.tools {
                let d = &tool.definition;
                let name = format!("{}{SEPARATOR}{}", server.name, d.name);
                let description = d.description.clone().unwrap_or_default();
                // Names count twice: they say most about what a tool is for.
                let text = format!(
                    "{0} {0} {1} {1} {2} {3} {4}",
                    server.name,
                    d.name,
                    d.title.as_deref().unwrap_or_default(),
                    description,
                    server.description
                );
                let entry = ToolEntry {
                    server: server.name.clone(),
                    tool: d.name.clone(),
                    name: name.clone(),
                    description,
                    input_schema: d.input_schema.clone(),
                    terms: terms(&text).collect(),
                };
                set.by_name.insert(name, set.entries.len());
                set.entries.push(entry);
            }
        }
        for entry in &set.entries {
            let mut seen: Vec<&String> = entry.terms.iter().collect();
            seen.sort();
            seen.dedup();
            for term in seen {
                *set.document_frequency.entry(term.clone()).or_default() += 1;
            }
        }
        let total: usize = set.entries.iter().map(|e| e.terms.len()).sum();
        set.average_length = total as f64 / set.entries.len().max(1) as f64;
        set
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&ToolEntry> {
        self.by_name.get(name).map(|i| &self.entries[*i])
    }

    /// The names of up to `k` tools most relevant to `query`, best first; only tools that share
    /// a word with it.
    pub fn rank(&self, query: &str, k: usize) -> Vec<String> {
        const K1: f64 = 1.2;
        const B: f64 = 0.75;
        let query: Vec<String> = terms(query).collect();
        let n = self.entries.len() as f64;
        let mut scored: Vec<(f64, usize)> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, entry)| {
                let length = entry.terms.len() as f64;
                let score: f64 = query
                    .iter()
                    .map(|term| {
                        let tf = entry.terms.iter().filter(|t| *t == term).count() as f64;
                        if tf == 0.0 {
                            return 0.0;
                        }
                        let df = self.document_frequency.get(term).copied().unwrap_or(0) as f64;
                        let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                        idf * tf * (K1 + 1.0)
                            / (tf + K1 * (1.0 - B + B * length / self.average_length.max(1.0)))
                    })
                    .sum();
                (score > 0.0).then_some((score, i))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        scored
            .into_iter()
            .take(k)
            .map(|(_, i)| self.entries[i].name.clone())
            .collect()
    }

    /// Every tool's name, in discovery order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }

    /// The chat-completions definition of the tool named `name`.
    pub fn function(&self, name: &str) -> Option<Value> {
        let entry = self.get(name)?;
        let mut parameters = entry.input_schema.clone();
        if !parameters.is_object() {
            parameters = json!({"type": "object"});
        }
        Some(json!({
            "type": "function",
            "function": {
                "name": entry.name,
                "description": entry.description,
                "parameters": parameters,
            }
        }))
    }
}

/// The chat-completions definition of [`SEARCH_TOOL`].
pub fn search_function(total: usize) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": SEARCH_TOOL,
            "description": format!("Find more of the user's tools ({total} in all; only some are offered at once). Give a few words about what the tool should do; the matching tools become callable."),
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "What the tool should do"}},
                "required": ["query"]
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovery(tools: &[(&str, &str, &str)]) -> Discovery {
        let mut servers: Vec<registry_api::DiscoveredServer> = Vec::new();
        for (server, tool, description) in tools {
            let definition = json!({"name": tool, "description": description, "inputSchema": {"type": "object"}});
            let view: registry_api::ToolView = serde_json::from_value(json!({
                "name": tool, "description": description, "inputSchema": {"type": "object"},
                "minutes_saved": 1.0, "sensitivity": "low"
            }))
            .unwrap();
            assert_eq!(view.definition.name, definition["name"]);
            match servers.iter_mut().find(|s| s.name == *server) {
                Some(s) => s.tools.push(view),
                None => servers.push(registry_api::DiscoveredServer {
                    name: (*server).into(),
                    title: None,
                    description: String::new(),
                    owner_team: "t".into(),
                    support_channel: "#t".into(),
                    environment: "prod".into(),
                    gateway_path: format!("/servers/{server}/mcp"),
                    tools: vec![view],
                }),
            }
        }
        Discovery {
            user: "u".into(),
            groups: vec![],
            servers,
        }
    }

    #[test]
    fn the_most_relevant_tools_come_first_and_unrelated_ones_not_at_all() {
        let set = Toolset::from_discovery(&discovery(&[
            (
                "sql",
                "run_query",
                "Run a read-only SQL query on the warehouse",
            ),
            ("sql", "list_tables", "List the tables of a schema"),
            ("airflow", "list_dags", "List Airflow DAGs"),
            ("airflow", "get_task_log", "Read the log of a task instance"),
            ("knowledge", "search_docs", "Search the engineering docs"),
        ]));
        assert_eq!(set.len(), 5);
        let ranked = set.rank("Which tables are in the sales schema?", 3);
        assert_eq!(ranked[0], "sql__list_tables");
        let ranked = set.rank("why did my DAG's task fail? show me the logs", 2);
        assert_eq!(ranked, ["airflow__get_task_log", "airflow__list_dags"]);
        assert!(set.rank("weather in Paris", 3).is_empty());
        assert_eq!(
            set.function("sql__run_query").unwrap()["function"]["name"],
            "sql__run_query"
        );
        assert!(set.function("sql__drop_everything").is_none());
    }
}
