//! Where webhooks may go. A tenant names the URL, so a delivery must not become a way into the
//! platform's own network: destinations on loopback, private, link-local and other non-public
//! addresses are refused unless configuration allows their network
//! (`integrations.allowed_networks`). The check runs on the addresses a name resolves to when
//! connecting (not on the name), so a name that later resolves elsewhere gains nothing, and
//! redirects are not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::network::parse_network;

/// Networks that are not the public internet.
const NON_PUBLIC: [&str; 17] = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "224.0.0.0/3",
    "::/127",
    "::ffff:0:0/96",
    "64:ff9b::/96",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DestinationError {
    #[error("{0:?} is not a URL")]
    NotAUrl(String),
    #[error("webhook URLs must be https (plain http only to an address of an allowed network)")]
    NotHttps,
    #[error("a webhook URL names a host")]
    NoHost,
    #[error("webhook URLs carry no user name or password")]
    Credentials,
    #[error(
        "{0} is not a public address; webhooks go there only when integrations.allowed_networks allows it"
    )]
    NotPublic(IpAddr),
    #[error("{0} resolves to no public address")]
    NoPublicAddress(String),
    #[error("allowed network {0:?} is neither an address nor a network such as 10.0.0.0/8")]
    BadNetwork(String),
}

/// The destinations deliveries may reach.
#[derive(Debug, Clone)]
pub struct DestinationPolicy {
    allowed: Vec<IpNet>,
    non_public: Vec<IpNet>,
}

impl DestinationPolicy {
    /// Public addresses only, plus `allowed` (addresses or networks, `127.0.0.1/32`).
    pub fn new(allowed: &[String]) -> Result<Self, DestinationError> {
        let allowed = allowed
            .iter()
            .map(|text| {
                parse_network(text).ok_or_else(|| DestinationError::BadNetwork(text.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let non_public = NON_PUBLIC
            .iter()
            .filter_map(|text| text.parse().ok())
            .collect();
        Ok(Self {
            allowed,
            non_public,
        })
    }

    /// Whether a delivery may connect to `address`.
    pub fn permits(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.is_allowed(address) || !self.non_public.iter().any(|net| net.contains(&address))
    }

    fn is_allowed(&self, address: IpAddr) -> bool {
        self.allowed.iter().any(|net| net.contains(&address))
    }

    /// Checks a URL as a tenant gives it: https (or http to an allowed address), a host, no
    /// credentials, and, for an address written out, one deliveries may reach.
    pub fn check_url(&self, url: &str) -> Result<Url, DestinationError> {
        let parsed = Url::parse(url).map_err(|_| DestinationError::NotAUrl(url.to_string()))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(DestinationError::Credentials);
        }
        let host = parsed
            .host_str()
            .filter(|host| !host.is_empty())
            .ok_or(DestinationError::NoHost)?;
        let literal = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .ok();
        match (parsed.scheme(), literal) {
            ("https", None) => {}
            ("https", Some(address)) if self.permits(address) => {}
            ("http", Some(address)) if self.is_allowed(address.to_canonical()) => {}
            ("https", Some(address)) => return Err(DestinationError::NotPublic(address)),
            _ => return Err(DestinationError::NotHttps),
        }
        Ok(parsed)
    }

    /// A resolver for the delivery client that hands out only addresses this policy permits.
    pub fn resolver(self: &Arc<Self>) -> Arc<GuardedResolver> {
        Arc::new(GuardedResolver {
            policy: Arc::clone(self),
        })
    }
}

/// Resolves names with the system resolver, keeping the permitted addresses only.
pub struct GuardedResolver {
    policy: Arc<DestinationPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| policy.permits(address.ip()))
                .collect();
            if found.is_empty() {
                return Err(Box::new(DestinationError::NoPublicAddress(host))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addresses: Addrs = Box::new(found.into_iter());
            Ok(addresses)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn only_public_addresses_unless_allowed() {
        let policy = DestinationPolicy::new(&[]).expect("policy");
        for refused in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!policy.permits(ip(refused)), "{refused} must be refused");
        }
        for public in ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"] {
            assert!(policy.permits(ip(public)), "{public} is public");
        }
        let loopback = DestinationPolicy::new(&["127.0.0.1/32".into()]).expect("policy");
        assert!(loopback.permits(ip("127.0.0.1")));
        assert!(!loopback.permits(ip("127.0.0.2")));
        assert!(matches!(
            DestinationPolicy::new(&["ten".into()]),
            Err(DestinationError::BadNetwork(_))
        ));
    }

    #[test]
    fn urls_are_https_to_a_public_host_or_http_to_an_allowed_address() {
        let policy = DestinationPolicy::new(&["127.0.0.1".into()]).expect("policy");
        assert!(policy.check_url("https://hooks.example/memoryc").is_ok());
        assert!(policy.check_url("http://127.0.0.1:9000/hook").is_ok());
        assert_eq!(
            policy.check_url("http://hooks.example/memoryc"),
            Err(DestinationError::NotHttps)
        );
        assert_eq!(
            policy.check_url("https://10.0.0.1/hook"),
            Err(DestinationError::NotPublic(ip("10.0.0.1")))
        );
        assert_eq!(
            policy.check_url("ftp://hooks.example/"),
            Err(DestinationError::NotHttps)
        );
        assert_eq!(
            policy.check_url("https://user:pw@hooks.example/"),
            Err(DestinationError::Credentials)
        );
        assert!(matches!(
            policy.check_url("not a url"),
            Err(DestinationError::NotAUrl(_))
        ));
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_refused_at_connect_time() {
        let policy = Arc::new(DestinationPolicy::new(&[]).expect("policy"));
        let resolver = policy.resolver();
        let name: Name = "localhost".parse().expect("name");
        assert!(resolver.resolve(name).await.is_err());
        let allowed = Arc::new(
            DestinationPolicy::new(&["127.0.0.0/8".into(), "::1".into()]).expect("policy"),
        );
        let name: Name = "localhost".parse().expect("name");
        let addresses: Vec<SocketAddr> = allowed
            .resolver()
            .resolve(name)
            .await
            .expect("resolved")
            .collect();
        assert!(!addresses.is_empty());
    }
}
