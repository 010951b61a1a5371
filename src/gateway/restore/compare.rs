//! Comparing a backup's record or file with the present one, where a redaction marker in the
//! backup stands for whatever the home holds: the rule that decides **unchanged** rather than
//! **quarantine** (`format-spec/gateway.md` §9.1).

use serde_json::{Map, Value};

use crate::gateway::redact::REDACTED;

/// Equal, treating a redacted backup value as equal to whatever is present.
pub(super) fn same_record(backup: &Map<String, Value>, present: &Map<String, Value>) -> bool {
    backup.iter().all(|(k, v)| v.as_str() == Some(REDACTED) || present.get(k).is_some_and(|p| same_value(v, p)))
}

/// Equal but for redaction: a backup value that is the marker equals any present value, one that
/// holds the marker in its text (a token cut out of a command or a note) equals a present text
/// that has something in its place, at any depth of a JSON value.
pub(super) fn same_value(backup: &Value, present: &Value) -> bool {
    match (backup, present) {
        (Value::String(b), _) if b == REDACTED => true,
        (Value::String(b), Value::String(p)) if b.contains(REDACTED) => same_text(b, p),
        (Value::Object(b), Value::Object(p)) => {
            b.len() == p.len() && b.iter().all(|(k, v)| p.get(k).is_some_and(|pv| same_value(v, pv)))
        }
        (Value::Array(b), Value::Array(p)) => b.len() == p.len() && b.iter().zip(p).all(|(b, p)| same_value(b, p)),
        // The database hands back a JSON column's text when it does not parse as JSON.
        (Value::Object(_) | Value::Array(_), Value::String(p)) => {
            serde_json::from_str::<Value>(p).is_ok_and(|pv| same_value(backup, &pv))
        }
        _ => backup == present,
    }
}

/// Whether `present` is `backup` with every redaction marker standing for some text (at least one
/// character).
pub(super) fn same_text(backup: &str, present: &str) -> bool {
    let parts: Vec<&str> = backup.split(REDACTED).collect();
    let (Some((first, rest_parts)), Some(last)) = (parts.split_first(), parts.last()) else { return false };
    let Some(middles) = rest_parts.len().checked_sub(1).map(|n| &rest_parts[..n]) else {
        return backup == present;
    };
    let Some(mut rest) = present.strip_prefix(first) else { return false };
    for middle in middles {
        let mut chars = rest.chars();
        if chars.next().is_none() {
            return false;
        }
        // The leftmost match leaves the most text for what follows.
        let tail = chars.as_str();
        match tail.find(middle) {
            Some(at) => rest = &tail[at + middle.len()..],
            None => return false,
        }
    }
    rest.len() > last.len() && rest.ends_with(last)
}

pub(super) fn has_redacted(row: &Map<String, Value>) -> bool {
    row.values().any(|v| v.as_str() == Some(REDACTED) || (v.is_object() && v.to_string().contains(REDACTED)))
}

/// A file whose only differences from the present one are the backup's redaction markers (a key
/// cut out of an agent's notes or an MCP server's arguments): as JSON when both are, else as text.
pub(super) fn same_but_redacted(backup: &[u8], present: &[u8]) -> bool {
    let (Ok(b), Ok(p)) = (std::str::from_utf8(backup), std::str::from_utf8(present)) else { return false };
    if !b.contains(REDACTED) {
        return false;
    }
    match (serde_json::from_str::<Value>(b), serde_json::from_str::<Value>(p)) {
        (Ok(bv), Ok(pv)) => same_value(&bv, &pv),
        _ => same_text(b, p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn a_marker_nested_in_json_or_inside_a_text_is_no_difference() {
        let backup = row(serde_json::json!({"id": "a1", "config": {"model": {"name": "m", "api_key": REDACTED}}}));
        let present = row(serde_json::json!({"id": "a1", "config": {"model": {"name": "m", "api_key": "sk-x"}}}));
        assert!(same_record(&backup, &present));
        let renamed = row(serde_json::json!({"id": "a1", "config": {"model": {"name": "n", "api_key": "sk-x"}}}));
        assert!(!same_record(&backup, &renamed));
        let cmd = format!("curl -u admin:{REDACTED} https://x");
        assert!(same_text(&cmd, "curl -u admin:hunter2 https://x"));
        assert!(!same_text(&cmd, "curl -u admin: https://x"), "a marker stands for some text");
        assert!(!same_text(&cmd, "wget -u admin:hunter2 https://x"));
        let two = format!("{REDACTED} and {REDACTED}");
        assert!(same_text(&two, "k1 and k2"));
        assert!(!same_text(&two, "k1 or k2"));
    }

    #[test]
    fn a_redacted_backup_value_equals_what_is_present() {
        let backup = row(serde_json::json!({"id": "w1", "secret": REDACTED, "url": "https://a"}));
        let present = row(serde_json::json!({"id": "w1", "secret": "whsec_x", "url": "https://a"}));
        assert!(same_record(&backup, &present));
        let moved = row(serde_json::json!({"id": "w1", "secret": "whsec_x", "url": "https://b"}));
        assert!(!same_record(&backup, &moved));
    }
}
