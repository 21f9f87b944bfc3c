//! Canonical JSON digests: the SHA-256 of a JSON value with object keys sorted, so the same value
//! has the same digest however it was serialized. Audit records digest call arguments with it;
//! the registry pins tool definitions with it.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Hex SHA-256 of the canonical JSON of `value`.
pub fn json_digest(value: &Value) -> String {
    let mut canonical = Vec::with_capacity(256);
    write_canonical(value, &mut canonical);
    let digest = Sha256::digest(&canonical);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push(HEX[usize::from(byte >> 4)] as char);
        hex.push(HEX[usize::from(byte & 0x0f)] as char);
    }
    hex
}

/// Writes `value` as JSON with every object's keys in sorted order (strings escaped, numbers
/// written as serde_json writes them).
fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_leaf(k, out);
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        other => write_leaf(other, out),
    }
}

/// A string, number, boolean or null, as serde_json writes it.
fn write_leaf<T: serde::Serialize + ?Sized>(leaf: &T, out: &mut Vec<u8>) {
    // Writing into memory fails only for values JSON cannot hold, which a `Value` never is.
    let _ = serde_json::to_writer(&mut *out, leaf);
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
        // Stored digests stay valid: the canonical form is sorted keys, no spaces, and
        // serde_json's own escaping and number format.
        assert_eq!(
            json_digest(&json!({"b": true, "a": [1.5, {"y": null, "x": "é\"\n"}]})),
            hex_sha256(r#"{"a":[1.5,{"x":"é\"\n","y":null}],"b":true}"#)
        );
    }

    fn hex_sha256(text: &str) -> String {
        Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
