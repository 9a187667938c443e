//! The policy facade: ward's questions asked of Cedar.
//!
//! Four Cedar actions carry ward's decisions:
//! - `Ward::Action::"request"`: may this user ask for this role on this resource? The permit
//!   policies that allow it say, in annotations, how many distinct approvals the request needs
//!   (`@approvals("2")`, default 1) and how long access may last (`@max_duration("4h")`, default
//!   [`DEFAULT_MAX_DURATION_SECONDS`]).
//! - `Ward::Action::"auto_approve"`: is the request approved without a person (on-call with an
//!   incident ticket)? Forbid policies win, as everywhere in Cedar.
//! - `Ward::Action::"auto_deny"`: is the request turned down without a person (outside business
//!   hours, too long)? An automatic denial wins over an automatic approval.
//! - `Ward::Action::"approve"`: may this user decide this request? Self-approval is refused by
//!   the engine before Cedar is asked, whatever a policy says.
//! - `Ward::Action::"access"`: does a holder of an active grant get through right now? ward adds
//!   one built-in permit for "holds a grant"; a team's forbid policies can narrow it.
//!
//! Grants are never modelled as policies (that would make every check linear in grants): the
//! caller looks the grant up and passes `has_grant` in the context.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision, Effect, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, Policy, PolicyId, PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};
use regex::Regex;
use sha2::{Digest, Sha256};

use crate::directory::Directory;
use crate::duration::format_duration;
use crate::model::{AccessRequest, Stage};
use slices::Slices;
pub use snapshot::{MAX_SNAPSHOT_BYTES, PolicySnapshot, SnapshotError, SnapshotRecord};
pub use terms::DEFAULT_REVIEW_WITHIN_SECONDS;
pub use terms::TEAM_ANNOTATION_PREFIX;
use terms::{PermitTerms, approver_stage, misplaced_annotation, read_terms, unmet};

/// ward's Cedar schema: the entity types, actions and contexts policies are validated against.
pub const SCHEMA: &str = include_str!("ward.cedarschema");

/// The longest access a permit policy allows when it carries no `@max_duration`.
pub const DEFAULT_MAX_DURATION_SECONDS: u64 = 3600;
/// The most approvals a policy may demand; more is a typo, not a workflow.
pub const MAX_APPROVALS: u32 = 10;
const GRANT_HOLDER_POLICY_ID: &str = "ward.grant-holder";
const GRANT_HOLDER_POLICY: &str =
    r#"permit (principal, action == Ward::Action::"access", resource) when { context.has_grant };"#;

/// One file of Cedar policies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySource {
    /// Shown in errors and used to name policies without an `@id`.
    pub name: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("ward's built-in Cedar schema does not load: {0}")]
    Schema(String),
    /// `message` has one line per error, each `FILE:LINE:COLUMN: what`.
    #[error("the policies do not parse:\n{message}")]
    Parse { file: String, message: String },
    #[error("policy id `{0}` is used twice; give each policy a distinct @id")]
    DuplicateId(String),
    #[error("policy `{policy}`: {message}")]
    Annotation { policy: String, message: String },
    /// An annotation that would not do what it says, at `FILE:LINE:COLUMN`.
    #[error("{place}: policy `{policy}`: {message}")]
    MisplacedAnnotation { place: String, policy: String, message: String },
    /// One line per error, each `FILE:LINE:COLUMN: what` (Cedar names the policy).
    #[error("the policies do not validate against ward's schema:\n{0}")]
    Validation(String),
    #[error("ticket pattern `{name}` is not a valid regex: {message}")]
    TicketPattern { name: String, message: String },
    #[error("the directory cannot be turned into Cedar entities: {0}")]
    Entities(String),
}

/// What the request action decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestVerdict {
    Allowed(RequestTerms),
    Refused(Refusal),
}

/// The terms under which a request may proceed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestTerms {
    pub approvals_required: u32,
    pub max_duration_seconds: u64,
    /// The permit policies that allowed the request.
    pub policy_ids: Vec<String>,
    /// `Some(policies)` when an `auto_approve` rule approved it.
    pub auto_approved_by: Option<Vec<String>>,
    /// `Some(policies)` when an `auto_deny` rule turned it down (deny wins over auto-approval).
    pub auto_denied_by: Option<Vec<String>>,
    /// Stages that must each be met by their own approvers.
    pub stages: Vec<Stage>,
    pub max_holders: Option<u32>,
    pub reciprocal_seconds: Option<u64>,
    /// `Some(deadline)` for a break-glass request: granted at once, reviewed within the deadline.
    pub review_within_seconds: Option<u64>,
    /// For a break-glass request: how many of the requester's earlier break-glass grants on the
    /// resource may still await review.
    pub max_unreviewed: u32,
    /// The chosen permit's `@idle_timeout`, if it has one.
    pub idle_timeout_seconds: Option<u64>,
}

/// What filing a request allowed on some terms does at once. Deny wins, then break-glass, then
/// automatic approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filing {
    /// Waits for approvals.
    Pending,
    AutoApproved,
    AutoDenied,
    /// Granted at once under a break-glass rule, reviewed afterwards.
    Breakglass,
}

impl Filing {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::AutoApproved => "auto_approved",
            Self::AutoDenied => "auto_denied",
            Self::Breakglass => "breakglass",
        }
    }
}

impl RequestTerms {
    pub fn filing(&self) -> Filing {
        if self.auto_denied_by.is_some() {
            Filing::AutoDenied
        } else if self.review_within_seconds.is_some() {
            Filing::Breakglass
        } else if self.auto_approved_by.is_some() {
            Filing::AutoApproved
        } else {
            Filing::Pending
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    #[error("unknown resource `{name}`; known resources: {}", known.join(", "))]
    UnknownResource { name: String, known: Vec<String> },
    #[error("resource `{resource}` has no role `{role}`; its roles: {}", roles.join(", "))]
    UnknownRole { resource: String, role: String, roles: Vec<String> },
    #[error(
        "no {}policy allows {principal} to request `{role}` on `{resource}`{}",
        if *breakglass { "break-glass " } else { "" },
        forbidden_suffix(by)
    )]
    NotPermitted { principal: String, resource: String, role: String, by: Vec<String>, breakglass: bool },
    #[error("{requested} is longer than the maximum of {} for `{role}` on `{resource}`", format_duration(*max_seconds))]
    TooLong { resource: String, role: String, requested: String, max_seconds: u64 },
    /// A requirement of the permitting policy (reason, ticket) is not met; `why` says which.
    #[error("{why}")]
    Unmet { resource: String, role: String, why: String },
}

fn forbidden_suffix(by: &[String]) -> String {
    if by.is_empty() { String::new() } else { format!(" (forbidden by {})", by.join(", ")) }
}

/// What a user asks for, as the policy sees it, with what ward knows about the moment.
#[derive(Debug, Clone, Default)]
pub struct RequestAsk<'a> {
    pub requester: &'a str,
    pub resource: &'a str,
    pub role: &'a str,
    pub duration_seconds: u64,
    pub reason: &'a str,
    pub ticket: Option<&'a str>,
    /// The on-call schedules the requester is on at the time of asking.
    pub on_call_schedules: &'a [String],
    /// Whether the asking falls within the configured business hours.
    pub business_hours: bool,
    /// An extension of a grant the requester holds.
    pub extension: bool,
    /// A break-glass request.
    pub breakglass: bool,
}

impl<'a> RequestAsk<'a> {
    /// The ask a stored request was filed with.
    pub fn of(request: &'a AccessRequest) -> Self {
        Self {
            requester: &request.requester,
            resource: &request.resource,
            role: &request.role,
            duration_seconds: request.duration_seconds,
            reason: &request.reason,
            ticket: request.ticket.as_deref(),
            on_call_schedules: &request.on_call_schedules,
            business_hours: request.business_hours,
            extension: request.extends_grant.is_some(),
            breakglass: request.breakglass,
        }
    }
}

/// What the policies would do with a request, and why, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestExplanation {
    pub verdict: RequestVerdict,
    /// Who could approve it, when it would wait for approvals (never the requester).
    pub approvers: Vec<String>,
    /// For each stage it would need: the stage, and who could fill it.
    pub stages: Vec<(Stage, Vec<String>)>,
    /// One sentence.
    pub why: String,
}

/// A loaded, validated policy set over a directory. Immutable: reloading builds a new one.
pub struct PolicyEngine {
    schema: Schema,
    names: Names,
    policies: PolicySet,
    slices: Slices,
    entities: Entities,
    directory: Directory,
    terms: HashMap<PolicyId, PermitTerms>,
    /// The stage each approve permit's approvers count for (`@stage`).
    stage_of: HashMap<PolicyId, String>,
    ticket_kinds: Vec<(String, Regex)>,
    /// The `access` context of a grant holder, per role.
    access_contexts: HashMap<String, Context>,
    /// Whether any policy mentions `on_call` (else ward need not look anyone up).
    reads_on_call: bool,
    authorizer: Authorizer,
    hash: String,
    /// What the engine was built from, kept for [`PolicyEngine::snapshot`].
    sources: Vec<PolicySource>,
    ticket_patterns: BTreeMap<String, String>,
}

fn type_name(name: &str) -> Result<EntityTypeName, PolicyError> {
    EntityTypeName::from_str(name).map_err(|e| PolicyError::Schema(e.to_string()))
}

/// Entity types and actions, parsed once so that building a Cedar request cannot fail.
#[derive(Clone)]
struct Names {
    user: EntityTypeName,
    group: EntityTypeName,
    resource: EntityTypeName,
    action: EntityTypeName,
}

impl Names {
    fn new() -> Result<Self, PolicyError> {
        Ok(Self {
            user: type_name("Ward::User")?,
            group: type_name("Ward::Group")?,
            resource: type_name("Ward::Resource")?,
            action: type_name("Ward::Action")?,
        })
    }

    fn user(&self, name: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.user.clone(), EntityId::new(name))
    }

    fn group(&self, name: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.group.clone(), EntityId::new(name))
    }

    fn resource(&self, name: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.resource.clone(), EntityId::new(name))
    }

    fn action(&self, name: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(self.action.clone(), EntityId::new(name))
    }
}

fn may_permit(policy: &Policy, request: &EntityUid) -> bool {
    if policy.effect() != Effect::Permit {
        return false;
    }
    match policy.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(action) => &action == request,
        ActionConstraint::In(actions) => actions.contains(request),
    }
}

impl PolicyEngine {
    pub fn new(
        directory: Directory,
        sources: &[PolicySource],
        ticket_patterns: &BTreeMap<String, String>,
    ) -> Result<Self, PolicyError> {
        let (schema, _warnings) =
            Schema::from_cedarschema_str(SCHEMA).map_err(|e| PolicyError::Schema(e.to_string()))?;

        let names = Names::new()?;
        let mut policies = PolicySet::new();
        let mut terms = HashMap::new();
        let mut stage_of = HashMap::new();
        // Which source each policy came from, to say where a validation error is.
        let mut origin: HashMap<PolicyId, &PolicySource> = HashMap::new();
        for source in sources {
            let parsed = PolicySet::from_str(&source.text).map_err(|e| PolicyError::Parse {
                file: source.name.clone(),
                message: e
                    .iter()
                    .map(|error| located(source, error, &error.to_string()))
                    .collect::<Vec<_>>()
                    .join("\n"),
            })?;
            // PolicySet::from_str numbers policies `policy0…` in source order; keep that order.
            let mut in_file: Vec<&Policy> = parsed.policies().collect();
            in_file.sort_by_key(|p| {
                p.id().to_string().trim_start_matches("policy").parse::<usize>().unwrap_or(0)
            });
            for (index, policy) in in_file.into_iter().enumerate() {
                let id = match policy.annotation("id") {
                    Some(id) => id.to_owned(),
                    None => format!("{}#{}", source.name, index + 1),
                };
                let policy = policy.new_id(PolicyId::new(&id));
                let permits_request = may_permit(&policy, &names.action("request"));
                let permits_approve = may_permit(&policy, &names.action("approve"));
                for (name, _) in policy.annotations() {
                    if let Some(message) = misplaced_annotation(name, permits_request, permits_approve) {
                        let place = annotation_place(source, name);
                        return Err(PolicyError::MisplacedAnnotation { place, policy: id, message });
                    }
                }
                if permits_request {
                    terms.insert(policy.id().clone(), read_terms(&policy)?);
                }
                if permits_approve && let Some(stage) = approver_stage(&policy)? {
                    stage_of.insert(policy.id().clone(), stage);
                }
                origin.insert(policy.id().clone(), source);
                policies.add(policy).map_err(|_| PolicyError::DuplicateId(id.clone()))?;
            }
        }

        let validation = Validator::new(schema.clone()).validate(&policies, ValidationMode::Strict);
        if !validation.validation_passed() {
            let messages: Vec<String> = validation
                .validation_errors()
                .map(|e| match origin.get(e.policy_id()) {
                    Some(source) => located(source, e, &e.to_string()),
                    None => e.to_string(),
                })
                .collect();
            return Err(PolicyError::Validation(messages.join("\n")));
        }

        let hash = policy_set_hash(&policies);
        let builtin = Policy::parse(Some(PolicyId::new(GRANT_HOLDER_POLICY_ID)), GRANT_HOLDER_POLICY)
            .map_err(|e| PolicyError::Schema(e.to_string()))?;
        policies.add(builtin).map_err(|_| PolicyError::DuplicateId(GRANT_HOLDER_POLICY_ID.to_owned()))?;

        let entities = build_entities(&names, &directory, &schema)?;
        let mut access_contexts = HashMap::new();
        for role in directory.resources().values().flat_map(|r| r.roles.iter()) {
            let context = access_context(role, true)
                .ok_or_else(|| PolicyError::Schema(format!("no access context for role `{role}`")))?;
            access_contexts.insert(role.clone(), context);
        }
        let ticket_kinds = ticket_patterns
            .iter()
            .map(|(name, pattern)| {
                Regex::new(pattern)
                    .map(|re| (name.clone(), re))
                    .map_err(|e| PolicyError::TicketPattern { name: name.clone(), message: e.to_string() })
            })
            .collect::<Result<_, _>>()?;
        // A stage no approve permit fills would leave its requests waiting forever.
        for (id, permit) in &terms {
            if let Some(stage) = permit.stages.iter().find(|s| !stage_of.values().any(|v| v == &s.name)) {
                return Err(PolicyError::Annotation {
                    policy: id.to_string(),
                    message: format!(
                        "@stages names `{}`, but no approve policy has @stage(\"{}\"), so nobody could \
                         approve that stage",
                        stage.name, stage.name
                    ),
                });
            }
        }
        // A @ticket must name a configured pattern, or no request could ever meet it.
        for (id, permit) in &terms {
            if let Some(kind) = &permit.ticket_kind
                && !ticket_patterns.contains_key(kind)
            {
                let known: Vec<&str> = ticket_patterns.keys().map(String::as_str).collect();
                return Err(PolicyError::Annotation {
                    policy: id.to_string(),
                    message: format!(
                        "@ticket(\"{kind}\") names no [tickets] pattern; configured: {}",
                        if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                    ),
                });
            }
        }

        let slices = Slices::new(&policies, &names.resource)?;
        let reads_on_call = policies.policies().any(|p| p.to_string().contains("on_call"));
        Ok(Self {
            schema,
            names,
            policies,
            slices,
            entities,
            directory,
            terms,
            stage_of,
            ticket_kinds,
            access_contexts,
            reads_on_call,
            authorizer: Authorizer::new(),
            hash,
            sources: sources.to_vec(),
            ticket_patterns: ticket_patterns.clone(),
        })
    }

    /// Everything this engine decides from, to be recorded beside the event that puts it in
    /// force.
    pub fn snapshot(&self) -> PolicySnapshot {
        PolicySnapshot {
            sources: self.sources.clone(),
            ticket_patterns: self.ticket_patterns.clone(),
            users: self.directory.users().clone(),
            groups: self.directory.groups().clone(),
            resources: self.directory.resources().clone(),
        }
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// Whether any loaded policy mentions `on_call` (`context.on_call`, `on_call_schedules`).
    pub fn reads_on_call(&self) -> bool {
        self.reads_on_call
    }

    /// SHA-256 over the loaded policies (ids and text), to record which policy set decided.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The ids of the loaded policies, sorted (without ward's built-in one).
    pub fn policy_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .policies
            .policies()
            .map(|p| p.id().to_string())
            .filter(|id| id != GRANT_HOLDER_POLICY_ID)
            .collect();
        ids.sort();
        ids
    }

    /// The loaded policies (with the built-in grant-holder permit), for inspection and benchmarks.
    pub fn policy_set(&self) -> &PolicySet {
        &self.policies
    }

    pub fn entities(&self) -> &Entities {
        &self.entities
    }

    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Names of the ticket patterns `ticket` matches (`incident`, …).
    pub fn ticket_kinds(&self, ticket: Option<&str>) -> Vec<String> {
        let Some(ticket) = ticket else {
            return Vec::new();
        };
        self.ticket_kinds.iter().filter(|(_, re)| re.is_match(ticket)).map(|(name, _)| name.clone()).collect()
    }

    /// Checks that the user, resource and role exist.
    pub fn check_names(&self, user: &str, resource: &str, role: &str) -> Result<(), Refusal> {
        if self.directory.user(user).is_none() {
            return Err(Refusal::UnknownUser(user.to_owned()));
        }
        let Some(entry) = self.directory.resource(resource) else {
            return Err(Refusal::UnknownResource {
                name: resource.to_owned(),
                known: self.directory.resources().keys().cloned().collect(),
            });
        };
        if !entry.roles.iter().any(|r| r == role) {
            return Err(Refusal::UnknownRole {
                resource: resource.to_owned(),
                role: role.to_owned(),
                roles: entry.roles.clone(),
            });
        }
        Ok(())
    }

    fn ask_context(&self, ask: &RequestAsk<'_>) -> Vec<(String, RestrictedExpression)> {
        let kinds = self.ticket_kinds(ask.ticket);
        vec![
            ("role".into(), RestrictedExpression::new_string(ask.role.to_owned())),
            (
                "duration_seconds".into(),
                RestrictedExpression::new_long(i64::try_from(ask.duration_seconds).unwrap_or(i64::MAX)),
            ),
            ("reason".into(), RestrictedExpression::new_string(ask.reason.to_owned())),
            ("has_ticket".into(), RestrictedExpression::new_bool(ask.ticket.is_some())),
            ("ticket".into(), RestrictedExpression::new_string(ask.ticket.unwrap_or_default().to_owned())),
            (
                "ticket_kinds".into(),
                RestrictedExpression::new_set(kinds.into_iter().map(RestrictedExpression::new_string)),
            ),
            ("on_call".into(), RestrictedExpression::new_bool(!ask.on_call_schedules.is_empty())),
            (
                "on_call_schedules".into(),
                RestrictedExpression::new_set(
                    ask.on_call_schedules.iter().cloned().map(RestrictedExpression::new_string),
                ),
            ),
            ("business_hours".into(), RestrictedExpression::new_bool(ask.business_hours)),
            ("extension".into(), RestrictedExpression::new_bool(ask.extension)),
            ("breakglass".into(), RestrictedExpression::new_bool(ask.breakglass)),
        ]
    }

    fn authorize(
        &self,
        principal: &str,
        action: &str,
        resource: &str,
        context: Vec<(String, RestrictedExpression)>,
    ) -> (Decision, Vec<String>) {
        match Context::from_pairs(context) {
            Ok(context) => self.decide(principal, action, resource, context, Some(&self.schema)),
            // A context the schema rejects can only come from a bug; deny rather than guess.
            Err(_) => (Decision::Deny, Vec::new()),
        }
    }

    /// `schema` validates the request's shape; callers whose context shape is fixed in code
    /// (and covered by a test that does validate) may skip it on hot paths.
    fn decide(
        &self,
        principal: &str,
        action: &str,
        resource: &str,
        context: Context,
        schema: Option<&Schema>,
    ) -> (Decision, Vec<String>) {
        let request = Request::new(
            self.names.user(principal),
            self.names.action(action),
            self.names.resource(resource),
            context,
            schema,
        );
        let Ok(request) = request else {
            return (Decision::Deny, Vec::new());
        };
        let response =
            self.authorizer.is_authorized(&request, self.slices.for_resource(resource), &self.entities);
        let reasons = response.diagnostics().reason().map(ToString::to_string).collect();
        (response.decision(), reasons)
    }

    /// Decides whether `ask` may be filed, and on what terms.
    pub fn decide_request(&self, ask: &RequestAsk<'_>) -> RequestVerdict {
        if let Err(refusal) = self.check_names(ask.requester, ask.resource, ask.role) {
            return RequestVerdict::Refused(refusal);
        }
        let not_permitted = |by: Vec<String>| {
            RequestVerdict::Refused(Refusal::NotPermitted {
                principal: ask.requester.to_owned(),
                resource: ask.resource.to_owned(),
                role: ask.role.to_owned(),
                by,
                breakglass: ask.breakglass,
            })
        };
        // The three questions share one context: built once, checked against the schema once
        // (with the `request` question), then reused as it is.
        let Ok(context) = Context::from_pairs(self.ask_context(ask)) else {
            return not_permitted(Vec::new());
        };
        let (decision, reasons) =
            self.decide(ask.requester, "request", ask.resource, context.clone(), Some(&self.schema));
        if decision == Decision::Deny {
            return not_permitted(reasons);
        }
        // Break-glass asks use only break-glass rules, and other asks only the others.
        let mut permitting: Vec<(String, PermitTerms)> = reasons
            .into_iter()
            .filter_map(|id| self.terms.get(&PolicyId::new(&id)).map(|t| (id, t.clone())))
            .filter(|(_, t)| t.breakglass_cap_seconds.is_some() == ask.breakglass)
            .collect();
        // Cedar reports the permits as a set: sort them, so that ties go the same way every time.
        permitting.sort_by(|a, b| a.0.cmp(&b.0));
        if permitting.is_empty() {
            return not_permitted(Vec::new());
        }
        let longest = permitting.iter().map(|(_, t)| t.longest_seconds()).max().unwrap_or(0);
        let fitting: Vec<&(String, PermitTerms)> =
            permitting.iter().filter(|(_, t)| t.longest_seconds() >= ask.duration_seconds).collect();
        if fitting.is_empty() {
            return RequestVerdict::Refused(Refusal::TooLong {
                resource: ask.resource.to_owned(),
                role: ask.role.to_owned(),
                requested: format_duration(ask.duration_seconds),
                max_seconds: longest,
            });
        }
        // Any one permit suffices: its requirements must be met, and the request gets the
        // lightest terms among the permits whose requirements it meets.
        let ticket_kinds = self.ticket_kinds(ask.ticket);
        let unmet_by: Vec<Option<String>> =
            fitting.iter().map(|(_, t)| unmet(t, ask, &ticket_kinds)).collect();
        let fitting: Vec<&(String, PermitTerms)> =
            fitting.into_iter().zip(&unmet_by).filter(|(_, why)| why.is_none()).map(|(p, _)| p).collect();
        let Some((_, chosen)) = fitting.iter().min_by_key(|(_, t)| (t.total_approvals(), t.stages.len()))
        // (`min_by_key` keeps the first of equals: the permit whose id sorts first.)
        else {
            return RequestVerdict::Refused(Refusal::Unmet {
                resource: ask.resource.to_owned(),
                role: ask.role.to_owned(),
                why: unmet_by.into_iter().flatten().next().unwrap_or_default(),
            });
        };
        // Deny wins: an automatic denial is looked for first, and an approval only without one.
        let (deny_decision, deny_reasons) =
            self.decide(ask.requester, "auto_deny", ask.resource, context.clone(), None);
        let auto_denied_by = (deny_decision == Decision::Allow).then_some(deny_reasons);
        let auto_approved_by = match auto_denied_by {
            Some(_) => None,
            None => {
                let (decision, reasons) =
                    self.decide(ask.requester, "auto_approve", ask.resource, context, None);
                (decision == Decision::Allow).then_some(reasons)
            }
        };
        RequestVerdict::Allowed(RequestTerms {
            // Break-glass needs no approvals: a review afterwards instead.
            approvals_required: if chosen.breakglass_cap_seconds.is_some() {
                0
            } else {
                chosen.total_approvals()
            },
            stages: chosen.stages.clone(),
            max_holders: chosen.max_holders,
            reciprocal_seconds: chosen.reciprocal_seconds,
            review_within_seconds: chosen.breakglass_cap_seconds.map(|_| chosen.review_within_seconds),
            max_unreviewed: chosen.max_unreviewed,
            idle_timeout_seconds: chosen.idle_timeout_seconds,
            max_duration_seconds: longest,
            policy_ids: fitting.iter().map(|(id, _)| id.clone()).collect(),
            auto_approved_by,
            auto_denied_by,
        })
    }

    /// Whether `approver` may decide `request`. Never true for the requester themself.
    pub fn may_approve(&self, approver: &str, request: &AccessRequest) -> bool {
        self.may_decide(approver, &RequestAsk::of(request))
    }

    /// How long a request allowed by `policy_ids` (its terms' permits) may wait for approvals:
    /// any one permit suffices, so the longest of theirs, a permit without `@pending_ttl`
    /// counting as `default_seconds`.
    pub fn pending_ttl_seconds(&self, policy_ids: &[String], default_seconds: u64) -> u64 {
        policy_ids
            .iter()
            .map(|id| {
                self.terms
                    .get(&PolicyId::new(id))
                    .and_then(|t| t.pending_ttl_seconds)
                    .unwrap_or(default_seconds)
            })
            .max()
            .unwrap_or(default_seconds)
    }

    /// Decides `ask` as [`Self::decide_request`] does and says why; for a request that would
    /// wait, also who could approve it (per stage, when it has stages).
    pub fn explain_request(&self, ask: &RequestAsk<'_>) -> RequestExplanation {
        let verdict = self.decide_request(ask);
        let terms = match &verdict {
            RequestVerdict::Refused(refusal) => {
                let why = refusal.to_string();
                return RequestExplanation { verdict, approvers: Vec::new(), stages: Vec::new(), why };
            }
            RequestVerdict::Allowed(terms) => terms,
        };
        let why = match terms.filing() {
            Filing::AutoDenied => format!(
                "denied at once by {}",
                terms.auto_denied_by.as_deref().unwrap_or_default().join(", ")
            ),
            Filing::Breakglass => format!(
                "break-glass: granted at once by {} for at most {}, to be reviewed within {}",
                terms.policy_ids.join(", "),
                format_duration(terms.max_duration_seconds),
                format_duration(terms.review_within_seconds.unwrap_or_default())
            ),
            Filing::AutoApproved => format!(
                "approved at once by {}",
                terms.auto_approved_by.as_deref().unwrap_or_default().join(", ")
            ),
            Filing::Pending => String::new(),
        };
        if !why.is_empty() {
            return RequestExplanation { approvers: Vec::new(), stages: Vec::new(), why, verdict };
        }
        let eligible: Vec<(String, Vec<String>)> = self
            .directory
            .users()
            .keys()
            .filter_map(|user| self.approval_stages(user, ask).map(|stages| (user.clone(), stages)))
            .collect();
        let approvers: Vec<String> = eligible.iter().map(|(user, _)| user.clone()).collect();
        let stages: Vec<(Stage, Vec<String>)> = terms
            .stages
            .iter()
            .map(|stage| {
                let who = eligible
                    .iter()
                    .filter(|(_, stages)| stages.contains(&stage.name))
                    .map(|(user, _)| user.clone())
                    .collect();
                (stage.clone(), who)
            })
            .collect();
        let names = |list: &[String]| {
            if list.is_empty() {
                "nobody (no approve policy lets anyone decide it)".to_owned()
            } else {
                list.join(", ")
            }
        };
        let plural = |n: u32| if n == 1 { "" } else { "s" };
        let mut why = format!(
            "allowed by {}; needs {} approval{}",
            terms.policy_ids.join(", "),
            terms.approvals_required,
            plural(terms.approvals_required)
        );
        if stages.is_empty() {
            why.push_str(&format!(" from: {}", names(&approvers)));
        } else {
            let parts: Vec<String> = stages
                .iter()
                .map(|(stage, who)| format!("{} from stage {} ({})", stage.approvals, stage.name, names(who)))
                .collect();
            why.push_str(&format!(", including {}", parts.join(" and ")));
        }
        RequestExplanation { verdict, approvers, stages, why }
    }

    /// Whether `approver` may decide a request for `ask`. Never true for the requester themself.
    pub fn may_decide(&self, approver: &str, ask: &RequestAsk<'_>) -> bool {
        self.approval_stages(approver, ask).is_some()
    }

    /// `None` when `approver` may not decide a request for `ask` (never the requester);
    /// otherwise the approval stages they count for (`@stage` of the permits that let them).
    /// Who *could* decide: signed in with MFA, should a policy need it (see
    /// [`Self::approval_stages_signed_in`] for a decision someone is making now).
    pub fn approval_stages(&self, approver: &str, ask: &RequestAsk<'_>) -> Option<Vec<String>> {
        self.approval_stages_signed_in(approver, ask, true)
    }

    /// [`Self::approval_stages`] for an approver deciding now, `mfa` saying whether they
    /// signed in with more than one factor (`context.mfa`).
    pub fn approval_stages_signed_in(
        &self,
        approver: &str,
        ask: &RequestAsk<'_>,
        mfa: bool,
    ) -> Option<Vec<String>> {
        if approver == ask.requester || self.directory.user(approver).is_none() {
            return None;
        }
        let mut context = self.ask_context(ask);
        context
            .push(("requester".into(), RestrictedExpression::new_entity_uid(self.names.user(ask.requester))));
        context.push(("mfa".into(), RestrictedExpression::new_bool(mfa)));
        let (decision, reasons) = self.authorize(approver, "approve", ask.resource, context);
        if decision != Decision::Allow {
            return None;
        }
        let mut stages: Vec<String> =
            reasons.iter().filter_map(|id| self.stage_of.get(&PolicyId::new(id)).cloned()).collect();
        stages.sort();
        stages.dedup();
        Some(stages)
    }

    /// Whether a holder of a grant for `role` on `resource` gets through; `has_grant` is the
    /// caller's lookup. Returns the forbid policies that stopped it, if any.
    pub fn permits_access(
        &self,
        principal: &str,
        resource: &str,
        role: &str,
        has_grant: bool,
    ) -> Result<(), Vec<String>> {
        // Every check of a role carries the same context: built once per load, validated by
        // `access_context_matches_the_schema`, so the per-check validation is skipped.
        let context = match self.access_contexts.get(role) {
            Some(context) if has_grant => context.clone(),
            _ => match access_context(role, has_grant) {
                Some(context) => context,
                None => return Err(Vec::new()),
            },
        };
        let (decision, reasons) = self.decide(principal, "access", resource, context, None);
        match decision {
            Decision::Allow => Ok(()),
            Decision::Deny => Err(reasons),
        }
    }
}

/// `FILE:LINE:COLUMN: message`, from where Cedar's diagnostic points in the source (or
/// `FILE: message` when it points nowhere).
/// `FILE:LINE:COLUMN` of the first `@name` in `source`, for an error about that annotation.
fn annotation_place(source: &PolicySource, name: &str) -> String {
    let text = &source.text;
    let needle = format!("@{name}");
    let found = text.match_indices(&needle).map(|(at, _)| at).find(|&at| {
        // `@approvals` is not `@approvals_x`.
        !text[at + needle.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
    });
    match found {
        Some(offset) => {
            let before = &text[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{}:{line}:{column}", source.name)
        }
        None => source.name.clone(),
    }
}

fn located(source: &PolicySource, diagnostic: &dyn miette::Diagnostic, message: &str) -> String {
    let help = diagnostic.help().map(|help| format!(" ({help})")).unwrap_or_default();
    let offset = diagnostic.labels().and_then(|mut labels| labels.next()).map(|label| label.offset());
    match offset.filter(|&o| o <= source.text.len()) {
        Some(offset) => {
            let before = source.text.get(..offset).unwrap_or_default();
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{}:{line}:{column}: {message}{help}", source.name)
        }
        None => format!("{}: {message}{help}", source.name),
    }
}

/// The `access` context; `None` only if Cedar refused a two-field record (a bug).
fn access_context(role: &str, has_grant: bool) -> Option<Context> {
    Context::from_pairs([
        ("role".to_owned(), RestrictedExpression::new_string(role.to_owned())),
        ("has_grant".to_owned(), RestrictedExpression::new_bool(has_grant)),
    ])
    .ok()
}

fn policy_set_hash(policies: &PolicySet) -> String {
    let mut texts: Vec<(String, String)> =
        policies.policies().map(|p| (p.id().to_string(), p.to_string())).collect();
    texts.sort();
    let mut hasher = Sha256::new();
    for (id, text) in texts {
        hasher.update(id.as_bytes());
        hasher.update([0]);
        hasher.update(text.as_bytes());
        hasher.update([0]);
    }
    hex::encode(hasher.finalize())
}

fn build_entities(names: &Names, directory: &Directory, schema: &Schema) -> Result<Entities, PolicyError> {
    let groups = |list: &[String]| -> HashSet<EntityUid> { list.iter().map(|g| names.group(g)).collect() };
    let mut entities = Vec::new();
    for (name, group) in directory.groups() {
        entities.push(Entity::new_no_attrs(names.group(name), groups(&group.parents)));
    }
    for (name, user) in directory.users() {
        entities.push(Entity::new_no_attrs(names.user(name), groups(&user.groups)));
    }
    for (name, resource) in directory.resources() {
        let attrs = HashMap::from([
            ("kind".to_owned(), RestrictedExpression::new_string(resource.kind.clone())),
            (
                "roles".to_owned(),
                RestrictedExpression::new_set(
                    resource.roles.iter().cloned().map(RestrictedExpression::new_string),
                ),
            ),
        ]);
        let entity = Entity::new(names.resource(name), attrs, HashSet::new())
            .map_err(|e| PolicyError::Entities(e.to_string()))?;
        entities.push(entity);
    }
    Entities::from_entities(entities, Some(schema)).map_err(|e| PolicyError::Entities(e.to_string()))
}

mod approvers;
mod slices;
mod snapshot;
mod terms;
#[cfg(test)]
mod tests;
