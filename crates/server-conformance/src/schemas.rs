//! Fixture tools whose input schemas are written out by hand, because they exercise schema
//! features the derive cannot express: JSON Schema 2020-12 keywords (SEP-1613, SEP-2106) and
//! `x-mcp-header` parameters mirrored into `Mcp-Param-*` headers (SEP-2243).

use std::sync::Arc;

use rmcp::{
    handler::server::{
        router::tool::{ToolRoute, ToolRouter},
        tool::ToolCallContext,
    },
    model::{CallToolResult, ContentBlock, JsonObject, Tool},
};
use serde_json::{Value, json};

use crate::Conformance;

/// The hand-written tools, as routes.
pub(crate) fn routes() -> ToolRouter<Conformance> {
    let mut router = ToolRouter::new();
    router.add_route(route(
        "json_schema_2020_12_tool",
        "Tool with JSON Schema 2020-12 features",
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": { "address": { "$anchor": "addressDef", "type": "object",
                "properties": { "street": { "type": "string" }, "city": { "type": "string" } } } },
            "properties": {
                "name": { "type": "string" },
                "address": { "$ref": "#/$defs/address" },
                "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                "phone": { "type": "string" },
                "email": { "type": "string" }
            },
            "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
            "if": { "properties": { "contactMethod": { "const": "phone" } }, "required": ["contactMethod"] },
            "then": { "required": ["phone"] },
            "else": { "required": ["email"] },
            "additionalProperties": false
        }),
    ));
    router.add_route(route(
        "test_custom_headers",
        "Echoes a region that clients must also send as the Mcp-Param-Region header",
        json!({
            "type": "object",
            "properties": { "region": { "type": "string", "x-mcp-header": "Region" } },
            "required": ["region"]
        }),
    ));
    router
}

fn route(name: &'static str, description: &'static str, schema: Value) -> ToolRoute<Conformance> {
    let Value::Object(schema) = schema else {
        unreachable!("the schemas above are objects")
    };
    let tool = Tool::new(name, description, Arc::<JsonObject>::new(schema));
    ToolRoute::new_dyn(tool, move |ctx: ToolCallContext<'_, Conformance>| {
        let arguments = Value::Object(ctx.arguments.clone().unwrap_or_default());
        Box::pin(async move {
            Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                "{name} received {arguments}"
            ))])
            .into())
        })
    })
}
