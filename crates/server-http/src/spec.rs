//! The tools file of a declarative server: each tool is one HTTP call. Its arguments are mapped
//! to the path, the query, headers or the JSON body; its response is cut down for the model (a
//! JSON pointer into it, the fields to keep, at most so many items and bytes). Parsing reports
//! every problem at once, each with its place in the file. A tool may instead name an
//! operation of an OpenAPI 3 document (`openapi = "billing.json"`, `operation = "getInvoice"`):
//! its method, path, parameters, JSON body properties and description come from there, and
//! anything the file says about the tool wins.
//!
//! ```toml
//! base_url = "https://billing.internal/api"
//! [auth]
//! bearer_env = "BILLING_API_TOKEN"
//!
//! [tools.get_invoice]
//! description = "One invoice by id"
//! method = "GET"
//! path = "/invoices/{id}"
//! [tools.get_invoice.arguments.id]
//! type = "string"
//! in = "path"
//! required = true
//! [tools.get_invoice.response]
//! select = "/data"
//! fields = ["id", "amount", "status"]
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Where the API is (`--base-url` overrides it).
    #[serde(default)]
    pub base_url: Option<String>,
    /// An OpenAPI 3 document (JSON) whose operations tools may name, beside the tools file.
    #[serde(default)]
    pub openapi: Option<String>,
    #[serde(default)]
    pub auth: Auth,
    /// Seconds one call may take.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    pub tools: BTreeMap<String, ToolSpec>,
}

fn default_timeout() -> u64 {
    30
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// The environment variable holding the API's bearer token.
    #[serde(default)]
    pub bearer_env: Option<String>,
    /// Send the verified caller to the API as `X-Forwarded-User` and `X-Forwarded-Groups`
    /// (default: yes).
    #[serde(default = "yes")]
    pub forward_identity: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub title: Option<String>,
    /// The OpenAPI operation (its `operationId`) the tool calls.
    #[serde(default)]
    pub operation: Option<String>,
    #[serde(default = "get")]
    pub method: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub arguments: BTreeMap<String, Argument>,
    #[serde(default)]
    pub response: Shape,
    /// Whether the call changes nothing (default: only for GET).
    #[serde(default)]
    pub read_only: Option<bool>,
    /// Whether the call may destroy data (default: only for DELETE).
    #[serde(default)]
    pub destructive: Option<bool>,
}

fn get() -> String {
    "GET".into()
}

/// Where an argument goes in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Location {
    Path,
    Query,
    Header,
    Body,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argument {
    #[serde(rename = "type", default = "string")]
    pub kind: String,
    #[serde(default)]
    pub description: Option<String>,
    /// Default: the query for GET and DELETE, the body otherwise.
    #[serde(rename = "in", default)]
    pub location: Option<Location>,
    #[serde(default)]
    pub required: bool,
    #[serde(rename = "enum", default)]
    pub choices: Option<Vec<Value>>,
    #[serde(default)]
    pub default: Option<Value>,
    /// The name on the wire, when it differs from the argument's.
    #[serde(default)]
    pub name: Option<String>,
}

fn string() -> String {
    "string".into()
}

/// What of a response the model gets.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shape {
    /// A JSON pointer to the part that matters (`/data/items`).
    #[serde(default)]
    pub select: Option<String>,
    /// Keep only these fields of each object (of the selection, or of each item of it).
    #[serde(default)]
    pub fields: Vec<String>,
    /// At most this many items of an array.
    #[serde(default)]
    pub max_items: Option<usize>,
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
}

impl Default for Shape {
    fn default() -> Shape {
        Shape {
            select: None,
            fields: Vec::new(),
            max_items: None,
            max_bytes: default_max_bytes(),
        }
    }
}

fn default_max_bytes() -> usize {
    16 * 1024
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];
const TYPES: &[&str] = &["string", "integer", "number", "boolean", "array", "object"];

impl Argument {
    pub fn location(&self, method: &str) -> Location {
        self.location.unwrap_or(match method {
            "GET" | "DELETE" => Location::Query,
            _ => Location::Body,
        })
    }
}

impl ToolSpec {
    /// The names between braces in the path.
    pub fn path_names(&self) -> Vec<&str> {
        let mut names = Vec::new();
        let mut rest = self.path.as_str();
        while let Some(start) = rest.find('{') {
            let Some(end) = rest[start..].find('}') else {
                break;
            };
            names.push(&rest[start + 1..start + end]);
            rest = &rest[start + end + 1..];
        }
        names
    }

    /// The tool's input schema: one property per argument.
    pub fn input_schema(&self) -> Value {
        let mut properties = Map::new();
        let mut required = Vec::new();
        for (name, argument) in &self.arguments {
            let mut property = json!({"type": argument.kind});
            if let Some(d) = &argument.description {
                property["description"] = json!(d);
            }
            if let Some(choices) = &argument.choices {
                property["enum"] = json!(choices);
            }
            if let Some(default) = &argument.default {
                property["default"] = default.clone();
            }
            if argument.kind == "array" {
                property["items"] = json!({"type": "string"});
            }
            properties.insert(name.clone(), property);
            if argument.required {
                required.push(name.clone());
            }
        }
        json!({
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": false,
        })
    }
}

impl Spec {
    /// Parses and checks a tools file that names no OpenAPI document; every problem is
    /// reported, as `place: problem`.
    pub fn parse(text: &str) -> Result<Spec, Vec<String>> {
        Spec::parse_with(text, |name| {
            Err(format!("the OpenAPI document {name} cannot be read here"))
        })
    }

    /// Parses and checks a tools file, reading the OpenAPI document it names with `read`.
    pub fn parse_with(
        text: &str,
        read: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Spec, Vec<String>> {
        let mut spec: Spec = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        match &spec.openapi {
            Some(name) => match read(name).and_then(|t| {
                serde_json::from_str::<Value>(&t).map_err(|e| format!("{name} is not JSON: {e}"))
            }) {
                Ok(document) => {
                    for (tool_name, tool) in spec.tools.iter_mut() {
                        if let Some(operation) = tool.operation.clone()
                            && let Err(problem) =
                                crate::openapi::resolve(&document, &operation, tool)
                        {
                            problems.push(format!("tools.{tool_name}.operation: {problem}"));
                        }
                    }
                }
                Err(problem) => problems.push(format!("openapi: {problem}")),
            },
            None => {
                for (tool_name, tool) in &spec.tools {
                    if tool.operation.is_some() {
                        problems.push(format!(
                            "tools.{tool_name}.operation: name the OpenAPI document first (openapi = \"api.json\")"
                        ));
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        if spec.tools.is_empty() {
            problems.push("tools: a declarative server needs at least one tool".to_owned());
        }
        for (name, tool) in &spec.tools {
            let at = |field: &str| format!("tools.{name}.{field}");
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
                || name.is_empty()
                || name.len() > 64
            {
                problems.push(format!(
                    "tools.{name}: a tool name has 1 to 64 letters, digits, _ or -"
                ));
            }
            if tool.description.trim().is_empty() {
                problems.push(format!("{}: say what the tool does", at("description")));
            }
            if !METHODS.contains(&tool.method.as_str()) {
                problems.push(format!(
                    "{}: {:?} is not one of {}",
                    at("method"),
                    tool.method,
                    METHODS.join(", ")
                ));
            }
            if tool.path.is_empty() {
                problems.push(format!(
                    "{}: give the path (or an OpenAPI operation)",
                    at("path")
                ));
            } else if !tool.path.starts_with('/') {
                problems.push(format!("{}: the path starts with /", at("path")));
            }
            let in_path = tool.path_names();
            for placeholder in &in_path {
                match tool.arguments.get(*placeholder) {
                    Some(a) if a.location(&tool.method) == Location::Path && a.required => {}
                    _ => problems.push(format!(
                        "{}: {{{placeholder}}} needs a required argument with in = \"path\"",
                        at("path")
                    )),
                }
            }
            for (arg, argument) in &tool.arguments {
                let at = |field: &str| format!("tools.{name}.arguments.{arg}.{field}");
                if !TYPES.contains(&argument.kind.as_str()) {
                    problems.push(format!(
                        "{}: {:?} is not one of {}",
                        at("type"),
                        argument.kind,
                        TYPES.join(", ")
                    ));
                }
                let location = argument.location(&tool.method);
                if location == Location::Path && !in_path.contains(&arg.as_str()) {
                    problems.push(format!("{}: the path has no {{{arg}}}", at("in")));
                }
                if location == Location::Body && matches!(tool.method.as_str(), "GET" | "DELETE") {
                    problems.push(format!(
                        "{}: a {} request has no body",
                        at("in"),
                        tool.method
                    ));
                }
                if location == Location::Header {
                    let wire = argument.name.as_deref().unwrap_or(arg);
                    let lower = wire.to_ascii_lowercase();
                    if reqwest::header::HeaderName::from_bytes(wire.as_bytes()).is_err()
                        || ["authorization", "cookie", "host"].contains(&lower.as_str())
                        || lower.starts_with("x-forwarded-")
                    {
                        problems.push(format!(
                            "{}: {wire:?} cannot be set by an argument",
                            at("name")
                        ));
                    }
                }
            }
            if let Some(select) = &tool.response.select
                && !select.is_empty()
                && !select.starts_with('/')
            {
                problems.push(format!(
                    "{}: a JSON pointer starts with /",
                    at("response.select")
                ));
            }
        }
        if let Some(url) = &spec.base_url
            && reqwest::Url::parse(url).is_err()
        {
            problems.push(format!("base_url: {url:?} is not a URL"));
        }
        if problems.is_empty() {
            Ok(spec)
        } else {
            Err(problems)
        }
    }
}

/// Cuts a JSON answer down as `shape` says: the selection, the fields, the items; a note says
/// what was left out.
pub fn shape(value: Value, shape: &Shape) -> (Value, Option<String>) {
    let mut value = match shape.select.as_deref() {
        Some(pointer) if !pointer.is_empty() => {
            value.pointer(pointer).cloned().unwrap_or(Value::Null)
        }
        _ => value,
    };
    let keep = |v: &mut Value| {
        if let Value::Object(map) = v
            && !shape.fields.is_empty()
        {
            map.retain(|k, _| shape.fields.contains(k));
        }
    };
    let mut note = None;
    match &mut value {
        Value::Array(items) => {
            if let Some(max) = shape.max_items
                && items.len() > max
            {
                note = Some(format!("showing {max} of {} items", items.len()));
                items.truncate(max);
            }
            items.iter_mut().for_each(keep);
        }
        other => keep(other),
    }
    (value, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tools_file_is_read_with_defaults_and_its_schema_follows_the_arguments() {
        let spec = Spec::parse(
            r#"
base_url = "http://billing.internal/api"
[tools.get_invoice]
description = "One invoice"
path = "/invoices/{id}"
[tools.get_invoice.arguments.id]
in = "path"
required = true
[tools.get_invoice.arguments.expand]
type = "boolean"
[tools.create_refund]
description = "Refund an invoice"
method = "POST"
path = "/refunds"
[tools.create_refund.arguments.amount]
type = "number"
required = true
"#,
        )
        .unwrap();
        let get = &spec.tools["get_invoice"];
        assert_eq!(get.method, "GET");
        assert_eq!(get.arguments["expand"].location("GET"), Location::Query);
        let refund = &spec.tools["create_refund"];
        assert_eq!(refund.arguments["amount"].location("POST"), Location::Body);
        let schema = get.input_schema();
        assert_eq!(schema["required"], json!(["id"]));
        assert_eq!(schema["properties"]["expand"]["type"], "boolean");
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let problems = Spec::parse(
            r#"
base_url = "not a url"
[tools.bad]
description = ""
method = "FETCH"
path = "items/{id}"
[tools.bad.arguments.q]
type = "text"
in = "body"
[tools.bad.arguments.token]
in = "header"
name = "Authorization"
"#,
        )
        .unwrap_err();
        for expected in [
            "tools.bad.description: say what the tool does",
            "tools.bad.method: \"FETCH\" is not one of GET, POST, PUT, PATCH, DELETE",
            "tools.bad.path: the path starts with /",
            "tools.bad.path: {id} needs a required argument with in = \"path\"",
            "tools.bad.arguments.q.type: \"text\" is not one of string, integer, number, boolean, array, object",
            "tools.bad.arguments.token.name: \"Authorization\" cannot be set by an argument",
            "base_url: \"not a url\" is not a URL",
        ] {
            assert!(
                problems.iter().any(|p| p == expected),
                "{expected}: {problems:#?}"
            );
        }
        assert!(Spec::parse("[tools.x]\nwhat = 1\n").is_err());
    }

    #[test]
    fn an_answer_is_cut_down_to_what_the_model_needs() {
        let answer = json!({"data": [
            {"id": 1, "amount": 10, "internal": "x"},
            {"id": 2, "amount": 20, "internal": "y"},
            {"id": 3, "amount": 30, "internal": "z"}
        ]});
        let (shaped, note) = shape(
            answer,
            &Shape {
                select: Some("/data".into()),
                fields: vec!["id".into(), "amount".into()],
                max_items: Some(2),
                max_bytes: 1000,
            },
        );
        assert_eq!(
            shaped,
            json!([{"id": 1, "amount": 10}, {"id": 2, "amount": 20}])
        );
        assert_eq!(note.as_deref(), Some("showing 2 of 3 items"));
    }
}
