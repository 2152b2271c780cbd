//! How a tenant maps onto storage. Both the operator and the platform derive names from here.

use std::fmt;

/// Dimension of every stored embedding (all-MiniLM-L6-v2).
pub const VECTOR_DIMENSION: usize = 384;
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
}

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

    /// Milvus collection of a dedicated tenant.
    pub fn dedicated_collection(&self) -> String {
        format!("memoryc_tenant_{}", self.0.replace('-', "_"))
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isolation {
    Shared,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_dns_labels_and_derives_names() {
        let name = TenantName::parse("acme-corp2").expect("valid name");
        assert_eq!(name.schema_name(), "tenant_acme_corp2");
        assert_eq!(name.role_name(), "memoryc_acme_corp2");
        assert_eq!(name.dedicated_collection(), "memoryc_tenant_acme_corp2");
        assert_eq!(collection_for(&name, Isolation::Shared), SHARED_COLLECTION);
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
