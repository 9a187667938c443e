use std::collections::BTreeMap;

use super::*;
use crate::directory::{ResourceEntry, UserEntry};
use crate::model::{RequestId, RequestState};

/// The quickstart world, parsed the way the service parses it (users, resources, tickets).
pub(crate) fn quickstart() -> PolicyEngine {
    let user = |groups: &[&str]| UserEntry { groups: groups.iter().map(|g| g.to_string()).collect() };
    let users = BTreeMap::from([
        ("alice".to_owned(), user(&["engineering", "payments"])),
        ("bob".to_owned(), user(&["engineering", "payments-leads"])),
        ("erin".to_owned(), user(&["engineering", "payments-leads"])),
        ("dave".to_owned(), user(&["engineering", "oncall"])),
        ("carol".to_owned(), user(&["auditors"])),
        ("admin".to_owned(), user(&["ward-admins"])),
    ]);
    let resource = |roles: &[&str]| ResourceEntry {
        kind: "logs".into(),
        description: String::new(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
    };
    let resources = BTreeMap::from([
        ("logs:payments-api".to_owned(), resource(&["read", "read-unmasked"])),
        ("logs:checkout-web".to_owned(), resource(&["read"])),
    ]);
    let directory = Directory::new(users, BTreeMap::new(), resources).unwrap();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/policies");
    let sources: Vec<PolicySource> = ["payments-api.cedar", "checkout-web.cedar", "org.cedar"]
        .iter()
        .map(|f| PolicySource {
            name: f.to_string(),
            text: std::fs::read_to_string(format!("{dir}/{f}")).unwrap(),
        })
        .collect();
    let tickets = BTreeMap::from([("incident".to_owned(), "^INC-[0-9]+$".to_owned())]);
    PolicyEngine::new(directory, &sources, &tickets).unwrap()
}

fn ask<'a>(
    who: &'a str,
    resource: &'a str,
    role: &'a str,
    secs: u64,
    ticket: Option<&'a str>,
) -> RequestAsk<'a> {
    RequestAsk {
        requester: who,
        resource,
        role,
        duration_seconds: secs,
        reason: "INC-4312 checkout 500s",
        ticket,
        ..RequestAsk::default()
    }
}

fn terms(verdict: RequestVerdict) -> RequestTerms {
    match verdict {
        RequestVerdict::Allowed(terms) => terms,
        RequestVerdict::Refused(r) => panic!("refused: {r}"),
    }
}

fn request_for(requester: &str, resource: &str, role: &str) -> AccessRequest {
    let at = jiff::Timestamp::UNIX_EPOCH;
    AccessRequest {
        id: RequestId::from("req_1"),
        requester: requester.into(),
        resource: resource.into(),
        role: role.into(),
        duration_seconds: 1800,
        reason: "because".into(),
        ticket: None,
        start_at: None,
        state: RequestState::Pending,
        created_at: at,
        decided_at: None,
        lapses_at: at,
        approvals: vec![],
        approvals_required: 1,
        grant_id: None,
        policy_ids: vec![],
        stages: vec![],
        max_holders: None,
        reciprocal_seconds: None,
        on_call_schedules: vec![],
        business_hours: false,
        extends_grant: None,
        breakglass: false,
        idle_timeout_seconds: None,
        version: 1,
    }
}

#[test]
fn quickstart_terms_follow_the_contract() {
    let engine = quickstart();
    let read = terms(engine.decide_request(&ask("alice", "logs:payments-api", "read", 1800, None)));
    assert_eq!(read.approvals_required, 1);
    assert_eq!(read.max_duration_seconds, 4 * 3600);
    assert_eq!(read.auto_approved_by, None);
    assert_eq!(read.policy_ids, vec!["payments-api.read".to_owned()]);

    let unmasked =
        terms(engine.decide_request(&ask("alice", "logs:payments-api", "read-unmasked", 1800, None)));
    assert_eq!(unmasked.approvals_required, 2);
    assert_eq!(unmasked.max_duration_seconds, 3600);
}

#[test]
fn over_the_maximum_names_the_maximum() {
    let engine = quickstart();
    let verdict = engine.decide_request(&ask("alice", "logs:payments-api", "read-unmasked", 7200, None));
    let RequestVerdict::Refused(refusal) = verdict else { panic!("allowed") };
    assert!(matches!(refusal, Refusal::TooLong { max_seconds: 3600, .. }));
    assert!(refusal.to_string().contains("maximum of 1h"), "{refusal}");
}

#[test]
fn unknown_names_list_what_exists() {
    let engine = quickstart();
    let RequestVerdict::Refused(refusal) =
        engine.decide_request(&ask("alice", "logs:nope", "read", 60, None))
    else {
        panic!("allowed")
    };
    assert_eq!(
        refusal.to_string(),
        "unknown resource `logs:nope`; known resources: logs:checkout-web, logs:payments-api"
    );
    let RequestVerdict::Refused(refusal) =
        engine.decide_request(&ask("alice", "logs:checkout-web", "write", 60, None))
    else {
        panic!("allowed")
    };
    assert!(refusal.to_string().contains("its roles: read"), "{refusal}");
}

#[test]
fn auditors_are_forbidden_to_request() {
    let engine = quickstart();
    let RequestVerdict::Refused(Refusal::NotPermitted { by, .. }) =
        engine.decide_request(&ask("carol", "logs:payments-api", "read", 60, None))
    else {
        panic!("carol was allowed to request")
    };
    assert_eq!(by, vec!["org.auditors-request-nothing".to_owned()]);
}

#[test]
fn oncall_with_incident_ticket_is_auto_approved_and_nobody_else() {
    let engine = quickstart();
    let auto = terms(engine.decide_request(&ask("dave", "logs:checkout-web", "read", 600, Some("INC-77"))));
    assert_eq!(auto.auto_approved_by, Some(vec!["checkout-web.oncall-incident".to_owned()]));
    let other_ticket =
        terms(engine.decide_request(&ask("dave", "logs:checkout-web", "read", 600, Some("JIRA-77"))));
    assert_eq!(other_ticket.auto_approved_by, None);
    let not_oncall =
        terms(engine.decide_request(&ask("alice", "logs:checkout-web", "read", 600, Some("INC-77"))));
    assert_eq!(not_oncall.auto_approved_by, None);
}

#[test]
fn approvers_follow_the_groups_and_never_the_requester() {
    let engine = quickstart();
    let payments = request_for("alice", "logs:payments-api", "read");
    assert!(engine.may_approve("bob", &payments));
    assert!(engine.may_approve("erin", &payments));
    assert!(!engine.may_approve("dave", &payments), "outside payments-leads");
    assert!(!engine.may_approve("admin", &payments));
    assert!(!engine.may_approve("carol", &payments));
    assert!(!engine.may_approve("nobody", &payments));

    let own = request_for("bob", "logs:payments-api", "read");
    assert!(!engine.may_approve("bob", &own), "self-approval");

    let checkout = request_for("alice", "logs:checkout-web", "read");
    assert!(engine.may_approve("dave", &checkout));
    assert!(!engine.may_approve("alice", &checkout));
}

#[test]
fn access_context_matches_the_schema() {
    let engine = quickstart();
    for (role, has_grant) in [("read", true), ("read-unmasked", true), ("read", false)] {
        let context = access_context(role, has_grant).unwrap();
        let validated = engine.decide("alice", "access", "logs:payments-api", context, Some(engine.schema()));
        assert_eq!(validated.0 == Decision::Allow, has_grant, "{role}");
        assert_eq!(engine.permits_access("alice", "logs:payments-api", role, has_grant).is_ok(), has_grant);
    }
}

#[test]
fn access_needs_a_grant() {
    let engine = quickstart();
    assert!(engine.permits_access("alice", "logs:payments-api", "read", true).is_ok());
    assert!(engine.permits_access("alice", "logs:payments-api", "read", false).is_err());
}

#[test]
fn bad_policies_are_refused_with_the_reason() {
    let directory = quickstart().directory().clone();
    let load = |text: &str| {
        PolicyEngine::new(
            directory.clone(),
            &[PolicySource { name: "t.cedar".into(), text: text.into() }],
            &BTreeMap::new(),
        )
    };
    assert!(matches!(load("permit (principal, action, resource"), Err(PolicyError::Parse { .. })));
    let unknown_attr =
        r#"permit (principal, action == Ward::Action::"request", resource) when { context.nope == 1 };"#;
    assert!(matches!(load(unknown_attr), Err(PolicyError::Validation(_))));
    let zero = r#"@approvals("0") permit (principal, action == Ward::Action::"request", resource);"#;
    assert!(matches!(load(zero), Err(PolicyError::Annotation { .. })));
    let bad_max =
        r#"@max_duration("forever") permit (principal, action == Ward::Action::"request", resource);"#;
    assert!(matches!(load(bad_max), Err(PolicyError::Annotation { .. })));
    let twice =
        r#"@id("x") permit (principal, action, resource); @id("x") forbid (principal, action, resource);"#;
    assert!(matches!(load(twice), Err(PolicyError::DuplicateId(_))));
}

#[test]
fn errors_say_file_line_and_column() {
    let directory = quickstart().directory().clone();
    let load = |text: &str| {
        let sources = [
            PolicySource {
                name: "fine.cedar".into(),
                text: "permit (principal, action, resource);\n".into(),
            },
            PolicySource { name: "team.cedar".into(), text: text.into() },
        ];
        PolicyEngine::new(directory.clone(), &sources, &BTreeMap::new()).err().unwrap().to_string()
    };
    let unparsable =
        "// payments\npermit (principal, action, resource);\n\npermit (principal action, resource);\n";
    let error = load(unparsable);
    assert!(error.contains("\nteam.cedar:4:"), "{error}");
    let invalid = "// payments\n@id(\"payments\")\npermit (principal, action == Ward::Action::\"request\", resource)\n  when { context.nope == 1 };\n";
    let error = load(invalid);
    assert!(error.contains("\nteam.cedar:4:10: for policy `payments`, attribute `nope`"), "{error}");
}

#[test]
fn the_hash_changes_with_the_policies() {
    let directory = quickstart().directory().clone();
    let load = |text: &str| {
        PolicyEngine::new(
            directory.clone(),
            &[PolicySource { name: "t.cedar".into(), text: text.into() }],
            &BTreeMap::new(),
        )
        .unwrap()
        .hash()
        .to_owned()
    };
    let a = load(r#"permit (principal, action == Ward::Action::"request", resource);"#);
    let b = load(r#"forbid (principal, action == Ward::Action::"request", resource);"#);
    assert_ne!(a, b);
    assert_eq!(a, load(r#"permit (principal, action == Ward::Action::"request", resource);"#));
}

fn with_policies(text: &str) -> Result<PolicyEngine, PolicyError> {
    let tickets = BTreeMap::from([
        ("incident".to_owned(), "^INC-[0-9]+$".to_owned()),
        ("change".to_owned(), "^CHG-[0-9]+$".to_owned()),
    ]);
    let sources = [PolicySource { name: "t.cedar".into(), text: text.into() }];
    PolicyEngine::new(quickstart().directory().clone(), &sources, &tickets)
}

const STRICT_AND_SLOW: &str = r#"
@id("strict") @approvals("1") @reason_min_length("20") @reason_refuses("debug, Test, n/a") @ticket("incident")
permit (principal, action == Ward::Action::"request", resource == Ward::Resource::"logs:payments-api")
when { context.role == "read" };
"#;

fn refusal(engine: &PolicyEngine, reason: &str, ticket: Option<&str>) -> String {
    let ask = RequestAsk { reason, ..ask("alice", "logs:payments-api", "read", 1800, ticket) };
    match engine.decide_request(&ask) {
        RequestVerdict::Refused(refusal @ Refusal::Unmet { .. }) => refusal.to_string(),
        other => panic!("expected an unmet requirement, got {other:?}"),
    }
}

#[test]
fn requirements_on_reason_and_ticket_refuse_with_what_is_missing() {
    let engine = with_policies(STRICT_AND_SLOW).unwrap();
    let error = refusal(&engine, "checkout is down", Some("INC-1"));
    assert!(error.contains("needs a reason of at least 20 characters (this one has 16)"), "{error}");
    let error = refusal(&engine, "  TEST.   ", Some("INC-1"));
    assert!(error.contains("needs a reason of at least 20"), "{error}");
    let long_but_empty = "n/a";
    let engine_lenient = with_policies(&STRICT_AND_SLOW.replace("@reason_min_length(\"20\")", "")).unwrap();
    let error = refusal(&engine_lenient, long_but_empty, Some("INC-1"));
    assert!(error.starts_with("`n/a` is not a reason for `read` on `logs:payments-api`"), "{error}");
    let error = refusal(&engine_lenient, "Debug!", Some("INC-1"));
    assert!(error.contains("is not a reason"), "{error}");
    let error = refusal(&engine, "checkout 500s for every EU customer", None);
    assert!(error.contains("needs a ticket of kind `incident` (--ticket)"), "{error}");
    let error = refusal(&engine, "checkout 500s for every EU customer", Some("CHG-7"));
    assert!(error.contains("`CHG-7` is not a ticket of kind `incident`"), "{error}");
    let ok = RequestAsk {
        reason: "checkout 500s for every EU customer",
        ..ask("alice", "logs:payments-api", "read", 1800, Some("INC-7"))
    };
    assert_eq!(terms(engine.decide_request(&ok)).policy_ids, ["strict"]);
}

#[test]
fn a_permit_whose_requirements_are_unmet_does_not_count() {
    // Without an incident ticket the strict permit does not apply; the other one does, with its
    // heavier terms.
    let text = format!(
        "{STRICT_AND_SLOW}\n@id(\"two-leads\") @approvals(\"2\")\n\
         permit (principal, action == Ward::Action::\"request\", resource == Ward::Resource::\"logs:payments-api\");"
    );
    let engine = with_policies(&text).unwrap();
    let without = terms(engine.decide_request(&ask("alice", "logs:payments-api", "read", 1800, None)));
    assert_eq!((without.approvals_required, without.policy_ids), (2, vec!["two-leads".to_owned()]));
    let with = RequestAsk {
        reason: "checkout 500s for every EU customer",
        ..ask("alice", "logs:payments-api", "read", 1800, Some("INC-7"))
    };
    assert_eq!(terms(engine.decide_request(&with)).approvals_required, 1);
}

#[test]
fn requirement_annotations_are_checked_at_load() {
    let unknown_kind = STRICT_AND_SLOW.replace("@ticket(\"incident\")", "@ticket(\"jira\")");
    let error = with_policies(&unknown_kind).err().unwrap().to_string();
    assert!(
        error.contains("@ticket(\"jira\") names no [tickets] pattern; configured: change, incident"),
        "{error}"
    );
    let too_long = STRICT_AND_SLOW.replace("@reason_min_length(\"20\")", "@reason_min_length(\"5000\")");
    let error = with_policies(&too_long).err().unwrap().to_string();
    assert!(error.contains("is not a whole number from 0 to 500"), "{error}");
}

const WORKFLOW: &str = r#"
@id("staged") @stages("leads, security") @max_holders("2") @no_reciprocal_within("1h") @idle_timeout("15m")
permit (principal, action == Ward::Action::"request", resource == Ward::Resource::"logs:payments-api")
when { context.role == "read" && !context.breakglass };

@id("leads") @stage("leads")
permit (principal in Ward::Group::"payments-leads", action == Ward::Action::"approve", resource == Ward::Resource::"logs:payments-api");

@id("security") @stage("security")
permit (principal == Ward::User::"dave", action == Ward::Action::"approve", resource == Ward::Resource::"logs:payments-api");

@id("glass") @breakglass("15m") @review_within("2h")
permit (principal, action == Ward::Action::"request", resource == Ward::Resource::"logs:payments-api")
when { context.on_call };

@id("oncall") permit (principal, action == Ward::Action::"auto_approve", resource) when { context.on_call };
@id("night") permit (principal, action == Ward::Action::"auto_deny", resource) when { !context.business_hours };
"#;

#[test]
fn workflow_terms_come_from_the_chosen_permit() {
    let engine = with_policies(WORKFLOW).unwrap();
    let day = RequestAsk { business_hours: true, ..ask("alice", "logs:payments-api", "read", 1800, None) };
    let staged = terms(engine.decide_request(&day));
    assert_eq!(staged.approvals_required, 2, "one per stage");
    assert_eq!(staged.stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["leads", "security"]);
    assert_eq!((staged.max_holders, staged.reciprocal_seconds), (Some(2), Some(3600)));
    assert_eq!(staged.idle_timeout_seconds, Some(900));
    assert_eq!(staged.filing(), Filing::Pending);
    // Who fills which stage.
    assert_eq!(engine.approval_stages("bob", &day), Some(vec!["leads".to_owned()]));
    assert_eq!(engine.approval_stages("dave", &day), Some(vec!["security".to_owned()]));
    assert_eq!(engine.approval_stages("alice", &day), None, "never the requester");
    let explained = engine.explain_request(&day);
    assert!(
        explained.why.contains("1 from stage leads (bob, erin) and 1 from stage security (dave)"),
        "{}",
        explained.why
    );

    // Deny wins over automatic approval.
    let night_on_call = RequestAsk {
        on_call_schedules: &["primary".to_owned()],
        ..ask("alice", "logs:payments-api", "read", 1800, None)
    };
    assert_eq!(terms(engine.decide_request(&night_on_call)).filing(), Filing::AutoDenied);
    let day_on_call = RequestAsk { business_hours: true, ..night_on_call.clone() };
    assert_eq!(terms(engine.decide_request(&day_on_call)).filing(), Filing::AutoApproved);

    // Break-glass rules serve break-glass asks only, capped at their own limit.
    let glass = RequestAsk { breakglass: true, duration_seconds: 900, ..day_on_call.clone() };
    let granted = terms(engine.decide_request(&glass));
    assert_eq!((granted.filing(), granted.review_within_seconds), (Filing::Breakglass, Some(7200)));
    assert_eq!(granted.approvals_required, 0, "a review afterwards, no approvals before");
    assert_eq!(granted.policy_ids, ["glass"]);
    assert_eq!(granted.idle_timeout_seconds, None, "the chosen permit's terms only");
    let too_long = RequestAsk { duration_seconds: 1800, ..glass.clone() };
    assert!(matches!(
        engine.decide_request(&too_long),
        RequestVerdict::Refused(Refusal::TooLong { max_seconds: 900, .. })
    ));
    let not_on_call = RequestAsk { on_call_schedules: &[], ..glass };
    let RequestVerdict::Refused(refusal) = engine.decide_request(&not_on_call) else { panic!("allowed") };
    assert!(refusal.to_string().starts_with("no break-glass policy allows alice"), "{refusal}");
}

#[test]
fn workflow_annotations_are_checked_at_load() {
    let error = |text: &str| with_policies(text).err().map(|e| e.to_string()).unwrap_or_default();
    let orphan = WORKFLOW.replace("@stage(\"security\")", "");
    assert!(error(&orphan).contains("no approve policy has @stage(\"security\")"), "{}", error(&orphan));
    for (bad, says) in [
        ("@stages(\"leads, security\")", "@stages(\"leads:0, security\")"),
        ("@max_holders(\"2\")", "@max_holders(\"0\")"),
        ("@no_reciprocal_within(\"1h\")", "@no_reciprocal_within(\"soon\")"),
        ("@idle_timeout(\"15m\")", "@idle_timeout(\"0s\")"),
        ("@idle_timeout(\"15m\")", "@idle_timeout(\"400d\")"),
        ("@breakglass(\"15m\") @review_within(\"2h\")", "@review_within(\"2h\")"),
        ("@breakglass(\"15m\")", "@breakglass(\"15m\") @max_unreviewed(\"many\")"),
        ("@breakglass(\"15m\") @review_within(\"2h\")", "@max_unreviewed(\"1\")"),
        ("@stage(\"leads\")", "@stage(\"le ads\")"),
        ("@stages(\"leads, security\")", "@stages(\"leads, leads\")"),
    ] {
        let text = WORKFLOW.replace(bad, says);
        assert!(
            matches!(with_policies(&text), Err(PolicyError::Annotation { .. })),
            "{says}: {}",
            error(&text)
        );
    }
}

#[test]
fn a_misspelt_or_misplaced_annotation_stops_the_load_where_it_is() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/quickstart/policies");
    let text = std::fs::read_to_string(format!("{dir}/payments-api.cedar")).unwrap();
    // The quickstart's read-unmasked permit with its approvals misspelt: it would need one.
    let misspelt = text.replace("@approvals(\"2\")", "@aprovals(\"2\")");
    let error = with_policies(&misspelt).err().unwrap().to_string();
    assert!(
        error.starts_with("t.cedar:20:1: policy `payments-api.read-unmasked`: unknown annotation @aprovals")
            && error.contains("did you mean @approvals?"),
        "{error}"
    );
    let on_approvers = text
        .replace("@id(\"payments-api.approvers\")", "@id(\"payments-api.approvers\") @max_duration(\"1h\")");
    let error = with_policies(&on_approvers).err().unwrap().to_string();
    assert!(
        error.contains("@max_duration applies only to permit policies for Ward::Action::\"request\""),
        "{error}"
    );
    let on_forbid =
        "@id(\"f\") @approvals(\"3\") forbid (principal, action == Ward::Action::\"request\", resource);\n";
    assert!(matches!(with_policies(on_forbid), Err(PolicyError::MisplacedAnnotation { .. })));
    let unknown = text.replace("@max_duration(\"4h\")", "@max_duration(\"4h\") @frobnicate(\"1\")");
    let error = with_policies(&unknown).err().unwrap().to_string();
    assert!(error.contains("unknown annotation @frobnicate;"), "no suggestion for a far name: {error}");
    // A team's own annotations, under the documented prefix, are theirs.
    let own = text.replace("@max_duration(\"4h\")", "@max_duration(\"4h\") @x_owner(\"payments\")");
    assert!(with_policies(&own).is_ok());
    assert!(with_policies(&text).is_ok());
}

#[test]
fn cedar_sees_only_the_slice_for_the_resource() {
    let text = r#"
        @id("read") permit (principal, action == Ward::Action::"request", resource);
        @id("freeze-checkout") forbid (principal, action, resource == Ward::Resource::"logs:checkout-web");
    "#;
    let engine = with_policies(text).unwrap();
    let payments = ask("alice", "logs:payments-api", "read", 1800, None);
    assert_eq!(terms(engine.decide_request(&payments)).policy_ids, ["read"]);
    let checkout = ask("alice", "logs:checkout-web", "read", 1800, None);
    let RequestVerdict::Refused(Refusal::NotPermitted { by, .. }) = engine.decide_request(&checkout) else {
        panic!("allowed")
    };
    assert_eq!(by, ["freeze-checkout"]);
    assert_eq!(engine.policy_ids(), ["freeze-checkout", "read"], "the whole set is on record");
}

const GROUPS: [&str; 6] = ["engineering", "payments", "payments-leads", "oncall", "auditors", "ward-admins"];
const USERS: [&str; 6] = ["alice", "bob", "erin", "dave", "carol", "admin"];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever mix of permits and forbids, a request is allowed exactly when some permit
    /// matches and no forbid does: deny always wins. Approvals likewise: a forbid on `approve`
    /// stops every approver it matches, whatever permits say.
    #[test]
    fn deny_always_wins(
        permits in proptest::collection::vec(0..GROUPS.len(), 0..4),
        forbids in proptest::collection::vec(0..GROUPS.len(), 0..3),
        user in 0..USERS.len(),
        approver in 0..USERS.len(),
    ) {
        let mut text = String::new();
        for (n, g) in permits.iter().enumerate() {
            text.push_str(&format!(
                "@id(\"p{n}\") permit (principal in Ward::Group::\"{}\", \
                 action in [Ward::Action::\"request\", Ward::Action::\"approve\"], resource);\n",
                GROUPS[*g]
            ));
        }
        for (n, g) in forbids.iter().enumerate() {
            text.push_str(&format!(
                "@id(\"f{n}\") forbid (principal in Ward::Group::\"{}\", \
                 action in [Ward::Action::\"request\", Ward::Action::\"approve\"], resource);\n",
                GROUPS[*g]
            ));
        }
        let engine = with_policies(&text).unwrap();
        let member = |who: &str, groups: &[usize]| {
            let of = engine.directory().groups_of(who);
            groups.iter().any(|g| of.contains(GROUPS[*g]))
        };
        let asked = ask(USERS[user], "logs:payments-api", "read", 1800, None);
        let allowed = matches!(engine.decide_request(&asked), RequestVerdict::Allowed(_));
        proptest::prop_assert_eq!(allowed, member(USERS[user], &permits) && !member(USERS[user], &forbids));
        let may_approve = engine.may_decide(USERS[approver], &asked);
        let expected = approver != user && member(USERS[approver], &permits) && !member(USERS[approver], &forbids);
        proptest::prop_assert_eq!(may_approve, expected);
    }
}

#[test]
fn a_request_waits_as_long_as_its_most_lenient_permit_allows() {
    let text = r#"
@id("quick") @pending_ttl("2h")
permit (principal, action == Ward::Action::"request", resource == Ward::Resource::"logs:payments-api")
when { context.role == "read" };
@id("slow") @pending_ttl("24h")
permit (principal, action == Ward::Action::"request", resource == Ward::Resource::"logs:payments-api")
when { context.role == "read-unmasked" };
@id("plain")
permit (principal, action == Ward::Action::"request", resource == Ward::Resource::"logs:checkout-web");
"#;
    let engine = with_policies(text).unwrap();
    let ttl = |ids: &[&str]| {
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        engine.pending_ttl_seconds(&ids, 3600)
    };
    assert_eq!(ttl(&["quick"]), 7200);
    assert_eq!(ttl(&["plain"]), 3600, "no @pending_ttl: the configured default");
    assert_eq!(ttl(&["quick", "slow"]), 86400);
    assert_eq!(ttl(&["quick", "plain"]), 7200);
    let bad = with_policies(&text.replace("\"2h\"", "\"soon\"")).err().unwrap().to_string();
    assert!(bad.contains("@pending_ttl"), "{bad}");
}
