//! Where the secrets are in a piece of text: byte ranges of the secret spans only, so the text
//! around them (a log message, a command line, a connection string's host) survives.
//!
//! Shapes recognised: PEM private-key blocks (whole, BEGIN to END), URL userinfo (the password, or
//! a key standing alone in the user part as in a Sentry DSN), `name=value` and `name: value` where
//! the name is a secret's (connection string parts, query parameters, headers such as `X-Auth:`),
//! the word after `Bearer`/`Basic`, after `--token`-like flags and the password of `-u user:pass`,
//! well-known credential prefixes (`sk_live_`, `ghp_`, `xoxb-`, …), JSON Web Tokens, and an AWS
//! secret key (40 characters) in a text that names an `AKIA…` key id.

use std::ops::Range;

use super::keys::is_secret_key;
use super::REDACTED;

/// Prefixes of well-known credential formats.
const SECRET_PREFIXES: &[&str] = &[
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
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
    "xoxe-",
    "xapp-",
    "whsec_",
    "AIza",
    "ya29.",
    "hf_",
    "npm_",
    "pypi-",
    "shpat_",
    "SG.",
    "lin_api_",
    "snp_",
    "ntn_",
    "ATATT",
    "glsa_",
    "dop_v1_",
];

/// PEM labels that are public: certificates and public keys grant nothing.
const PUBLIC_PEM: &[&str] = &["CERTIFICATE", "PUBLIC KEY", "CERTIFICATE REQUEST", "X509 CRL", "PGP PUBLIC KEY BLOCK"];

/// What a word makes of the next one.
#[derive(Clone, Copy, PartialEq)]
enum Next {
    Plain,
    /// After `Bearer`: any token of 8 characters or more.
    Bearer,
    /// After `Basic`: a base64 token.
    Basic,
    /// After `--token`, `--password`: the whole word.
    Whole,
    /// After `-u`/`--user`: the part after the first `:`.
    AfterColon,
    /// After a header name such as `X-Auth:`: the value, past an authorization scheme.
    Header,
    /// After `password:` in prose: a word that looks like a credential.
    Loose,
}

/// The secret spans of `text`, sorted and not overlapping.
pub fn secret_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let markers: Vec<Range<usize>> = text.match_indices(REDACTED).map(|(i, m)| i..i + m.len()).collect();
    pem_blocks(text, &mut spans);
    let aws = text.contains("AKIA") || text.contains("ASIA");
    let mut next = Next::Plain;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let word = start..i;
        if markers.iter().any(|m| m.start < word.end && word.start < m.end)
            || spans.iter().any(|s: &Range<usize>| s.start <= word.start && word.end <= s.end)
        {
            next = Next::Plain;
            continue;
        }
        next = word_spans(text, word, next, aws, &mut spans);
    }
    spans.sort_by_key(|s| s.start);
    let mut out: Vec<Range<usize>> = Vec::with_capacity(spans.len());
    for s in spans {
        if s.is_empty() || text[s.start..].starts_with(REDACTED) {
            continue;
        }
        match out.last_mut() {
            Some(l) if s.start <= l.end => l.end = l.end.max(s.end),
            _ => out.push(s),
        }
    }
    out
}

/// `text` with every span replaced by [`REDACTED`].
pub fn apply(text: &str, spans: &[Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for s in spans {
        out.push_str(&text[copied..s.start]);
        out.push_str(REDACTED);
        copied = s.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The span of the value that follows a command-line flag given as its own argument
/// (`["--token", "VALUE"]`, `["-u", "admin:pass"]`).
pub fn flag_value_span(flag: &str, value: &str) -> Option<Range<usize>> {
    match flag_kind(flag.trim()) {
        Next::Whole if !value.is_empty() && !value.starts_with('-') => Some(0..value.len()),
        Next::AfterColon => value.find(':').map(|c| c + 1..value.len()).filter(|r| !r.is_empty()),
        _ => None,
    }
}

fn flag_kind(w: &str) -> Next {
    match w {
        "-u" | "--user" | "--proxy-user" => Next::AfterColon,
        _ if w.starts_with("--") && w.len() > 4 && is_secret_key(&w[2..]) => Next::Whole,
        _ => Next::Plain,
    }
}

fn is_trim(c: char) -> bool {
    matches!(c, '"' | '\'' | '`' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>')
}

/// The spans of one whitespace-delimited word; returns what it makes of the next word.
fn word_spans(text: &str, word: Range<usize>, prev: Next, aws: bool, spans: &mut Vec<Range<usize>>) -> Next {
    let raw = &text[word.clone()];
    let lead = raw.len() - raw.trim_start_matches(is_trim).len();
    let core_str = raw.trim_matches(is_trim);
    let core_str = core_str.strip_suffix('.').unwrap_or(core_str);
    let core = word.start + lead..word.start + lead + core_str.len();
    if core_str.is_empty() {
        return prev;
    }
    if super::is_reference(raw) || super::is_reference(core_str) {
        return Next::Plain;
    }
    match prev {
        Next::Bearer if tokenish(core_str) => {
            spans.push(core);
            return Next::Plain;
        }
        Next::Basic if core_str.len() >= 8 && looks_base64(core_str) => {
            spans.push(core);
            return Next::Plain;
        }
        Next::Whole if !core_str.starts_with('-') => {
            spans.push(core);
            return Next::Plain;
        }
        Next::AfterColon => {
            if let Some(c) = core_str.find(':') {
                spans.push(core.start + c + 1..core.end);
            }
            return Next::Plain;
        }
        Next::Header => {
            if is_scheme(core_str) {
                return Next::Header;
            }
            spans.push(core);
            return Next::Plain;
        }
        Next::Loose if looks_like_credential(core_str) => {
            spans.push(core);
            return Next::Plain;
        }
        _ => {}
    }
    if core_str.eq_ignore_ascii_case("bearer") {
        return Next::Bearer;
    }
    if core_str.eq_ignore_ascii_case("basic") {
        return Next::Basic;
    }
    if core_str.starts_with('-') && !core_str.contains('=') {
        return flag_kind(core_str);
    }
    prefixed_tokens(text, core.clone(), spans);
    if aws && core_str.len() == 40 && is_aws_secret(core_str) {
        spans.push(core.clone());
    }
    url_userinfo(text, core.clone(), spans);
    pairs(text, core, spans)
}

fn is_scheme(w: &str) -> bool {
    ["bearer", "basic", "token", "digest", "apikey"].iter().any(|s| w.eq_ignore_ascii_case(s))
}

/// Long enough and not a word of prose (`Bearer authentication` names no token).
fn tokenish(w: &str) -> bool {
    w.len() >= 8 && w.bytes().any(|b| !b.is_ascii_lowercase())
}

fn looks_base64(w: &str) -> bool {
    w.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
        && w.bytes().any(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b == b'=')
}

/// A word that could be a password: not a plain lowercase word of prose.
fn looks_like_credential(w: &str) -> bool {
    w.len() >= 6
        && w.bytes().any(|b| b.is_ascii_digit() || !b.is_ascii_alphanumeric())
        && !w.ends_with(':')
        && w.bytes().all(|b| b.is_ascii_graphic())
}

/// 40 characters of base64 with both cases and a digit: the secret half of an AWS key pair.
fn is_aws_secret(w: &str) -> bool {
    w.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
        && w.bytes().any(|b| b.is_ascii_digit())
        && w.bytes().any(|b| b.is_ascii_lowercase())
        && w.bytes().any(|b| b.is_ascii_uppercase())
}

fn token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+' | b'/' | b'=' | b'~' | b'!')
}

/// Credentials by their prefix (and JSON Web Tokens), where a token starts: at the word's start or
/// after `=`, `:` or a quote.
fn prefixed_tokens(text: &str, core: Range<usize>, spans: &mut Vec<Range<usize>>) {
    let b = text.as_bytes();
    let mut i = core.start;
    while i < core.end {
        let at_start = i == core.start || matches!(b[i - 1], b'=' | b':' | b'"' | b'\'');
        if at_start {
            let rest = &text[i..core.end];
            let mut end = i;
            while end < core.end && token_byte(b[end]) {
                end += 1;
            }
            while end > i && b[end - 1] == b'.' {
                end -= 1;
            }
            let tok = &text[i..end];
            let known = SECRET_PREFIXES.iter().any(|p| {
                rest.starts_with(p) && {
                    let tail = &tok[p.len().min(tok.len())..];
                    tail.len() >= 16 || (tail.len() >= 8 && tail.bytes().any(|c| c.is_ascii_digit()))
                }
            });
            let jwt = tok.starts_with("eyJ") && tok.matches('.').count() == 2 && tok.len() > 30;
            if known || jwt {
                spans.push(i..end);
                i = end;
                continue;
            }
        }
        i += 1;
    }
}

/// `scheme://user:password@host` (the password) and `scheme://KEY@host` (a key alone in the user
/// part, as in a Sentry DSN; a short user name such as `git@` is not one).
fn url_userinfo(text: &str, core: Range<usize>, spans: &mut Vec<Range<usize>>) {
    let w = &text[core.clone()];
    let Some(s) = w.find("://") else { return };
    let after = s + 3;
    let rest = &w[after..];
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..end].rfind('@') else { return };
    let userinfo = &rest[..at];
    let base = core.start + after;
    match userinfo.find(':') {
        Some(c) if c + 1 < userinfo.len() => spans.push(base + c + 1..base + at),
        Some(_) => {}
        None if userinfo.len() >= 16
            && userinfo.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            spans.push(base..base + at)
        }
        None => {}
    }
}

/// `name=value` and `name:value` pairs inside a word (connection strings, query strings, JSON in a
/// command line) whose name is a secret's; a word ending in `name:` or `name=` makes the next word
/// the value.
fn pairs(text: &str, core: Range<usize>, spans: &mut Vec<Range<usize>>) -> Next {
    let b = text.as_bytes();
    let mut next = Next::Plain;
    let mut i = core.start;
    while i < core.end {
        if !matches!(b[i], b'=' | b':') {
            i += 1;
            continue;
        }
        let sep = b[i];
        // The name: back to a separator.
        let mut s = i;
        while s > core.start && !matches!(b[s - 1], b';' | b',' | b'&' | b'?' | b'{' | b'(' | b'=' | b'/' | b':') {
            s -= 1;
        }
        let name = text[s..i].trim_matches(|c: char| c == '"' || c == '\'' || c == ' ');
        let name_ok = name.len() >= 3 && name.bytes().any(|c| c.is_ascii_alphabetic()) && is_secret_key(name);
        // The value: on to a separator.
        let mut vs = i + 1;
        if sep == b':' && text[vs..core.end].starts_with("//") {
            i += 1;
            continue;
        }
        while vs < core.end && matches!(b[vs], b'"' | b'\'') {
            vs += 1;
        }
        let mut ve = vs;
        while ve < core.end && !matches!(b[ve], b';' | b',' | b'&' | b'"' | b'\'' | b')' | b'}') {
            ve += 1;
        }
        if name_ok {
            if ve > vs {
                let v = &text[vs..ve];
                if !super::is_reference(v) && !text[vs..].starts_with(REDACTED) {
                    spans.push(vs..ve);
                }
            } else if ve == core.end {
                let header = name.len() > 2
                    && (name.starts_with("X-")
                        || name.starts_with("x-")
                        || name.eq_ignore_ascii_case("authorization")
                        || name.eq_ignore_ascii_case("proxy-authorization")
                        || name.eq_ignore_ascii_case("cookie"));
                next = if header || sep == b'=' { Next::Header } else { Next::Loose };
            }
        }
        i = ve.max(i + 1);
    }
    next
}

/// PEM blocks that are not public, whole: from `-----BEGIN` to the matching `-----END …-----`, or
/// to the end of the base64 body when the END line is missing.
fn pem_blocks(text: &str, spans: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(p) = text[from..].find("-----BEGIN ") {
        let start = from + p;
        let label_start = start + "-----BEGIN ".len();
        let Some(l) = text[label_start..].find("-----") else { break };
        let label = &text[label_start..label_start + l];
        let body = label_start + l + 5;
        let end_marker = format!("-----END {label}-----");
        let end = match text[body..].find(&end_marker) {
            Some(e) => body + e + end_marker.len(),
            None => {
                // The body's lines: base64 and `Name: value` headers, up to the first other line.
                let mut e = body;
                for line in text[body..].split_inclusive('\n') {
                    let t = line.trim();
                    let b64 = t.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'='));
                    if !(b64 || t.contains(": ") || t.is_empty()) {
                        break;
                    }
                    e += line.len();
                }
                e
            }
        };
        if !PUBLIC_PEM.contains(&label) && label.len() < 40 {
            spans.push(start..end);
        }
        from = end.max(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(t: &str) -> String {
        apply(t, &secret_spans(t))
    }

    #[test]
    fn only_the_secret_span_goes() {
        let r = redact("retry with api_key=abc123XYZ failed, giving up");
        assert_eq!(r, format!("retry with api_key={REDACTED} failed, giving up"));
        let r = redact("curl -u admin:S3cr3tPass https://x.example.com/api");
        assert_eq!(r, format!("curl -u admin:{REDACTED} https://x.example.com/api"));
        let r = redact("https://0123456789abcdef0123456789abcdef@o679256.ingest.sentry.io/4504");
        assert_eq!(r, format!("https://{REDACTED}@o679256.ingest.sentry.io/4504"));
        let r = redact("Host=db;Port=5432;Username=app;Password=hunter2;SSL Mode=Require");
        assert_eq!(r, format!("Host=db;Port=5432;Username=app;Password={REDACTED};SSL Mode=Require"));
        let r = redact("curl -H 'X-Auth: 9f8e7d6c5b4a' https://api");
        assert_eq!(r, format!("curl -H 'X-Auth: {REDACTED}' https://api"));
        let r = redact("key AKIAIOSFODNN7EXAMPLE secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY ok");
        assert!(!r.contains("wJalr") && r.contains("AKIAIOSFODNN7EXAMPLE") && r.ends_with(" ok"), "{r}");
        let pem = "see\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA==\n-----END RSA PRIVATE KEY-----\nend";
        assert_eq!(redact(pem), format!("see\n{REDACTED}\nend"));
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert!(secret_spans(cert).is_empty());
        assert!(secret_spans(&redact(pem)).is_empty(), "idempotent");
    }
}
