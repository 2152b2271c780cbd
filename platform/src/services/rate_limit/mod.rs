//! Rate limits per credential and route: a fixed window of one minute, counted in Redis when
//! one is configured (so every replica shares the count) or in process otherwise. The limit is
//! the tenant's own when it has one, else the platform default. A tenant-wide bucket per route
//! (a multiple of that limit) applies as well, so minting more keys does not multiply what a
//! tenant may send. Failed authentications are counted per client address: past a limit, the
//! address is refused before its credentials are looked up. Every key names the tenant by id.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::tenant_settings::TenantSettingsService;
use crate::auth::Principal;
use crate::stores::rate_counter::{RateCounter, window_of};

/// Length of a rate-limit window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Window of a tenant's burst limit (`spec.rateLimits.burst`): requests per second.
pub const BURST_WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    Allowed {
        limit: u32,
        remaining: u32,
    },
    /// Over `limit` requests per `window`.
    Limited {
        limit: u32,
        retry_after: Duration,
        window: Duration,
    },
}

/// How the limits are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests per credential, route and minute unless the tenant sets its own; 0 is off.
    pub per_minute: u32,
    /// The tenant-wide bucket per route is this many times the per-credential limit.
    pub tenant_multiple: u32,
    /// Failed authentications per client address and minute before the address is refused
    /// without a lookup; 0 is off.
    pub auth_failures_per_minute: u32,
}

pub struct RateLimiter {
    counter: Arc<dyn RateCounter>,
    settings: Arc<TenantSettingsService>,
    default_per_minute: u32,
    tenant_multiple: u32,
    auth_failures_per_minute: u32,
}

impl RateLimiter {
    pub fn new(
        counter: Arc<dyn RateCounter>,
        settings: Arc<TenantSettingsService>,
        limits: RateLimits,
    ) -> Self {
        Self {
            counter,
            settings,
            default_per_minute: limits.per_minute,
            tenant_multiple: limits.tenant_multiple.max(1),
            auth_failures_per_minute: limits.auth_failures_per_minute,
        }
    }

    /// Whether `client` failed authentication too often this minute; then the time until it
    /// may try again. An unreachable counter refuses nobody.
    pub async fn client_locked_out(&self, client: IpAddr) -> Option<Duration> {
        if self.auth_failures_per_minute == 0 {
            return None;
        }
        let now = now();
        match self.counter.peek(&failure_key(client), WINDOW, now).await {
            Ok(failures) if failures >= u64::from(self.auth_failures_per_minute) => {
                Some(window_of(now, WINDOW).1)
            }
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, "rate limiter unavailable; not checking failures");
                None
            }
        }
    }

    /// Counts a failed authentication from `client`; returns the failures this minute (0 when
    /// they are not counted).
    pub async fn record_failure(&self, client: IpAddr) -> u64 {
        if self.auth_failures_per_minute == 0 {
            return 0;
        }
        match self.counter.hit(&failure_key(client), WINDOW, now()).await {
            Ok(failures) => failures,
            Err(error) => {
                tracing::warn!(%error, "rate limiter unavailable; failure not counted");
                0
            }
        }
    }

    /// Counts the request of `principal` on `route` and decides. A limit of 0 turns limiting
    /// off. When the counter is unreachable the request is allowed: an outage of the limiter
    /// must not take the API down with it.
    pub async fn check(&self, principal: &Principal, method: &str, route: &str) -> RateDecision {
        let (limit, burst) = self.limits_for(principal).await;
        if limit == 0 {
            return RateDecision::Allowed {
                limit,
                remaining: 0,
            };
        }
        let scope = principal
            .tenant
            .as_ref()
            .map_or_else(|| "_platform".to_string(), |t| t.tenant_id.to_string());
        let key = format!("{scope}|{}|{method} {route}", principal.credential_label());
        let now = now();
        let retry_after = window_of(now, WINDOW).1;
        let count = match self.counter.hit(&key, WINDOW, now).await {
            Ok(count) => count,
            Err(error) => {
                tracing::warn!(%error, "rate limiter unavailable; allowing the request");
                return RateDecision::Allowed {
                    limit,
                    remaining: limit,
                };
            }
        };
        if count > u64::from(limit) {
            return RateDecision::Limited {
                limit,
                retry_after,
                window: WINDOW,
            };
        }
        if let Some(burst) = burst {
            let (_, rest_of_second) = window_of(now, BURST_WINDOW);
            match self
                .counter
                .hit(&format!("{key}|burst"), BURST_WINDOW, now)
                .await
            {
                Ok(in_second) if in_second > u64::from(burst) => {
                    return RateDecision::Limited {
                        limit: burst,
                        retry_after: rest_of_second,
                        window: BURST_WINDOW,
                    };
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "rate limiter unavailable; burst not counted");
                }
            }
        }
        if principal.tenant.is_some() {
            let tenant_limit = u64::from(limit) * u64::from(self.tenant_multiple);
            let tenant_key = format!("{scope}|*|{method} {route}");
            match self.counter.hit(&tenant_key, WINDOW, now).await {
                Ok(all) if all > tenant_limit => {
                    return RateDecision::Limited {
                        limit,
                        retry_after,
                        window: WINDOW,
                    };
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "rate limiter unavailable; tenant bucket not counted");
                }
            }
        }
        RateDecision::Allowed {
            limit,
            remaining: u32::try_from(u64::from(limit) - count).unwrap_or(0),
        }
    }

    /// The per-minute limit and the burst (per second) limit, if any, of the principal's tenant.
    async fn limits_for(&self, principal: &Principal) -> (u32, Option<u32>) {
        let Some(tenant) = &principal.tenant else {
            return (self.default_per_minute, None);
        };
        match self.settings.settings(tenant.tenant_id).await {
            Ok(settings) => (
                settings
                    .rate_limit_per_minute
                    .unwrap_or(self.default_per_minute),
                settings.rate_limit_burst,
            ),
            Err(error) => {
                tracing::warn!(%error, "tenant settings unavailable; using the default rate limit");
                (self.default_per_minute, None)
            }
        }
    }

    /// The platform's default limit per credential, route and minute.
    pub fn default_per_minute(&self) -> u32 {
        self.default_per_minute
    }
}

fn now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// An IPv4 address counts alone; an IPv6 client counts by its /64, the block one subscriber
/// usually holds whole.
fn failure_key(client: IpAddr) -> String {
    match client {
        IpAddr::V4(address) => format!("_auth_failures|{address}"),
        IpAddr::V6(address) => {
            let segments = address.segments();
            format!(
                "_auth_failures|{:x}:{:x}:{:x}:{:x}::/64",
                segments[0], segments[1], segments[2], segments[3]
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64_block() {
        let one: IpAddr = "2001:db8:1:2::1".parse().expect("ip");
        let same_block: IpAddr = "2001:db8:1:2:ffff::9".parse().expect("ip");
        let other_block: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(failure_key(one), failure_key(same_block));
        assert_ne!(failure_key(one), failure_key(other_block));
        let v4: IpAddr = "192.0.2.1".parse().expect("ip");
        assert_ne!(
            failure_key(v4),
            failure_key("192.0.2.2".parse().expect("ip"))
        );
    }
}
