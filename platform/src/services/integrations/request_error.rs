//! What a failed outbound request says: whether it timed out, and the chain of its causes,
//! which carry the useful part ("connection refused", "dns error").

/// `timed_out` or `failed`, followed by the error's causes.
pub fn describe(error: &reqwest::Error, timed_out: &str, failed: &str) -> String {
    let mut text = if error.is_timeout() {
        timed_out.to_string()
    } else {
        failed.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
