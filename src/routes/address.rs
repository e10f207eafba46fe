//! The source address of a request, for the brute-force limits (SPEC §9).

use std::net::{IpAddr, Ipv4Addr};

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
        match hop.parse::<IpAddr>() {
            Ok(address) if trusted.contains(&address) => continue,
            Ok(address) => return address,
            // A malformed hop: nothing left of it can be trusted.
            Err(_) => break,
        }
    }
    peer
}
