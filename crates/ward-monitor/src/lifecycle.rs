//! A finding's lifecycle: `open` → `acknowledged` → `resolved` or `dismissed` (a false positive),
//! and `open` straight to either end. Closed findings stay closed: the same condition seen again
//! later opens a new one.

use ward_store::FindingState;

/// A move a person makes on a finding, with a comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Acknowledge,
    Resolve,
    Dismiss,
}

impl Step {
    pub const ALL: [Step; 3] = [Self::Acknowledge, Self::Resolve, Self::Dismiss];

    /// Where the finding goes.
    pub fn target(self) -> FindingState {
        match self {
            Self::Acknowledge => FindingState::Acknowledged,
            Self::Resolve => FindingState::Resolved,
            Self::Dismiss => FindingState::Dismissed,
        }
    }

    /// The verb, as commands and errors say it.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Acknowledge => "acknowledge",
            Self::Resolve => "resolve",
            Self::Dismiss => "dismiss",
        }
    }

    /// Whether a finding in `from` may take this step.
    pub fn allowed_from(self, from: FindingState) -> bool {
        match self {
            Self::Acknowledge => from == FindingState::Open,
            Self::Resolve | Self::Dismiss => from.is_live(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_machine() {
        use FindingState::*;
        let allowed: Vec<(FindingState, FindingState)> = FindingState::ALL
            .into_iter()
            .flat_map(|from| {
                Step::ALL.into_iter().filter(move |s| s.allowed_from(from)).map(move |s| (from, s.target()))
            })
            .collect();
        assert_eq!(
            allowed,
            [
                (Open, Acknowledged),
                (Open, Resolved),
                (Open, Dismissed),
                (Acknowledged, Resolved),
                (Acknowledged, Dismissed),
            ]
        );
    }
}
