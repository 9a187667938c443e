//! PATCH on a User (RFC 7644 §3.5.2): `add`, `replace` and `remove` operations, with or without
//! a `path`, read into what they change of the attributes ward keeps. Paths into attributes
//! ward takes without keeping (`name.givenName`, `emails[type eq "work"].value`, the enterprise
//! extension's) change nothing; a path into no schema is `invalidPath`.

use serde_json::Value;

use crate::error::{ScimError, ScimType};
use crate::user::{Attribute, ENTERPRISE_USER_SCHEMA, Kept, USER_SCHEMA, UserFields, attribute, set};

pub const PATCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// The most operations one PATCH may carry.
pub const MAX_OPERATIONS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Add,
    Replace,
    Remove,
}

pub(crate) fn syntax(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidSyntax, detail)
}

/// One operation of a PatchOp, read.
pub(crate) struct Operation<'a> {
    pub op: Op,
    pub path: Option<&'a str>,
    pub value: Option<&'a Value>,
}

/// The operations of a PatchOp (RFC 7644 §3.5.2): its envelope checked, each operation's `op`
/// and `path` read.
pub(crate) fn operations(body: &Value) -> Result<Vec<Operation<'_>>, ScimError> {
    let object = body.as_object().ok_or_else(|| syntax("a PATCH body is a JSON object"))?;
    let schemas = object.get("schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|schemas| schemas.iter().any(|s| s.as_str() == Some(PATCH_SCHEMA))) {
        return Err(syntax(format!("`schemas` must list {PATCH_SCHEMA}")));
    }
    if let Some(other) = object.keys().find(|k| !["schemas", "Operations"].contains(&k.as_str())) {
        return Err(syntax(format!("a PatchOp has `schemas` and `Operations`, not `{other}`")));
    }
    let operations = object
        .get("Operations")
        .and_then(Value::as_array)
        .filter(|ops| !ops.is_empty() && ops.len() <= MAX_OPERATIONS)
        .ok_or_else(|| syntax(format!("`Operations` lists 1 to {MAX_OPERATIONS} operations")))?;
    operations.iter().map(operation).collect()
}

fn operation(operation: &Value) -> Result<Operation<'_>, ScimError> {
    let operation = operation.as_object().ok_or_else(|| syntax("an operation is a JSON object"))?;
    if let Some(other) = operation.keys().find(|k| !["op", "path", "value"].contains(&k.as_str())) {
        return Err(syntax(format!("an operation has `op`, `path` and `value`, not `{other}`")));
    }
    let op = match operation.get("op").and_then(Value::as_str) {
        Some(op) if op.eq_ignore_ascii_case("add") => Op::Add,
        Some(op) if op.eq_ignore_ascii_case("replace") => Op::Replace,
        Some(op) if op.eq_ignore_ascii_case("remove") => Op::Remove,
        _ => return Err(syntax("`op` is add, replace or remove")),
    };
    let path = match operation.get("path") {
        None => None,
        Some(Value::String(path)) => Some(path.trim()),
        Some(_) => return Err(ScimError::bad(ScimType::InvalidPath, "`path` is a string")),
    };
    Ok(Operation { op, path, value: operation.get("value") })
}

/// What a PatchOp on a User changes, applied in order.
pub fn read_user_patch(body: &Value) -> Result<UserFields, ScimError> {
    let mut fields = UserFields::default();
    for Operation { op, path, value } in operations(body)? {
        apply(&mut fields, op, path, value)?;
    }
    Ok(fields)
}

fn apply(
    fields: &mut UserFields,
    op: Op,
    path: Option<&str>,
    value: Option<&Value>,
) -> Result<(), ScimError> {
    match (op, path) {
        (Op::Remove, None) => Err(ScimError::bad(ScimType::NoTarget, "a remove names its `path`")),
        (_, Some(path)) => on_path(fields, op, path, value),
        (_, None) => {
            // The value holds the attributes to add or replace, each by name.
            let attributes = value.and_then(Value::as_object).ok_or_else(|| {
                ScimError::bad(ScimType::InvalidValue, "without a path, `value` is an object")
            })?;
            for (name, value) in attributes {
                on_path(fields, op, name, Some(value))?;
            }
            Ok(())
        }
    }
}

fn on_path(fields: &mut UserFields, op: Op, path: &str, value: Option<&Value>) -> Result<(), ScimError> {
    if path.starts_with(ENTERPRISE_USER_SCHEMA) {
        return Ok(());
    }
    let path = path.strip_prefix(USER_SCHEMA).map_or(path, |rest| rest.trim_start_matches(':'));
    // The attribute the path starts with: `name` of `name.givenName`, `emails` of `emails[…]`.
    let end = path.find(['.', '[']).unwrap_or(path.len());
    let (name, deeper) = path.split_at(end);
    match attribute(name) {
        Attribute::Ignored => Ok(()),
        Attribute::ReadOnly => Err(ScimError::bad(
            ScimType::Mutability,
            format!("`{name}` is ward's to set, not the directory's"),
        )),
        Attribute::Unknown => Err(ScimError::bad(
            ScimType::InvalidPath,
            format!("`{path}` is in neither the User schema nor its enterprise extension"),
        )),
        Attribute::Kept(_) if !deeper.is_empty() => {
            Err(ScimError::bad(ScimType::InvalidPath, format!("`{name}` has no sub-attributes")))
        }
        Attribute::Kept(kept) => match (op, kept) {
            (Op::Remove, Kept::ExternalId | Kept::DisplayName) => set(fields, kept, &Value::Null),
            (Op::Remove, Kept::UserName) => {
                Err(ScimError::bad(ScimType::Mutability, "`userName` cannot be removed"))
            }
            (Op::Remove, Kept::Active) => Err(ScimError::bad(
                ScimType::InvalidValue,
                "`active` cannot be removed: replace it with false to deactivate",
            )),
            (Op::Add | Op::Replace, _) => {
                let value = value.ok_or_else(|| {
                    ScimError::bad(ScimType::InvalidValue, format!("`{name}` needs a value"))
                })?;
                set(fields, kept, value)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patch(operations: Value) -> Result<UserFields, ScimError> {
        read_user_patch(&json!({"schemas": [PATCH_SCHEMA], "Operations": operations}))
    }

    #[test]
    fn deactivation_as_entra_and_okta_send_it() {
        let entra = patch(json!([{"op": "Replace", "path": "active", "value": "False"}])).unwrap();
        assert_eq!(entra.active, Some(false));
        let okta = patch(json!([{"op": "replace", "value": {"active": false}}])).unwrap();
        assert_eq!(okta.active, Some(false));
    }

    #[test]
    fn paths_into_what_ward_does_not_keep_change_nothing() {
        let fields = patch(json!([
            {"op": "replace", "path": "name.givenName", "value": "Pat"},
            {"op": "add", "path": "emails[type eq \"work\"].value", "value": "pat@example.com"},
            {"op": "replace", "path": format!("{ENTERPRISE_USER_SCHEMA}:department"), "value": "payments"},
            {"op": "replace", "path": "displayName", "value": "Pat Doe"},
            {"op": "remove", "path": "externalId"},
        ]))
        .unwrap();
        assert_eq!(fields.display_name, Some(Some("Pat Doe".into())));
        assert_eq!(fields.external_id, Some(None));
        assert_eq!(fields.active, None);
    }

    #[test]
    fn the_rfcs_errors() {
        let kind = |operations: Value| patch(operations).unwrap_err().scim_type;
        assert_eq!(kind(json!([{"op": "remove"}])), Some(ScimType::NoTarget));
        assert_eq!(
            kind(json!([{"op": "replace", "path": "shoeSize", "value": 9}])),
            Some(ScimType::InvalidPath)
        );
        assert_eq!(kind(json!([{"op": "replace", "path": "id", "value": "x"}])), Some(ScimType::Mutability));
        assert_eq!(kind(json!([{"op": "remove", "path": "userName"}])), Some(ScimType::Mutability));
        assert_eq!(
            kind(json!([{"op": "replace", "path": "active", "value": "soon"}])),
            Some(ScimType::InvalidValue)
        );
        assert_eq!(kind(json!([{"op": "move", "path": "active"}])), Some(ScimType::InvalidSyntax));
        assert_eq!(kind(json!([])), Some(ScimType::InvalidSyntax));
        assert_eq!(
            kind(json!([{"op": "add", "path": "active", "value": true, "extra": 1}])),
            Some(ScimType::InvalidSyntax)
        );
        let no_schema =
            read_user_patch(&json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}));
        assert_eq!(no_schema.unwrap_err().scim_type, Some(ScimType::InvalidSyntax));
    }
}
