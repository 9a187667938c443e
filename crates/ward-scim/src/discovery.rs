//! SCIM's discovery documents (RFC 7644 §4, RFC 7643 §5–7): what ward supports, its two
//! resource types, and the attributes of each that it keeps. Served without a token: they say
//! nothing about anyone.

use serde_json::{Value, json};

use crate::group::GROUP_SCHEMA;
use crate::service::{LIST_SCHEMA, MAX_COUNT};
use crate::user::USER_SCHEMA;

/// `GET /scim/v2/ServiceProviderConfig`.
pub fn service_provider_config() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": {"supported": true},
        "bulk": {"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": true, "maxResults": MAX_COUNT},
        "changePassword": {"supported": false},
        "sort": {"supported": false},
        "etag": {"supported": false},
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "a ward API token with the `scim` scope (ward admin token create service:NAME --scope scim)",
        }],
        "meta": {"resourceType": "ServiceProviderConfig", "location": "/scim/v2/ServiceProviderConfig"},
    })
}

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// `GET /scim/v2/ResourceTypes`: Users and Groups.
pub fn resource_types() -> Value {
    let kind = |id: &str, endpoint: &str, schema: &str, description: &str| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": id,
            "name": id,
            "endpoint": endpoint,
            "description": description,
            "schema": schema,
            "meta": {"resourceType": "ResourceType", "location": format!("/scim/v2/ResourceTypes/{id}")},
        })
    };
    list(vec![
        kind("User", "/Users", USER_SCHEMA, "a person; the id and userName are the ward user name"),
        kind("Group", "/Groups", GROUP_SCHEMA, "a ward group; displayName is the name policies use"),
    ])
}

/// One attribute as RFC 7643 §7 describes it.
fn attribute(name: &str, kind: &str, required: bool, mutability: &str, description: &str) -> Value {
    json!({
        "name": name,
        "type": kind,
        "multiValued": false,
        "description": description,
        "required": required,
        "caseExact": name != "userName" && name != "displayName",
        "mutability": mutability,
        "returned": "default",
        "uniqueness": if name == "userName" { "server" } else { "none" },
    })
}

/// The multi-valued reference attribute (`groups`, `members`) and its sub-attributes.
fn references(name: &str, mutability: &str, description: &str) -> Value {
    let sub = |sub_name: &str, description: &str| {
        json!({
            "name": sub_name, "type": "string", "multiValued": false, "description": description,
            "required": false, "caseExact": true, "mutability": mutability, "returned": "default",
            "uniqueness": "none",
        })
    };
    json!({
        "name": name,
        "type": "complex",
        "multiValued": true,
        "description": description,
        "required": false,
        "mutability": mutability,
        "returned": "default",
        "subAttributes": [sub("value", "the id"), sub("display", "the name")],
    })
}

/// `GET /scim/v2/Schemas`: the attributes ward keeps of each resource. Other attributes of the
/// User schema and its enterprise extension are taken and not kept.
pub fn schemas() -> Value {
    let schema = |id: &str, name: &str, description: &str, attributes: Vec<Value>| {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": id,
            "name": name,
            "description": description,
            "attributes": attributes,
            "meta": {"resourceType": "Schema", "location": format!("/scim/v2/Schemas/{id}")},
        })
    };
    list(vec![
        schema(
            USER_SCHEMA,
            "User",
            "a person, as ward keeps them",
            vec![
                attribute(
                    "userName",
                    "string",
                    true,
                    "immutable",
                    "the ward user name (1 to 128 letters, digits and -_.:@)",
                ),
                attribute("externalId", "string", false, "readWrite", "the directory's id"),
                attribute("displayName", "string", false, "readWrite", "the name to show"),
                attribute("active", "boolean", false, "readWrite", "false ends their grants and tokens"),
                references("groups", "readOnly", "the directory's groups they are in"),
            ],
        ),
        schema(
            GROUP_SCHEMA,
            "Group",
            "a ward group",
            vec![
                attribute("displayName", "string", true, "readWrite", "the ward group policies name"),
                attribute("externalId", "string", false, "readWrite", "the directory's id"),
                references("members", "readWrite", "its Users"),
            ],
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documents_name_what_ward_serves() {
        let types = resource_types();
        assert_eq!(types["totalResults"], 2);
        assert_eq!(types["Resources"][0]["schema"], USER_SCHEMA);
        let schemas = schemas();
        let user = &schemas["Resources"][0];
        let names: Vec<&str> =
            user["attributes"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["userName", "externalId", "displayName", "active", "groups"]);
        assert_eq!(user["attributes"][0]["mutability"], "immutable");
        assert_eq!(service_provider_config()["filter"]["maxResults"], MAX_COUNT);
    }
}
