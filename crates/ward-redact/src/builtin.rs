//! ward's built-in rules: personal data and the credentials debug logs leak most.
//!
//! Values never begin with `<` (unquoted ones never hold `<` or `>`), so a pseudonym
//! (`<email:7f3a9c0d12e4>`) is never redacted again.

use crate::{Check, RedactError, Rule};

const SECRET_KEYWORDS: &[&str] = &["pass", "pwd", "secret", "token", "api_key", "apikey", "api-key"];

/// `(id, kind, keywords, pattern)`; the value is the first group that matched, else the match.
const RULES: &[(&str, &str, &[&str], &str)] = &[
    (
        "email",
        "email",
        &["@"],
        r"(?i)\b[a-z0-9][a-z0-9._%+-]{0,63}@[a-z0-9](?:[a-z0-9-]{0,62}\.)+[a-z]{2,24}\b",
    ),
    // 13 to 19 digits, spaces or dashes between groups; Luhn-checked.
    ("card", "card", &[], r"\b[2-6](?:[ -]?[0-9]){12,18}\b"),
    ("iban", "iban", &[], r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
    // International numbers (+49 30 1234567, +1 (415) 555-0100) and North American (415) 555-0100.
    (
        "phone",
        "phone",
        &[],
        r"(?:\+[1-9][0-9]{0,2}[ .-]?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{2,4}(?:[ .-]?[0-9]{2,4}){1,4}\b|\([0-9]{3}\) ?[0-9]{3}-[0-9]{4}\b)",
    ),
    ("jwt", "jwt", &["eyj"], r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{8,}"),
    ("bearer", "credential", &["bearer", "basic"], r"(?i)\b(?:bearer|basic)[ \t]+([A-Za-z0-9._~+/=-]{8,})"),
    (
        "private-key",
        "private-key",
        &["private key"],
        r"-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----(?s:.*?)-----END[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----",
    ),
    (
        "url-password",
        "password",
        &["://"],
        r"(?i)\b[a-z][a-z0-9+.-]{1,20}://[^\s:/@<>]{1,128}:([^\s@/<>]{1,256})@",
    ),
    ("secret-pair", "secret", SECRET_KEYWORDS, SECRET_PAIR),
    ("secret-pair-quoted", "secret", SECRET_KEYWORDS, QUOTED_SECRET_PAIR),
    (
        "aws-access-key",
        "aws-key",
        &["akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva", "a3t"],
        r"\b((?:A3T[A-Z0-9]|AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16})\b",
    ),
    (
        "aws-secret-key",
        "aws-secret",
        &["aws"],
        r#"(?i)\baws_?(?:secret)?_?(?:access)?_?key(?:\\?["'])?[ \t]*(?::|=>|=)[ \t]*(?:\\?["'])?([A-Za-z0-9/+=]{40})(?:[^A-Za-z0-9/+=]|$)"#,
    ),
    ("gcp-api-key", "gcp-key", &["aiza"], r"\b(AIza[0-9A-Za-z_-]{35})\b"),
    (
        "github-token",
        "github-token",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        r"\b((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})\b",
    ),
    ("slack-token", "slack-token", &["xox"], r"\b(xox[abposr]-[A-Za-z0-9-]{10,250})"),
    (
        "stripe-key",
        "stripe-key",
        &["sk_live", "sk_test", "rk_live", "rk_test"],
        r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{20,247})\b",
    ),
    (
        "ipv4",
        "ipv4",
        &[],
        r"\b(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}\b",
    ),
];

/// The key of a `password=…`-style pair: it may end a longer name (`db_password`,
/// `newPassword`, `X-Api-Key`) and be quoted, also with escaped quotes (JSON inside a JSON
/// string: `{\"password\": \"…\"}`, `password=\"…\"`).
macro_rules! secret_key {
    () => {
        r#"(?i)(?:pass(?:word|wd)?|pwd|secret|api[_-]?key|token)(?:\\?["'])?[ \t]*[:=][ \t]*"#
    };
}

/// An unquoted value runs to the first space or separator, never swallowing the backslash of an
/// escaped closing quote.
const SECRET_PAIR: &str = concat!(secret_key!(), r#"((?:[^\s"'&,;<>\\]|\\[^\s"'<>]){3,256})"#);

/// A quoted value runs to its closing quote, spaces, commas and escaped quotes included (a value
/// cut short would leak its rest). Three openings: `\"` (the value ends at the next `\"`), `"`
/// (a JSON string, escapes included) and `'`. Apart from [`SECRET_PAIR`] because one capture
/// group per pattern keeps that one off the regex's backtracker (`groups.rs`).
const QUOTED_SECRET_PAIR: &str = concat!(
    secret_key!(),
    r#"(?:\\"((?:[^\\"\r\n<]|\\[^"\r\n])(?:[^\\"\r\n]|\\[^"\r\n]){0,255})"#,
    r#"|"((?:[^"\\\r\n<]|\\[^\r\n])(?:[^"\\\r\n]|\\[^\r\n]){0,255})"#,
    r#"|'([^'\r\n<][^'\r\n]{0,255}))"#,
);

/// Values of `password=`-style pairs that are not secrets: references to one (`$DB_PASSWORD`,
/// `%PASSWORD%`, `{{ .pass }}`, `env.X`, `process.env.X`), masks and placeholders.
const PLACEHOLDER_VALUES: &str = r"(?i)^(?:[$%{(#]|env\.|process\.env|\*+$|x{3,}$|null$|none$|nil$|true$|false$|undefined$|password$|secret$|changeme$|redacted$|hidden$)";

/// The built-in rules, compiled.
pub fn builtin_rules() -> Result<Vec<Rule>, RedactError> {
    RULES
        .iter()
        .map(|(id, kind, keywords, pattern)| {
            let rule = Rule::new(id, kind, keywords, pattern)?;
            Ok(match *id {
                "card" => rule.check(Check::Luhn),
                "iban" => rule.check(Check::Iban),
                "private-key" => rule.multiline(),
                "secret-pair" | "secret-pair-quoted" => rule.allowing(PLACEHOLDER_VALUES)?,
                _ => rule,
            })
        })
        .collect()
}
