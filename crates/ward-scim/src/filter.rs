//! The filters identity providers send to find a resource before they create it (RFC 7644
//! §3.4.2.2): one attribute, `eq`, a quoted string (`userName eq "alice@example.com"`).
//! Anything richer is refused with `invalidFilter`, never read loosely.

use crate::error::{ScimError, ScimType};

/// The longest filter read.
const MAX_FILTER_CHARS: usize = 1024;

/// `attribute eq "value"`, the attribute as written (compared case-insensitively, as SCIM
/// attribute names are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EqFilter {
    pub attribute: String,
    pub value: String,
}

impl EqFilter {
    /// Whether the filter names `attribute` (case-insensitively).
    pub fn is_on(&self, attribute: &str) -> bool {
        self.attribute.eq_ignore_ascii_case(attribute)
    }
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::bad(ScimType::InvalidFilter, detail)
}

pub fn parse(text: &str) -> Result<EqFilter, ScimError> {
    if text.chars().count() > MAX_FILTER_CHARS {
        return Err(invalid(format!("a filter is at most {MAX_FILTER_CHARS} characters")));
    }
    let text = text.trim();
    let (attribute, rest) = text.split_once(char::is_whitespace).ok_or_else(|| {
        invalid(format!("`{text}` is not a filter ward reads: write ATTRIBUTE eq \"VALUE\""))
    })?;
    let valid_name = !attribute.is_empty()
        && attribute.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-');
    if !valid_name {
        return Err(invalid(format!("`{attribute}` is not an attribute name")));
    }
    let rest = rest.trim_start();
    let (operator, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !operator.eq_ignore_ascii_case("eq") {
        return Err(invalid(format!(
            "ward filters with `eq` only (one attribute, `{attribute} eq \"…\"`), not `{operator}`"
        )));
    }
    let quoted = value.trim();
    if !quoted.starts_with('"') {
        return Err(invalid(format!("compare {attribute} with a quoted string")));
    }
    // A JSON string (RFC 7644 §3.4.2.2: "JSON quoted string"), and nothing after it.
    let mut stream = serde_json::Deserializer::from_str(quoted).into_iter::<String>();
    let value = match stream.next() {
        Some(Ok(value)) => value,
        _ => return Err(invalid("the value is not a well-formed quoted string")),
    };
    if !quoted.get(stream.byte_offset()..).is_some_and(|after| after.trim().is_empty()) {
        return Err(invalid("ward filters on one comparison: no `and`, `or`, `not` or grouping"));
    }
    Ok(EqFilter { attribute: attribute.to_owned(), value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_equality_on_one_attribute() {
        let filter = parse(r#"userName eq "alice@example.com""#).unwrap();
        assert!(filter.is_on("username"));
        assert_eq!(filter.value, "alice@example.com");
        assert_eq!(parse(r#"  externalId EQ "a \"quoted\" id"  "#).unwrap().value, r#"a "quoted" id"#);
        assert_eq!(parse(r#"displayName eq "payments-leads""#).unwrap().attribute, "displayName");
    }

    #[test]
    fn anything_else_is_an_invalid_filter() {
        for text in [
            "",
            "userName",
            r#"userName co "ali""#,
            r#"userName eq alice"#,
            r#"userName eq "alice" and active eq true"#,
            r#"userName eq "alice"#,
            r#"(userName eq "alice")"#,
            r#"emails[type eq "work"] eq "x""#,
        ] {
            let error = parse(text).unwrap_err();
            assert_eq!((error.status, error.scim_type), (400, Some(ScimType::InvalidFilter)), "{text}");
        }
        assert!(parse(&format!(r#"userName eq "{}""#, "a".repeat(2000))).is_err());
    }
}
