//! The source address of a request, for the brute-force limits (docs/REFERENCE.md §9).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use actix_web::HttpRequest;

/// The peer's address; when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy (the rightmost entries are the ones
/// our own proxies appended; anything further left the client could have written).
pub fn source(req: &HttpRequest, trusted: &[IpAddr]) -> IpAddr {
    let peer = req.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        match hop_address(hop) {
            Some(address) if trusted.contains(&address) => continue,
            Some(address) => return address,
            // A malformed hop: nothing left of it can be trusted.
            None => break,
        }
    }
    peer
}

/// The address of one `X-Forwarded-For` hop: `ip`, `ip:port`, `[v6]` or `[v6]:port` (proxies
/// write all four).
fn hop_address(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hop_may_carry_a_port_or_brackets() {
        let v4: IpAddr = "203.0.113.7".parse().expect("ip");
        let v6: IpAddr = "2001:db8::1".parse().expect("ip");
        assert_eq!(hop_address("203.0.113.7"), Some(v4));
        assert_eq!(hop_address("203.0.113.7:51234"), Some(v4));
        assert_eq!(hop_address("2001:db8::1"), Some(v6));
        assert_eq!(hop_address("[2001:db8::1]"), Some(v6));
        assert_eq!(hop_address("[2001:db8::1]:443"), Some(v6));
        assert_eq!(hop_address("unknown"), None);
    }
}
