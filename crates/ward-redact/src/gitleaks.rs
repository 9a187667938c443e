//! The gitleaks rule set, loaded as data (`gitleaks.toml`, MIT; ward vendors a pinned copy).
//!
//! What ward reads of a rule: `id`, `regex`, `secretGroup`, `entropy`, `keywords` and its
//! `[[rules.allowlists]]` (`regexes` with `regexTarget`, `stopwords`), plus the global
//! `[allowlist]` (`regexes`, `stopwords`) applied to every rule. Path-only rules (no `regex`) and
//! allowlist `paths` do not apply to log lines. The redacted value is the secret group (the
//! first group that matched, when the rule names none), as gitleaks reports it.

use serde::Deserialize;

use crate::{Allow, AllowTarget, RedactError, Rule, compile};

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    allowlist: Option<AllowlistFile>,
    #[serde(default)]
    rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RuleFile {
    id: String,
    regex: Option<String>,
    secret_group: Option<usize>,
    entropy: Option<f32>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    allowlists: Vec<AllowlistFile>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AllowlistFile {
    #[serde(default)]
    regexes: Vec<String>,
    regex_target: Option<String>,
    #[serde(default)]
    stopwords: Vec<String>,
}

/// The rules gitleaks' file defines, as ward rules (ids prefixed `gitleaks.`), and the ids of
/// those left out with why (a path-only rule, or a regex the `regex` crate does not accept).
pub struct Loaded {
    pub rules: Vec<Rule>,
    pub skipped: Vec<(String, String)>,
}

pub fn load(text: &str) -> Result<Loaded, RedactError> {
    let file: File = toml::from_str(text).map_err(|e| RedactError::Load(e.to_string()))?;
    let global = file.allowlist.map(|a| allow("gitleaks.allowlist", &a)).transpose()?;
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for rule in file.rules {
        let id = format!("gitleaks.{}", rule.id);
        let Some(pattern) = rule.regex.as_deref() else {
            skipped.push((id, "matches file paths only".to_owned()));
            continue;
        };
        let regex = match compile(&id, pattern) {
            Ok(regex) => regex,
            Err(error) => {
                skipped.push((id, error.to_string()));
                continue;
            }
        };
        let mut allows = Vec::new();
        for list in &rule.allowlists {
            allows.push(allow(&id, list)?);
        }
        allows.extend(global.clone());
        rules.push(Rule {
            kind: rule.id.clone(),
            keywords: rule.keywords.iter().map(|k| k.to_lowercase()).collect(),
            regex,
            group: rule.secret_group.filter(|g| *g > 0),
            check: crate::Check::None,
            min_entropy: rule.entropy,
            allow: allows,
            multiline: false,
            id,
        });
    }
    Ok(Loaded { rules, skipped })
}

fn allow(id: &str, list: &AllowlistFile) -> Result<Allow, RedactError> {
    let target = match list.regex_target.as_deref() {
        None | Some("secret") => AllowTarget::Secret,
        Some("match") => AllowTarget::Match,
        Some("line") => AllowTarget::Line,
        Some(other) => {
            return Err(RedactError::Rule {
                id: id.to_owned(),
                message: format!("unknown regexTarget `{other}`"),
            });
        }
    };
    Ok(Allow {
        target,
        regexes: list.regexes.iter().map(|r| compile(id, r)).collect::<Result<_, _>>()?,
        stopwords: list.stopwords.iter().map(|w| w.to_lowercase()).collect(),
    })
}
