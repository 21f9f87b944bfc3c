//! Tools from OpenAPI 3 operations: an `operationId` gives the method and path, its parameters
//! (path-level ones too, local `$ref`s followed) give path, query and header arguments, and the
//! properties of its JSON request body give body arguments. What the tools file says itself
//! about the tool wins over what the document says.

use serde_json::Value;

use crate::spec::{Argument, Location, ToolSpec};

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

/// Follows a local `$ref` (`#/components/...`), a few levels deep at most.
fn follow<'a>(document: &'a Value, mut value: &'a Value) -> Result<&'a Value, String> {
    for _ in 0..8 {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return Ok(value);
        };
        let pointer = reference
            .strip_prefix('#')
            .ok_or_else(|| format!("only local references are followed, not {reference:?}"))?;
        value = document
            .pointer(pointer)
            .ok_or_else(|| format!("{reference:?} points at nothing"))?;
    }
    Err("references nest too deep".into())
}

/// The JSON Schema type of `schema`, as the tools file names types.
fn kind(document: &Value, schema: Option<&Value>) -> String {
    let schema = schema.and_then(|s| follow(document, s).ok());
    match schema.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some(t @ ("string" | "integer" | "number" | "boolean" | "array" | "object")) => {
            t.to_owned()
        }
        _ => "string".to_owned(),
    }
}

fn argument(
    document: &Value,
    schema: Option<&Value>,
    description: Option<&Value>,
    location: Location,
    required: bool,
) -> Argument {
    let schema = schema.and_then(|s| follow(document, s).ok());
    Argument {
        kind: kind(document, schema),
        description: description
            .or_else(|| schema.and_then(|s| s.get("description")))
            .and_then(Value::as_str)
            .map(str::to_owned),
        location: Some(location),
        required,
        choices: schema
            .and_then(|s| s.get("enum"))
            .and_then(Value::as_array)
            .cloned(),
        default: schema.and_then(|s| s.get("default")).cloned(),
        name: None,
    }
}

/// Fills `tool` from the operation `operation_id` of `document`.
pub(crate) fn resolve(
    document: &Value,
    operation_id: &str,
    tool: &mut ToolSpec,
) -> Result<(), String> {
    let paths = document
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("the OpenAPI document has no paths")?;
    let found = paths.iter().find_map(|(path, item)| {
        METHODS.iter().find_map(|method| {
            item.get(*method)
                .filter(|op| op.get("operationId").and_then(Value::as_str) == Some(operation_id))
                .map(|op| (path, item, *method, op))
        })
    });
    let (path, item, method, operation) =
        found.ok_or_else(|| format!("no operation {operation_id:?} in the OpenAPI document"))?;
    if tool.path.is_empty() {
        tool.path = path.clone();
    }
    tool.method = method.to_uppercase();
    if tool.description.trim().is_empty() {
        tool.description = ["summary", "description"]
            .iter()
            .filter_map(|k| operation.get(*k).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(": ");
    }
    let parameters = item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .chain(
            operation
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
    for parameter in parameters {
        let parameter = follow(document, parameter)?;
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .ok_or("a parameter has no name")?;
        let location = match parameter.get("in").and_then(Value::as_str) {
            Some("path") => Location::Path,
            Some("query") => Location::Query,
            Some("header") => Location::Header,
            // Cookies are the API client's business, not the model's.
            _ => continue,
        };
        let required = location == Location::Path
            || parameter
                .get("required")
                .and_then(Value::as_bool)
                .unwrap_or(false);
        tool.arguments.entry(name.to_owned()).or_insert_with(|| {
            argument(
                document,
                parameter.get("schema"),
                parameter.get("description"),
                location,
                required,
            )
        });
    }
    if let Some(body) = operation.get("requestBody") {
        let body = follow(document, body)?;
        if let Some(schema) = body.pointer("/content/application~1json/schema") {
            let schema = follow(document, schema)?;
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            for (name, property) in schema
                .get("properties")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                tool.arguments.entry(name.clone()).or_insert_with(|| {
                    argument(
                        document,
                        Some(property),
                        None,
                        Location::Body,
                        required.contains(&name.as_str()),
                    )
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::spec::{Location, Spec};

    #[test]
    fn an_operation_gives_its_method_path_arguments_and_description() {
        let document = json!({
            "openapi": "3.0.3",
            "paths": {
                "/invoices/{id}/refunds": {
                    "parameters": [{"$ref": "#/components/parameters/InvoiceId"}],
                    "post": {
                        "operationId": "createRefund",
                        "summary": "Refund an invoice",
                        "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}},
                                       {"name": "session", "in": "cookie", "schema": {"type": "string"}}],
                        "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Refund"}}}}
                    }
                }
            },
            "components": {
                "parameters": {"InvoiceId": {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}},
                "schemas": {"Refund": {"type": "object", "required": ["amount"], "properties": {
                    "amount": {"type": "number", "description": "How much"},
                    "reason": {"type": "string", "enum": ["duplicate", "fraud"]}
                }}}
            }
        });
        let text = r#"
openapi = "billing.json"
base_url = "http://billing"
[tools.refund]
operation = "createRefund"
[tools.refund.arguments.reason]
description = "Why (the file's own words win)"
[tools.nowhere]
operation = "missing"
"#;
        let read = |name: &str| {
            assert_eq!(name, "billing.json");
            Ok(document.to_string())
        };
        let problems = Spec::parse_with(text, read).unwrap_err();
        assert_eq!(
            problems,
            ["tools.nowhere.operation: no operation \"missing\" in the OpenAPI document"]
        );
        let text = text.replace("[tools.nowhere]\noperation = \"missing\"\n", "");
        let spec = Spec::parse_with(&text, read).unwrap();
        let refund = &spec.tools["refund"];
        assert_eq!(refund.method, "POST");
        assert_eq!(refund.path, "/invoices/{id}/refunds");
        assert_eq!(refund.description, "Refund an invoice");
        assert_eq!(refund.arguments["id"].location, Some(Location::Path));
        assert!(refund.arguments["id"].required);
        assert_eq!(
            refund.arguments["Idempotency-Key"].location,
            Some(Location::Header)
        );
        assert!(!refund.arguments.contains_key("session"));
        assert_eq!(refund.arguments["amount"].kind, "number");
        assert!(refund.arguments["amount"].required);
        assert_eq!(
            refund.arguments["reason"].description.as_deref(),
            Some("Why (the file's own words win)")
        );
        // Without the document, an operation is refused with what to do.
        assert!(
            Spec::parse("[tools.x]\noperation = \"y\"\n").unwrap_err()[0]
                .contains("name the OpenAPI document first")
        );
    }
}
