//! Who is calling: API keys today; JWT and RBAC build on the same [`Principal`].

pub mod api_key;
pub mod principal;

pub use principal::Principal;
