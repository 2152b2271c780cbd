//! Memory-C* API types and the tenant layout contract.
//!
//! `layout` is the single place where the operator and the platform agree on how a tenant maps
//! onto storage: schema and collection names, the vector dimension and metric.

pub mod layout;
