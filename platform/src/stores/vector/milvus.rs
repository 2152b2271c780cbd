//! Vectors in Milvus: a collection per dedicated tenant, a shared partition-keyed collection otherwise.
