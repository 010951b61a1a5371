//! The syntax of the gateway's config files: JSON with `//` and `/* */` comments and trailing
//! commas, parsed with errors naming the file and line; objects merged key by key.

use std::path::Path;

use serde_json::Value;

use super::{SettingsError, SettingsResult};

pub(super) fn parse_stripped(path: &Path, text: &str) -> SettingsResult<Value> {
    serde_json::from_str(text).map_err(|e| SettingsError::Syntax {
        path: path.to_path_buf(),
        line: e.line(),
        column: e.column(),
        message: without_position(&e),
    })
}

/// serde_json's message without its " at line L column C", which the error states in its own words.
pub(super) fn without_position(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// Merge `over` into `base`: objects merge key by key, recursively; any other value (arrays and
/// `null` included) replaces the one below it.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

pub(super) fn lookup<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.as_object()?.get(*k))
}

/// Blank out comments and trailing commas, byte for byte, so serde_json's line and column still
/// point into the file as written.
pub(super) fn strip_jsonc(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    // The index of the last ',' outside strings and comments that no value has followed yet.
    let mut pending_comma: Option<usize> = None;
    while i < b.len() {
        match b[i] {
            b'"' => {
                pending_comma = None;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = text[i + 2..].find("*/").map(|n| i + 2 + n + 2);
                let Some(end) = end else {
                    // Unterminated: leave it for the parser to report where it starts.
                    break;
                };
                for c in &mut out[i..end] {
                    if *c != b'\n' {
                        *c = b' ';
                    }
                }
                i = end;
            }
            b',' => {
                pending_comma = Some(i);
                i += 1;
            }
            b'}' | b']' => {
                if let Some(c) = pending_comma.take() {
                    out[c] = b' ';
                }
                i += 1;
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                pending_comma = None;
                i += 1;
            }
        }
    }
    // Only ASCII bytes were replaced by ASCII spaces, so the text is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|_| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_merge_key_by_key_and_other_values_replace() {
        let mut base = json!({ "a": { "x": 1, "y": [1, 2, 3], "z": { "deep": true } }, "b": "keep" });
        merge(&mut base, json!({ "a": { "x": 2, "y": [9], "z": { "more": 1 } }, "c": null }));
        assert_eq!(
            base,
            json!({ "a": { "x": 2, "y": [9], "z": { "deep": true, "more": 1 } }, "b": "keep", "c": null })
        );
        // A non-object replaces an object and the other way round.
        let mut base = json!({ "a": { "x": 1 } });
        merge(&mut base, json!({ "a": 5 }));
        assert_eq!(base, json!({ "a": 5 }));
        merge(&mut base, json!({ "a": { "y": 2 } }));
        assert_eq!(base, json!({ "a": { "y": 2 } }));
    }
}
