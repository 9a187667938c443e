//! The debug-log gateway's fixed parts: each `logs` resource's sources, the compiled redaction
//! rules, and the key pseudonyms come from.

use std::collections::BTreeMap;
use std::sync::Arc;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use ward_core::GrantId;
use ward_logs::Source;
use ward_redact::{Pseudonyms, Rule, RuleSet};

use crate::config::LogSettings;

pub struct Gateway {
    sources: BTreeMap<String, Source>,
    push_retention_days: BTreeMap<String, i64>,
    push_dir: std::path::PathBuf,
    rules: Arc<RuleSet>,
    key: [u8; 32],
}

impl Gateway {
    /// Compiles the rules once; a team's rule that does not compile stops the start.
    pub fn new(settings: &LogSettings, key: [u8; 32]) -> Result<Self, String> {
        let mut rules = match settings.rules.as_str() {
            "builtin" => ward_redact::builtin_rules().map_err(|e| e.to_string())?,
            _ => {
                let (standard, _skipped) = RuleSet::standard().map_err(|e| e.to_string())?;
                standard.rules().to_vec()
            }
        };
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
        let rules = RuleSet::new(rules).map_err(|e| format!("redaction: {e}"))?;
        Ok(Self {
            sources: settings.sources.clone(),
            push_retention_days: settings.push_retention_days.clone(),
            push_dir: settings.push_dir.clone(),
            rules: Arc::new(rules),
            key,
        })
    }

    pub fn source(&self, resource: &str) -> Option<&Source> {
        self.sources.get(resource)
    }

    /// Where `resource`'s pushed logs go and how many days they are kept, if it takes pushes.
    pub fn push_target(&self, resource: &str) -> Option<(&std::path::Path, i64)> {
        self.push_retention_days.get(resource).map(|days| (self.push_dir.as_path(), *days))
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.clone()
    }

    /// Pseudonyms under the grant's own key, HMAC(key, grant id): stable within one grant,
    /// unlinkable across grants.
    pub fn pseudonyms(&self, grant: &GrantId) -> Pseudonyms {
        let mut grant_key = [0u8; 32];
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) {
            mac.update(grant.as_str().as_bytes());
            grant_key.copy_from_slice(&mac.finalize().into_bytes());
        }
        Pseudonyms::new(&grant_key)
    }
}
