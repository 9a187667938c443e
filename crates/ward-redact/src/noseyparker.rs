//! Nosey Parker's rules, loaded as data (`rules/noseyparker/rules.toml`, Apache-2.0, converted
//! from its YAML files by `tools/vendor_noseyparker.py`).
//!
//! Every capture group of a match is redacted (a rule may capture a user name and a password,
//! or an id and a secret); a match without groups is redacted whole. `(?# … )` comments, which
//! the `regex` crate does not read, are dropped before compiling.

use serde::Deserialize;

use crate::{RedactError, Rule, compile};

#[derive(Debug, Deserialize)]
struct File {
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
struct RuleFile {
    id: String,
    pattern: String,
}

pub struct Loaded {
    pub rules: Vec<Rule>,
    pub skipped: Vec<(String, String)>,
}

pub fn load(text: &str) -> Result<Loaded, RedactError> {
    let file: File = toml::from_str(text).map_err(|e| RedactError::Load(e.to_string()))?;
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for rule in file.rules {
        let pattern = strip_comments(&rule.pattern);
        match compile(&rule.id, &pattern) {
            Ok(regex) => rules.push(Rule {
                // `np.aws.1` → `aws`: the pseudonym says which vendor's secret it was.
                kind: rule.id.split('.').nth(1).unwrap_or("secret").to_owned(),
                keywords: Vec::new(),
                regex,
                group: None,
                check: crate::Check::None,
                min_entropy: None,
                allow: Vec::new(),
                // Nosey Parker reads whole files; its patterns may span lines.
                multiline: true,
                all_groups: true,
                id: rule.id,
            }),
            Err(error) => skipped.push((rule.id, error.to_string())),
        }
    }
    Ok(Loaded { rules, skipped })
}

/// Drops `(?# … )` comments.
fn strip_comments(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find("(?#") {
        out.push_str(&rest[..start]);
        match rest[start..].find(')') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}
