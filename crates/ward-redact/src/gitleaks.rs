//! The gitleaks rule set, loaded as data (`gitleaks.toml`, MIT; ward vendors a pinned copy).
//!
//! What ward reads of a rule: `id`, `regex`, `secretGroup`, `entropy`, `keywords` and its
//! `[[rules.allowlists]]` (`regexes` with `regexTarget`, `stopwords`, `condition`), plus the global
//! `[allowlist]` (`regexes`, `stopwords`) applied to every rule. Path-only rules (no `regex`) and
//! allowlist `paths` do not apply to log lines: an allowlist whose `condition = "AND"` needs a
//! path is never met. The redacted value is the secret group (the first group that matched,
//! when the rule names none), as gitleaks reports it.
//!
//! A match is allowed when any allowlist allows it, so a rule's allowlists (its own and the
//! global one) are merged: one regex per target and one automaton for every stopword, that is
//! a few searches per candidate secret however many lists there are.

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

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AllowlistFile {
    #[serde(default)]
    regexes: Vec<String>,
    regex_target: Option<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    /// `OR` (the default): any of the list's criteria allows; `AND`: all of them must.
    condition: Option<String>,
}

/// The rules a rule file defines, as ward rules (gitleaks': ids prefixed `gitleaks.`), and the
/// ids of those left out with why (a path-only rule, or a regex the `regex` crate does not
/// accept).
pub struct Loaded {
    pub rules: Vec<Rule>,
    pub skipped: Vec<(String, String)>,
}

pub fn load(text: &str) -> Result<Loaded, RedactError> {
    let file: File = toml::from_str(text).map_err(|e| RedactError::Load(e.to_string()))?;
    let global = file.allowlist.unwrap_or_default();
    let global_allows = allows("gitleaks.allowlist", [&global])?;
    // Compiling the patterns is most of the time a rule set takes to start: on every core.
    let built =
        crate::map_on_cores(&file.rules, |rule| -> Result<Result<Rule, (String, String)>, RedactError> {
            let id = format!("gitleaks.{}", rule.id);
            let Some(pattern) = rule.regex.as_deref() else {
                return Ok(Err((id, "matches file paths only".to_owned())));
            };
            let regex = match compile(&id, &from_go(pattern)) {
                Ok(regex) => regex,
                Err(error) => return Ok(Err((id, error.to_string()))),
            };
            let allow = if rule.allowlists.is_empty() {
                global_allows.clone()
            } else {
                allows(&id, rule.allowlists.iter().chain([&global]))?
            };
            Ok(Ok(Rule {
                kind: rule.id.clone(),
                keywords: rule.keywords.iter().map(|k| k.to_lowercase()).collect(),
                regex,
                group: rule.secret_group.filter(|g| *g > 0),
                check: crate::Check::None,
                min_entropy: rule.entropy,
                allow,
                // gitleaks reads whole files; its patterns may span lines.
                multiline: true,
                all_groups: false,
                id,
            }))
        });
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for rule in built {
        match rule? {
            Ok(rule) => rules.push(rule),
            Err(left_out) => skipped.push(left_out),
        }
    }
    Ok(Loaded { rules, skipped })
}

/// A rule's allowlists as ward checks them: the `OR` lists merged (one regex per target, one
/// automaton for all their stopwords), each `AND` list on its own.
fn allows<'a>(
    id: &str,
    lists: impl IntoIterator<Item = &'a AllowlistFile>,
) -> Result<Vec<Allow>, RedactError> {
    const TARGETS: [AllowTarget; 3] = [AllowTarget::Secret, AllowTarget::Match, AllowTarget::Line];
    let error = |message: String| RedactError::Rule { id: id.to_owned(), message };
    let mut patterns: [Vec<String>; 3] = Default::default();
    let mut words = Vec::new();
    let mut out = Vec::new();
    for list in lists {
        let target = match list.regex_target.as_deref() {
            None | Some("secret") => AllowTarget::Secret,
            Some("match") => AllowTarget::Match,
            Some("line") => AllowTarget::Line,
            Some(other) => return Err(error(format!("unknown regexTarget `{other}`"))),
        };
        match list.condition.as_deref() {
            None | Some("OR") => {
                // `TARGETS` lists the targets in their declared order.
                patterns[target as usize].extend(list.regexes.iter().cloned());
                words.extend(list.stopwords.iter().cloned());
            }
            // A log line has no path, so a list that needs one never allows.
            Some("AND") if !list.paths.is_empty() => {}
            Some("AND") if list.regexes.is_empty() && list.stopwords.is_empty() => {}
            Some("AND") => out.push(Allow {
                target,
                regexes: combined(id, &list.regexes),
                stopwords: Allow::stopwords(&list.stopwords)?,
                all: true,
            }),
            Some(other) => return Err(error(format!("unknown condition `{other}`"))),
        }
    }
    if !words.is_empty() {
        out.push(Allow {
            target: AllowTarget::Secret,
            regexes: Vec::new(),
            stopwords: Allow::stopwords(&words)?,
            all: false,
        });
    }
    for (target, patterns) in TARGETS.into_iter().zip(patterns) {
        if !patterns.is_empty() {
            // An allowlist entry that does not compile is left out: the rule then redacts more,
            // never less.
            out.push(Allow { target, regexes: combined(id, &patterns), stopwords: None, all: false });
        }
    }
    Ok(out)
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
    use super::{from_go, load};
    use crate::{Placeholder, RuleSet};

    /// What `rules` (a gitleaks file) leaves of `text`, with `[X]` for each redacted value.
    fn redacted(rules: &str, text: &str) -> String {
        let rules = RuleSet::new(load(rules).expect("rules load").rules).expect("rule set");
        let mut out = Vec::new();
        let fixed = Placeholder { fixed: Some(b"[X]".to_vec()) };
        rules.redact(text.as_bytes(), &fixed, &mut out, &mut Default::default());
        String::from_utf8(out).expect("utf-8")
    }

    const RULE: &str = r#"
[allowlist]
stopwords = ["example"]

[[rules]]
id = "pw"
regex = '''pw=(\w+)'''
keywords = ["pw="]
[[rules.allowlists]]
regexes = ['''^test''']
[[rules.allowlists]]
regexTarget = "line"
regexes = ['''DRY RUN''']
"#;

    #[test]
    fn any_allowlist_of_a_rule_or_the_global_one_allows() {
        assert_eq!(redacted(RULE, "pw=hunter2\n"), "pw=[X]\n");
        assert_eq!(redacted(RULE, "pw=testing1\n"), "pw=testing1\n");
        assert_eq!(redacted(RULE, "pw=myexample1\n"), "pw=myexample1\n");
        assert_eq!(redacted(RULE, "DRY RUN pw=hunter2\n"), "DRY RUN pw=hunter2\n");
        assert_eq!(redacted(RULE, "pw=hunter2\nDRY RUN\n"), "pw=[X]\nDRY RUN\n");
    }

    #[test]
    fn an_and_list_allows_only_when_all_its_criteria_are_met_and_never_on_a_path() {
        let and = |extra: &str| {
            format!(
                "[[rules]]\nid = \"pw\"\nregex = '''pw=(\\w+)'''\n[[rules.allowlists]]\ncondition = \"AND\"\n{extra}"
            )
        };
        // A log line has no path: a list that needs one never allows.
        let with_path = and("paths = ['''\\.bb$''']\nregexTarget = \"line\"\nregexes = ['''LICENSE''']\n");
        assert_eq!(redacted(&with_path, "LICENSE pw=hunter2\n"), "LICENSE pw=[X]\n");
        let both = and("regexTarget = \"line\"\nregexes = ['''LICENSE''']\nstopwords = [\"hunt\"]\n");
        assert_eq!(redacted(&both, "LICENSE pw=hunter2\n"), "LICENSE pw=hunter2\n");
        assert_eq!(redacted(&both, "LICENSE pw=s3cret99\n"), "LICENSE pw=[X]\n");
        assert_eq!(redacted(&both, "pw=hunter2\n"), "pw=[X]\n");
        let unknown = and("regexes = ['''x''']\n").replace("AND", "XOR");
        assert!(load(&unknown).is_err_and(|e| e.to_string().contains("unknown condition `XOR`")));
    }

    #[test]
    fn literal_braces_are_escaped_and_repetitions_kept() {
        assert_eq!(from_go(r"^\$(?:\d+|{\d+})$"), r"^\$(?:\d+|\{\d+\})$");
        assert_eq!(from_go(r"a{2}b{1,}c{3,4}"), r"a{2}b{1,}c{3,4}");
        assert_eq!(from_go(r"^\{\{[ \t]*[\w ().|]+[ \t]*}}$"), r"^\{\{[ \t]*[\w ().|]+[ \t]*\}\}$");
        assert_eq!(from_go(r"[{}]x{2}"), r"[{}]x{2}");
    }
}
