//! A lean HTTP/1.1 client for the load generator: one keep-alive connection, each request
//! written whole, each response read to the end of its body (Content-Length or chunked).

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod wire;

use wire::{Framing, chunk_size, framing, invalid, parse_head};
pub use wire::{basic, find, post_form, request};

/// Longest wait for a whole response: a stuck request becomes an error, never a hang.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest response head accepted (the server's pages and JSON are far smaller).
const MAX_HEAD: usize = 64 * 1024;

/// Where the server listens, and the `Host` header that names it.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
}

impl Target {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, host: addr.to_string() }
    }
}

/// A response: the status, the body and the few headers the bench reads.
#[derive(Debug, Default)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    /// The server closes the connection after this response.
    pub close: bool,
}

impl Response {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub fn contains(&self, needle: &[u8]) -> bool {
        find(&self.body, needle, 0).is_some()
    }
}

/// Why one request (or one flow) did not give the expected answer.
#[derive(Debug)]
pub enum Failure {
    /// The connection failed or timed out; the next request needs a new one.
    Io(io::Error),
    /// The server answered, but not as expected.
    Unexpected { step: &'static str, status: u16, body: String },
}

impl Failure {
    pub fn unexpected(step: &'static str, response: &Response) -> Self {
        let mut body = response.text();
        if body.len() > 600 {
            let mut cut = 600;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push('…');
        }
        Self::Unexpected { step, status: response.status, body }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "connection error: {e}"),
            Self::Unexpected { step, status, body } => write!(f, "{step}: HTTP {status}: {body}"),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// One keep-alive connection to the server.
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::with_capacity(16 * 1024) })
    }

    /// Writes `request` (a whole HTTP/1.1 request) and reads its response.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<Response> {
        tokio::time::timeout(RESPONSE_TIMEOUT, self.exchange(request))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no response within 30 s"))?
    }

    async fn exchange(&mut self, request: &[u8]) -> io::Result<Response> {
        self.buf.clear();
        self.stream.write_all(request).await?;
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n", 0) {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("response head too large"));
            }
            self.fill().await?;
        };
        let mut response = parse_head(&self.buf[..head_end])?;
        let framing = framing(&self.buf[..head_end], response.status)?;
        match framing {
            Framing::Length(len) => {
                while self.buf.len() < head_end + len {
                    self.fill().await?;
                }
                response.body = self.buf[head_end..head_end + len].to_vec();
            }
            Framing::Chunked => response.body = self.read_chunked(head_end).await?,
            Framing::UntilClose => {
                while self.fill().await.is_ok() {}
                response.body = self.buf[head_end..].to_vec();
                response.close = true;
            }
        }
        Ok(response)
    }

    /// Reads more bytes into the buffer; end of stream is an error.
    async fn fill(&mut self) -> io::Result<()> {
        self.buf.reserve(8 * 1024);
        match self.stream.read_buf(&mut self.buf).await? {
            0 => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            )),
            _ => Ok(()),
        }
    }

    /// The end (index of CR) of the line starting at `from`, reading as needed.
    async fn line_end(&mut self, from: usize) -> io::Result<usize> {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n", from) {
                return Ok(i);
            }
            self.fill().await?;
        }
    }

    /// RFC 9112 §7.1: chunks until the zero-size one, then trailers up to an empty line.
    async fn read_chunked(&mut self, mut at: usize) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let end = self.line_end(at).await?;
            let size = chunk_size(&self.buf[at..end])?;
            at = end + 2;
            if size == 0 {
                loop {
                    let end = self.line_end(at).await?;
                    let empty = end == at;
                    at = end + 2;
                    if empty {
                        return Ok(body);
                    }
                }
            }
            while self.buf.len() < at + size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buf[at..at + size]);
            at += size + 2;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_chunked_response_reads_whole_over_a_real_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await.expect("read");
            let parts: [&[u8]; 3] = [
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
                b"lo\r\n6;x=y\r\n world\r\n0\r\n",
                b"Trailer: 1\r\n\r\n",
            ];
            for part in parts {
                socket.write_all(part).await.expect("write");
                socket.flush().await.expect("flush");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let target = Target::new(addr);
        let mut connection = Connection::open(addr).await.expect("connect");
        let response =
            connection.send(&request("GET", &target, "/", &[], None)).await.expect("response");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"hello world");
        server.await.expect("server");
    }
}
