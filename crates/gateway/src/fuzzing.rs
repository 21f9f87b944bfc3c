//! Entry points for the fuzz targets under `fuzz/` and for their regression tests: what the
//! gateway does with bytes a client or a server controls, before any decision is made on them.
//! Each must return, never panic, whatever the input.

use std::sync::OnceLock;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::{inspect, proxy, sessions, sse};

fn key() -> &'static identity::SigningKey {
    static KEY: OnceLock<identity::SigningKey> = OnceLock::new();
    KEY.get_or_init(|| identity::SigningKey::generate().expect("a key"))
}

/// Headers from `name: value` lines; lines that are not a valid header are skipped, as the HTTP
/// server would have refused them before the gateway saw them.
fn header_map(text: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in text.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    headers
}

/// `headers\n\nbody`, as a client POSTs it to an MCP route: the envelope read (JSON-RPC shape,
/// standard headers against the body), then the facts the gateway takes from it.
pub fn client_message(data: &[u8]) {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(data.len());
    let headers = header_map(&data[..split]);
    let body = data.get(split + 2..).unwrap_or_default();
    let Ok(envelope) = proxy::read_envelope(&headers, body) else {
        return;
    };
    let mut message = envelope.message;
    let _ = inspect::argument_digest(message.pointer("/params/arguments"));
    let _ = inspect::call_outcome(&message);
    if let Some(id) = &envelope.id {
        let _ = inspect::is_response_to(&message, id);
    }
    inspect::filter_tools_list(&mut message, |tools| {
        tools
            .into_iter()
            .filter(|tool| tool.get("name").and_then(Value::as_str).is_some())
            .collect()
    });
}

/// Request headers alone: the bearer token, the standard headers against each kind of request,
/// the sealed session id and the DNS-rebinding check.
pub fn headers(data: &[u8]) {
    let headers = header_map(data);
    let _ = proxy::bearer_token(&headers);
    let _ = proxy::host_allowed(&crate::loopback_hosts(), &headers);
    for message in [
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_docs"}}),
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "file:///a"}}),
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        serde_json::json!({"jsonrpc": "2.0", "id": 1, "result": {}}),
    ] {
        let _ = inspect::check_standard_headers(&headers, &message);
    }
    if let Some(id) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) {
        let _ = sessions::open(key(), id, "alice", "knowledge");
    }
}

/// A server's answer body, as JSON or as an event stream cut into uneven chunks: each event's
/// data read as the JSON-RPC message the gateway inspects.
pub fn server_answer(data: &[u8]) {
    let inspect_message = |mut message: Value| {
        let outcome = inspect::call_outcome(&message);
        let answers = inspect::is_response_to(&message, &Value::from(1));
        // Where the answer skims, the skim reads it as the whole message is read.
        if let Ok(skim) = <inspect::Skim as serde::Deserialize>::deserialize(&message) {
            assert_eq!(skim.outcome(), outcome, "{message}");
            assert!(!skim.answers(&Value::from(1)) || answers, "{message}");
        }
        inspect::filter_tools_list(&mut message, |tools| {
            tools
                .into_iter()
                .filter(|tool| tool.get("name").is_some())
                .collect()
        });
    };
    let _ = serde_json::from_slice::<inspect::Skim>(data);
    if let Ok(message) = serde_json::from_slice::<Value>(data) {
        inspect_message(message);
    }
    let mut parser = sse::Parser::default();
    let mut events = Vec::new();
    let chunk = 1 + data.first().map_or(0, |b| usize::from(*b % 16));
    for piece in data.chunks(chunk) {
        events.extend(parser.push(piece));
    }
    events.extend(parser.finish());
    for event in events {
        if let Some(data) = event.data()
            && let Ok(message) = serde_json::from_str::<Value>(&data)
        {
            let _ = event.with_data(&message.to_string()).to_bytes();
            inspect_message(message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seeds, then many mutations of them (bytes flipped, cut, spliced), through every entry:
    /// what `cargo fuzz` explores for hours, run briefly on every test run.
    #[test]
    fn the_entry_points_survive_mangled_input() {
        let seeds: Vec<Vec<u8>> = vec![
            b"content-type: application/json\nmcp-protocol-version: 2026-07-28\nmcp-method: tools/call\nmcp-name: echo\n\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\",\"arguments\":{\"text\":\"hi\"}}}".to_vec(),
            b"mcp-protocol-version: 2026-07-28\nmcp-method: tools/call\nmcp-name: =?base64?ZWNobw==?=\n\n{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"tools/call\",\"params\":{\"name\":\"echo\"}}".to_vec(),
            b"authorization: Bearer abc.def.ghi\nmcp-session-id: switchboard-session.eyJhbGciOiJFZERTQSJ9.e30.AAAA\nhost: localhost:7701\n\n[1,2]".to_vec(),
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[{\"name\":\"a\"},{\"nom\":1},7]}}".to_vec(),
            b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\n\ndata: \"error\":{\"code\":-1,\"message\":\"m\"}}\n\n".to_vec(),
            b"data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[],\"isError\":true}}\r\n\r\n".to_vec(),
        ];
        let seeds: Vec<&[u8]> = seeds.iter().map(Vec::as_slice).collect();
        let inputs = catalog::fuzzing::mutations(&seeds, 4_000, 0x5eed);
        for input in &inputs {
            client_message(input);
            headers(input);
            server_answer(input);
        }
    }
}
