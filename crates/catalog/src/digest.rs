//! Canonical JSON digests: the SHA-256 of a JSON value with object keys sorted, so the same value
//! has the same digest however it was serialized. Audit records digest call arguments with it;
//! the registry pins tool definitions with it.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of the canonical JSON of `value`.
pub fn json_digest(value: &Value) -> String {
    let mut canonical = String::new();
    write_canonical(value, &mut canonical);
    let digest = Sha256::digest(canonical.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digests_ignore_key_order() {
        let a = json_digest(&json!({"b": 1, "a": [1, {"y": 2, "x": "é"}]}));
        let b = json_digest(&json!({"a": [1, {"x": "é", "y": 2}], "b": 1}));
        assert_eq!(a, b);
        assert_ne!(a, json_digest(&json!({"b": 2, "a": []})));
        assert_eq!(json_digest(&Value::Null).len(), 64);
    }
}
