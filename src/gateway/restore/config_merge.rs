//! Restoring a JSON settings file (gateway config, MCP config, an agent's JSON files) whose secrets
//! the backup redacted: a redacted value never reaches the home. Where the home already has a value
//! at the same place, that live value is kept, with its own type (a number stays a number); where
//! it has none, the setting is left out (an object's key removed, an array's element set to null),
//! so the gateway falls back to its default rather than reading the marker as a value. Every
//! redacted setting is listed for the restore report, by file and JSON pointer.

use serde_json::Value;

use super::BackupSource;
use crate::gateway::category::Category;
use crate::gateway::layout;
use crate::gateway::redact::REDACTED;
use crate::gateway::GatewayResult;

/// Whether a file of `cat` at `home_path` is restored through [`merge`].
pub(super) fn is_settings_file(cat: Category, home_path: &str) -> bool {
    home_path.ends_with(".json") && matches!(cat, Category::Mcp | Category::Config | Category::Agents)
}

fn holds_marker(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.contains(REDACTED))
}

/// Put back, from the present file, every value the backup redacted (same JSON pointer); leave
/// out the ones the present file does not have.
pub(super) fn merge(backup: &mut Value, present: Option<&Value>) {
    match backup {
        Value::Object(m) => {
            let mut absent = Vec::new();
            for (k, v) in m.iter_mut() {
                let p = present.and_then(|p| p.get(k)).filter(|p| !p.is_null());
                if holds_marker(v) {
                    match p {
                        Some(live) => *v = live.clone(),
                        None => absent.push(k.clone()),
                    }
                } else {
                    merge(v, p);
                }
            }
            for k in absent {
                m.remove(&k);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter_mut().enumerate() {
                let p = present.and_then(|p| p.get(i)).filter(|p| !p.is_null());
                if holds_marker(v) {
                    *v = p.cloned().unwrap_or(Value::Null);
                } else {
                    merge(v, p);
                }
            }
        }
        _ => {}
    }
}

/// The redacted settings of `backup` as `file#/json/pointer`, each saying whether the home's live
/// value is kept or the setting must be entered again.
fn list(backup: &Value, present: Option<&Value>, file: &str, pointer: &mut String, out: &mut Vec<String>) {
    let mut visit = |key: String, v: &Value, p: Option<&Value>, out: &mut Vec<String>| {
        let len = pointer.len();
        pointer.push('/');
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        let p = p.filter(|p| !p.is_null());
        if holds_marker(v) {
            let what = if p.is_some() { "live value kept" } else { "left out: enter it again" };
            out.push(format!("{file}#{pointer} ({what})"));
        } else {
            list(v, p, file, pointer, out);
        }
        pointer.truncate(len);
    };
    match backup {
        Value::Object(m) => {
            for (k, v) in m {
                visit(k.clone(), v, present.and_then(|p| p.get(k)), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                visit(i.to_string(), v, present.and_then(|p| p.get(i)), out);
            }
        }
        _ => {}
    }
}

/// Every redacted setting of the settings files of `categories` in `src`, compared with the home.
pub(super) fn settings_to_enter(
    home: &std::path::Path,
    src: &dyn BackupSource,
    categories: &[Category],
) -> GatewayResult<Vec<String>> {
    let mut out = Vec::new();
    for p in src.paths() {
        let Some((cat, rel)) = layout::home_path(&p) else { continue };
        if !categories.contains(&cat) || !is_settings_file(cat, &rel) {
            continue;
        }
        let Some(v) = super::plan::json_file(src, &p).ok().flatten() else { continue };
        // The home's file, unless it is larger than a settings file may be (then it is not read).
        let path = home.join(&rel);
        let small = std::fs::metadata(&path).is_ok_and(|m| m.len() <= crate::format::layout::gateway_part_cap(&p));
        let present: Option<Value> =
            small.then(|| std::fs::read(&path).ok()).flatten().and_then(|b| serde_json::from_slice(&b).ok());
        list(&v, present.as_ref(), &rel, &mut String::new(), &mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn live_values_are_kept_with_their_type_and_missing_ones_left_out() {
        let mut backup = json!({
            "Jwt": {"Issuer": "https://a", "SigningKey": REDACTED, "LifetimeMinutes": 60},
            "Pin": REDACTED,
            "ConnectionStrings": {"Db": format!("Host=x;Password={REDACTED}")},
            "args": ["--token", REDACTED],
        });
        let present =
            json!({"Jwt": {"SigningKey": "live-key", "LifetimeMinutes": 15}, "Pin": 1234, "args": ["--token", "live"]});
        let mut listed = Vec::new();
        list(&backup, Some(&present), "config/appsettings.json", &mut String::new(), &mut listed);
        merge(&mut backup, Some(&present));
        assert_eq!(backup["Jwt"]["SigningKey"], "live-key");
        assert_eq!(backup["Jwt"]["LifetimeMinutes"], 60, "a value the backup holds is the backup's");
        assert_eq!(backup["Pin"], 1234, "the live value keeps its type");
        assert!(backup["ConnectionStrings"].get("Db").is_none(), "no live value: left out");
        assert_eq!(backup["args"][1], "live");
        assert!(!backup.to_string().contains(REDACTED));
        assert!(listed.contains(&"config/appsettings.json#/Jwt/SigningKey (live value kept)".to_string()));
        assert!(
            listed.contains(&"config/appsettings.json#/ConnectionStrings/Db (left out: enter it again)".to_string())
        );
        let mut fresh = json!({"Smtp": {"Password": REDACTED, "Port": 587}});
        merge(&mut fresh, None);
        assert_eq!(fresh, json!({"Smtp": {"Port": 587}}));
    }
}
