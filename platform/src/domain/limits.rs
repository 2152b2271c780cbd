//! Input limits of the original design. Every one is enforced at the API edge and tested.

/// Longest memory content, in characters (not bytes).
pub const MAX_CONTENT_CHARS: usize = 50_000;
/// Largest metadata document, in bytes of its compact JSON form.
pub const MAX_METADATA_BYTES: usize = 5_000;
/// Default number of search results.
pub const DEFAULT_SEARCH_LIMIT: u64 = 10;
/// Most results one search may ask for.
pub const MAX_SEARCH_LIMIT: u64 = 100;
/// Largest request body accepted at all (content limit in 4-byte chars plus metadata and JSON).
pub const MAX_REQUEST_BODY_BYTES: usize = 256 * 1024;
/// Most bytes of history entries (their JSON) in one page: a page stops early, with a `next`
/// cursor, rather than grow past this (every entry may hold two 50 000-character versions).
pub const MAX_HISTORY_PAGE_BYTES: usize = 1024 * 1024;
/// Deepest nesting of objects and arrays accepted in a JSON body.
pub const MAX_JSON_DEPTH: usize = 32;
