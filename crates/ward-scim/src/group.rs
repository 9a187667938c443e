//! The SCIM Group resource (RFC 7643 §4.2) as ward reads and writes it: `displayName` is the
//! ward group policies name, `members` are Users (by their `id`, the ward user name), and
//! PATCH adds, removes or replaces members in each of the forms identity providers send.

use serde_json::{Map, Value, json};
use ward_store::DirectoryGroup;

use crate::error::{ScimError, ScimType};
use crate::patch::{Op, Operation, operations, syntax};
use crate::user::MAX_TEXT_CHARS;

pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// The most members one request may name.
pub const MAX_MEMBERS: usize = 10_000;

/// What a request says about a group; `None`: not said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFields {
    pub display_name: Option<String>,
    /// `Some(None)`: cleared.
    pub external_id: Option<Option<String>>,
    pub members: Option<Vec<String>>,
}

/// One change to a group's members, in PATCH's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Add(Vec<String>),
    Remove(Vec<String>),
    Replace(Vec<String>),
}

/// What a PATCH on a group changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupPatch {
    pub display_name: Option<String>,
    pub external_id: Option<Option<String>>,
    pub members: Vec<MemberChange>,
}

fn value_error(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidValue, detail)
}

/// A Group as a POST or PUT carries it.
pub fn read_group(body: &Value) -> Result<GroupFields, ScimError> {
    let object = body.as_object().ok_or_else(|| syntax("a Group is a JSON object"))?;
    let schemas = object.get("schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|schemas| schemas.iter().any(|s| s.as_str() == Some(GROUP_SCHEMA))) {
        return Err(syntax(format!("`schemas` must list {GROUP_SCHEMA}")));
    }
    let mut fields = GroupFields::default();
    for (name, value) in object {
        let is = |known: &str| name.eq_ignore_ascii_case(known);
        if is("displayName") {
            fields.display_name = Some(display_name(value)?);
        } else if is("externalId") {
            fields.external_id = Some(external_id(value)?);
        } else if is("members") {
            fields.members = Some(members(value)?);
        } else if !(is("id") || is("meta") || is("schemas")) {
            return Err(syntax(format!("`{name}` is not an attribute of the Group schema")));
        }
    }
    Ok(fields)
}

fn display_name(value: &Value) -> Result<String, ScimError> {
    match value.as_str() {
        Some(name) if !name.trim().is_empty() && name.chars().count() <= MAX_TEXT_CHARS => {
            Ok(name.to_owned())
        }
        _ => Err(value_error(format!("`displayName` is a name of 1 to {MAX_TEXT_CHARS} characters"))),
    }
}

fn external_id(value: &Value) -> Result<Option<String>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(id) if id.chars().count() <= MAX_TEXT_CHARS => Ok(Some(id.clone())),
        _ => Err(value_error(format!("`externalId` is a string of at most {MAX_TEXT_CHARS} characters"))),
    }
}

/// `[{"value": "pat", "display": …, "$ref": …, "type": "User"}, …]`: the ids.
fn members(value: &Value) -> Result<Vec<String>, ScimError> {
    let list = value.as_array().ok_or_else(|| value_error("`members` is a list of {\"value\": USER_ID}"))?;
    if list.len() > MAX_MEMBERS {
        return Err(value_error(format!("at most {MAX_MEMBERS} members in one request")));
    }
    let mut ids = Vec::with_capacity(list.len());
    for member in list {
        let member = member.as_object().ok_or_else(|| value_error("a member is {\"value\": USER_ID}"))?;
        if let Some(other) =
            member.keys().find(|k| !["value", "display", "$ref", "type"].contains(&k.as_str()))
        {
            return Err(syntax(format!("a member has `value`, `display`, `$ref` and `type`, not `{other}`")));
        }
        match member.get("value").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => ids.push(id.to_owned()),
            _ => return Err(value_error("a member's `value` is a User's id")),
        }
    }
    Ok(ids)
}

/// A PatchOp on a Group.
pub fn read_group_patch(body: &Value) -> Result<GroupPatch, ScimError> {
    let mut patch = GroupPatch::default();
    for Operation { op, path, value } in operations(body)? {
        match path {
            Some(path) => on_path(&mut patch, op, path, value)?,
            None if op == Op::Remove => {
                return Err(ScimError::bad(ScimType::NoTarget, "a remove names its `path`"));
            }
            None => {
                let attributes = value
                    .and_then(Value::as_object)
                    .ok_or_else(|| value_error("without a path, `value` is an object"))?;
                for (name, value) in attributes {
                    on_path(&mut patch, op, name, Some(value))?;
                }
            }
        }
    }
    Ok(patch)
}

fn on_path(patch: &mut GroupPatch, op: Op, path: &str, value: Option<&Value>) -> Result<(), ScimError> {
    let path = path.strip_prefix(GROUP_SCHEMA).map_or(path, |rest| rest.trim_start_matches(':'));
    let needs =
        |value: Option<&Value>| value.cloned().ok_or_else(|| value_error(format!("`{path}` needs a value")));
    if path.eq_ignore_ascii_case("members") {
        let change = match (op, value) {
            (Op::Add, _) => MemberChange::Add(members(&needs(value)?)?),
            (Op::Replace, _) => MemberChange::Replace(members(&needs(value)?)?),
            // Entra ID names the members to remove in `value`; without one, all go.
            (Op::Remove, Some(value)) => MemberChange::Remove(members(value)?),
            (Op::Remove, None) => MemberChange::Replace(Vec::new()),
        };
        patch.members.push(change);
        return Ok(());
    }
    if let Some(filter) = member_filter(path) {
        // `members[value eq "pat"]`: only a remove can target one member.
        let id = filter?;
        if op != Op::Remove {
            return Err(ScimError::bad(
                ScimType::InvalidPath,
                "a member named by a filter can only be removed",
            ));
        }
        patch.members.push(MemberChange::Remove(vec![id]));
        return Ok(());
    }
    if path.eq_ignore_ascii_case("displayName") {
        if op == Op::Remove {
            return Err(ScimError::bad(ScimType::Mutability, "a Group keeps its `displayName`"));
        }
        patch.display_name = Some(display_name(&needs(value)?)?);
        return Ok(());
    }
    if path.eq_ignore_ascii_case("externalId") {
        patch.external_id = Some(if op == Op::Remove { None } else { external_id(&needs(value)?)? });
        return Ok(());
    }
    if ["id", "meta", "schemas"].iter().any(|p| path.eq_ignore_ascii_case(p)) {
        return Err(ScimError::bad(
            ScimType::Mutability,
            format!("`{path}` is ward's to set, not the directory's"),
        ));
    }
    Err(ScimError::bad(ScimType::InvalidPath, format!("`{path}` is not an attribute of the Group schema")))
}

/// `members[value eq "ID"]`: the id, when `path` is of that form.
fn member_filter(path: &str) -> Option<Result<String, ScimError>> {
    let prefix = path.get(..8).filter(|p| p.eq_ignore_ascii_case("members["))?;
    let inner = path[prefix.len()..].strip_suffix(']')?;
    Some(crate::filter::parse(inner).and_then(|filter| {
        if filter.is_on("value") {
            Ok(filter.value)
        } else {
            Err(ScimError::bad(ScimType::InvalidPath, "members are named by `value`"))
        }
    }))
}

/// A group as a SCIM Group; `members` left out when asked (`excludedAttributes=members`).
pub fn group_json(group: &DirectoryGroup, members: Option<&[String]>) -> Value {
    let mut body = Map::new();
    body.insert("schemas".into(), json!([GROUP_SCHEMA]));
    body.insert("id".into(), group.id.clone().into());
    if let Some(external_id) = &group.external_id {
        body.insert("externalId".into(), external_id.clone().into());
    }
    body.insert("displayName".into(), group.name.clone().into());
    if let Some(members) = members {
        let members: Vec<Value> = members
            .iter()
            .map(|m| json!({"value": m, "display": m, "$ref": format!("/scim/v2/Users/{m}"), "type": "User"}))
            .collect();
        body.insert("members".into(), members.into());
    }
    body.insert(
        "meta".into(),
        json!({
            "resourceType": "Group",
            "created": group.created_at.to_string(),
            "lastModified": group.updated_at.to_string(),
            "location": format!("/scim/v2/Groups/{}", group.id),
            "version": format!("W/\"{}\"", group.version),
        }),
    );
    Value::Object(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::PATCH_SCHEMA;

    fn patch(operations: Value) -> Result<GroupPatch, ScimError> {
        read_group_patch(&json!({"schemas": [PATCH_SCHEMA], "Operations": operations}))
    }

    #[test]
    fn a_group_with_its_members() {
        let body = json!({"schemas": [GROUP_SCHEMA], "displayName": "payments-leads", "externalId": "g1",
            "members": [{"value": "pat", "display": "Pat"}, {"value": "quinn"}]});
        let fields = read_group(&body).unwrap();
        assert_eq!(fields.display_name.as_deref(), Some("payments-leads"));
        assert_eq!(fields.members, Some(vec!["pat".to_owned(), "quinn".to_owned()]));
        let unknown = read_group(&json!({"schemas": [GROUP_SCHEMA], "displayName": "x", "owner": "pat"}));
        assert_eq!(unknown.unwrap_err().scim_type, Some(ScimType::InvalidSyntax));
        let bad_member =
            read_group(&json!({"schemas": [GROUP_SCHEMA], "displayName": "x", "members": ["pat"]}));
        assert_eq!(bad_member.unwrap_err().scim_type, Some(ScimType::InvalidValue));
    }

    #[test]
    fn members_change_as_okta_and_entra_send_it() {
        let okta = patch(json!([
            {"op": "add", "path": "members", "value": [{"value": "pat"}]},
            {"op": "remove", "path": "members[value eq \"quinn\"]"},
            {"op": "replace", "value": {"displayName": "leads"}},
        ]))
        .unwrap();
        assert_eq!(
            okta.members,
            [MemberChange::Add(vec!["pat".into()]), MemberChange::Remove(vec!["quinn".into()])]
        );
        assert_eq!(okta.display_name.as_deref(), Some("leads"));
        let entra = patch(json!([{"op": "Remove", "path": "members", "value": [{"value": "pat"}]}])).unwrap();
        assert_eq!(entra.members, [MemberChange::Remove(vec!["pat".into()])]);
        let all = patch(json!([{"op": "remove", "path": "members"}])).unwrap();
        assert_eq!(all.members, [MemberChange::Replace(vec![])]);
    }

    #[test]
    fn the_rfcs_errors() {
        let kind = |operations: Value| patch(operations).unwrap_err().scim_type;
        assert_eq!(kind(json!([{"op": "remove"}])), Some(ScimType::NoTarget));
        assert_eq!(kind(json!([{"op": "add", "path": "owners", "value": 1}])), Some(ScimType::InvalidPath));
        assert_eq!(kind(json!([{"op": "remove", "path": "displayName"}])), Some(ScimType::Mutability));
        assert_eq!(
            kind(json!([{"op": "add", "path": "members[value eq \"x\"]", "value": 1}])),
            Some(ScimType::InvalidPath)
        );
        assert_eq!(
            kind(json!([{"op": "remove", "path": "members[display eq \"x\"]"}])),
            Some(ScimType::InvalidPath)
        );
        assert_eq!(kind(json!([{"op": "add", "path": "members"}])), Some(ScimType::InvalidValue));
    }
}
