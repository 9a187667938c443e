//! A new request's decision and an access check, next to bare `cedar-policy` asked the same
//! questions on the same policy set and entities, with 10, 100 and 1,000 policies keyed by
//! resource.
//!
//! The synthetic world: 300 users in groups; 4 organisation-wide policies (auditors request
//! nothing, offboarded users get nothing, requests outside business hours from someone not on
//! call are denied at once, ward admins may approve anything) and 3 per resource `logs:svc-{i}`
//! (a request permit with `@approvals("1") @max_duration("4h")`, its team's approve permit, an
//! `auto_approve` for whoever is on call with an incident ticket): 2, 32 and 332 resources make
//! exactly 10, 100 and 1,000 policies (plus ward's built-in grant-holder permit). `user7` is on
//! call by a schedule file of 10 rotations and asks for `read` on the middle resource with an
//! incident ticket outside business hours: allowed, not auto-denied, auto-approved.
//!
//! - `decision/bare/N`: `Authorizer::is_authorized` on the full policy set for the `request`,
//!   `auto_deny` and `auto_approve` questions (requests built once, outside the loop);
//! - `decision/ward/N`: `Oncall::lookup` from the schedule file (a stat per call), then
//!   `PolicyEngine::decide_request` with the schedules it found (current-thread tokio runtime,
//!   `b.to_async`);
//! - `check/bare/N`: one `is_authorized` for `access` (role, `has_grant`) on the full set;
//! - `check/ward/N`: `PolicyEngine::permits_access`.
//!
//! cargo bench -p ward-service --bench decide
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cedar_policy::{Authorizer, Context, Decision, EntityUid, Request, RestrictedExpression};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use ward_core::directory::{Directory, ResourceEntry, UserEntry};
use ward_core::policy::{Filing, PolicyEngine, PolicySource, RequestAsk, RequestVerdict};
use ward_service::oncall::{Oncall, OncallFile, OncallSettings};

const POLICY_COUNTS: [usize; 3] = [10, 100, 1_000];
const GENERIC_POLICIES: usize = 4;
const POLICIES_PER_RESOURCE: usize = 3;
const USERS: usize = 300;
const TEAMS: usize = 10;
const REQUESTER: &str = "user7";
const TICKET: &str = "INC-4711";
const REASON: &str = "error spike on the payment path, INC-4711";
const DURATION_SECONDS: u64 = 3600;

const ORG_POLICIES: &str = r#"
// Auditors watch; they neither ask for access nor hand it out.
@id("org.auditors-request-nothing")
forbid (
  principal in Ward::Group::"auditors",
  action in [Ward::Action::"request", Ward::Action::"auto_approve", Ward::Action::"approve"],
  resource
);

// Offboarded users get nothing, whatever else says so.
@id("org.offboarded")
forbid (principal in Ward::Group::"offboarded", action, resource);

// Outside business hours only whoever is on call gets an answer without waiting.
@id("org.after-hours")
permit (principal, action == Ward::Action::"auto_deny", resource)
when { !context.business_hours && !context.on_call };

@id("org.admins-approve")
permit (principal in Ward::Group::"ward-admins", action == Ward::Action::"approve", resource);
"#;

fn resource_policies(i: usize) -> String {
    let team = i % TEAMS;
    format!(
        r#"// logs:svc-{i}
@id("svc-{i}.read")
@approvals("1")
@max_duration("4h")
permit (
  principal,
  action == Ward::Action::"request",
  resource == Ward::Resource::"logs:svc-{i}"
)
when {{
  (principal in Ward::Group::"engineering" || principal in Ward::Group::"ward-admins") &&
  context.role == "read"
}};

@id("svc-{i}.approvers")
permit (
  principal in Ward::Group::"team-{team}",
  action == Ward::Action::"approve",
  resource == Ward::Resource::"logs:svc-{i}"
);

@id("svc-{i}.oncall-incident")
permit (
  principal in Ward::Group::"oncall",
  action == Ward::Action::"auto_approve",
  resource == Ward::Resource::"logs:svc-{i}"
)
when {{ context.role == "read" && context.on_call && context.ticket_kinds.contains("incident") }};
"#
    )
}

fn directory(resources: usize) -> Directory {
    let users = (0..USERS)
        .map(|i| {
            let mut groups = vec!["engineering".to_owned(), format!("team-{}", i % TEAMS)];
            if i < 30 {
                groups.push("oncall".into());
            }
            if i >= 290 {
                groups = vec!["auditors".into()];
            } else if i >= 285 {
                groups.push("offboarded".into());
            } else if i >= 280 {
                groups.push("ward-admins".into());
            }
            (format!("user{i}"), UserEntry { groups })
        })
        .collect();
    let resources = (0..resources)
        .map(|i| {
            let entry = ResourceEntry {
                kind: "logs".into(),
                description: format!("debug logs of svc-{i}"),
                roles: vec!["read".into()],
            };
            (format!("logs:svc-{i}"), entry)
        })
        .collect();
    Directory::new(users, BTreeMap::new(), resources).unwrap()
}

/// 10 rotations; `REQUESTER` alone on `primary`, so always on call.
fn schedule_file(dir: &tempfile::TempDir) -> PathBuf {
    let mut text = String::from(
        "[[rotation]]\nschedule = \"primary\"\nstart = \"2020-01-06T09:00:00+01:00\"\nevery = \"7d\"\n\
         users = [\"user7\"]\n",
    );
    for team in 1..TEAMS {
        let users: Vec<String> = (0..5).map(|k| format!("\"user{}\"", 30 + team * 5 + k)).collect();
        text.push_str(&format!(
            "\n[[rotation]]\nschedule = \"team-{team}-primary\"\nstart = \"2020-01-06T09:00:00+01:00\"\n\
             every = \"7d\"\nusers = [{}]\n",
            users.join(", ")
        ));
    }
    let path = dir.path().join("oncall.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct World {
    policies: usize,
    resource: String,
    engine: PolicyEngine,
    oncall: Oncall,
}

fn world(policies: usize, schedule: &Path) -> World {
    let resources = (policies - GENERIC_POLICIES) / POLICIES_PER_RESOURCE;
    assert_eq!(GENERIC_POLICIES + resources * POLICIES_PER_RESOURCE, policies);
    let directory = directory(resources);
    let mut sources = vec![PolicySource { name: "org.cedar".into(), text: ORG_POLICIES.into() }];
    sources.extend(
        (0..resources).map(|i| PolicySource { name: format!("svc-{i}.cedar"), text: resource_policies(i) }),
    );
    let patterns = BTreeMap::from([("incident".to_owned(), "^INC-[0-9]+$".to_owned())]);
    let engine = match PolicyEngine::new(directory.clone(), &sources, &patterns) {
        Ok(engine) => engine,
        Err(error) => panic!("{error}"),
    };
    assert_eq!(engine.policy_ids().len(), policies);
    assert_eq!(engine.policy_set().policies().count(), policies + 1, "with the grant-holder permit");
    let file = OncallFile { schedule: Some(schedule.to_path_buf()), url: None, timeout: None };
    let settings = OncallSettings::load(file, schedule.parent().unwrap(), &directory).unwrap();
    let oncall = Oncall::new(settings, directory).unwrap();
    World { policies, resource: format!("logs:svc-{}", resources / 2), engine, oncall }
}

fn uid(text: &str) -> EntityUid {
    EntityUid::from_str(text).unwrap()
}

/// The Cedar requests ward's decision asks, with the context it builds (validated here).
fn bare_decision_requests(world: &World) -> Vec<(&'static str, Request, Decision)> {
    let context = || {
        Context::from_pairs([
            ("role".to_owned(), RestrictedExpression::new_string("read".into())),
            ("duration_seconds".to_owned(), RestrictedExpression::new_long(DURATION_SECONDS as i64)),
            ("reason".to_owned(), RestrictedExpression::new_string(REASON.into())),
            ("has_ticket".to_owned(), RestrictedExpression::new_bool(true)),
            ("ticket".to_owned(), RestrictedExpression::new_string(TICKET.into())),
            (
                "ticket_kinds".to_owned(),
                RestrictedExpression::new_set([RestrictedExpression::new_string("incident".into())]),
            ),
            ("on_call".to_owned(), RestrictedExpression::new_bool(true)),
            (
                "on_call_schedules".to_owned(),
                RestrictedExpression::new_set([RestrictedExpression::new_string("primary".into())]),
            ),
            ("business_hours".to_owned(), RestrictedExpression::new_bool(false)),
            ("extension".to_owned(), RestrictedExpression::new_bool(false)),
            ("breakglass".to_owned(), RestrictedExpression::new_bool(false)),
        ])
        .unwrap()
    };
    let expected =
        [("request", Decision::Allow), ("auto_deny", Decision::Deny), ("auto_approve", Decision::Allow)];
    expected
        .into_iter()
        .map(|(action, decision)| {
            let request = Request::new(
                uid(&format!(r#"Ward::User::"{REQUESTER}""#)),
                uid(&format!(r#"Ward::Action::"{action}""#)),
                uid(&format!(r#"Ward::Resource::"{}""#, world.resource)),
                context(),
                Some(world.engine.schema()),
            )
            .unwrap();
            (action, request, decision)
        })
        .collect()
}

fn bare_access_request(world: &World) -> Request {
    Request::new(
        uid(&format!(r#"Ward::User::"{REQUESTER}""#)),
        uid(r#"Ward::Action::"access""#),
        uid(&format!(r#"Ward::Resource::"{}""#, world.resource)),
        Context::from_pairs([
            ("role".to_owned(), RestrictedExpression::new_string("read".into())),
            ("has_grant".to_owned(), RestrictedExpression::new_bool(true)),
        ])
        .unwrap(),
        Some(world.engine.schema()),
    )
    .unwrap()
}

/// What ward does per new request: who is on call (from the file), then the decision.
async fn ward_decision(world: &World) -> RequestVerdict {
    let now = Timestamp::now();
    let answer = world.oncall.lookup(REQUESTER, now).await;
    let ask = RequestAsk {
        requester: REQUESTER,
        resource: &world.resource,
        role: "read",
        duration_seconds: DURATION_SECONDS,
        reason: REASON,
        ticket: Some(TICKET),
        on_call_schedules: &answer.schedules,
        business_hours: false,
        extension: false,
        breakglass: false,
    };
    world.engine.decide_request(&ask)
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let schedule = schedule_file(&dir);
    let worlds: Vec<World> = POLICY_COUNTS.into_iter().map(|n| world(n, &schedule)).collect();
    let authorizer = Authorizer::new();

    let mut group = c.benchmark_group("decision");
    for world in &worlds {
        let requests = bare_decision_requests(world);
        for (action, request, expected) in &requests {
            let response =
                authorizer.is_authorized(request, world.engine.policy_set(), world.engine.entities());
            assert_eq!(response.decision(), *expected, "bare {action} at {} policies", world.policies);
        }
        group.bench_with_input(BenchmarkId::new("bare", world.policies), &world.policies, |b, _| {
            b.iter(|| {
                requests
                    .iter()
                    .map(|(_, request, _)| {
                        authorizer.is_authorized(request, world.engine.policy_set(), world.engine.entities())
                    })
                    .filter(|response| response.decision() == Decision::Allow)
                    .count()
            })
        });

        let answer = runtime.block_on(world.oncall.lookup(REQUESTER, Timestamp::now()));
        assert_eq!(answer.schedules, ["primary"]);
        assert!(answer.problems.is_empty(), "{:?}", answer.problems);
        match runtime.block_on(ward_decision(world)) {
            RequestVerdict::Allowed(terms) => {
                assert_eq!(terms.filing(), Filing::AutoApproved, "{terms:?}");
                assert_eq!(terms.policy_ids, [format!("{}.read", &world.resource["logs:".len()..])]);
                let by: HashSet<String> = terms.auto_approved_by.unwrap().into_iter().collect();
                assert_eq!(
                    by,
                    HashSet::from([format!("{}.oncall-incident", &world.resource["logs:".len()..])])
                );
            }
            RequestVerdict::Refused(refusal) => panic!("refused at {} policies: {refusal}", world.policies),
        }
        group.bench_with_input(BenchmarkId::new("ward", world.policies), &world.policies, |b, _| {
            b.to_async(&runtime).iter(|| ward_decision(world))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("check");
    for world in &worlds {
        let request = bare_access_request(world);
        let response = authorizer.is_authorized(&request, world.engine.policy_set(), world.engine.entities());
        assert_eq!(response.decision(), Decision::Allow);
        group.bench_with_input(BenchmarkId::new("bare", world.policies), &world.policies, |b, _| {
            b.iter(|| authorizer.is_authorized(&request, world.engine.policy_set(), world.engine.entities()))
        });

        assert_eq!(world.engine.permits_access(REQUESTER, &world.resource, "read", true), Ok(()));
        group.bench_with_input(BenchmarkId::new("ward", world.policies), &world.policies, |b, _| {
            b.iter(|| world.engine.permits_access(REQUESTER, &world.resource, "read", true))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
