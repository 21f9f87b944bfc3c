//! The Cedar schema of Switchboard's policies: who (users in groups, services), what (servers and
//! their tools), which actions (connect, list, call) and the request context (surface, bot
//! channel, the call's arguments). Each server's schema gives `Args` the attributes its tools
//! take, so argument conditions are type-checked against the tools they guard.

use std::collections::BTreeMap;

use cedar_policy::Schema;
use serde_json::Value;

use crate::ToolFacts;

/// The schema, with `ARGS` standing for the per-server argument record type.
pub const SCHEMA: &str = r#"
namespace Mcp {
  entity Group;
  entity User in [Group];
  entity Service in [Group];
  entity Server = {
    name: String,
    environment: String,
    owner_team: String,
    approved: Bool,
  };
  entity Tool in [Server] = {
    name: String,
    server: String,
    environment: String,
    read_only: Bool,
    sensitivity: String,
    policy: String,
    approved: Bool,
  };
  type Args = ARGS;
  type Context = {
    surface: String,
    channel?: String,
    args?: Args,
  };
  action connect appliesTo { principal: [User, Service], resource: [Server], context: Context };
  action list appliesTo { principal: [User, Service], resource: [Tool], context: Context };
  action call appliesTo { principal: [User, Service], resource: [Tool], context: Context };
}
"#;

/// The schema for a server whose tools are `tools`: `Args` has every top-level argument that is
/// a string, integer, boolean or list of strings, typed as the tools declare it (an argument two
/// tools type differently is left out, so a policy cannot rely on it).
pub(crate) fn schema_for(tools: &[ToolFacts]) -> Result<Schema, String> {
    let mut attributes: BTreeMap<String, Option<&'static str>> = BTreeMap::new();
    for tool in tools {
        let Some(properties) = tool
            .input_schema
            .as_ref()
            .and_then(|s| s.get("properties"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for (name, property) in properties {
            let cedar_type = match property.get("type").and_then(Value::as_str) {
                Some("string") => Some("String"),
                Some("integer") => Some("Long"),
                Some("boolean") => Some("Bool"),
                Some("array")
                    if property.pointer("/items/type").and_then(Value::as_str)
                        == Some("string") =>
                {
                    Some("Set<String>")
                }
                _ => None,
            };
            attributes
                .entry(name.clone())
                .and_modify(|existing| {
                    if *existing != cedar_type {
                        *existing = None;
                    }
                })
                .or_insert(cedar_type);
        }
    }
    let fields: Vec<String> = attributes
        .into_iter()
        .filter(|(name, _)| is_identifier(name))
        .filter_map(|(name, t)| t.map(|t| format!("{name}?: {t}")))
        .collect();
    let text = SCHEMA.replace("ARGS", &format!("{{ {} }}", fields.join(", ")));
    Schema::from_cedarschema_str(&text)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| format!("{e}"))
}

/// Argument names usable as Cedar record attributes without quoting.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !matches!(
            name,
            "if" | "then" | "else" | "in" | "is" | "like" | "has" | "true" | "false"
        )
}
