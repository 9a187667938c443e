//! What an API token may be used for. A token's scopes narrow what its holder's ward roles
//! allow; they never add to them: a `read` token of an admin reads everything and changes
//! nothing, a `push` token of a service pushes logs and reads nothing.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One kind of use of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TokenScope {
    /// `ward check` and a service following its debug level.
    Check,
    /// Pushing logs into the gateway.
    Push,
    /// Every read: requests, grants, the audit log, findings, reports, the logs one holds a
    /// grant on.
    Read,
    /// Pushing people into the directory (SCIM): a token of its own, which `admin` does not
    /// stand in for.
    Scim,
    /// Everything the holder's roles allow, changes included (requesting, approving, revoking),
    /// but SCIM.
    Admin,
}

impl TokenScope {
    pub const ALL: [Self; 5] = [Self::Check, Self::Push, Self::Read, Self::Scim, Self::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Push => "push",
            Self::Read => "read",
            Self::Scim => "scim",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == text)
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("unknown scope `{0}`; scopes: check, push, read, scim, admin")]
    Unknown(String),
    #[error("no scope given; scopes: check, push, read, scim, admin")]
    Empty,
}

/// A token's scopes: a non-empty set, kept sorted.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scopes(Vec<TokenScope>);

impl Scopes {
    /// Everything: what a token had before scopes existed, a person's identity-provider token
    /// and a local operator.
    pub fn all() -> Self {
        Self(vec![TokenScope::Admin])
    }

    pub fn new(scopes: impl IntoIterator<Item = TokenScope>) -> Result<Self, ScopeError> {
        let mut scopes: Vec<TokenScope> = scopes.into_iter().collect();
        scopes.sort_unstable();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(ScopeError::Empty);
        }
        Ok(Self(scopes))
    }

    /// Scopes written as words separated by spaces or commas (`check push`, `read,check`).
    pub fn parse(text: &str) -> Result<Self, ScopeError> {
        let words = text.split([' ', ',']).filter(|word| !word.is_empty());
        let scopes = words
            .map(|word| TokenScope::parse(word).ok_or_else(|| ScopeError::Unknown(word.to_owned())))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(scopes)
    }

    /// Whether a token with these scopes may be used for what `needed` names: `admin` is good
    /// for everything but SCIM, which takes a token of its own.
    pub fn covers(&self, needed: TokenScope) -> bool {
        let admin_covers = needed != TokenScope::Scim;
        self.0.iter().any(|&scope| scope == needed || (scope == TokenScope::Admin && admin_covers))
    }

    pub fn iter(&self) -> impl Iterator<Item = TokenScope> + '_ {
        self.0.iter().copied()
    }

    pub fn names(&self) -> Vec<String> {
        self.iter().map(|scope| scope.as_str().to_owned()).collect()
    }
}

/// Space-separated, as OAuth 2.0 writes scopes (RFC 6749 §3.3): how the store keeps them.
impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

impl Serialize for Scopes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter().map(TokenScope::as_str))
    }
}

impl<'de> Deserialize<'de> for Scopes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let words = Vec::<String>::deserialize(deserializer)?;
        Self::parse(&words.join(" ")).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_covers_everything_and_the_others_only_themselves() {
        let admin = Scopes::all();
        assert!(TokenScope::ALL.iter().all(|&scope| admin.covers(scope) != (scope == TokenScope::Scim)));
        assert!(Scopes::parse("scim").unwrap().covers(TokenScope::Scim), "SCIM takes a token of its own");
        let push = Scopes::parse("push").unwrap();
        assert!(push.covers(TokenScope::Push));
        assert!(!push.covers(TokenScope::Read));
        assert!(!push.covers(TokenScope::Check));
        assert!(!push.covers(TokenScope::Admin));
        let two = Scopes::parse("read,check").unwrap();
        assert!(two.covers(TokenScope::Read) && two.covers(TokenScope::Check));
        assert!(!two.covers(TokenScope::Push) && !two.covers(TokenScope::Admin));
    }

    #[test]
    fn written_sorted_once_each_and_read_back() {
        let scopes = Scopes::parse("read check, read").unwrap();
        assert_eq!(scopes.to_string(), "check read");
        assert_eq!(Scopes::parse(&scopes.to_string()).unwrap(), scopes);
        let json = serde_json::to_string(&scopes).unwrap();
        assert_eq!(json, r#"["check","read"]"#);
        assert_eq!(serde_json::from_str::<Scopes>(&json).unwrap(), scopes);
    }

    #[test]
    fn nothing_or_an_unknown_word_is_refused() {
        assert_eq!(Scopes::parse(" , "), Err(ScopeError::Empty));
        assert_eq!(Scopes::parse("read write"), Err(ScopeError::Unknown("write".into())));
        assert_eq!(Scopes::parse("READ"), Err(ScopeError::Unknown("READ".into())));
        assert!(serde_json::from_str::<Scopes>(r#"["root"]"#).is_err());
    }
}
