//! The product's vocabulary: memories, categories and the limits they obey.

pub mod analytics;
pub mod category;
pub mod limits;
pub mod memory;
pub mod network;
pub mod pii;
pub mod validation;

pub use category::Category;
pub use memory::{Memory, MemoryFilter, MemoryPatch, NewMemory};
