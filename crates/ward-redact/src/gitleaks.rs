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
        let regex = match compile(&id, &from_go(pattern)) {
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
            // gitleaks reads whole files; its patterns may span lines.
            multiline: true,
            all_groups: false,
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
        // An allowlist entry that does not compile is left out: the rule then redacts more,
        // never less.
        regexes: combined(id, &list.regexes),
        stopwords: Allow::stopwords(&list.stopwords)?,
    })
}

/// An allowlist's regexes as one alternation (one search per match instead of one per regex);
/// if they do not compile together, each one that compiles on its own.
fn combined(id: &str, regexes: &[String]) -> Vec<regex::bytes::Regex> {
    let translated: Vec<String> = regexes.iter().map(|r| from_go(r)).collect();
    if translated.len() > 1 {
        let alternation = translated.iter().map(|r| format!("(?:{r})")).collect::<Vec<_>>().join("|");
        if let Ok(one) = compile(id, &alternation) {
            return vec![one];
        }
    }
    translated.iter().filter_map(|r| compile(id, r).ok()).collect()
}

/// Go's RE2 reads a `{` or `}` that does not make a repetition (`{2}`, `{2,}`, `{2,5}`) as a
/// literal brace; the `regex` crate refuses it. Escape those, outside character classes.
fn from_go(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut repetition_open = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                out.push(c);
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // A `]` right after `[` or `[^` is a literal member.
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    out.push(']');
                    i += 1;
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '{' if !in_class => {
                let rest: String = chars[i + 1..].iter().take_while(|&&c| c != '}').collect();
                let closes = chars.len() > i + 1 + rest.len();
                let counts = !rest.is_empty()
                    && rest.chars().all(|c| c.is_ascii_digit() || c == ',')
                    && rest.chars().next().is_some_and(|c| c.is_ascii_digit())
                    && rest.matches(',').count() <= 1;
                if closes && counts {
                    repetition_open = true;
                    out.push(c);
                } else {
                    out.push_str("\\{");
                }
            }
            '}' if !in_class => {
                if repetition_open {
                    repetition_open = false;
                    out.push(c);
                } else {
                    out.push_str("\\}");
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::from_go;

    #[test]
    fn literal_braces_are_escaped_and_repetitions_kept() {
        assert_eq!(from_go(r"^\$(?:\d+|{\d+})$"), r"^\$(?:\d+|\{\d+\})$");
        assert_eq!(from_go(r"a{2}b{1,}c{3,4}"), r"a{2}b{1,}c{3,4}");
        assert_eq!(from_go(r"^\{\{[ \t]*[\w ().|]+[ \t]*}}$"), r"^\{\{[ \t]*[\w ().|]+[ \t]*\}\}$");
        assert_eq!(from_go(r"[{}]x{2}"), r"[{}]x{2}");
    }
}
