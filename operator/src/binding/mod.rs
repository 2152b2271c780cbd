//! The IntegrationBinding controller.

pub mod controller;
pub mod validate;

#[cfg(test)]
mod scenarios;
