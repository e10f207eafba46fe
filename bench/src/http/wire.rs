//! The HTTP/1.1 wire format: response heads and framing, request bytes, Basic credentials.

use std::io;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::{Response, Target};

pub(super) enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

pub(super) fn invalid(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn headers(head: &str) -> impl Iterator<Item = (&str, &str)> {
    head.split("\r\n").skip(1).filter_map(|line| {
        let (name, value) = line.split_once(':')?;
        Some((name.trim(), value.trim()))
    })
}

pub(super) fn parse_head(head: &[u8]) -> io::Result<Response> {
    let head = std::str::from_utf8(head).map_err(|_| invalid("response head is not UTF-8"))?;
    let status_line = head.split("\r\n").next().unwrap_or_default();
    let mut parts = status_line.split(' ');
    let version = parts.next().unwrap_or_default();
    let status = parts.next().and_then(|s| s.parse().ok()).ok_or_else(|| invalid("bad status"))?;
    let mut response = Response { status, close: version == "HTTP/1.0", ..Response::default() };
    for (name, value) in headers(head) {
        if name.eq_ignore_ascii_case("location") {
            response.location = Some(value.to_owned());
        } else if name.eq_ignore_ascii_case("set-cookie") {
            response.set_cookies.push(value.to_owned());
        } else if name.eq_ignore_ascii_case("connection") {
            response.close = value.eq_ignore_ascii_case("close");
        }
    }
    Ok(response)
}

pub(super) fn framing(head: &[u8], status: u16) -> io::Result<Framing> {
    if status < 200 || status == 204 || status == 304 {
        return Ok(Framing::Length(0));
    }
    let head = std::str::from_utf8(head).map_err(|_| invalid("response head is not UTF-8"))?;
    for (name, value) in headers(head) {
        if name.eq_ignore_ascii_case("transfer-encoding") && value.contains("chunked") {
            return Ok(Framing::Chunked);
        }
    }
    for (name, value) in headers(head) {
        if name.eq_ignore_ascii_case("content-length") {
            let len = value.parse().map_err(|_| invalid("bad content-length"))?;
            return Ok(Framing::Length(len));
        }
    }
    Ok(Framing::UntilClose)
}

pub(super) fn chunk_size(line: &[u8]) -> io::Result<usize> {
    let line = std::str::from_utf8(line).map_err(|_| invalid("bad chunk size"))?;
    let digits = line.split(';').next().unwrap_or_default().trim();
    usize::from_str_radix(digits, 16).map_err(|_| invalid("bad chunk size"))
}

/// The first index of `needle` in `haystack` at or after `from`.
pub fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || haystack.len() < needle.len() || from > haystack.len() - needle.len() {
        return None;
    }
    haystack[from..].windows(needle.len()).position(|w| w == needle).map(|i| i + from)
}

/// A whole HTTP/1.1 request; `body` is (content type, bytes).
pub fn request(
    method: &str,
    target: &Target,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + body.map_or(0, |(_, b)| b.len()));
    out.extend_from_slice(
        format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", target.host).as_bytes(),
    );
    for (name, value) in headers {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    if let Some((content_type, bytes)) = body {
        let length = bytes.len();
        out.extend_from_slice(
            format!("Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n").as_bytes(),
        );
        out.extend_from_slice(bytes);
    } else {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A `POST` of an `application/x-www-form-urlencoded` body.
pub fn post_form(
    target: &Target,
    path: &str,
    headers: &[(&str, &str)],
    pairs: &[(&str, &str)],
) -> Vec<u8> {
    let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
    request(
        "POST",
        target,
        path,
        headers,
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )
}

/// The `Authorization` value for HTTP Basic client authentication; RFC 6749 §2.3.1 has the
/// id and secret form-urlencoded before base64.
pub fn basic(client_id: &str, secret: &str) -> String {
    let encode = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", encode(client_id), encode(secret))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_size_line_may_carry_extensions() {
        assert_eq!(chunk_size(b"1a").expect("hex"), 26);
        assert_eq!(chunk_size(b"0;name=value").expect("hex"), 0);
        assert!(chunk_size(b"xyz").is_err());
    }

    #[test]
    fn the_head_yields_status_location_cookies_and_connection() {
        let head = b"HTTP/1.1 303 See Other\r\nLocation: /login?x=1\r\nset-cookie: a=1; Path=/\r\n\
                     Set-Cookie: b=2\r\nConnection: close\r\ncontent-length: 0\r\n\r\n";
        let response = parse_head(head).expect("head");
        assert_eq!(response.status, 303);
        assert_eq!(response.location.as_deref(), Some("/login?x=1"));
        assert_eq!(response.set_cookies, vec!["a=1; Path=/".to_owned(), "b=2".to_owned()]);
        assert!(response.close);
        assert!(matches!(framing(head, 303), Ok(Framing::Length(0))));
    }

    #[test]
    fn chunked_wins_over_content_length() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(matches!(framing(head, 200), Ok(Framing::Chunked)));
    }

    #[test]
    fn find_starts_at_the_offset() {
        assert_eq!(find(b"abcabc", b"bc", 0), Some(1));
        assert_eq!(find(b"abcabc", b"bc", 2), Some(4));
        assert_eq!(find(b"ab", b"abc", 0), None);
    }

    #[test]
    fn basic_credentials_are_form_encoded_first() {
        // "a b:c/d" → "a+b:c%2Fd" → base64
        assert_eq!(basic("a b", "c/d"), format!("Basic {}", STANDARD.encode("a+b:c%2Fd")));
    }
}
