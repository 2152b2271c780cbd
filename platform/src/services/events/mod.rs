//! Analytics events: the memory service publishes, a consumer records them and derives
//! relationships. The write path never waits: publishing only hands the event to a bounded
//! queue. Behind the queue sits Redis Streams with a consumer group (at-least-once, shared by
//! every replica) when Redis is configured, or an in-process consumer on embedded defaults.
//! Consumers are idempotent: an event stored twice counts once, relationships are replaced.

pub mod in_process;
pub mod processor;
pub mod publisher;
pub mod redis_stream;

pub use crate::stores::event_stream::{EventError, TenantEvent};
pub use processor::EventProcessor;
pub use publisher::EventPublisher;
