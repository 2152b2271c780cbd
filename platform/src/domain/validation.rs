//! Checks on user input against the limits of the original design.

use super::limits::{MAX_CONTENT_CHARS, MAX_METADATA_BYTES};

/// Why an input was refused. Each variant maps to one HTTP status at the API edge.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputError {
    #[error("{field} must not be blank")]
    Blank { field: &'static str },
    #[error("{field} is {actual} {unit} long; at most {limit} are allowed")]
    TooLarge {
        field: &'static str,
        actual: usize,
        limit: usize,
        unit: &'static str,
    },
    #[error("{field} is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// Content must have a non-whitespace character and at most 50 000 characters.
pub fn validate_content(content: &str) -> Result<(), InputError> {
    let chars = content.chars().count();
    if chars > MAX_CONTENT_CHARS {
        return Err(InputError::TooLarge {
            field: "content",
            actual: chars,
            limit: MAX_CONTENT_CHARS,
            unit: "characters",
        });
    }
    if content.trim().is_empty() {
        return Err(InputError::Blank { field: "content" });
    }
    Ok(())
}

/// Metadata must be a JSON object of at most 5 000 bytes (compact form).
pub fn validate_metadata(metadata: &serde_json::Value) -> Result<(), InputError> {
    if !metadata.is_object() {
        return Err(InputError::Invalid {
            field: "metadata",
            reason: "must be a JSON object".to_string(),
        });
    }
    let bytes = metadata.to_string().len();
    if bytes > MAX_METADATA_BYTES {
        return Err(InputError::TooLarge {
            field: "metadata",
            actual: bytes,
            limit: MAX_METADATA_BYTES,
            unit: "bytes",
        });
    }
    Ok(())
}

/// Metadata keys usable in filters: short and free of JSON-path syntax.
pub fn validate_metadata_key(key: &str) -> Result<(), InputError> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(InputError::Invalid {
            field: "metadata_key",
            reason: "must be 1-64 characters of letters, digits, '_' or '-'".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_limits_count_characters_not_bytes() {
        assert!(validate_content(&"é".repeat(MAX_CONTENT_CHARS)).is_ok());
        assert!(matches!(
            validate_content(&"a".repeat(MAX_CONTENT_CHARS + 1)),
            Err(InputError::TooLarge {
                field: "content",
                actual: 50_001,
                ..
            })
        ));
        assert_eq!(
            validate_content(" \n\t "),
            Err(InputError::Blank { field: "content" })
        );
        assert_eq!(
            validate_content(""),
            Err(InputError::Blank { field: "content" })
        );
    }

    #[test]
    fn metadata_must_be_a_small_object() {
        assert!(validate_metadata(&serde_json::json!({"a": 1})).is_ok());
        assert!(matches!(
            validate_metadata(&serde_json::json!([1])),
            Err(InputError::Invalid { .. })
        ));
        let at_limit = serde_json::json!({ "k": "x".repeat(MAX_METADATA_BYTES - 8) });
        assert_eq!(at_limit.to_string().len(), MAX_METADATA_BYTES);
        assert!(validate_metadata(&at_limit).is_ok());
        let over = serde_json::json!({ "k": "x".repeat(MAX_METADATA_BYTES - 7) });
        assert!(matches!(
            validate_metadata(&over),
            Err(InputError::TooLarge { .. })
        ));
    }

    #[test]
    fn metadata_filter_keys_are_restricted() {
        assert!(validate_metadata_key("project_id").is_ok());
        assert!(validate_metadata_key("a.b").is_err());
        assert!(validate_metadata_key("").is_err());
        assert!(validate_metadata_key("x\"y").is_err());
    }
}
