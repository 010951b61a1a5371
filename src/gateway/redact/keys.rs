//! Which key names hold secrets. A name is split into words (`SecretAccessKey`, `AWS_SECRET_ACCESS_KEY`
//! and `secret-access-key` are all `secret access key`) and decided on whole words, so `FtsTokenizer`,
//! `token_count` and `PasswordHashing` are not mistaken for `token` or `password`.

/// Words that name a credential wherever they stand in a key.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwords",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "secrets",
    "token",
    "credential",
    "credentials",
    "authorization",
    "cookie",
    "cookies",
    "bearer",
    "apikey",
    "apikeys",
    "accesskey",
    "privatekey",
];

/// Words that make `… key` a credential (`api key`, `signing key`); a `sort key` or an `object key`
/// is not one.
const KEY_KINDS: &[&str] = &[
    "api",
    "access",
    "private",
    "signing",
    "encryption",
    "master",
    "license",
    "client",
    "account",
    "shared",
    "secret",
    "session",
    "hmac",
    "app",
    "subscription",
    "service",
    "storage",
    "deploy",
    "auth",
    "pairing",
    "webhook",
    "ssh",
    "sas",
    "primary",
    "secondary",
    "bot",
    "admin",
];

/// Whole names that are credentials but too short or too common to match as a word inside a name.
const SECRET_NAMES: &[&str] = &["pass", "auth", "key", "otp", "totp", "pin", "sig", "pat", "sas"];

/// Names from [`SECRET_NAMES`] that are also section names (`"Auth": {"Jwt": …}`): only a scalar
/// under them is a secret, an object under them is decided key by key.
const SCALAR_ONLY: &[&str] = &["auth", "key", "otp", "totp", "pin", "sig", "pat", "sas", "cookie", "token"];

/// Words that make a name describe a secret (its hash, its URL, its lifetime, where it is kept)
/// rather than hold one.
const QUALIFIERS: &[&str] = &[
    "hash",
    "hashes",
    "hashing",
    "hashed",
    "public",
    "url",
    "uri",
    "urls",
    "endpoint",
    "type",
    "id",
    "ids",
    "name",
    "names",
    "count",
    "file",
    "path",
    "env",
    "variable",
    "var",
    "header",
    "policy",
    "length",
    "min",
    "max",
    "lifetime",
    "expiry",
    "expires",
    "expiration",
    "ttl",
    "timeout",
    "minutes",
    "seconds",
    "hours",
    "days",
    "rotation",
    "required",
    "require",
    "enabled",
    "enable",
    "disabled",
    "issuer",
    "audience",
    "algorithm",
    "iterations",
    "scope",
    "scopes",
    "hint",
    "format",
    "version",
    "mode",
    "provider",
    "created",
    "updated",
    "last",
    "used",
    "limit",
    "budget",
    "tenant",
    "prefix",
    "ref",
    "reference",
    "label",
    "description",
    "kind",
    "location",
    "source",
    "level",
    "strength",
    "complexity",
    "field",
    "domain",
    "store",
    "vault",
    "reset",
    "rotated",
    "at",
    "username",
    "user",
    "login",
    "tokenizer",
    "usage",
    "fingerprint",
    "sent",
    "owner",
];

/// Keys under a secret section that still hold no secret (`"Credentials": {"Username": …}`).
const DESCRIPTORS: &[&str] =
    &["host", "port", "server", "database", "region", "bucket", "account", "email", "scheme", "role"];

/// The words of a key name, lowercased: split at every non-alphanumeric character and at
/// camel-case boundaries (`APIKey` is `api key`).
pub fn words(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = key.chars().collect();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = if i > 0 { chars[i - 1] } else { ' ' };
        let next = chars.get(i + 1).copied().unwrap_or(' ');
        let boundary = c.is_uppercase()
            && !cur.is_empty()
            && (prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next.is_lowercase()));
        if boundary {
            out.push(std::mem::take(&mut cur));
        }
        cur.extend(c.to_lowercase());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// True for a key whose value is a secret by its name.
pub fn is_secret_key(key: &str) -> bool {
    let w = words(key);
    secret_words(&w)
}

fn secret_words(w: &[String]) -> bool {
    let Some(last) = w.last() else { return false };
    let joined: String = w.concat();
    // A Slack or Teams webhook URL carries its credential in the path.
    if joined == "webhookurl" || joined == "incomingwebhook" {
        return true;
    }
    if w.iter().any(|x| QUALIFIERS.contains(&x.as_str())) {
        return false;
    }
    if w.len() == 1 && SECRET_NAMES.contains(&last.as_str()) {
        return true;
    }
    // `X-Auth`, `X-Api-Key`, `X-Amz-Signature`: custom headers that carry a credential.
    if w.len() > 1
        && w[0] == "x"
        && matches!(last.as_str(), "auth" | "key" | "token" | "secret" | "signature" | "apikey" | "password")
    {
        return true;
    }
    if w.iter().any(|x| SECRET_WORDS.contains(&x.as_str())) {
        return true;
    }
    // `… key` / `… keys` after a word saying what kind of key.
    w.windows(2).any(|p| matches!(p[1].as_str(), "key" | "keys") && KEY_KINDS.contains(&p[0].as_str()))
}

/// A secret key whose object value is secret as a whole (`"Secrets": {"Crm": …}`), apart from
/// its descriptive keys; the short names of [`SCALAR_ONLY`] are section names as often as not.
pub fn inherits(key: &str) -> bool {
    let w = words(key);
    secret_words(&w) && !(w.len() == 1 && SCALAR_ONLY.contains(&w[0].as_str()))
}

/// A secret key whose value may be a number that is secret (a PIN, a numeric password); a number
/// under a `… token` or `… key` name is a count or a size (`TokenOverlap: 64`).
pub fn numbers_secret(key: &str) -> bool {
    let w = words(key);
    secret_words(&w) && !w.iter().any(|x| matches!(x.as_str(), "token" | "key" | "keys" | "apikey"))
}

/// A key that describes rather than holds, even under a secret section.
pub fn is_descriptor(key: &str) -> bool {
    words(key).iter().any(|x| QUALIFIERS.contains(&x.as_str()) || DESCRIPTORS.contains(&x.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_words() {
        assert_eq!(words("SecretAccessKey"), ["secret", "access", "key"]);
        assert_eq!(words("AWS_SECRET_ACCESS_KEY"), ["aws", "secret", "access", "key"]);
        assert_eq!(words("APIKey"), ["api", "key"]);
        assert_eq!(words("x-api-key"), ["x", "api", "key"]);
        assert_eq!(words("Sophon:Slack:BotToken"), ["sophon", "slack", "bot", "token"]);
    }

    #[test]
    fn secrets_by_name_and_their_look_alikes() {
        for k in [
            "Password",
            "SecretAccessKey",
            "AWS_SECRET_ACCESS_KEY",
            "api_key",
            "apiKey",
            "x-api-key",
            "X-Auth",
            "client_secret",
            "SigningKey",
            "BotToken",
            "GITHUB_PERSONAL_ACCESS_TOKEN",
            "Authorization",
            "Cookie",
            "pwd",
            "auth",
            "SessionSecret",
            "PrivateKey",
            "private-key",
            "WebhookUrl",
        ] {
            assert!(is_secret_key(k), "{k}");
        }
        for k in [
            "Issuer",
            "LifetimeMinutes",
            "Iterations",
            "PasswordHashing",
            "FtsTokenizer",
            "token_count",
            "prompt_tokens",
            "AWS_REGION",
            "SLACK_TEAM_ID",
            "AccessKeyId",
            "PublicKey",
            "TokenUrl",
            "PassphraseFile",
            "password_hash",
            "SortKey",
            "ObjectKey",
            "tokens",
            "api_key_ref",
            "SentryDsn",
        ] {
            assert!(!is_secret_key(k), "{k}");
        }
        assert!(!inherits("Auth") && inherits("Secrets") && inherits("Credentials"));
        assert!(is_descriptor("Username") && is_descriptor("tenant") && !is_descriptor("Crm"));
    }
}
