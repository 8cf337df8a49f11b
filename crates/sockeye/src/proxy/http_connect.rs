//! The HTTP CONNECT tunnel (RFC 9110 section 9.3.6) with Basic proxy
//! authentication (RFC 7617, RFC 9110 section 11.7.2).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::Response;
use sockeye_proto::handshake::ResponseParser;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::{Credentials, ProxyError};
use crate::error::Error;
use crate::handshake_io::write_all;

/// The line ending twice that ends a head.
const HEAD_END: &[u8; 4] = b"\r\n\r\n";

/// Sends `CONNECT host:port` and requires a 2xx answer. `host` is checked
/// (no whitespace or line breaks) and bare: IPv6 without brackets.
pub(super) async fn tunnel<S>(
    stream: &mut S,
    host: &str,
    port: u16,
    credentials: Option<&Credentials>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    write_all(stream, &request(host, port, credentials)).await?;
    let response = read_response_head(stream).await?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(ProxyError::Status(response.status()).into())
    }
}

/// The CONNECT request: the authority form as target and as `Host`.
fn request(host: &str, port: u16, credentials: Option<&Credentials>) -> Vec<u8> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(credentials) = credentials {
        let mut pair = credentials.user.clone();
        pair.push(b':');
        pair.extend_from_slice(&credentials.password);
        request.push_str("Proxy-Authorization: Basic ");
        request.push_str(&STANDARD.encode(pair));
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request.into_bytes()
}

/// Reads the proxy's response head and not one byte more: after a 2xx,
/// the next byte is the destination's. Each read asks for at most the
/// bytes still missing from the blank line that must end the head, so it
/// cannot run past it. The parser bounds the head's size and field count.
async fn read_response_head<S>(stream: &mut S) -> Result<Response<()>, Error>
where
    S: AsyncRead + Unpin,
{
    let mut parser = ResponseParser::new();
    let mut buffer = [0u8; HEAD_END.len()];
    let mut matched = 0;
    loop {
        let read = stream.read(&mut buffer[..HEAD_END.len() - matched]).await?;
        if read == 0 {
            return Err(ProxyError::Protocol(
                "the proxy closed the connection before answering CONNECT".into(),
            )
            .into());
        }
        for &byte in &buffer[..read] {
            matched = match byte {
                _ if byte == HEAD_END[matched] => matched + 1,
                b'\r' => 1,
                _ => 0,
            };
        }
        let parsed = parser.parse(&buffer[..read]).map_err(|error| {
            ProxyError::Protocol(format!("malformed answer to CONNECT: {error}"))
        })?;
        if let Some(parsed) = parsed {
            return Ok(parsed.head);
        }
        if matched == HEAD_END.len() {
            matched = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;
    use tokio::io::AsyncWriteExt;

    fn credentials(user: &str, password: &str) -> Credentials {
        Credentials {
            user: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn requests() {
        assert_eq!(
            request("example.com", 443, None),
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
        assert_eq!(
            request("::1", 80, Some(&credentials("Aladdin", "open sesame"))),
            b"CONNECT [::1]:80 HTTP/1.1\r\nHost: [::1]:80\r\n\
              Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
    }

    async fn answer(bytes: &'static [u8]) -> (Result<(), Error>, Vec<u8>) {
        let (mut client, mut proxy) = tokio::io::duplex(1024);
        proxy.write_all(bytes).await.unwrap();
        let result = tunnel(&mut client, "example.com", 443, None).await;
        let mut rest = Vec::new();
        drop(proxy);
        client.read_to_end(&mut rest).await.unwrap();
        (result, rest)
    }

    #[tokio::test]
    async fn reads_nothing_past_the_head() {
        let (result, rest) =
            answer(b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x01rest").await;
        result.unwrap();
        assert_eq!(rest, b"\x16\x03\x01rest");
        let (result, rest) = answer(b"HTTP/1.0 200 OK\r\nVia: 1.1 p\r\n\r\n\r\n").await;
        result.unwrap();
        assert_eq!(rest, b"\r\n");
    }

    #[tokio::test]
    async fn refusals_carry_the_status() {
        let (result, _) = answer(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").await;
        match result {
            Err(Error::Proxy(error)) => {
                assert_eq!(
                    error.status(),
                    Some(StatusCode::PROXY_AUTHENTICATION_REQUIRED)
                );
            }
            other => panic!("{other:?}"),
        }
        let (result, _) = answer(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 3\r\n\r\nbad").await;
        assert!(matches!(
            result,
            Err(Error::Proxy(ProxyError::Status(StatusCode::BAD_GATEWAY)))
        ));
    }

    #[tokio::test]
    async fn early_close_and_garbage_are_protocol_errors() {
        for bytes in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"SSH-2.0-OpenSSH\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBare\rCR: x\r\n\r\n",
            b"",
        ] {
            let (mut client, mut proxy) = tokio::io::duplex(1024);
            proxy.write_all(bytes).await.unwrap();
            proxy.shutdown().await.unwrap();
            let result = tunnel(&mut client, "example.com", 443, None).await;
            assert!(
                matches!(result, Err(Error::Proxy(ProxyError::Protocol(_)))),
                "{bytes:?}: {result:?}"
            );
        }
    }
}
