//! `ward insights` over grants played through the broker on a moved clock, on both stores.

use super::*;

use ward_monitor::Insights;
use ward_monitor::insights::MAX_PERIOD_SECONDS;
use ward_rules::insights::{Report, RoleReport, Shares};

on_both_backends!(insights_follow_grants_played_through_the_broker, insights_are_for_auditors_and_admins);

fn role<'a>(report: &'a Report, resource: &str, role: &str) -> &'a RoleReport {
    report
        .roles
        .iter()
        .find(|r| r.resource == resource && r.role == role)
        .unwrap_or_else(|| panic!("no {resource} {role} in {report:#?}"))
}

impl World {
    /// `requester` asks for `minutes` of `read` on payments-api; `approver` approves `wait`
    /// later. Returns the grant.
    async fn granted_after(
        &self,
        requester: &str,
        minutes: u64,
        approver: &str,
        wait: SignedDuration,
    ) -> String {
        let ask = RequestInput {
            resource: "logs:payments-api".into(),
            role: "read".into(),
            duration_seconds: minutes * 60,
            reason: "INC-4312 checkout 500s".into(),
            ticket: None,
            start_at: None,
            breakglass: false,
        };
        let request = self.broker.create_request(&self.who(requester), ask).await.unwrap();
        self.clock.advance(wait);
        let approved = self.broker.approve(&self.who(approver), request.id.as_str(), None).await.unwrap();
        approved.grant_id.unwrap().0
    }

    /// `who` checks their own `read` on `resource` (a use, once the grant is live).
    async fn uses(&self, who: &str, resource: &str) {
        let outcome = self.broker.check(&self.who(who), who, "read", resource).await.unwrap();
        assert!(outcome.allowed, "{outcome:?}");
    }

    /// Moves the clock by `by` and does what came due, as the scheduler would.
    async fn later(&self, by: SignedDuration) {
        self.clock.advance(by);
        self.broker.flush_usage().await.unwrap();
        self.broker.run_due(self.clock.now()).await.unwrap();
    }
}

async fn insights_follow_grants_played_through_the_broker(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    let mins = SignedDuration::from_mins;

    // An hour's grant, used from its 3rd to its 28th minute: 25 of 60 minutes (41.7 %).
    let used = w.granted_after("alice", 60, "bob", SignedDuration::from_secs(4)).await;
    w.later(mins(3)).await;
    w.uses("alice", "logs:payments-api").await;
    w.later(mins(25)).await;
    w.uses("alice", "logs:payments-api").await;
    w.later(mins(40)).await;
    // An hour's grant nobody uses.
    let unused = w.granted_after("alice", 60, "bob", SignedDuration::from_secs(5)).await;
    w.later(mins(61)).await;
    // A single look at a four-hour grant: a share of nothing.
    let look = w.granted_after("alice", 240, "bob", SignedDuration::from_secs(3)).await;
    w.later(mins(1)).await;
    w.uses("alice", "logs:payments-api").await;
    w.later(SignedDuration::from_hours(4)).await;
    // On call with an incident ticket: approved by the policy, used once.
    let oncall = RequestInput {
        resource: "logs:checkout-web".into(),
        role: "read".into(),
        duration_seconds: 1800,
        reason: "checkout errors spiking".into(),
        ticket: Some("INC-77".into()),
        start_at: None,
        breakglass: false,
    };
    let auto = w.broker.create_request(&w.who("dave"), oncall).await.unwrap();
    assert_eq!(auto.state, RequestState::Approved);
    w.uses("dave", "logs:checkout-web").await;
    // A grant still live when the report is asked for.
    w.granted_after("erin", 30, "bob", SignedDuration::from_mins(20)).await;
    w.later(mins(1)).await;

    let carol = w.who("carol");
    let report = Insights::new(w.broker.clone()).report(&carol, 86_400).await.unwrap();
    let until = w.clock.now();
    assert_eq!((report.since, report.until), (until - SignedDuration::from_hours(24), until));
    let in_period = w.events().await.iter().filter(|e| e.occurred_at >= report.since).count();
    assert_eq!(report.events, in_period as u64);
    assert_eq!(report.fast_approval_seconds, 30, "[rules.rubber-stamp] within");

    let read = role(&report, "logs:payments-api", "read");
    assert_eq!((read.requests, read.grants, read.grants_open), (4, 4, 1));
    assert_eq!((read.grants_measured, read.grants_never_used), (2, 1));
    assert_eq!(read.never_used_examples, [unused]);
    assert_ne!(used, read.never_used_examples[0]);
    // Shares 0 and 41.7 %: the lower middle one, and the top.
    assert_eq!(read.used_share, Some(Shares { median: 0.0, p95: 0.417 }));
    assert_eq!((read.requested_seconds, read.used_seconds), ((60 + 60 + 240) * 60, 25 * 60));
    // Only the four-hour one used under a quarter of its window.
    let idle: Vec<(&str, &str, u64, u64)> = read
        .idle_grants
        .iter()
        .map(|g| (g.grant_id.as_str(), g.holder.as_str(), g.window_seconds, g.used_seconds))
        .collect();
    assert_eq!(idle, [(look.as_str(), "alice", 4 * 3600, 0)]);
    let bob = read.approvers.iter().find(|a| a.approver == "bob").unwrap();
    assert_eq!((bob.approvals, bob.fast, bob.median_seconds, bob.max_seconds), (4, 3, 4, 1200));
    assert!(!bob.pattern, "one approval took 20 minutes");
    // The quickstart's policies: payments-api read up to 4h, asked for 4h once.
    assert_eq!((read.longest_requested_seconds, read.max_duration_seconds), (Some(4 * 3600), Some(4 * 3600)));
    assert!(!read.max_duration_unreached);
    assert!(read.never_asked.contains(&"dave".to_owned()), "{:?}", read.never_asked);
    assert!(!read.never_asked.iter().any(|u| u == "alice" || u == "erin"), "{:?}", read.never_asked);
    assert!(!read.never_asked.contains(&"carol".to_owned()), "auditors are eligible for nothing");

    let checkout = role(&report, "logs:checkout-web", "read");
    assert_eq!((checkout.grants, checkout.automatic_approvals, checkout.grants_open), (1, 1, 1));
    assert!(checkout.approvers.is_empty());
    // Up to 2h allowed, 30m asked for.
    assert_eq!(checkout.max_duration_seconds, Some(2 * 3600));
    assert!(checkout.max_duration_unreached);

    // Nobody asked for unmasked reads: every eligible person is named.
    let unmasked = role(&report, "logs:payments-api", "read-unmasked");
    assert_eq!(unmasked.requests, 0);
    assert_eq!(unmasked.never_asked.len() as u64, unmasked.eligible);
    assert!(unmasked.eligible > 0);

    // A shorter period sees only the last grants.
    let admin = w.who("admin");
    let recent = Insights::new(w.broker.clone()).report(&admin, 3600).await.unwrap();
    let read = role(&recent, "logs:payments-api", "read");
    assert_eq!((read.requests, read.grants, read.grants_open), (1, 1, 1));
}

async fn insights_are_for_auditors_and_admins(store: Arc<dyn Store>) {
    let w = World::new(store).await;
    w.approved("alice", "bob").await;
    let insights = Insights::new(w.broker.clone());
    for who in ["alice", "bob"] {
        let refused = insights.report(&w.who(who), 86_400).await.unwrap_err();
        assert!(matches!(refused, BrokerError::Forbidden(_)), "{who}: {refused:?}");
    }
    for period in [0, MAX_PERIOD_SECONDS + 1] {
        let refused = insights.report(&w.who("carol"), period).await.unwrap_err();
        assert!(matches!(refused, BrokerError::Unacceptable(_)), "{period}: {refused:?}");
    }
    let longest = insights.report(&w.who("admin"), MAX_PERIOD_SECONDS).await.unwrap();
    assert_eq!(role(&longest, "logs:payments-api", "read").grants, 1);
    // Reading writes nothing.
    let head = w.head().await;
    insights.report(&w.who("carol"), 86_400).await.unwrap();
    assert_eq!(w.head().await, head);
}
