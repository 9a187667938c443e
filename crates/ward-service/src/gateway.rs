//! The debug-log gateway's fixed parts: each `logs` resource's sources, the compiled redaction
//! rules, and the key pseudonyms come from.

use std::collections::BTreeMap;
use std::sync::Arc;

use ward_core::GrantId;
use ward_logs::Source;
use ward_redact::{Pseudonyms, Rule, RuleSet};

use crate::config::{LogSettings, PushSettings};

pub struct Gateway {
    sources: BTreeMap<String, Source>,
    push: BTreeMap<String, PushSettings>,
    push_dir: std::path::PathBuf,
    /// `standard` or `builtin`.
    rule_set: String,
    /// A team's own rules, compiled (and so checked) at start.
    custom: Vec<Rule>,
    /// Compiled on the first read: the standard set is hundreds of regexes, and a server that
    /// serves no logs need not pay for them.
    rules: std::sync::OnceLock<Result<Arc<RuleSet>, String>>,
    key: [u8; 32],
    /// Under the audit log's own key.
    on_record: Pseudonyms,
    limits: crate::read_limits::ReadLimits,
    search_timeout: std::time::Duration,
}

/// The scope of the audit log's own pseudonym key: no grant id can be it (ids never hold a NUL).
const ON_RECORD_SCOPE: &[u8] = b"\0ward audit log";

impl Gateway {
    /// Checks a team's own rules; one that does not compile stops the start.
    pub fn new(settings: &LogSettings, key: [u8; 32]) -> Result<Self, String> {
        let mut rules = Vec::new();
        for custom in &settings.custom {
            let valid_kind = !custom.kind.is_empty()
                && custom
                    .kind
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
            if !valid_kind {
                return Err(format!(
                    "redaction.custom `{}`: kind `{}` must be lowercase letters, digits, `.`, `_` or `-`",
                    custom.id, custom.kind
                ));
            }
            let keywords: Vec<&str> = custom.keywords.iter().map(String::as_str).collect();
            let rule = Rule::new(&custom.id, &custom.kind, &keywords, &custom.pattern)
                .map_err(|e| format!("redaction.custom: {e}"))?;
            rules.push(rule);
        }
        // Ids must be unique among themselves and apart from ward's own and the vendored sets'.
        let mut ids = std::collections::HashSet::new();
        if let Some(twice) = rules.iter().find(|r| !ids.insert(r.id.as_str())) {
            return Err(format!("redaction: rule `{}`: the id is used twice", twice.id));
        }
        let builtin = ward_redact::builtin_rules().map_err(|e| e.to_string())?;
        if let Some(clash) = rules.iter().find(|r| {
            r.id.starts_with("gitleaks.") || r.id.starts_with("np.") || builtin.iter().any(|b| b.id == r.id)
        }) {
            return Err(format!("redaction.custom: the id `{}` is taken by ward's own rules", clash.id));
        }
        Ok(Self {
            sources: settings.sources.clone(),
            push: settings.push.clone(),
            push_dir: settings.push_dir.clone(),
            rule_set: settings.rules.clone(),
            custom: rules,
            rules: std::sync::OnceLock::new(),
            key,
            on_record: Pseudonyms::scoped(&key, ON_RECORD_SCOPE),
            limits: crate::read_limits::ReadLimits::new(&settings.limits),
            search_timeout: std::time::Duration::from_secs(settings.limits.search_timeout_seconds),
        })
    }

    pub fn source(&self, resource: &str) -> Option<&Source> {
        self.sources.get(resource)
    }

    /// Where `resource`'s pushed logs go, how long they are kept and who may push, if it takes
    /// pushes.
    pub fn push_target(&self, resource: &str) -> Option<(&std::path::Path, &PushSettings)> {
        self.push.get(resource).map(|settings| (self.push_dir.as_path(), settings))
    }

    /// The rules, compiled on first use. If they do not load (a bug the tests would show), no
    /// log leaves ward: the error is the answer to every read.
    pub fn rules(&self) -> Result<Arc<RuleSet>, String> {
        self.rules
            .get_or_init(|| {
                let mut rules = match self.rule_set.as_str() {
                    "builtin" => ward_redact::builtin_rules().map_err(|e| e.to_string())?,
                    _ => ward_redact::standard_rules().map(|set| set.rules).map_err(|e| e.to_string())?,
                };
                rules.extend(self.custom.iter().cloned());
                RuleSet::new(rules).map(Arc::new).map_err(|e| e.to_string())
            })
            .clone()
    }

    /// Pseudonyms under the grant's own key, HMAC(key, grant id): stable within one grant,
    /// unlinkable across grants.
    pub fn pseudonyms(&self, grant: &GrantId) -> Pseudonyms {
        Pseudonyms::scoped(&self.key, grant.as_str().as_bytes())
    }

    /// Pseudonyms for what a reader typed (a search pattern) as the audit log records it:
    /// under a key of the audit log's own, never a grant's. Under the grant's key, a pattern's
    /// author reading their own event would see each value they guessed next to the pseudonym
    /// it has in the lines.
    pub fn on_record(&self) -> &Pseudonyms {
        &self.on_record
    }

    /// How many reads may run at once.
    pub fn limits(&self) -> &crate::read_limits::ReadLimits {
        &self.limits
    }

    /// How long a search may run.
    pub fn search_timeout(&self) -> std::time::Duration {
        self.search_timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CustomRule;

    fn settings(custom: Vec<CustomRule>) -> LogSettings {
        LogSettings {
            sources: BTreeMap::new(),
            push: BTreeMap::new(),
            push_dir: std::path::PathBuf::from("/nonexistent"),
            rules: "builtin".into(),
            custom,
            key: std::path::PathBuf::from("/nonexistent/key"),
            key_configured: true,
            new_key: false,
            limits: Default::default(),
        }
    }

    fn rule(id: &str, kind: &str, pattern: &str) -> CustomRule {
        CustomRule {
            id: id.into(),
            kind: kind.into(),
            pattern: pattern.into(),
            keywords: vec!["cust-".into()],
        }
    }

    #[test]
    fn a_teams_rules_are_checked_at_start_and_used() {
        let error = |custom| Gateway::new(&settings(custom), [0; 32]).err().unwrap_or_default();
        assert!(error(vec![rule("customer", "customer", "CUST-(")]).contains("does not compile"));
        assert!(error(vec![rule("customer", "Customer!", "CUST-[0-9]{8}")]).contains("must be lowercase"));
        assert!(error(vec![rule("email", "customer", "CUST-[0-9]{8}")]).contains("is taken"));
        assert!(error(vec![rule("gitleaks.x", "customer", "CUST-[0-9]{8}")]).contains("is taken"));
        let twice =
            vec![rule("customer", "customer", "CUST-[0-9]{8}"), rule("customer", "customer", "C-[0-9]{8}")];
        assert!(error(twice).contains("rule `customer`: the id is used twice"));
        let gateway = Gateway::new(&settings(vec![rule("customer", "customer", "CUST-[0-9]{8}")]), [0; 32])
            .unwrap_or_else(|e| panic!("{e}"));
        let rules = gateway.rules().unwrap_or_else(|e| panic!("{e}"));
        let mut out = Vec::new();
        let placeholder = ward_redact::Placeholder { fixed: None };
        rules.redact(
            b"order for CUST-12345678 by jane@example.com",
            &placeholder,
            &mut out,
            &mut Default::default(),
        );
        assert_eq!(out, b"order for <customer> by <email>");
    }
}
