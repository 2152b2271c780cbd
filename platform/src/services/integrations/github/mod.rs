//! GitHub Projects (v2): a board's items synchronised into a tenant's memories ([`sync`]), on
//! the integration's schedule ([`scheduler`]), on demand, and item by item as GitHub's webhooks
//! report changes ([`inbound`]); GitHub's GraphQL API is spoken by [`client`].

pub mod client;
pub mod inbound;
pub mod mapping;
pub mod scheduler;
pub mod sync;
pub mod types;
