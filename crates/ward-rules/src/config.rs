//! `[rules.ID]` in ward.toml: each rule's switch, severity and thresholds.

use std::collections::BTreeMap;

use serde::Serialize;
use ward_core::duration::parse_duration;

use crate::{RuleId, Severity};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("[rules.{rule}] is not a rule ward knows (known: {known})")]
    UnknownRule { rule: String, known: String },
    #[error("`rules.{rule}.{key}`: {problem}")]
    BadValue { rule: String, key: String, problem: String },
}

/// A threshold's kind: how it is written in ward.toml and read by the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// A whole number ≥ 1.
    Count(i64),
    /// A duration (`90s`, `24h`), kept in seconds.
    Duration(i64),
}

impl Threshold {
    fn value(self) -> i64 {
        match self {
            Self::Count(n) | Self::Duration(n) => n,
        }
    }
}

/// One rule's settings after defaults are applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleSettings {
    pub enabled: bool,
    pub severity: Severity,
    /// Rule-specific thresholds by name (`count`, `window`, …). A duration is in seconds.
    pub thresholds: BTreeMap<&'static str, i64>,
}

impl RuleSettings {
    /// The threshold `name` (one of the rule's [`defaults`]); 0 for a name the rule lacks.
    pub fn threshold(&self, name: &str) -> i64 {
        self.thresholds.get(name).copied().unwrap_or(0)
    }
}

/// Every rule's settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RulesConfig {
    /// Indexed by `RuleId as usize`, one entry per rule.
    rules: Vec<RuleSettings>,
}

/// A rule's default severity and thresholds (names and kinds).
pub fn defaults(rule: RuleId) -> (Severity, Vec<(&'static str, Threshold)>) {
    use RuleId::*;
    use Severity::*;
    use Threshold::{Count, Duration};
    const HOUR: i64 = 3600;
    const DAY: i64 = 24 * HOUR;
    match rule {
        SelfApproval => (High, vec![]),
        GrantWithoutApproval => (High, vec![]),
        StaleApproval => (Medium, vec![("max_age", Duration(DAY))]),
        RevocationOverdue => (High, vec![("tolerance", Duration(60))]),
        UseOutsideWindow => (Critical, vec![]),
        TooFrequent => (Medium, vec![("count", Count(5)), ("window", Duration(DAY))]),
        ExcessiveDuration => (Low, vec![("idle", Duration(HOUR))]),
        WeakJustification => (Low, vec![("min_length", Count(12))]),
        UnusedEligibility => (Info, vec![("window", Duration(30 * DAY))]),
        Drift => (High, vec![]),
        TooManyHolders => (Medium, vec![("count", Count(5))]),
        OffHours => (Low, vec![]),
        RubberStamp => {
            (Medium, vec![("within", Duration(30)), ("count", Count(5)), ("window", Duration(7 * DAY))])
        }
        BreakglassUsed => (Medium, vec![]),
        IntegrityFailure => (Critical, vec![]),
        ReviewOverdue => (High, vec![]),
        DenialBurst => (Medium, vec![("count", Count(10)), ("window", Duration(HOUR))]),
    }
}

fn default_settings(rule: RuleId) -> RuleSettings {
    let (severity, thresholds) = defaults(rule);
    let thresholds = thresholds.into_iter().map(|(name, t)| (name, t.value())).collect();
    RuleSettings { enabled: true, severity, thresholds }
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self { rules: RuleId::ALL.into_iter().map(default_settings).collect() }
    }
}

impl RulesConfig {
    /// Reads `[rules]` (a table of `[rules.ID]` tables) over the defaults. Anything ward does
    /// not know or cannot read is an error naming its key, so a typo never switches a rule off
    /// silently.
    pub fn from_table(table: &toml::Table) -> Result<Self, ConfigError> {
        let mut config = Self::default();
        for (name, value) in table {
            let Some(rule) = RuleId::parse(name) else {
                let known = RuleId::ALL.map(RuleId::as_str).join(", ");
                return Err(ConfigError::UnknownRule { rule: name.clone(), known });
            };
            let bad = |key: &str, problem: String| ConfigError::BadValue {
                rule: name.clone(),
                key: key.to_owned(),
                problem,
            };
            let toml::Value::Table(settings) = value else {
                return Err(bad("", "must be a table of settings".into()));
            };
            let (_, kinds) = defaults(rule);
            let entry = &mut config.rules[rule as usize];
            for (key, value) in settings {
                match key.as_str() {
                    "enabled" => {
                        entry.enabled =
                            value.as_bool().ok_or_else(|| bad(key, "must be true or false".into()))?;
                    }
                    "severity" => {
                        let text = value.as_str().unwrap_or_default();
                        entry.severity = Severity::parse(text).ok_or_else(|| {
                            bad(
                                key,
                                format!("must be one of {}", Severity::ALL.map(Severity::as_str).join(", ")),
                            )
                        })?;
                    }
                    _ => {
                        let Some((threshold, kind)) = kinds.iter().find(|(n, _)| *n == key.as_str()) else {
                            let mut known = vec!["enabled", "severity"];
                            known.extend(kinds.iter().map(|(n, _)| *n));
                            return Err(bad(key, format!("unknown setting (known: {})", known.join(", "))));
                        };
                        let read = match kind {
                            Threshold::Count(_) => value
                                .as_integer()
                                .filter(|n| *n >= 1)
                                .ok_or_else(|| bad(key, "must be a whole number of at least 1".into()))?,
                            Threshold::Duration(_) => value
                                .as_str()
                                .and_then(|text| parse_duration(text).ok())
                                .and_then(|seconds| i64::try_from(seconds).ok())
                                .filter(|s| *s >= 1)
                                .ok_or_else(|| {
                                    bad(key, "must be a duration such as \"90s\", \"30m\" or \"24h\"".into())
                                })?,
                        };
                        entry.thresholds.insert(threshold, read);
                    }
                }
            }
        }
        Ok(config)
    }

    /// The settings of `rule`.
    pub fn settings(&self, rule: RuleId) -> &RuleSettings {
        &self.rules[rule as usize]
    }

    /// Every rule with its settings, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (RuleId, &RuleSettings)> {
        RuleId::ALL.into_iter().zip(&self.rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<RulesConfig, ConfigError> {
        let table: toml::Table = text.parse().unwrap();
        RulesConfig::from_table(&table)
    }

    #[test]
    fn settings_override_the_defaults() {
        let config = read(
            "[too-frequent]\ncount = 3\nwindow = \"2h\"\nseverity = \"high\"\n[off-hours]\nenabled = false\n",
        )
        .unwrap();
        let frequent = config.settings(RuleId::TooFrequent);
        assert_eq!((frequent.threshold("count"), frequent.threshold("window")), (3, 7200));
        assert_eq!(frequent.severity, Severity::High);
        assert!(!config.settings(RuleId::OffHours).enabled);
        assert!(config.settings(RuleId::DenialBurst).enabled);
        assert_eq!(config.iter().count(), RuleId::ALL.len());
    }

    #[test]
    fn a_bad_setting_names_its_key() {
        let error = |text: &str| read(text).unwrap_err().to_string();
        assert!(error("[too-often]\ncount = 3\n").starts_with("[rules.too-often] is not a rule"));
        assert!(error("[too-frequent]\ncount = 0\n").starts_with("`rules.too-frequent.count`"));
        assert!(error("[too-frequent]\nwindow = \"soon\"\n").starts_with("`rules.too-frequent.window`"));
        assert!(
            error("[too-frequent]\nseverity = \"urgent\"\n").starts_with("`rules.too-frequent.severity`")
        );
        assert!(
            error("[too-frequent]\nthreshold = 2\n")
                .contains("unknown setting (known: enabled, severity, count, window)")
        );
        assert!(error("[off-hours]\nenabled = \"no\"\n").starts_with("`rules.off-hours.enabled`"));
    }
}
