//! The SCIM User resource (RFC 7643 §4.1) as ward reads and writes it. ward keeps what decides
//! access — `userName` (the ward user name), `active`, `externalId`, `displayName` — and takes
//! every other attribute of the core User schema and the enterprise extension without keeping
//! it (an identity provider sends them all). An attribute of neither schema is refused.

use jiff::Timestamp;
use serde_json::{Map, Value, json};
use ward_store::PersonRecord;

use crate::error::{ScimError, ScimType};

pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const ENTERPRISE_USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The core User schema's attributes ward takes without keeping (RFC 7643 §4.1).
const TAKEN_NOT_KEPT: [&str; 19] = [
    "name",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "password",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "groups",
    "entitlements",
    "roles",
    "x509Certificates",
    ENTERPRISE_USER_SCHEMA,
];

/// The longest text ward keeps from a directory (`externalId`, `displayName`).
pub const MAX_TEXT_CHARS: usize = 256;

/// What a request says about the attributes ward keeps; `None`: not said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFields {
    pub user_name: Option<String>,
    /// `Some(None)`: cleared.
    pub external_id: Option<Option<String>>,
    pub display_name: Option<Option<String>>,
    pub active: Option<bool>,
}

/// The attribute ward keeps that `name` names (case-insensitively), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    UserName,
    ExternalId,
    DisplayName,
    Active,
}

/// How the request names an attribute: one ward keeps, one it takes without keeping, one it
/// never writes (`id`, `meta`, `schemas`), or none it knows.
pub enum Attribute {
    Kept(Kept),
    Ignored,
    ReadOnly,
    Unknown,
}

pub fn attribute(name: &str) -> Attribute {
    let is = |known: &str| name.eq_ignore_ascii_case(known);
    if is("userName") {
        Attribute::Kept(Kept::UserName)
    } else if is("externalId") {
        Attribute::Kept(Kept::ExternalId)
    } else if is("displayName") {
        Attribute::Kept(Kept::DisplayName)
    } else if is("active") {
        Attribute::Kept(Kept::Active)
    } else if is("id") || is("meta") || is("schemas") {
        Attribute::ReadOnly
    } else if TAKEN_NOT_KEPT.iter().any(|known| is(known)) {
        Attribute::Ignored
    } else {
        Attribute::Unknown
    }
}

fn unknown(name: &str) -> ScimError {
    ScimError::bad(
        ScimType::InvalidSyntax,
        format!("`{name}` is not an attribute of the User schema or its enterprise extension"),
    )
}

/// A User resource as a POST or PUT carries it.
pub fn read_user(body: &Value) -> Result<UserFields, ScimError> {
    let object =
        body.as_object().ok_or_else(|| ScimError::bad(ScimType::InvalidSyntax, "a User is a JSON object"))?;
    let schemas = object.get("schemas").and_then(Value::as_array);
    let names_user = schemas.is_some_and(|schemas| schemas.iter().any(|s| s.as_str() == Some(USER_SCHEMA)));
    if !names_user {
        return Err(ScimError::bad(ScimType::InvalidSyntax, format!("`schemas` must list {USER_SCHEMA}")));
    }
    let mut fields = UserFields::default();
    for (name, value) in object {
        match attribute(name) {
            Attribute::Kept(kept) => set(&mut fields, kept, value)?,
            Attribute::Ignored | Attribute::ReadOnly => {}
            Attribute::Unknown => return Err(unknown(name)),
        }
    }
    Ok(fields)
}

/// Sets `kept` in `fields` from a request's `value`, checking its type.
pub fn set(fields: &mut UserFields, kept: Kept, value: &Value) -> Result<(), ScimError> {
    match kept {
        Kept::UserName => fields.user_name = Some(text("userName", value)?.unwrap_or_default()),
        Kept::ExternalId => fields.external_id = Some(text("externalId", value)?),
        Kept::DisplayName => fields.display_name = Some(text("displayName", value)?),
        Kept::Active => fields.active = Some(boolean(value)?),
    }
    Ok(())
}

/// A string attribute (`null`: cleared), at most [`MAX_TEXT_CHARS`].
fn text(name: &str, value: &Value) -> Result<Option<String>, ScimError> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) if text.chars().count() <= MAX_TEXT_CHARS => Ok(Some(text.clone())),
        Value::String(_) => Err(ScimError::bad(
            ScimType::InvalidValue,
            format!("`{name}` is longer than {MAX_TEXT_CHARS} characters"),
        )),
        _ => Err(ScimError::bad(ScimType::InvalidValue, format!("`{name}` is a string"))),
    }
}

/// `active`: a boolean; also `"True"` / `"False"`, as Microsoft Entra ID sends it in PATCH.
pub fn boolean(value: &Value) -> Result<bool, ScimError> {
    match value {
        Value::Bool(yes) => Ok(*yes),
        Value::String(text) if text.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(text) if text.eq_ignore_ascii_case("false") => Ok(false),
        _ => Err(ScimError::bad(ScimType::InvalidValue, "`active` is true or false")),
    }
}

/// A person as a SCIM User; `id` is their ward user name. `groups`: the directory's groups
/// (`grp_…`, name) they are in.
pub fn user_json(person: &PersonRecord, groups: &[(String, String)]) -> Value {
    let mut user = Map::new();
    user.insert("schemas".into(), json!([USER_SCHEMA]));
    user.insert("id".into(), person.name.clone().into());
    if let Some(external_id) = &person.subject {
        user.insert("externalId".into(), external_id.clone().into());
    }
    user.insert("userName".into(), person.name.clone().into());
    if let Some(display_name) = &person.display_name {
        user.insert("displayName".into(), display_name.clone().into());
    }
    user.insert("active".into(), person.active.into());
    let groups: Vec<Value> = groups
        .iter()
        .map(|(id, name)| json!({"value": id, "display": name, "$ref": format!("/scim/v2/Groups/{id}")}))
        .collect();
    user.insert("groups".into(), groups.into());
    user.insert("meta".into(), meta("User", &format!("/scim/v2/Users/{}", person.name), person));
    Value::Object(user)
}

fn meta(kind: &str, location: &str, person: &PersonRecord) -> Value {
    json!({
        "resourceType": kind,
        "created": stamp(person.created_at),
        "lastModified": stamp(person.updated_at),
        "location": location,
        "version": format!("W/\"{}\"", person.version),
    })
}

fn stamp(at: Timestamp) -> String {
    at.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(extra: Value) -> Value {
        let mut body = json!({"schemas": [USER_SCHEMA], "userName": "pat@example.com"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    }

    #[test]
    fn keeps_what_decides_access_and_takes_the_rest() {
        let body = user(json!({
            "externalId": "00u1", "DisplayName": "Pat", "active": false,
            "name": {"givenName": "Pat"}, "emails": [{"value": "pat@example.com", "primary": true}],
            ENTERPRISE_USER_SCHEMA: {"department": "payments"}, "id": "ignored", "groups": [],
        }));
        let fields = read_user(&body).unwrap();
        assert_eq!(fields.user_name.as_deref(), Some("pat@example.com"));
        assert_eq!(fields.external_id, Some(Some("00u1".into())));
        assert_eq!(fields.display_name, Some(Some("Pat".into())), "names are case-insensitive");
        assert_eq!(fields.active, Some(false));
    }

    #[test]
    fn refuses_what_no_schema_has_and_values_of_the_wrong_type() {
        let refused = |body: Value| read_user(&body).unwrap_err();
        let error = refused(user(json!({"favouriteColour": "teal"})));
        assert_eq!(error.scim_type, Some(ScimType::InvalidSyntax));
        assert!(error.detail.contains("favouriteColour"), "{}", error.detail);
        assert_eq!(
            refused(json!({"userName": "pat"})).scim_type,
            Some(ScimType::InvalidSyntax),
            "no schemas"
        );
        assert_eq!(refused(json!([1])).scim_type, Some(ScimType::InvalidSyntax));
        for (name, value) in [("active", json!("maybe")), ("userName", json!(7)), ("externalId", json!({}))] {
            let error = refused(user(json!({ name: value })));
            assert_eq!(error.scim_type, Some(ScimType::InvalidValue), "{name}");
        }
        assert!(refused(user(json!({"displayName": "x".repeat(300)}))).detail.contains("longer"));
    }

    #[test]
    fn active_as_entra_sends_it() {
        assert!(!boolean(&json!("False")).unwrap());
        assert!(boolean(&json!("true")).unwrap());
        assert!(boolean(&json!(1)).is_err());
    }
}
