//! Secret redaction: nothing that grants access leaves in a backup in plain form, and nothing else
//! is hidden.
//!
//! Two layers. The per-category rules (the dump code) name the fields that are secrets by design:
//! webhook signing secrets, connection tokens, channel tokens, node pairing secrets. Behind them,
//! [`redact_json`] scans every value of every JSON document the backup writes: a value under a key
//! whose name says it is a credential ([`keys`], decided on whole words: `token` but not
//! `FtsTokenizer`, `password` but not `PasswordHashing`) is replaced whole; in any other value,
//! only the spans shaped like a credential ([`text`]) are replaced, so the rest of a log message, a
//! command line or a connection string survives. A redacted span becomes [`REDACTED`], which
//! restore recognises: it keeps the value already present, or leaves the setting out and lists it.

mod keys;
mod text;

use serde_json::Value;

pub use keys::is_secret_key;
pub use text::secret_spans;

/// What a secret is replaced by. Restore treats a value holding this string as "needs re-configuration".
pub const REDACTED: &str = "<redacted by sophon backup: re-configure after restore>";

/// True for a value that is a credential as a whole, whatever its key.
pub fn is_secret_value(v: &str) -> bool {
    let t = v.trim();
    let spans = secret_spans(t);
    spans.len() == 1 && spans[0] == (0..t.len())
}

/// A value that only refers to a secret kept elsewhere (`Bearer {{secrets.CRM_TOKEN}}`,
/// `${GITHUB_TOKEN}`): what is left outside the template markers holds no credential.
fn is_reference(v: &str) -> bool {
    // Almost no value has a brace: decide those with one byte scan.
    if !v.as_bytes().contains(&b'{') {
        return false;
    }
    let mut rest = String::new();
    let mut found = false;
    let mut s = v;
    loop {
        let open = [s.find("{{"), s.find("${")].into_iter().flatten().min();
        let Some(i) = open else {
            rest.push_str(s);
            break;
        };
        let close = if s[i..].starts_with("{{") { "}}" } else { "}" };
        let Some(j) = s[i..].find(close) else {
            rest.push_str(s);
            break;
        };
        found = true;
        rest.push_str(&s[..i]);
        s = &s[i + j + close.len()..];
    }
    found && rest.split_whitespace().all(|w| w.len() < 8 || !w.chars().any(|c| c.is_ascii_digit()))
}

/// Replace every secret in `value`; `path` is where the document sits (for the report), and every
/// redacted location is pushed onto `redacted` as `path#json/pointer`.
pub fn redact_json(value: &mut Value, path: &str, redacted: &mut Vec<String>) {
    Redactor::default().redact_json(value, path, redacted);
}

/// What the name of a key says about its value.
#[derive(Clone, Copy, Default)]
struct KeyVerdict {
    /// Its scalar values are secrets.
    secret: bool,
    /// The keys of an object under it are secrets unless they describe.
    inherits: bool,
    /// Under a secret section, still not a secret (`Username`, `Region`).
    descriptor: bool,
    /// A number under it is a secret too.
    numbers: bool,
}

/// Redacts many documents with the same keys (the rows of a table) and remembers its verdict on
/// each key name, which would otherwise be worked out again for every row.
#[derive(Default)]
pub struct Redactor {
    keys: std::collections::HashMap<String, KeyVerdict>,
}

#[derive(Clone, Copy, Default)]
struct Ctx {
    secret: bool,
    inherits: bool,
    numbers: bool,
}

impl Redactor {
    pub fn redact_json(&mut self, value: &mut Value, path: &str, redacted: &mut Vec<String>) {
        self.walk(value, &mut String::new(), Ctx::default(), path, redacted);
    }

    fn verdict(&mut self, k: &str) -> KeyVerdict {
        if let Some(v) = self.keys.get(k) {
            return *v;
        }
        let v = KeyVerdict {
            secret: keys::is_secret_key(k),
            inherits: keys::inherits(k),
            descriptor: keys::is_descriptor(k),
            numbers: keys::numbers_secret(k),
        };
        self.keys.insert(k.to_string(), v);
        v
    }

    fn walk(&mut self, value: &mut Value, pointer: &mut String, ctx: Ctx, path: &str, redacted: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    let kv = self.verdict(k);
                    let inherited = ctx.inherits && !kv.descriptor;
                    let child = Ctx {
                        secret: kv.secret || inherited,
                        inherits: kv.inherits || inherited,
                        numbers: kv.numbers || inherited,
                    };
                    self.walk(v, pointer, child, path, redacted);
                    pointer.truncate(len);
                }
            }
            Value::Array(items) => {
                let mut flag: Option<String> = None;
                for (i, v) in items.iter_mut().enumerate() {
                    let len = pointer.len();
                    pointer.push('/');
                    pointer.push_str(&i.to_string());
                    // `["--token", "VALUE"]`: the flag decides the next argument.
                    let after_flag = match (flag.take(), v.as_str()) {
                        (Some(f), Some(s)) if s != REDACTED && !is_reference(s) => text::flag_value_span(&f, s),
                        _ => None,
                    };
                    if let (Some(span), Value::String(s)) = (after_flag, &mut *v) {
                        *s = text::apply(s, &[span]);
                        redacted.push(format!("{path}#{pointer}"));
                    } else {
                        flag = v.as_str().filter(|s| s.starts_with('-')).map(str::to_string);
                        self.walk(v, pointer, ctx, path, redacted);
                    }
                    pointer.truncate(len);
                }
            }
            Value::String(s) => {
                if let Some(r) = redact_str(s, ctx.secret) {
                    *s = r;
                    redacted.push(format!("{path}#{pointer}"));
                }
            }
            Value::Number(_) if ctx.secret && ctx.numbers => {
                *value = Value::String(REDACTED.to_string());
                redacted.push(format!("{path}#{pointer}"));
            }
            _ => {}
        }
    }
}

/// An MCP config (`mcp.json`): a server's `env` is where its credentials go, whatever their names
/// (`"WHATEVER": "…"`), so every variable in it is a secret unless its name describes
/// (`AWS_REGION`, `SLACK_TEAM_ID`, `LOG_LEVEL`, `…_URL`); everything else is decided like any
/// document, headers by their names (`Authorization`, `X-Api-Key`) and values by their shapes.
pub fn redact_mcp_config(v: &mut Value, path: &str, redacted: &mut Vec<String>) {
    for servers_key in ["mcpServers", "servers"] {
        let Some(servers) = v.get_mut(servers_key).and_then(Value::as_object_mut) else { continue };
        for (name, server) in servers.iter_mut() {
            let Some(env) = server.get_mut("env").and_then(Value::as_object_mut) else { continue };
            for (k, val) in env.iter_mut() {
                let literal = val.as_str().is_some_and(|s| !s.is_empty() && s != REDACTED && !is_reference(s));
                if literal && !keys::is_descriptor(k) {
                    *val = Value::String(REDACTED.into());
                    let k = k.replace('~', "~0").replace('/', "~1");
                    redacted.push(format!("{path}#/{servers_key}/{name}/env/{k}"));
                }
            }
        }
    }
    redact_json(v, path, redacted);
}

/// What one string value becomes in a backup: `None` when it stays as it is. Under a secret key a
/// literal is replaced whole (a reference such as `{{secrets.X}}` stays); anywhere else only the
/// spans shaped like a credential are replaced.
pub fn redact_str(s: &str, under_secret_key: bool) -> Option<String> {
    if s == REDACTED || s.is_empty() {
        return None;
    }
    if under_secret_key && !is_reference(s) {
        return Some(REDACTED.to_string());
    }
    redact_text(s)
}

/// Redact free text (logs, memory entries, command lines, whole files): only the secret spans are
/// replaced. `None` when nothing is secret.
pub fn redact_text(text: &str) -> Option<String> {
    let spans = secret_spans(text);
    if spans.is_empty() {
        return None;
    }
    Some(text::apply(text, &spans))
}

/// Redact a whole file's text; also returns the (1-based) lines where a secret started.
pub fn redact_file_text(text: &str) -> Option<(String, Vec<usize>)> {
    let spans = secret_spans(text);
    if spans.is_empty() {
        return None;
    }
    let mut lines: Vec<usize> =
        spans.iter().map(|s| 1 + memchr::memchr_iter(b'\n', &text.as_bytes()[..s.start]).count()).collect();
    lines.dedup();
    Some((text::apply(text, &spans), lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys_values_and_connection_strings_are_redacted() {
        let mut v = json!({
            "Logging": {"Level": "Info"},
            "ConnectionStrings": {"Main": "Server=db;Database=x;User Id=sa;Password=hunter2;"},
            "Sophon": {"Llm": {"ApiKey": "anything-at-all", "Endpoint": "https://api.example.com"},
                       "Smtp": {"Port": 587, "Pass": "p@ss"}},
            "Custom": {"MyOwnSecretThing": 12345, "note": "uses ghp_abcdefghijklmnopqrstuvwxyz0123456789"},
            "Webhook": "https://user:pw@hooks.example.com/x",
            "Token list": ["a", "b"],
            "PublicKey": "ssh-ed25519 AAAA",
            "Jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc",
        });
        let mut report = Vec::new();
        redact_json(&mut v, "config/appsettings.backup.json", &mut report);
        let s = v.to_string();
        for secret in ["hunter2", "anything-at-all", "p@ss", "12345", "ghp_abc", "user:pw", "eyJhbGci"] {
            assert!(!s.contains(secret), "{secret} leaked: {s}");
        }
        assert_eq!(v["Logging"]["Level"], "Info");
        assert_eq!(v["Sophon"]["Llm"]["Endpoint"], "https://api.example.com");
        assert_eq!(v["Sophon"]["Smtp"]["Port"], 587);
        assert_eq!(v["PublicKey"], "ssh-ed25519 AAAA");
        assert_eq!(v["Custom"]["note"], format!("uses {REDACTED}"));
        assert_eq!(v["Token list"][1], REDACTED);
        assert!(report.contains(&"config/appsettings.backup.json#/Sophon/Llm/ApiKey".to_string()));
        // Idempotent: redacting again changes nothing and reports nothing.
        let mut again = Vec::new();
        let before = v.clone();
        redact_json(&mut v, "x", &mut again);
        assert_eq!(v, before);
        assert!(again.is_empty());
    }

    #[test]
    fn secrets_in_words_of_free_text_are_found() {
        for text in ["x \"Bearer\" CANARYabc", "(--password) hunter", "a pwd=x b", "tok: ghp_0123456789abc."] {
            assert!(redact_text(text).is_some(), "{text}");
        }
    }

    #[test]
    fn ordinary_values_survive() {
        for ok in ["hello world", "sk", "https://example.com/path?q=1", "Server=db;Database=x", "token budget exceeded"]
        {
            assert!(!is_secret_value(ok), "{ok}");
        }
        for key in
            ["name", "author", "tokens_used", "prompt_tokens", "keyboard", "TokenUrl", "description", "password_hash"]
        {
            assert!(!is_secret_key(key), "{key}");
        }
        for key in ["auth_token", "refreshToken", "bot-token", "client_secret", "Password", "pairing_secret", "pwd"] {
            assert!(is_secret_key(key), "{key}");
        }
        assert_eq!(redact_text("call with sk-abcdefghijklmnop now").unwrap(), format!("call with {REDACTED} now"));
        assert!(redact_text("nothing to see").is_none());
        let mut refs = json!({"Authorization": "Bearer {{secrets.CRM_TOKEN}}", "token": "${GITHUB_TOKEN}",
                              "password": "{{x}} hunter2secret99"});
        let mut rep = Vec::new();
        redact_json(&mut refs, "t", &mut rep);
        assert_eq!(refs["Authorization"], "Bearer {{secrets.CRM_TOKEN}}", "a reference is not a secret");
        assert_eq!(refs["token"], "${GITHUB_TOKEN}");
        assert_eq!(refs["password"], REDACTED, "a literal beside a reference still is");
        assert!(redact_text("the token limit was hit after 4096 tokens").is_none(), "prose about tokens stays");
        let cmd = "curl -H 'Authorization: Bearer CANARY123abc' --password hunter2 https://x api_key=zzz9";
        let r = redact_text(cmd).unwrap();
        for leaked in ["CANARY123abc", "hunter2", "zzz9"] {
            assert!(!r.contains(leaked), "{leaked} in {r}");
        }
        assert!(r.contains("https://x"));
    }
}
