//! What of a call's arguments the audit may keep: everything but the arguments a tool's manifest
//! marks sensitive and those whose names look like secrets, which become `"[redacted]"`, and
//! nothing of arguments too large to be worth keeping (their digest is recorded anyway).

use serde_json::Value;

/// What a redacted value is recorded as.
pub const REDACTED: &str = "[redacted]";

/// Bytes of (redacted) arguments an audit record keeps at most.
pub const MAX_AUDITED_ARGUMENTS: usize = 16 * 1024;

/// Name fragments that mark an argument as a secret wherever it appears.
const SECRET_NAMES: [&str; 7] = [
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "credential",
];

fn looks_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase().replace('-', "_");
    SECRET_NAMES.iter().any(|s| name.contains(s)) || name == "authorization"
}

/// `arguments` as the audit keeps them: the `sensitive` paths (`name` or `a.b.c`) and every
/// field whose name looks like a secret replaced by [`REDACTED`]; `None` when what is left is
/// larger than [`MAX_AUDITED_ARGUMENTS`].
pub fn redact_arguments(arguments: &Value, sensitive: &[String]) -> Option<Value> {
    let mut kept = arguments.clone();
    for path in sensitive {
        let parts: Vec<&str> = path.split('.').filter(|p| !p.is_empty()).collect();
        redact_path(&mut kept, &parts);
    }
    redact_secrets(&mut kept);
    let size = serde_json::to_string(&kept).map_or(usize::MAX, |s| s.len());
    (size <= MAX_AUDITED_ARGUMENTS).then_some(kept)
}

fn redact_path(value: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match value {
        Value::Object(fields) => {
            if let Some(field) = fields.get_mut(*first) {
                if rest.is_empty() {
                    *field = Value::String(REDACTED.into());
                } else {
                    redact_path(field, rest);
                }
            }
        }
        // A path through a list applies to each of its items.
        Value::Array(items) => items.iter_mut().for_each(|i| redact_path(i, path)),
        _ => {}
    }
}

fn redact_secrets(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields.iter_mut() {
                if looks_secret(name) {
                    *field = Value::String(REDACTED.into());
                } else {
                    redact_secrets(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_secrets),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sensitive_paths_and_secret_looking_names_are_redacted() {
        let arguments = json!({
            "sql": "SELECT 1",
            "ssn": "123-45-6789",
            "conf": {"api_key": "k", "region": "eu", "owner": {"email": "a@b.c"}},
            "rows": [{"email": "x@y.z", "n": 1}, {"email": "p@q.r", "n": 2}],
            "Access-Token": "t"
        });
        let kept = redact_arguments(
            &arguments,
            &[
                "ssn".into(),
                "conf.owner.email".into(),
                "rows.email".into(),
                "missing.path".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            kept,
            json!({
                "sql": "SELECT 1",
                "ssn": REDACTED,
                "conf": {"api_key": REDACTED, "region": "eu", "owner": {"email": REDACTED}},
                "rows": [{"email": REDACTED, "n": 1}, {"email": REDACTED, "n": 2}],
                "Access-Token": REDACTED
            })
        );
    }

    #[test]
    fn arguments_too_large_are_not_kept() {
        let big = json!({"text": "x".repeat(MAX_AUDITED_ARGUMENTS)});
        assert_eq!(redact_arguments(&big, &[]), None);
        assert_eq!(redact_arguments(&json!({}), &[]), Some(json!({})));
    }
}
