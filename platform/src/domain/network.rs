//! Networks written in configuration: `10.0.0.0/8`, `fd00::/8`, or a single address.

use std::net::IpAddr;

use ipnet::IpNet;

/// The network `text` names (a bare address is a network of one), or `None`.
pub fn parse_network(text: &str) -> Option<IpNet> {
    let text = text.trim();
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<IpAddr>().ok().map(IpNet::from))
}
