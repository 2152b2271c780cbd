//! Memory-C* migrations.
