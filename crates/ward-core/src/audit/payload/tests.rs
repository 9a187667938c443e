use serde_json::json;

use super::*;
use crate::audit::canonical_json;

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

/// One payload of every event type (a new type must be added here: the match is exhaustive).
fn sample(event_type: EventType) -> Payload {
    use EventType as T;
    let window = GrantWindow {
        role: "read".into(),
        starts_at: at("2027-01-15T08:00:00Z"),
        expires_at: at("2027-01-15T08:30:00Z"),
    };
    let started = GrantStarted {
        role: "read".into(),
        starts_at: window.starts_at,
        expires_at: window.expires_at,
        policy_hash: Some("h".into()),
        idle_timeout_seconds: Some(900),
        due_at: None,
        processed_at: None,
        lag_ms: None,
    };
    let deadline = GrantDeadline {
        role: "read".into(),
        starts_at: window.starts_at,
        expires_at: window.expires_at,
        due_at: window.expires_at,
        processed_at: at("2027-01-15T08:30:00.25Z"),
        lag_ms: 250,
        idle_timeout_seconds: Some(900),
        last_used_at: Some(at("2027-01-15T08:15:00Z")),
    };
    let finding = FindingRecorded {
        finding_id: "fnd_1".into(),
        rule: "self-approval".into(),
        severity: "high".into(),
        key: "self-approval:alice:req_1".into(),
        summary: "alice tried to approve her own request".into(),
        seqs: vec![3, 4],
        occurrences: 2,
    };
    let moved = FindingMoved {
        finding_id: "fnd_1".into(),
        rule: "self-approval".into(),
        severity: "high".into(),
        from: "open".into(),
        to: "acknowledged".into(),
    };
    let token = TokenRecorded { token_id: "tok_1".into(), expires_at: window.expires_at, scopes: None };
    let user_changed = DirectoryUserChanged {
        user: "pat".into(),
        source: "oidc".into(),
        subject: Some("00u1".into()),
        groups: vec!["engineering".into()],
        groups_added: vec!["engineering".into()],
        groups_removed: vec![],
        snapshot: Some("ab".into()),
        revoked_grants: vec![],
    };
    match event_type {
        T::RequestCreated => Payload::RequestCreated(RequestCreated {
            role: "read".into(),
            duration_seconds: 1800,
            ticket: Some("INC-1".into()),
            start_at: None,
            approvals_required: 1,
            stages: vec![Stage { name: "lead".into(), approvals: 1 }],
            policy_ids: vec!["p".into()],
            idle_timeout_seconds: Some(900),
            policy_hash: "h".into(),
            on_call_schedules: vec![],
            business_hours: true,
            extends_grant: None,
            breakglass: false,
        }),
        T::RequestCancelled => Payload::RequestCancelled(NoDetails {}),
        T::RequestLapsed => Payload::RequestLapsed(Lateness {
            due_at: window.starts_at,
            processed_at: window.expires_at,
            lag_ms: 1_800_000,
        }),
        T::ApprovalGranted => Payload::ApprovalGranted(ApprovalGranted::ByApprover(ApproverVote {
            approvals: 1,
            approvals_required: 2,
            stages: Some(vec!["lead".into()]),
            stages_unmet: vec![],
        })),
        T::ApprovalDenied => Payload::ApprovalDenied(ApprovalDenied::Automatic(AutomaticDecision {
            automatic: True,
            policy_ids: vec!["night".into()],
        })),
        T::GrantScheduled => Payload::GrantScheduled(started.clone()),
        T::GrantActivated => Payload::GrantActivated(started),
        T::GrantReleased => Payload::GrantReleased(window.clone()),
        T::GrantRevoked => Payload::GrantRevoked(window.clone()),
        T::GrantExpired => Payload::GrantExpired(deadline.clone()),
        T::GrantExtended => Payload::GrantExtended(GrantExtended {
            role: "read".into(),
            starts_at: window.starts_at,
            expires_at: at("2027-01-15T09:00:00Z"),
            extension_request_id: "req_2".into(),
            added_seconds: 1800,
            previous_expires_at: window.expires_at,
        }),
        T::BreakglassUsed => Payload::BreakglassUsed(BreakglassUsed {
            role: "read".into(),
            starts_at: window.starts_at,
            expires_at: window.expires_at,
            policy_ids: vec!["glass".into()],
            review_due_at: at("2027-01-16T08:00:00Z"),
            policy_hash: Some("h".into()),
        }),
        T::BreakglassReviewed => Payload::BreakglassReviewed(BreakglassReviewed {
            role: "read".into(),
            starts_at: window.starts_at,
            expires_at: window.expires_at,
            review_due_at: at("2027-01-16T08:00:00Z"),
            late: false,
        }),
        T::BreakglassOverdue => Payload::BreakglassOverdue(deadline),
        T::AccessUsed => Payload::AccessUsed(AccessUsed::Summary(UseSummary {
            summary: True,
            role: "read".into(),
            count: 3,
            first_at: window.starts_at,
            last_at: window.expires_at,
            written_at: window.expires_at,
            via: None,
        })),
        T::AccessDenied => {
            Payload::AccessDenied(AccessDenied::Check(CheckRefused { action: "read".into(), check: True }))
        }
        T::PolicyChanged => Payload::PolicyChanged(PolicyChanged {
            hash: "h2".into(),
            previous_hash: Some("h1".into()),
            policy_ids: vec!["p".into()],
            snapshot: Some("ab".repeat(32)),
        }),
        T::PolicyRejected => Payload::PolicyRejected(PolicyRejected {
            error: "x.cedar:1:1: oops".into(),
            hash_in_force: "h".into(),
        }),
        T::ConfigChanged => Payload::ConfigChanged(serde_json::Map::new()),
        T::OncallUnavailable => Payload::OncallUnavailable(OncallUnavailable {
            source: "lookup".into(),
            fallback: "nobody is on call".into(),
        }),
        T::AuditCheckpoint => Payload::AuditCheckpoint(AuditCheckpoint {
            origin: "ward/audit".into(),
            size: 7,
            root: "ab".into(),
            note: "note".into(),
            key: Some("ward/audit+1234+AAAA".into()),
        }),
        T::TokenCreated => Payload::TokenCreated(token.clone()),
        T::TokenRevoked => Payload::TokenRevoked(token),
        T::SessionStarted | T::SessionEnded => {
            let session = SessionRecorded {
                session_id: "ses_1".into(),
                source: "oidc".into(),
                mfa: true,
                expires_at: "2026-01-01T08:00:00Z".parse().unwrap(),
                ended_because: (event_type == T::SessionEnded).then(|| "signed-out".into()),
            };
            match event_type {
                T::SessionStarted => Payload::SessionStarted(session),
                _ => Payload::SessionEnded(session),
            }
        }
        T::DirectoryReloaded => Payload::DirectoryReloaded(DirectoryChanges {
            users_added: vec!["frank".into()],
            ..DirectoryChanges::default()
        }),
        T::DirectoryUserCreated => Payload::DirectoryUserCreated(user_changed.clone()),
        T::DirectoryUserUpdated => Payload::DirectoryUserUpdated(user_changed.clone()),
        T::DirectoryUserDeactivated => Payload::DirectoryUserDeactivated(DirectoryUserChanged {
            revoked_grants: vec!["grt_1".into()],
            ..user_changed.clone()
        }),
        T::DirectoryUserDeleted => Payload::DirectoryUserDeleted(user_changed),
        T::DirectoryGroupCreated | T::DirectoryGroupUpdated | T::DirectoryGroupDeleted => {
            let group = DirectoryGroupChanged {
                group: "payments-leads".into(),
                id: "grp_1".into(),
                external_id: None,
                previous_name: Some("leads".into()),
                members: vec!["pat".into()],
                members_added: vec!["pat".into()],
                members_removed: vec![],
                snapshot: Some("ab".into()),
            };
            match event_type {
                T::DirectoryGroupCreated => Payload::DirectoryGroupCreated(group),
                T::DirectoryGroupUpdated => Payload::DirectoryGroupUpdated(group),
                _ => Payload::DirectoryGroupDeleted(group),
            }
        }
        T::AuditKeyChanged => Payload::AuditKeyChanged(AuditKeyChanged {
            previous_key: None,
            previous_key_id: None,
            previous_checkpoint_size: None,
            key: "ward/audit+1234+AAAA".into(),
            key_id: Some("1234".into()),
        }),
        T::FindingOpened => Payload::FindingOpened(finding.clone()),
        T::FindingUpdated => Payload::FindingUpdated(finding),
        T::FindingAcknowledged => Payload::FindingAcknowledged(moved.clone()),
        T::FindingResolved => Payload::FindingResolved(moved.clone()),
        T::FindingDismissed => Payload::FindingDismissed(moved),
        T::GrantAudited => Payload::GrantAudited(GrantAudited {
            justified: Verdict::Pass,
            used_as_intended: Verdict::Fail,
            revoked_promptly: Verdict::Pending,
            revision: 1,
            reasons: vec!["used_as_intended: read after release".into()],
            seqs: CheckpointSeqs {
                justified: vec![1, 2],
                used_as_intended: vec![5],
                revoked_promptly: vec![3, 4],
            },
            ended_by: Some("released".into()),
            ended_at: Some(window.expires_at),
            revocation_lag_ms: Some(0),
            idle_ms: Some(60_000),
        }),
        T::NotificationFailed => Payload::NotificationFailed(NotificationFailed {
            sink: "slack".into(),
            event_seq: Some(42),
            message_id: "msg_42".into(),
            attempts: 5,
            error: "503 Service Unavailable".into(),
            status: Some(503),
        }),
        T::DebugLevelRaised | T::DebugLevelRestored => {
            let changed = DebugLevelChanged {
                driver: "postgres".into(),
                setting: "log_min_messages".into(),
                before: "warning".into(),
                after: "debug1".into(),
                grant_ids: vec!["grt_1".into()],
                revocation_lag_ms: None,
            };
            if event_type == T::DebugLevelRaised {
                Payload::DebugLevelRaised(changed)
            } else {
                Payload::DebugLevelRestored(DebugLevelChanged {
                    before: "debug1".into(),
                    after: "warning".into(),
                    revocation_lag_ms: Some(420),
                    ..changed
                })
            }
        }
        T::ProvisionerFailed => Payload::ProvisionerFailed(ProvisionerFailed {
            driver: "postgres".into(),
            action: "restore".into(),
            error: "cannot reach the target: connection refused".into(),
            grant_ids: vec!["grt_1".into()],
        }),
        T::ProvisionerApplied => Payload::ProvisionerApplied(ProvisionerApplied {
            driver: "postgres-role".into(),
            account: "ward_alice_0190".into(),
            member_of: "orders_readonly".into(),
            valid_until: window.expires_at,
        }),
        T::ProvisionerRemoved => Payload::ProvisionerRemoved(ProvisionerRemoved {
            driver: "postgres-role".into(),
            account: "ward_alice_0190".into(),
            sessions_ended: 1,
            revocation_lag_ms: Some(310),
        }),
        T::CredentialsIssued => {
            Payload::CredentialsIssued(CredentialsIssued { account: "ward_alice_0190".into() })
        }
        T::GrantExternallyModified => Payload::GrantExternallyModified(ExternallyModified {
            driver: "command".into(),
            setting: "/usr/local/bin/orders-loglevel".into(),
            expected: "info".into(),
            found: "debug".into(),
            reverted: false,
        }),
    }
}

#[test]
fn every_event_type_has_a_payload_that_round_trips() {
    for event_type in EventType::ALL {
        let payload = sample(event_type);
        assert_eq!(payload.event_type(), event_type);
        let value = payload.to_value();
        assert!(value.is_object(), "{event_type}: {value}");
        assert_eq!(Payload::parse(event_type, &value).unwrap(), payload, "{event_type}");
    }
}

/// The details agreed for the events of issue 13, as the other crates build and read them.
#[test]
fn the_new_events_have_the_agreed_form() {
    let text = |t| canonical_json(&sample(t).to_value());
    assert_eq!(
        text(EventType::FindingOpened),
        r#"{"finding_id":"fnd_1","key":"self-approval:alice:req_1","occurrences":2,"rule":"self-approval","seqs":[3,4],"severity":"high","summary":"alice tried to approve her own request"}"#
    );
    assert_eq!(
        text(EventType::FindingResolved),
        r#"{"finding_id":"fnd_1","from":"open","rule":"self-approval","severity":"high","to":"acknowledged"}"#
    );
    assert_eq!(
        text(EventType::GrantAudited),
        r#"{"ended_at":"2027-01-15T08:30:00Z","ended_by":"released","idle_ms":60000,"justified":"pass","reasons":["used_as_intended: read after release"],"revision":1,"revocation_lag_ms":0,"revoked_promptly":"pending","seqs":{"justified":[1,2],"revoked_promptly":[3,4],"used_as_intended":[5]},"used_as_intended":"fail"}"#
    );
    assert_eq!(
        text(EventType::NotificationFailed),
        r#"{"attempts":5,"error":"503 Service Unavailable","event_seq":42,"message_id":"msg_42","sink":"slack","status":503}"#
    );
    let no_status = Payload::NotificationFailed(NotificationFailed {
        sink: "hook".into(),
        event_seq: None,
        message_id: "msg_1".into(),
        attempts: 1,
        error: "connection refused".into(),
        status: None,
    });
    assert_eq!(no_status.to_value()["status"], Value::Null, "no status is written as null");
    assert_eq!(no_status.to_value()["event_seq"], Value::Null, "a notice before expiry is no event");
}

/// Fields ward added over time are missing from older logs: those still read, and are left out
/// again when written back.
#[test]
fn older_forms_still_read() {
    let created = json!({
        "role": "read", "duration_seconds": 1800, "ticket": null, "start_at": null,
        "approvals_required": 1, "policy_ids": ["p"], "policy_hash": "h",
    });
    let Payload::RequestCreated(created) = Payload::parse(EventType::RequestCreated, &created).unwrap()
    else {
        panic!("not a request")
    };
    assert!(created.stages.is_empty() && !created.breakglass && created.extends_grant.is_none());

    let approved = json!({ "approvals": 1, "approvals_required": 1 });
    assert!(matches!(
        Payload::parse(EventType::ApprovalGranted, &approved).unwrap(),
        Payload::ApprovalGranted(ApprovalGranted::ByApprover(ApproverVote { stages: None, .. }))
    ));

    let tail = json!({ "action": "logs.tail", "role": "read", "follow": false, "lines": 2, "bytes": 40 });
    let parsed = Payload::parse(EventType::AccessUsed, &tail).unwrap();
    assert!(matches!(&parsed, Payload::AccessUsed(AccessUsed::Tail(LogTail { redactions: None, .. }))));
    assert_eq!(parsed.to_value(), tail, "nothing added when written back");

    let follow = json!({ "action": "logs.follow", "lines": 1, "bytes": 10, "ended": "released" });
    assert!(matches!(
        Payload::parse(EventType::AccessUsed, &follow).unwrap(),
        Payload::AccessUsed(AccessUsed::Follow(_))
    ));
    let checkpoint = json!({ "origin": "o", "size": 3, "root": "ab", "note": "n" });
    assert_eq!(Payload::parse(EventType::AuditCheckpoint, &checkpoint).unwrap().to_value(), checkpoint);
}

#[test]
fn every_form_of_use_and_refusal_reads_as_itself() {
    let used = |details: Value| match Payload::parse(EventType::AccessUsed, &details).unwrap() {
        Payload::AccessUsed(used) => used,
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        used(json!({"role": "read", "first_use": true, "via": "check"})),
        AccessUsed::FirstUse(_)
    ));
    let search = used(json!({
        "action": "logs.search", "role": "read", "pattern": null, "since": null, "until": null,
        "lines": 1, "bytes": 2, "truncated": false, "files": 1, "redactions": {"email": 1},
    }));
    assert!(matches!(&search, AccessUsed::Search(s) if s.redactions["email"] == 1));
    assert_eq!(search.role(), Some("read"));

    let denied = |details: Value| match Payload::parse(EventType::AccessDenied, &details).unwrap() {
        Payload::AccessDenied(denied) => denied,
        other => panic!("{other:?}"),
    };
    assert!(matches!(denied(json!({"action": "approve"})), AccessDenied::Refused(_)));
    assert!(matches!(denied(json!({"action": "read", "check": true})), AccessDenied::Check(_)));
    assert!(matches!(
        denied(json!({"action": "authenticate", "path": "/v1"})),
        AccessDenied::Authentication(_)
    ));
    let ask = denied(json!({"action": "request", "reason": "r", "ticket": null}));
    assert!(matches!(&ask, AccessDenied::Ask(RefusedAsk { ticket: None, .. })));
    let summary = denied(json!({
        "summary": true, "action": "read", "count": 7, "first_at": "2027-01-15T08:00:00Z",
        "last_at": "2027-01-15T08:01:00Z", "written_at": "2027-01-15T08:02:00Z",
    }));
    assert_eq!((summary.action(), summary.count(), ask.count()), ("read", 7, 1));
}

#[test]
fn wrong_types_and_unknown_forms_are_refused() {
    let error = |event_type, details: Value| Payload::parse(event_type, &details).unwrap_err().to_string();
    let mut created = sample(EventType::RequestCreated).to_value();
    created["duration_seconds"] = json!("1800");
    assert!(
        error(EventType::RequestCreated, created).starts_with("the details of a `request.created` event")
    );
    let mut window = sample(EventType::GrantReleased).to_value();
    window["expires_at"] = json!("tomorrow");
    error(EventType::GrantReleased, window);
    error(EventType::AccessUsed, json!({"role": "read", "first_use": false, "via": "check"}));
    let unknown = error(EventType::AccessUsed, json!({"action": "logs.download"}));
    assert!(unknown.contains("neither a first use"), "{unknown}");
    error(EventType::RequestCancelled, Value::Null);
    error(
        EventType::GrantAudited,
        json!({"justified": "maybe", "used_as_intended": "pass",
        "revoked_promptly": "pass", "revision": 1, "reasons": []}),
    );
    error(
        EventType::NotificationFailed,
        json!({"sink": "s", "event_seq": 1, "attempts": 1,
        "error": "e", "status": 70000}),
    );
}
