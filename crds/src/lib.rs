//! Memory-C* API types and the contract between the operator and the platform.
//!
//! * `layout`: how a tenant maps onto storage (schema, role and collection names, vector
//!   dimension and metric).
//! * `contract`: the credentials Secret's keys, the label set, Milvus field names.
//! * `api_key`: the platform API key format and its stored hash.
//! * `milvus` (feature `milvus`): the memory-vector collection's schema, index and set-up.
//! * `resources` (feature `resources`): the `MemoryTenant` and `IntegrationBinding` custom
//!   resources, group `memoryc.dev`, version `v1alpha1`.

pub mod api_key;
pub mod contract;
pub mod layout;
#[cfg(feature = "milvus")]
pub mod milvus;
#[cfg(feature = "resources")]
pub mod resources;
