//! Secret redaction: nothing secret leaves in a backup in plain form.
//!
//! Two layers. The per-category rules (the dump code) name the fields that are secrets by design:
//! webhook signing secrets, connection tokens, channel tokens, MCP tokens, node pairing secrets.
//! Behind them, [`redact_json`] scans every value of every JSON document the backup writes and
//! replaces anything secret-shaped: values under secret-sounding keys, values that look like
//! well-known credentials, and connection strings or URLs that carry a password. A redacted value
//! becomes [`REDACTED`], which restore recognises: it keeps the value already present, or marks the
//! field as needing re-configuration.

use serde_json::Value;

/// What a secret is replaced by. Restore treats exactly this string as "needs re-configuration".
pub const REDACTED: &str = "<redacted by sophon backup: re-configure after restore>";

/// Key names (lowercased, with `_`, `-`, `.` and `:` removed) that hold secrets, matched as substrings.
const SECRET_KEY_PARTS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "apikey",
    "accesskey",
    "privatekey",
    "signingkey",
    "encryptionkey",
    "credential",
    "authorization",
    "bearer",
    "cookie",
    "sessionkey",
    "connectionstring",
    "totp",
    "licensekey",
    "webhookurl",
];

/// Exact key names that are secrets but too short to match as substrings safely.
const SECRET_KEYS_EXACT: &[&str] = &["pwd", "pass", "auth", "key", "sas", "dsn", "otp", "pin"];

/// Prefixes of well-known credential formats.
const SECRET_PREFIXES: &[&str] = &[
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "pk_live_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxs-",
    "xapp-",
    "whsec_",
    "AIza",
    "ya29.",
    "AKIA",
    "ASIA",
    "hf_",
    "npm_",
    "pypi-",
    "shpat_",
    "SG.",
    "-----BEGIN",
];

/// The first bytes of [`SECRET_PREFIXES`]: one comparison rules out most words.
const PREFIX_FIRST_BYTES: &[u8] = b"sSrpgxwAyhn-";

fn normalise_key(key: &str) -> String {
    if key.is_ascii() {
        let kept = key.bytes().filter(|b| !matches!(b, b'_' | b'-' | b'.' | b':' | b' '));
        return kept.map(|b| char::from(b.to_ascii_lowercase())).collect();
    }
    key.chars().filter(|c| !matches!(c, '_' | '-' | '.' | ':' | ' ')).flat_map(char::to_lowercase).collect()
}

/// True for a key whose value is a secret by its name.
pub fn is_secret_key(key: &str) -> bool {
    let k = normalise_key(key);
    // Public halves and references are not secrets; nor are password hashes, which the product page
    // puts in every backup (users could not sign in after a restore without them).
    if k.ends_with("hash")
        || k.ends_with("publickey")
        || k.ends_with("tokenurl")
        || k.ends_with("tokenendpoint")
        || k == "tokentype"
    {
        return false;
    }
    // "token" names a credential, "tokens" a count (LLM usage): `prompt_tokens` stays.
    let token = k.contains("token") && !k.contains("tokens");
    token || SECRET_KEYS_EXACT.contains(&k.as_str()) || SECRET_KEY_PARTS.iter().any(|p| k.contains(p))
}

/// True for a value that looks like a credential whatever its key.
pub fn is_secret_value(v: &str) -> bool {
    let t = v.trim();
    // The shortest credential recognised is a prefix plus 8 characters; most prose words are shorter.
    if t.len() < 10 {
        return false;
    }
    if PREFIX_FIRST_BYTES.contains(&t.as_bytes()[0])
        && SECRET_PREFIXES.iter().any(|p| t.starts_with(p) && t.len() >= p.len() + 8)
    {
        return true;
    }
    // A JSON Web Token: three base64url parts, the first two starting with `eyJ`.
    if t.starts_with("eyJ") && t.matches('.').count() == 2 && t.len() > 30 {
        return true;
    }
    has_embedded_credentials(t)
}

/// Connection strings (`…;Password=…;`) and URLs with a password (`scheme://user:pass@host`).
fn has_embedded_credentials(v: &str) -> bool {
    if memchr::memchr2(b'=', b'@', v.as_bytes()).is_none() {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    for part in lower.split(';') {
        if let Some((k, val)) = part.split_once('=') {
            let k = normalise_key(k);
            if !val.trim().is_empty()
                && matches!(
                    k.as_str(),
                    "password"
                        | "pwd"
                        | "accountkey"
                        | "sharedaccesskey"
                        | "sharedaccesssignature"
                        | "secret"
                        | "apikey"
                )
            {
                return true;
            }
        }
    }
    if let Some((_, rest)) = v.split_once("://") {
        if let Some((userinfo, _)) = rest.split_once('@') {
            if !userinfo.contains('/') && userinfo.split_once(':').is_some_and(|(_, p)| !p.is_empty()) {
                return true;
            }
        }
    }
    // Query-string credentials in URLs.
    ["?key=", "&key=", "?token=", "&token=", "?sig=", "&sig=", "access_token=", "api_key=", "apikey="]
        .iter()
        .any(|p| lower.contains(p))
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

/// Redacts many documents with the same keys (the rows of a table) and remembers its verdict on
/// each key name, which [`is_secret_key`] would otherwise work out again for every row.
#[derive(Default)]
pub struct Redactor {
    keys: std::collections::HashMap<String, bool>,
}

impl Redactor {
    pub fn redact_json(&mut self, value: &mut Value, path: &str, redacted: &mut Vec<String>) {
        walk(value, &mut String::new(), false, path, redacted, &mut self.keys);
    }
}

fn walk(
    value: &mut Value,
    pointer: &mut String,
    under_secret_key: bool,
    path: &str,
    redacted: &mut Vec<String>,
    keys: &mut std::collections::HashMap<String, bool>,
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&k.replace('~', "~0").replace('/', "~1"));
                let secret = match keys.get(k.as_str()) {
                    Some(&s) => s,
                    None => {
                        let s = is_secret_key(k);
                        keys.insert(k.clone(), s);
                        s
                    }
                };
                walk(v, pointer, under_secret_key || secret, path, redacted, keys);
                pointer.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let len = pointer.len();
                pointer.push('/');
                pointer.push_str(&i.to_string());
                walk(v, pointer, under_secret_key, path, redacted, keys);
                pointer.truncate(len);
            }
        }
        Value::String(s) => {
            if let Some(r) = redact_str(s, under_secret_key) {
                *s = r;
                redacted.push(format!("{path}#{pointer}"));
            }
        }
        Value::Number(_) if under_secret_key => {
            *value = Value::String(REDACTED.to_string());
            redacted.push(format!("{path}#{pointer}"));
        }
        _ => {}
    }
}

/// What one string value becomes in a backup: `None` when it stays as it is. Under a secret key a
/// literal is replaced whole (a reference such as `{{secrets.X}}` stays); anywhere, a value shaped
/// like a credential is replaced whole and a credential inside prose is replaced word by word.
pub fn redact_str(s: &str, under_secret_key: bool) -> Option<String> {
    if s == REDACTED || s.is_empty() {
        return None;
    }
    if (under_secret_key && !is_reference(s)) || is_secret_value(s) {
        return Some(REDACTED.to_string());
    }
    redact_text(s)
}

/// Redact one line of free text (logs, memory entries): secret-shaped words are replaced.
pub fn redact_text(text: &str) -> Option<String> {
    // The word after an authorization scheme (`Bearer x`, `Basic x`) or after a secret-named
    // flag (`--password x`) is a secret whatever its shape. Nothing is allocated unless a secret is
    // found, and most words are decided by their length alone: this runs over every string of a
    // backup (hundreds of megabytes for a large gateway).
    let mut out: Option<String> = None;
    let mut next_is_secret = false;
    let mut copied = 0;
    let mut start = 0;
    let bytes = text.as_bytes();
    // Words are split at ASCII spaces, so every cut is a char boundary.
    let ends = memchr::memchr_iter(b' ', bytes).chain(std::iter::once(bytes.len()));
    for end in ends {
        let w = text.get(start..end).unwrap_or_default();
        let word_start = start;
        start = end + 1;
        let kv = w.len() > 4 && memchr::memchr2(b'=', b':', w.as_bytes()).is_some();
        // A word can only hold a credential if it follows `Bearer`/`Basic`/a secret flag, is long
        // enough to carry a known prefix, or is `name=value`/`name:value`.
        let candidate = next_is_secret || w.len() >= 10 || kv;
        // Shorter than `Basic`, it is neither a candidate nor does it make the next word one.
        if !candidate && w.len() < 5 {
            next_is_secret = false;
            continue;
        }
        let word = w.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | '(' | ')' | '[' | ']' | '\n' | '\t'));
        let secret = candidate
            && !word.is_empty()
            && word != REDACTED
            && !is_reference(word)
            && (next_is_secret || is_secret_value(word) || (kv && key_value_secret(word)));
        next_is_secret = word.eq_ignore_ascii_case("bearer")
            || word.eq_ignore_ascii_case("basic")
            || (word.starts_with("--") && word.len() > 4 && is_secret_key(word.trim_start_matches('-')));
        if secret {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..word_start]);
            o.push_str(&w.replace(word, REDACTED));
            copied = word_start + w.len();
        }
    }
    out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    })
}

/// `name=value` or `name:value` where the name is a secret's.
fn key_value_secret(word: &str) -> bool {
    // Secret names have at least three characters and a letter (`12:30` is a time, not a name).
    word.len() > 4
        && word.split_once(['=', ':']).is_some_and(|(k, v)| {
            !v.is_empty() && k.len() >= 3 && k.bytes().any(|b| b.is_ascii_alphabetic()) && is_secret_key(k)
        })
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
    fn the_first_byte_filter_covers_every_prefix() {
        for p in SECRET_PREFIXES {
            assert!(PREFIX_FIRST_BYTES.contains(&p.as_bytes()[0]), "{p}");
        }
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
