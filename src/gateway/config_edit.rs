//! Writing one setting into a gateway config file in place (the dashboard's retention form saves
//! `Sophon:Backups:Default:Lifecycle` this way; format-spec/gateway.md §4.1). Every other byte of
//! the file stays as written: comments, key order, indentation, the other sections. Only the value
//! of the key is replaced, or the key is inserted after the last member of its object (with the
//! objects on its path that are missing). The new text is read back with the reader of
//! [`super::settings`] and merged with the other file before anything is written, and the file is
//! replaced atomically (a temporary file beside it, flushed, then renamed over it).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use super::settings::{
    merge, parse_config, Lifecycle, Settings, SettingsError, SettingsResult, LIFECYCLE_KEY, LIFECYCLE_KEYS,
};

/// What [`save_lifecycle`] wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Saved {
    /// The file written.
    pub file: PathBuf,
    /// Whether the file did not exist before.
    pub created: bool,
    /// The value written under `Sophon:Backups:Default:Lifecycle` in that file.
    pub value: Value,
}

/// Write `lifecycle` into the home's config so that the merged settings have exactly it as their
/// `Lifecycle`. The file is [`Settings::lifecycle_file`]: the last file that sets `Lifecycle` (so
/// an environment's override stays the one that decides), else the base file. Its `Lifecycle` is
/// replaced by the keys whose value differs from what the files below it give (keys merge one by
/// one, so the others are inherited): the count asked for, or `0` (`null` for `KeepWithin`) where a
/// file below sets a key the new lifecycle does not want. A lifecycle that keeps nothing is refused
/// ([`Lifecycle::check_keeps_something`]). Saving runs no forget.
pub fn save_lifecycle(settings: &Settings, lifecycle: &Lifecycle) -> SettingsResult<Saved> {
    lifecycle.check_keeps_something()?;
    let target = settings.lifecycle_file();
    let layers = settings.layers();
    let at = layers.iter().position(|(p, _)| *p == target);
    // What the files below the target give.
    let mut below = Value::Object(Map::new());
    for (_, v) in &layers[..at.unwrap_or(0)] {
        merge(&mut below, v.clone());
    }
    let inherited = match lookup(&below, &LIFECYCLE_KEY) {
        Some(v) if !v.is_null() => Lifecycle::deserialize(v).unwrap_or_default(),
        _ => Lifecycle::default(),
    };
    // A count of 0 and an absent one mean the same.
    let norm = |v: Value| if v == 0u32 { Value::Null } else { v };
    let mut value = Map::new();
    for key in LIFECYCLE_KEYS {
        let (want, below) = (norm(lifecycle.value_of(key)), norm(inherited.value_of(key)));
        if want == below {
            // Inherited as wanted: not repeated here.
        } else if want.is_null() {
            value.insert(key.to_string(), if key == "KeepWithin" { Value::Null } else { Value::from(0u32) });
        } else {
            value.insert(key.to_string(), want);
        }
    }
    let value = Value::Object(value);
    let key = LIFECYCLE_KEY.join(":");
    let edit_err = |message: String| SettingsError::Edit { path: target.clone(), key: key.clone(), message };

    let (old, created) = match std::fs::read_to_string(&target) {
        Ok(t) => (Some(t), false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, true),
        Err(source) => return Err(SettingsError::Read { path: target.clone(), source }),
    };
    let text = match &old {
        Some(t) => set_value(t, &LIFECYCLE_KEY, &value).map_err(edit_err)?,
        None => {
            let doc = nest(&LIFECYCLE_KEY, value.clone());
            format!("{}\n", serde_json::to_string_pretty(&doc).map_err(|e| edit_err(e.to_string()))?)
        }
    };

    // Read back as the settings reader will, merged with the other file: it must give what was asked.
    let parsed = parse_config(&target, &text)?;
    let mut merged = Value::Object(Map::new());
    match at {
        Some(i) => {
            for (j, (_, v)) in layers.iter().enumerate() {
                merge(&mut merged, if i == j { parsed.clone() } else { v.clone() });
            }
        }
        None => {
            merge(&mut merged, parsed.clone());
            for (_, v) in layers {
                merge(&mut merged, v.clone());
            }
        }
    }
    let got = match lookup(&merged, &LIFECYCLE_KEY) {
        Some(v) => Lifecycle::deserialize(v).map_err(|e| edit_err(e.to_string()))?,
        None => Lifecycle::default(),
    };
    if got.policy() != lifecycle.policy() {
        let message = format!(
            "the merged config would keep {} instead of {} (another file overrides it)",
            got.policy().describe(),
            lifecycle.policy().describe()
        );
        return Err(edit_err(message));
    }
    write_atomically(&target, text.as_bytes())
        .map_err(|source| SettingsError::Write { path: target.clone(), source })?;
    Ok(Saved { file: target, created, value })
}

fn lookup<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.as_object()?.get(*k))
}

/// `{path[0]: {path[1]: … value}}`.
fn nest(path: &[&str], value: Value) -> Value {
    path.iter().rev().fold(value, |v, k| {
        let mut m = Map::new();
        m.insert(k.to_string(), v);
        Value::Object(m)
    })
}

/// Replace `path`'s file by `bytes`: a temporary file in the same folder (with the old file's
/// permissions), flushed to disk, renamed over it, and the folder flushed. A symlink is followed:
/// its target is replaced.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let path = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| std::io::Error::other(e.to_string()))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(suffix)));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Ok(meta) = std::fs::metadata(&path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A member of an object in the text: where its key and value are.
#[derive(Debug)]
struct Member {
    key: String,
    key_start: usize,
    value_start: usize,
    value_end: usize,
}

/// An object in the text: its braces and members.
#[derive(Debug)]
struct Object {
    open: usize,
    close: usize,
    members: Vec<Member>,
}

/// A JSON text with comments and trailing commas (the syntax of format-spec/gateway.md §4.1),
/// read only as far as finding where values are.
struct Doc<'a> {
    t: &'a str,
    b: &'a [u8],
}

impl Doc<'_> {
    /// The first byte at or after `i` that is not whitespace or inside a comment.
    fn skip(&self, mut i: usize) -> usize {
        let b = self.b;
        loop {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            if b[i..].starts_with(b"//") {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else if b[i..].starts_with(b"/*") {
                match self.t[i + 2..].find("*/") {
                    Some(n) => i += 2 + n + 2,
                    None => return b.len(),
                }
            } else {
                return i;
            }
        }
    }

    /// The end of the string starting at `i` (just after its closing quote).
    fn string_end(&self, i: usize) -> Result<usize, String> {
        let mut j = i + 1;
        while j < self.b.len() {
            match self.b[j] {
                b'\\' => j += 2,
                b'"' => return Ok(j + 1),
                _ => j += 1,
            }
        }
        Err(format!("a string at byte {i} does not end"))
    }

    /// The end of the value starting at `i`.
    fn value_end(&self, i: usize) -> Result<usize, String> {
        let b = self.b;
        match b.get(i) {
            None => Err("a value is missing at the end of the file".into()),
            Some(b'"') => self.string_end(i),
            Some(b'{' | b'[') => {
                let mut depth = 0usize;
                let mut j = i;
                while j < b.len() {
                    match b[j] {
                        b'"' => {
                            j = self.string_end(j)?;
                            continue;
                        }
                        b'/' if matches!(b.get(j + 1), Some(b'/' | b'*')) => {
                            j = self.skip(j);
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Ok(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                Err(format!("the object or array at byte {i} does not end"))
            }
            Some(_) => {
                let mut j = i;
                while j < b.len()
                    && !b[j].is_ascii_whitespace()
                    && !matches!(b[j], b',' | b'}' | b']')
                    && !b[j..].starts_with(b"//")
                    && !b[j..].starts_with(b"/*")
                {
                    j += 1;
                }
                if j == i {
                    Err(format!("a value is missing at byte {i}"))
                } else {
                    Ok(j)
                }
            }
        }
    }

    /// The object whose `{` is at `open`.
    fn object(&self, open: usize) -> Result<Object, String> {
        let b = self.b;
        let mut members = Vec::new();
        let mut i = self.skip(open + 1);
        loop {
            match b.get(i) {
                Some(b'}') => return Ok(Object { open, close: i, members }),
                Some(b'"') => {}
                _ => return Err(format!("a key or '}}' expected at byte {i}")),
            }
            let key_end = self.string_end(i)?;
            let key: String = serde_json::from_str(&self.t[i..key_end]).map_err(|e| e.to_string())?;
            let colon = self.skip(key_end);
            if b.get(colon) != Some(&b':') {
                return Err(format!("':' expected after the key {key:?}"));
            }
            let value_start = self.skip(colon + 1);
            let value_end = self.value_end(value_start)?;
            members.push(Member { key, key_start: i, value_start, value_end });
            i = self.skip(value_end);
            match b.get(i) {
                Some(b',') => i = self.skip(i + 1),
                Some(b'}') => {}
                _ => return Err(format!("',' or '}}' expected at byte {i}")),
            }
        }
    }

    /// The whitespace that starts the line holding byte `i`.
    fn indent_at(&self, i: usize) -> &str {
        let start = self.t[..i].rfind('\n').map_or(0, |n| n + 1);
        let line = &self.t[start..];
        &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
    }

    /// Whether only whitespace precedes byte `i` on its line.
    fn starts_line(&self, i: usize) -> bool {
        let start = self.t[..i].rfind('\n').map_or(0, |n| n + 1);
        self.t[start..i].trim().is_empty()
    }

    /// One level of indentation as the file writes it (two spaces when it has none).
    fn unit(&self) -> String {
        let mut best: Option<&str> = None;
        for line in self.t.lines() {
            let ws = &line[..line.len() - line.trim_start_matches([' ', '\t']).len()];
            if ws.is_empty() || ws.len() == line.len() {
                continue;
            }
            if ws.starts_with('\t') {
                return "\t".into();
            }
            if best.is_none_or(|b| ws.len() < b.len()) {
                best = Some(ws);
            }
        }
        best.map_or_else(|| "  ".to_string(), |b| b[..b.len().min(8)].to_string())
    }
}

/// `value` as text: pretty over lines at `indent` (the first line not indented), or on one line.
fn render(value: &Value, indent: &str, unit: &str, multiline: bool) -> String {
    if !multiline {
        return inline(value);
    }
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(unit.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(value, &mut ser).expect("a JSON value serializes");
    let text = String::from_utf8(out).expect("serde_json writes UTF-8");
    text.replace('\n', &format!("\n{indent}"))
}

/// `{ "a": 1, "b": { "c": 2 } }`.
fn inline(value: &Value) -> String {
    match value {
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Object(m) => {
            let parts: Vec<String> =
                m.iter().map(|(k, v)| format!("{}: {}", Value::from(k.as_str()), inline(v))).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// `text` with the value at `path` (a path of object keys) set to `value`, every other byte kept.
/// Objects missing on the path are created; a key on the path that holds something other than an
/// object (or `null`) is an error, never overwritten.
pub fn set_value(text: &str, path: &[&str], value: &Value) -> Result<String, String> {
    let doc = Doc { t: text, b: text.as_bytes() };
    let unit = doc.unit();
    let start = if text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
    let mut open = doc.skip(start);
    if doc.b.get(open) != Some(&b'{') {
        return Err("the top level is not an object".into());
    }
    for (depth, key) in path.iter().enumerate() {
        let obj = doc.object(open)?;
        let multiline = text[obj.open..obj.close].contains('\n');
        let rest = &path[depth + 1..];
        // As the JSON reader does, the last of two equal keys counts.
        match obj.members.iter().rev().find(|m| m.key == *key) {
            Some(m) if !rest.is_empty() && doc.b[m.value_start] == b'{' => open = m.value_start,
            Some(m) if rest.is_empty() || &text[m.value_start..m.value_end] == "null" => {
                let new = render(&nest(rest, value.clone()), doc.indent_at(m.key_start), &unit, multiline);
                return Ok(format!("{}{new}{}", &text[..m.value_start], &text[m.value_end..]));
            }
            Some(m) => {
                return Err(format!(
                    "{} holds {} where an object is expected",
                    path[..=depth].join(":"),
                    &text[m.value_start..m.value_end]
                ))
            }
            None => return Ok(insert_member(&doc, &obj, key, &nest(rest, value.clone()), &unit, multiline)),
        }
    }
    Err("an empty key path".into())
}

/// `text` with `"key": value` added as the last member of `obj`.
fn insert_member(doc: &Doc<'_>, obj: &Object, key: &str, value: &Value, unit: &str, multiline: bool) -> String {
    let t = doc.t;
    let key = Value::from(key).to_string();
    let splice = |edits: &[(usize, &str)]| {
        let mut out = String::with_capacity(t.len() + 256);
        let mut at = 0;
        for (i, s) in edits {
            out.push_str(&t[at..*i]);
            out.push_str(s);
            at = *i;
        }
        out.push_str(&t[at..]);
        out
    };
    let Some(last) = obj.members.last() else {
        if multiline {
            let indent = format!("{}{unit}", doc.indent_at(obj.close));
            let member = format!("\n{indent}{key}: {}", render(value, &indent, unit, true));
            return splice(&[(obj.open + 1, &member)]);
        }
        let member = format!(" {key}: {} ", inline(value));
        return splice(&[(obj.open + 1, &member)]);
    };
    if multiline && doc.starts_line(last.key_start) {
        // After the last member's line when that line holds nothing else but a comma and a comment.
        let b = doc.b;
        let line_end = t[last.value_end..].find('\n').map_or(t.len(), |n| last.value_end + n);
        let mut k = last.value_end;
        while k < line_end && matches!(b[k], b' ' | b'\t' | b'\r') {
            k += 1;
        }
        let comma = k < line_end && b[k] == b',';
        if comma {
            k += 1;
            while k < line_end && matches!(b[k], b' ' | b'\t' | b'\r') {
                k += 1;
            }
        }
        if t[k..].starts_with("//") {
            k = line_end;
        }
        if k == line_end && line_end < obj.close {
            let indent = doc.indent_at(last.key_start);
            let member = format!("\n{indent}{key}: {}", render(value, indent, unit, true));
            return if comma {
                splice(&[(line_end, &member)])
            } else {
                splice(&[(last.value_end, ","), (line_end, &member)])
            };
        }
    }
    let member = format!(", {key}: {}", inline(value));
    splice(&[(last.value_end, &member)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::settings::{BASE_FILE, CONFIG_DIR};
    use serde_json::json;

    fn set(text: &str, v: Value) -> String {
        let out = set_value(text, &LIFECYCLE_KEY, &v).unwrap();
        // Whatever the edit, the file still reads as config, with the value in place.
        let parsed = parse_config(Path::new("t.json"), &out).unwrap_or_else(|e| panic!("{e}\n{out}"));
        assert_eq!(lookup(&parsed, &LIFECYCLE_KEY), Some(&v), "{out}");
        out
    }

    #[test]
    fn an_existing_value_is_replaced_and_every_other_byte_kept() {
        let text = "{\n  // ops: keep a year\n  \"Logging\": { \"Level\": \"Info\" },\n  \"Sophon\": {\n    \"Backups\": {\n      \"Default\": {\n        \"Schedule\": \"0 3 * * *\", /* nightly */\n        \"Lifecycle\": {\n          \"KeepYearly\": 7\n        }\n      }\n    }\n  },\n}\n";
        let out = set(text, json!({ "KeepDaily": 14, "KeepWeekly": 4 }));
        assert_eq!(
            out,
            "{\n  // ops: keep a year\n  \"Logging\": { \"Level\": \"Info\" },\n  \"Sophon\": {\n    \"Backups\": {\n      \"Default\": {\n        \"Schedule\": \"0 3 * * *\", /* nightly */\n        \"Lifecycle\": {\n          \"KeepDaily\": 14,\n          \"KeepWeekly\": 4\n        }\n      }\n    }\n  },\n}\n"
        );
    }

    #[test]
    fn a_missing_key_is_added_after_the_last_member_with_the_files_indentation() {
        let text = "{\n    \"Sophon\": {\n        \"Backups\": {\n            \"Default\": {\n                \"Format\": \"zip\" // archives\n            }\n        }\n    }\n}\n";
        let out = set(text, json!({ "KeepDaily": 7 }));
        assert_eq!(
            out,
            "{\n    \"Sophon\": {\n        \"Backups\": {\n            \"Default\": {\n                \"Format\": \"zip\", // archives\n                \"Lifecycle\": {\n                    \"KeepDaily\": 7\n                }\n            }\n        }\n    }\n}\n"
        );
        // A trailing comma already there is used.
        let text = "{\n  \"Sophon\": {\n    \"Other\": 1,\n  }\n}";
        let out = set(text, json!({ "KeepLast": 3 }));
        assert_eq!(
            out,
            "{\n  \"Sophon\": {\n    \"Other\": 1,\n    \"Backups\": {\n      \"Default\": {\n        \"Lifecycle\": {\n          \"KeepLast\": 3\n        }\n      }\n    }\n  }\n}"
        );
    }

    #[test]
    fn one_line_files_empty_objects_and_nulls() {
        let out = set(
            r#"{ "Sophon": { "Backups": { "Default": { "Lifecycle": { "KeepDaily": 1 } } } } }"#,
            json!({ "KeepDaily": 2 }),
        );
        assert_eq!(out, r#"{ "Sophon": { "Backups": { "Default": { "Lifecycle": { "KeepDaily": 2 } } } } }"#);
        let out = set(r#"{"A": true}"#, json!({ "KeepDaily": 2 }));
        assert_eq!(out, r#"{"A": true, "Sophon": { "Backups": { "Default": { "Lifecycle": { "KeepDaily": 2 } } } }}"#);
        let out = set("{}", json!({ "KeepDaily": 2 }));
        assert_eq!(out, r#"{ "Sophon": { "Backups": { "Default": { "Lifecycle": { "KeepDaily": 2 } } } } }"#);
        let out = set("\u{feff}{\n  \"Sophon\": null\n}\n", json!({ "KeepDaily": 2 }));
        assert!(out.starts_with('\u{feff}'), "{out}");
        let e = set_value(r#"{ "Sophon": { "Backups": 5 } }"#, &LIFECYCLE_KEY, &json!({})).unwrap_err();
        assert!(e.contains("Sophon:Backups holds 5"), "{e}");
        assert!(set_value("[1]", &LIFECYCLE_KEY, &json!({})).is_err());
        // Strings holding braces, comment markers and escaped quotes do not confuse the scan.
        let text = "{ \"X\": \"}{//\\\"/*\", \"Sophon\": { \"Y\": [\"]\", {\"}\": 1}] } }";
        let out = set(text, json!({ "KeepDaily": 2 }));
        assert!(
            out.starts_with("{ \"X\": \"}{//\\\"/*\", \"Sophon\": { \"Y\": [\"]\", {\"}\": 1}], \"Backups\""),
            "{out}"
        );
    }

    fn home_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join(CONFIG_DIR)).unwrap();
        for (name, text) in files {
            std::fs::write(t.path().join(CONFIG_DIR).join(name), text).unwrap();
        }
        t
    }

    #[test]
    fn saving_writes_the_file_that_decides_and_masks_what_the_base_would_add() {
        let base = r#"{ "Sophon": { "Backups": { "Default": { "Lifecycle": { "KeepDaily": 7, "KeepWeekly": 4, "KeepMonthly": 12 } } } } }"#;
        let prod = "{\n  \"Sophon\": {\n    \"Backups\": {\n      \"Default\": {\n        \"Lifecycle\": {\n          \"KeepYearly\": 7\n        }\n      }\n    }\n  }\n}\n";
        let t = home_with(&[(BASE_FILE, base), ("appsettings.Production.json", prod)]);
        let s = Settings::load_for(t.path(), "Production").unwrap();
        assert_eq!(s.lifecycle_file(), t.path().join("config/appsettings.Production.json"));
        let want = Lifecycle::from_json(&json!({ "KeepDaily": 14, "KeepYearly": "2" })).unwrap();
        let saved = save_lifecycle(&s, &want).unwrap();
        assert_eq!(saved.value, json!({ "KeepDaily": 14, "KeepWeekly": 0, "KeepMonthly": 0, "KeepYearly": 2 }));
        assert!(!saved.created);
        let again = Settings::load_for(t.path(), "Production").unwrap();
        assert_eq!(again.lifecycle(), Some(want.policy()));
        assert_eq!(std::fs::read_to_string(t.path().join("config/appsettings.json")).unwrap(), base, "base untouched");
        // What the base gives already is not repeated in the override.
        let s = Settings::load_for(t.path(), "Production").unwrap();
        let want =
            Lifecycle::from_json(&json!({ "KeepDaily": 7, "KeepWeekly": 4, "KeepMonthly": 12, "KeepYearly": 3 }))
                .unwrap();
        assert_eq!(save_lifecycle(&s, &want).unwrap().value, json!({ "KeepYearly": 3 }));
        assert_eq!(Settings::load_for(t.path(), "Production").unwrap().lifecycle(), Some(want.policy()));

        // No file sets it: the base file, created when missing.
        let t = home_with(&[]);
        let s = Settings::load_for(t.path(), "Production").unwrap();
        let saved = save_lifecycle(&s, &want).unwrap();
        assert!(saved.created);
        assert_eq!(saved.file, t.path().join("config/appsettings.json"));
        assert_eq!(Settings::load_for(t.path(), "Production").unwrap().lifecycle(), Some(want.policy()));

        // Nothing kept: refused, nothing written.
        let e = save_lifecycle(&s, &Lifecycle::default()).unwrap_err().to_string();
        assert!(e.contains("keeps nothing"), "{e}");
    }

    #[test]
    fn lifecycle_values_are_checked_naming_the_key() {
        let e = Lifecycle::from_json(&json!({ "KeepDaily": -1 })).unwrap_err().to_string();
        assert!(e.starts_with("Sophon:Backups:Default:Lifecycle:KeepDaily: -1 is not a count"), "{e}");
        let e = Lifecycle::from_json(&json!({ "KeepWithin": "3x" })).unwrap_err().to_string();
        assert!(e.starts_with("Sophon:Backups:Default:Lifecycle:KeepWithin: "), "{e}");
        let e = Lifecycle::from_json(&json!({ "Daily": 1 })).unwrap_err().to_string();
        assert!(e.contains(":Daily: not a lifecycle key"), "{e}");
        let l = Lifecycle::from_json(&json!({ "KeepDaily": "7", "KeepWeekly": null, "KeepWithin": "1y" })).unwrap();
        assert_eq!((l.keep_daily, l.keep_weekly, l.keep_within.map(|w| w.years)), (Some(7), None, Some(1)));
    }
}
