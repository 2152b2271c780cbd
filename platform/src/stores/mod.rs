//! Storage behind traits: relational (source of truth) and vector backends.

pub mod vector;
