//! Memory-C* end-to-end helpers.
