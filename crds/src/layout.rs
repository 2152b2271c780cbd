//! How a tenant maps onto storage. Both the operator and the platform derive names from here.

use std::fmt;

/// The embedding model the platform runs locally.
pub const EMBEDDING_MODEL: &str = "all-MiniLM-L6-v2";
/// Dimension of every stored embedding (all-MiniLM-L6-v2).
pub const VECTOR_DIMENSION: usize = 384;

/// Whether `name` is the platform's local model, by its short or its Hugging Face name.
pub fn is_local_embedding_model(name: &str) -> bool {
    let name = name.trim();
    let short = name.strip_prefix("sentence-transformers/").unwrap_or(name);
    short.eq_ignore_ascii_case(EMBEDDING_MODEL)
}
/// Similarity metric of every vector index.
pub const VECTOR_METRIC: &str = "COSINE";
/// HNSW graph degree.
pub const HNSW_M: usize = 16;
/// HNSW build-time candidate list size.
pub const HNSW_EF_CONSTRUCTION: usize = 200;
/// HNSW search-time candidate list size.
pub const HNSW_EF_SEARCH: usize = 100;
/// Milvus collection that holds every shared tenant, partitioned by tenant.
pub const SHARED_COLLECTION: &str = "memoryc_shared";
/// Longest tenant name: keeps derived schema, role and collection names inside their limits.
pub const MAX_TENANT_NAME_LEN: usize = 40;

/// A validated tenant name: a DNS label (lowercase letters, digits, `-`), at most 40 chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TenantNameError {
    #[error("tenant name must not be empty")]
    Empty,
    #[error("tenant name is {0} characters long; at most {MAX_TENANT_NAME_LEN} are allowed")]
    TooLong(usize),
    #[error(
        "tenant name {0:?} must consist of lowercase letters, digits and '-', start with a letter and end with a letter or digit"
    )]
    InvalidCharacters(String),
    #[error("tenant name {0:?} is reserved ({RESERVED_TENANT_NAMES:?} name the platform's own)")]
    Reserved(String),
}

/// Names no tenant may have, on every backend: `control` is the embedded control database's
/// file (`control.sqlite`), `platform` and `operator` the usual names of the platform's and the
/// operator's own database roles (`memoryc_platform`, `memoryc_operator`).
pub const RESERVED_TENANT_NAMES: [&str; 3] = ["control", "platform", "operator"];

impl TenantName {
    pub fn parse(name: &str) -> Result<Self, TenantNameError> {
        if name.is_empty() {
            return Err(TenantNameError::Empty);
        }
        if name.len() > MAX_TENANT_NAME_LEN {
            return Err(TenantNameError::TooLong(name.len()));
        }
        let bytes = name.as_bytes();
        let valid_chars = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        let starts_with_letter = bytes[0].is_ascii_lowercase();
        let ends_alphanumeric = bytes[bytes.len() - 1] != b'-';
        if !(valid_chars && starts_with_letter && ends_alphanumeric) {
            return Err(TenantNameError::InvalidCharacters(name.to_string()));
        }
        if RESERVED_TENANT_NAMES.contains(&name) {
            return Err(TenantNameError::Reserved(name.to_string()));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// PostgreSQL schema holding the tenant's tables.
    pub fn schema_name(&self) -> String {
        format!("tenant_{}", self.0.replace('-', "_"))
    }

    /// PostgreSQL role that may use only the tenant's schema.
    pub fn role_name(&self) -> String {
        format!("memoryc_{}", self.0.replace('-', "_"))
    }

    /// `NOLOGIN` role that owns the tenant's schemas and every object in them; only migrations
    /// act as it. The `$` keeps it apart from every login role (`memoryc_` + a tenant name
    /// never holds one).
    pub fn owner_role_name(&self) -> String {
        format!("{}$owner", self.role_name())
    }

    /// Login the shared platform uses for this tenant's statements, and for nothing else: it
    /// holds the same table rights as the tenant's login and is a member of no role, so nothing
    /// that runs in one of its sessions can become another tenant.
    pub fn platform_login_name(&self) -> String {
        format!("{}$platform", self.role_name())
    }

    /// Milvus collection of a dedicated tenant.
    pub fn dedicated_collection(&self) -> String {
        format!("memoryc_tenant_{}", self.0.replace('-', "_"))
    }

    /// PostgreSQL schema holding the control tables (tenants, API keys, outbox) of a dedicated
    /// tenant's own platform. Separate from the data schema because both migration sets keep
    /// their history in a table of the same name.
    pub fn dedicated_control_schema(&self) -> String {
        format!("memoryc_control_{}", self.0.replace('-', "_"))
    }

    /// File name (without directory) of the tenant's embedded SQLite database.
    pub fn sqlite_file_name(&self) -> String {
        format!("{}.sqlite", self.0)
    }
}

impl fmt::Display for TenantName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Whether a tenant's vectors live in a collection of their own or in the shared one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "resources",
    derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)
)]
pub enum Isolation {
    /// Vectors in the shared collection (tenant as partition key), served by the shared platform.
    #[default]
    Shared,
    /// A collection and a platform Deployment of the tenant's own.
    Dedicated,
}

impl Isolation {
    pub fn as_str(self) -> &'static str {
        match self {
            Isolation::Shared => "Shared",
            Isolation::Dedicated => "Dedicated",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "Shared" | "shared" => Some(Isolation::Shared),
            "Dedicated" | "dedicated" => Some(Isolation::Dedicated),
            _ => None,
        }
    }
}

/// Milvus collection holding a tenant's vectors under the given isolation.
pub fn collection_for(tenant: &TenantName, isolation: Isolation) -> String {
    match isolation {
        Isolation::Shared => SHARED_COLLECTION.to_string(),
        Isolation::Dedicated => tenant.dedicated_collection(),
    }
}

/// Longest PostgreSQL identifier.
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// Why a schema name chosen by a user cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaNameError {
    #[error(
        "schema name {0:?} must be 1 to 63 lowercase letters, digits and '_', starting with a letter or '_'"
    )]
    Invalid(String),
    #[error("schema name {0:?} is reserved")]
    Reserved(String),
}

/// Checks a schema name given in a tenant's spec: a plain lowercase identifier (so it needs no
/// quoting rules beyond double quotes) that is neither a system schema nor one of the platform's.
pub fn validate_schema_name(name: &str) -> Result<(), SchemaNameError> {
    let bytes = name.as_bytes();
    let plain = !bytes.is_empty()
        && bytes.len() <= MAX_IDENTIFIER_LEN
        && (bytes[0].is_ascii_lowercase() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
    if !plain {
        return Err(SchemaNameError::Invalid(name.to_string()));
    }
    let reserved = name == "public"
        || name == "information_schema"
        || name.starts_with("pg_")
        || name.starts_with("memoryc_control");
    if reserved {
        return Err(SchemaNameError::Reserved(name.to_string()));
    }
    Ok(())
}

/// Schema holding the control tables that the platform serving this tenant reads: the shared
/// platform's for `Shared` tenants, the tenant's own for `Dedicated` ones.
pub fn control_schema_for(tenant: &TenantName, isolation: Isolation, shared: &str) -> String {
    match isolation {
        Isolation::Shared => shared.to_string(),
        Isolation::Dedicated => tenant.dedicated_control_schema(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels_and_derives_names() {
        let name = TenantName::parse("acme-corp2").expect("valid name");
        assert_eq!(name.schema_name(), "tenant_acme_corp2");
        assert_eq!(name.role_name(), "memoryc_acme_corp2");
        assert_eq!(name.owner_role_name(), "memoryc_acme_corp2$owner");
        assert_eq!(name.dedicated_collection(), "memoryc_tenant_acme_corp2");
        assert_eq!(collection_for(&name, Isolation::Shared), SHARED_COLLECTION);
        assert_eq!(
            control_schema_for(&name, Isolation::Dedicated, "memoryc_control"),
            "memoryc_control_acme_corp2"
        );
        assert_eq!(
            control_schema_for(&name, Isolation::Shared, "memoryc_control"),
            "memoryc_control"
        );
    }

    #[test]
    fn derived_names_fit_postgres_identifiers() {
        let longest = TenantName::parse(&"a".repeat(MAX_TENANT_NAME_LEN)).expect("valid");
        for derived in [
            longest.schema_name(),
            longest.role_name(),
            longest.dedicated_control_schema(),
        ] {
            assert!(derived.len() <= MAX_IDENTIFIER_LEN, "{derived}");
            assert_eq!(
                validate_schema_name(&derived).is_ok(),
                !derived.starts_with("memoryc_control")
            );
        }
    }

    #[test]
    fn reserved_names_are_refused() {
        for reserved in RESERVED_TENANT_NAMES {
            assert_eq!(
                TenantName::parse(reserved),
                Err(TenantNameError::Reserved(reserved.to_string()))
            );
        }
        assert!(TenantName::parse("control-plane").is_ok());
    }

    #[test]
    fn owner_roles_fit_and_never_match_a_login_role() {
        let longest = TenantName::parse(&"a".repeat(MAX_TENANT_NAME_LEN)).expect("valid");
        assert!(longest.owner_role_name().len() <= MAX_IDENTIFIER_LEN);
        assert!(longest.platform_login_name().len() <= MAX_IDENTIFIER_LEN);
        // A login role is `memoryc_` and a tenant name's letters, digits and '_': never a '$'.
        let tricky = TenantName::parse("acme-owner").expect("valid");
        let acme = TenantName::parse("acme").expect("valid");
        assert_ne!(tricky.role_name(), acme.owner_role_name());
        assert!(!tricky.role_name().contains('$'));
    }

    #[test]
    fn schema_overrides_must_be_plain_and_unreserved() {
        assert!(validate_schema_name("acme_data").is_ok());
        assert!(validate_schema_name("_x1").is_ok());
        for invalid in ["", "Acme", "1abc", "a-b", "a\"b", &"a".repeat(64)] {
            assert!(
                matches!(
                    validate_schema_name(invalid),
                    Err(SchemaNameError::Invalid(_))
                ),
                "{invalid:?}"
            );
        }
        for reserved in [
            "public",
            "pg_catalog",
            "information_schema",
            "memoryc_control",
        ] {
            assert!(
                matches!(
                    validate_schema_name(reserved),
                    Err(SchemaNameError::Reserved(_))
                ),
                "{reserved:?}"
            );
        }
    }

    #[test]
    fn rejects_names_that_would_break_identifiers() {
        assert_eq!(TenantName::parse(""), Err(TenantNameError::Empty));
        assert!(matches!(
            TenantName::parse("Acme"),
            Err(TenantNameError::InvalidCharacters(_))
        ));
        assert!(matches!(
            TenantName::parse("1acme"),
            Err(TenantNameError::InvalidCharacters(_))
        ));
        assert!(matches!(
            TenantName::parse("acme-"),
            Err(TenantNameError::InvalidCharacters(_))
        ));
        assert!(matches!(
            TenantName::parse("a\"; drop"),
            Err(TenantNameError::InvalidCharacters(_))
        ));
        let long = "a".repeat(MAX_TENANT_NAME_LEN + 1);
        assert_eq!(TenantName::parse(&long), Err(TenantNameError::TooLong(41)));
        assert!(TenantName::parse(&"a".repeat(MAX_TENANT_NAME_LEN)).is_ok());
    }
}
