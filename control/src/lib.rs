//! The Memory-C* control plane, defined once for the operator and the platform: which tenants
//! exist and where their data lives ([`tenants`]), their API keys ([`api_keys`]), settings
//! ([`settings`]), integrations ([`integrations`]), their webhook deliveries
//! ([`webhook_deliveries`]) and what their synchronisation keeps ([`sync_state`],
//! [`synced_items`], [`inbound_deliveries`]), on the sea-orm [`entities`] of the
//! control tables; and the PostgreSQL roles and grants that keep tenants apart ([`roles`],
//! [`password`]).
//!
//! Every function takes the connection it works on, so a caller decides which control schema
//! (the shared one, or a Dedicated tenant's own) and which role it acts as. The tables come
//! from `memoryc-migrations`.

pub mod api_keys;
pub mod entities;
pub mod inbound_deliveries;
pub mod integrations;
pub mod password;
pub mod roles;
pub mod settings;
pub mod sync_state;
pub mod synced_items;
pub mod tenants;
pub mod webhook_deliveries;
