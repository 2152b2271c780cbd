//! Who is calling and what it may do: API keys and JWTs become a [`Principal`]; Casbin decides.

pub mod access;
pub mod api_key;
pub mod jwt;
pub mod permission;
pub mod policy;
pub mod principal;
pub mod role;
pub mod scope;
pub mod secret;

pub use principal::{Credential, Principal};
pub use role::Role;
