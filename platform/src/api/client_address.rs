//! The address a request comes from: the socket's peer, or, when that peer is a configured
//! trusted proxy, the nearest address in `X-Forwarded-For` that is not one. A header from anyone
//! else is ignored, so a client cannot pick the address it is limited by.

use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::http::Request;
use ipnet::IpNet;

use crate::domain::network::parse_network;

/// An address or a network (`10.0.0.0/8`, `fd00::/8`) whose requests carry a trusted
/// `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy(IpNet);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("trusted proxy {0:?} is neither an IP address nor a network such as 10.0.0.0/8")]
pub struct TrustedProxyError(pub String);

impl TrustedProxy {
    pub fn parse(text: &str) -> Result<Self, TrustedProxyError> {
        parse_network(text)
            .map(Self)
            .ok_or_else(|| TrustedProxyError(text.to_string()))
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.contains(&address)
    }
}

/// The client's address, or `None` when the server was not given connection info (tests that
/// call the router directly).
pub fn of<B>(request: &Request<B>, trusted: &[TrustedProxy]) -> Option<IpAddr> {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())?;
    if !trusted.iter().any(|proxy| proxy.contains(peer)) {
        return Some(peer);
    }
    let hops: Vec<String> = request
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|hop| hop.trim().to_string())
        .collect();
    // Each proxy appends the address it saw: walk back past the trusted ones. A hop that is no
    // address ends the walk at the last trusted one: what lies before it the client wrote.
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>() else {
            break;
        };
        client = address;
        if !trusted.iter().any(|proxy| proxy.contains(address)) {
            break;
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, forwarded: Option<&str>) -> Request<()> {
        let mut builder = Request::builder();
        if let Some(forwarded) = forwarded {
            builder = builder.header("x-forwarded-for", forwarded);
        }
        let mut request = builder.body(()).expect("request");
        let peer: SocketAddr = format!("{peer}:40000").parse().expect("peer");
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }

    #[test]
    fn networks_match_by_prefix() {
        let private = TrustedProxy::parse("10.0.0.0/8").expect("network");
        assert!(private.contains("10.20.30.40".parse().expect("ip")));
        assert!(!private.contains("11.0.0.1".parse().expect("ip")));
        let one = TrustedProxy::parse("192.168.1.7").expect("address");
        assert!(one.contains("192.168.1.7".parse().expect("ip")));
        assert!(!one.contains("192.168.1.8".parse().expect("ip")));
        let odd = TrustedProxy::parse("172.16.0.0/12").expect("network");
        assert!(odd.contains("172.31.255.1".parse().expect("ip")));
        assert!(!odd.contains("172.32.0.1".parse().expect("ip")));
        let v6 = TrustedProxy::parse("fd00::/8").expect("v6");
        assert!(v6.contains("fd12::1".parse().expect("ip")));
        assert!(!v6.contains("10.0.0.1".parse().expect("ip")));
        for bad in ["10.0.0.0/33", "proxy.local", "10.0.0.0/x", ""] {
            assert!(TrustedProxy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let trusted = [TrustedProxy::parse("10.0.0.0/8").expect("network")];
        // Straight from a client: its header is its own invention and ignored.
        assert_eq!(
            of(&request("203.0.113.9", Some("198.51.100.1")), &trusted),
            Some("203.0.113.9".parse().expect("ip"))
        );
        // Through the ingress: the address the ingress saw.
        assert_eq!(
            of(&request("10.1.2.3", Some("198.51.100.1")), &trusted),
            Some("198.51.100.1".parse().expect("ip"))
        );
        // A client-supplied first hop is skipped: the nearest untrusted hop counts.
        assert_eq!(
            of(
                &request("10.1.2.3", Some("1.1.1.1, 198.51.100.1, 10.9.9.9")),
                &trusted
            ),
            Some("198.51.100.1".parse().expect("ip"))
        );
        // A hop that is no address: the walk stops at the last trusted hop.
        assert_eq!(
            of(
                &request("10.1.2.3", Some("198.51.100.1, unknown, 10.9.9.9")),
                &trusted
            ),
            Some("10.9.9.9".parse().expect("ip"))
        );
        // Nothing forwarded: the proxy itself.
        assert_eq!(
            of(&request("10.1.2.3", None), &trusted),
            Some("10.1.2.3".parse().expect("ip"))
        );
        assert_eq!(
            of(&request("10.1.2.3", Some("198.51.100.1")), &[]),
            Some("10.1.2.3".parse().expect("ip"))
        );
    }
}
