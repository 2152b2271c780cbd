//! The tenant's choices the platform applies (PII policy, rate limit, analytics, the HNSW
//! search-time `ef` of its Milvus searches, its memory quota), derived from
//! the spec. They land in the `tenant_settings` row of the tenant's control schema, which the
//! shared platform and a dedicated one both read, and in a dedicated platform's environment.

use memoryc_crds::resources::{MemoryTenantSpec, PiiAction};

/// The platform's schedule for "no scheduled runs", used when a tenant switches analytics off
/// (the shared platform has no per-tenant switch).
pub const NEVER: &str = "never";

#[derive(Debug, Clone, PartialEq)]
pub struct PlatformSettingsPlan {
    /// `allow`, `mask` or `reject`, as the platform names them.
    pub pii_policy: &'static str,
    pub rate_limit_per_minute: i32,
    pub analytics_enabled: bool,
    /// The platform's cron (seconds optional), or [`NEVER`] when analytics are off.
    pub analytics_schedule: String,
    pub insight_ttl_hours: u64,
    /// HNSW search-time candidate list size (`spec.vectors.index.ef`).
    pub search_ef: i32,
    /// `spec.storage.maxMemories`: the most memories the platform stores for the tenant.
    pub max_memories: Option<i64>,
    /// `spec.analytics.confidenceThreshold`: insights below it are not kept.
    pub insight_min_confidence: f64,
    /// `spec.rateLimits.burst`: requests per credential, route and second.
    pub burst: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid spec.analytics.insightTtl {0:?}: use a sum of numbers with s, m, h or d, e.g. 168h or 7d12h"
)]
pub struct TtlError(pub String);

impl PlatformSettingsPlan {
    pub fn from_spec(spec: &MemoryTenantSpec) -> Result<Self, TtlError> {
        let pii_policy = match spec.pii.action {
            PiiAction::Allow => "allow",
            PiiAction::Redact => "mask",
            PiiAction::Reject => "reject",
        };
        let analytics_schedule = if spec.analytics.enabled {
            spec.analytics.schedule.trim().to_string()
        } else {
            NEVER.to_string()
        };
        Ok(Self {
            pii_policy,
            rate_limit_per_minute: spec.rate_limits.requests_per_minute.max(1),
            analytics_enabled: spec.analytics.enabled,
            analytics_schedule,
            insight_ttl_hours: ttl_hours(&spec.analytics.insight_ttl)?,
            search_ef: spec.vectors.index.ef.max(1),
            max_memories: spec.storage.max_memories.map(|max| max.max(0)),
            insight_min_confidence: spec.analytics.confidence_threshold.clamp(0.0, 1.0),
            burst: spec.rate_limits.burst.max(1),
        })
    }
}

/// `168h`, `7d`, `1d12h`, `90m` → whole hours, rounded up, at least one.
pub fn ttl_hours(text: &str) -> Result<u64, TtlError> {
    let invalid = || TtlError(text.to_string());
    let mut seconds: u64 = 0;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(invalid()),
        };
        let value: u64 = number.parse().map_err(|_| invalid())?;
        seconds = value
            .checked_mul(unit)
            .and_then(|s| seconds.checked_add(s))
            .ok_or_else(invalid)?;
        number.clear();
    }
    if !number.is_empty() || seconds == 0 {
        return Err(invalid());
    }
    Ok(seconds.div_ceil(3_600).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use memoryc_crds::layout::Isolation;

    #[test]
    fn durations_become_whole_hours() {
        assert_eq!(ttl_hours("168h"), Ok(168));
        assert_eq!(ttl_hours("7d"), Ok(168));
        assert_eq!(ttl_hours("1d12h"), Ok(36));
        assert_eq!(ttl_hours("90m"), Ok(2));
        assert_eq!(ttl_hours("30s"), Ok(1));
        for bad in ["", "h", "7", "7w", "-1h", "0h", "99999999999999999999d"] {
            assert!(ttl_hours(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_spec_maps_onto_the_platforms_names() {
        let mut spec = crate::test_support::tenant("acme", Isolation::Shared).spec;
        spec.pii.action = PiiAction::Redact;
        spec.rate_limits.requests_per_minute = 120;
        spec.analytics.schedule = "30 2 * * *".to_string();
        spec.analytics.insight_ttl = "2d".to_string();
        spec.vectors.index.ef = 400;
        let plan = PlatformSettingsPlan::from_spec(&spec).expect("plan");
        assert_eq!(plan.search_ef, 400);
        assert_eq!(plan.pii_policy, "mask");
        assert_eq!(plan.rate_limit_per_minute, 120);
        assert_eq!(plan.analytics_schedule, "30 2 * * *");
        assert_eq!(plan.insight_ttl_hours, 48);
        spec.pii.action = PiiAction::Reject;
        spec.analytics.enabled = false;
        let off = PlatformSettingsPlan::from_spec(&spec).expect("plan");
        assert_eq!(off.pii_policy, "reject");
        assert_eq!(off.analytics_schedule, NEVER);
        assert!(!off.analytics_enabled);
    }
}
