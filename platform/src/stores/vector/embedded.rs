//! The embedded vector index: one HNSW index per tenant on local disk.
