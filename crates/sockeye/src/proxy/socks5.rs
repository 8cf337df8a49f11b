//! The SOCKS5 tunnel (RFC 1928) with username/password authentication
//! (RFC 1929).

use std::io;
use std::net::IpAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::{Credentials, ProxyError};
use crate::error::Error;
use crate::handshake_io::write_all;

const VERSION: u8 = 5;
const NO_AUTHENTICATION: u8 = 0x00;
const USERNAME_PASSWORD: u8 = 0x02;
const NO_ACCEPTABLE_METHODS: u8 = 0xff;
const CONNECT: u8 = 1;
const IPV4: u8 = 1;
const DOMAIN_NAME: u8 = 3;
const IPV6: u8 = 4;

/// Negotiates a method, authenticates if the proxy asks, then asks for a
/// connection to `host:port` and reads the whole reply. `host` is checked
/// and bare (IPv6 without brackets).
pub(super) async fn tunnel<S>(
    stream: &mut S,
    host: &str,
    port: u16,
    credentials: Option<&Credentials>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // RFC 1928 section 3: offer "no authentication", and
    // username/password when there are credentials (as curl does).
    let greeting: &[u8] = match credentials {
        Some(_) => &[VERSION, 2, NO_AUTHENTICATION, USERNAME_PASSWORD],
        None => &[VERSION, 1, NO_AUTHENTICATION],
    };
    write_all(stream, greeting).await?;
    let [version, method] = read_array(stream).await?;
    check_version(version)?;
    match (method, credentials) {
        (NO_AUTHENTICATION, _) => {}
        (USERNAME_PASSWORD, Some(credentials)) => authenticate(stream, credentials).await?,
        (NO_ACCEPTABLE_METHODS, _) => {
            return Err(ProxyError::NoAcceptableAuth {
                credentials_offered: credentials.is_some(),
            }
            .into());
        }
        (method, _) => {
            return Err(protocol(format!(
                "the SOCKS5 proxy chose method {method:#04x}, which was not offered"
            )));
        }
    }
    write_all(stream, &connect_request(host, port)).await?;
    let [version, reply, _reserved, address_type] = read_array(stream).await?;
    check_version(version)?;
    if reply != 0 {
        return Err(ProxyError::SocksReply(reply).into());
    }
    // The bound address and port: read and ignored, so that the next byte
    // is the destination's.
    let address_length = match address_type {
        IPV4 => 4,
        IPV6 => 16,
        DOMAIN_NAME => usize::from(read_array::<_, 1>(stream).await?[0]),
        other => return Err(protocol(format!("unknown address type {other} in reply"))),
    };
    let mut bound = [0u8; 255 + 2];
    read_exact(stream, &mut bound[..address_length + 2]).await?;
    Ok(())
}

/// RFC 1929 section 2: version 1, then the length-prefixed user name and
/// password; the answer's second byte is 0 on success.
async fn authenticate<S>(stream: &mut S, credentials: &Credentials) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = Vec::with_capacity(3 + credentials.user.len() + credentials.password.len());
    for field in [&credentials.user, &credentials.password] {
        // Checked when the proxy URL was parsed.
        let length = u8::try_from(field.len()).map_err(|_| ProxyError::AuthFailed)?;
        request.push(length);
        request.extend_from_slice(field);
    }
    request.insert(0, 1);
    write_all(stream, &request).await?;
    // The answer's version byte is 1; some servers echo 5. Only the status
    // matters.
    let [_version, status] = read_array(stream).await?;
    if status == 0 {
        Ok(())
    } else {
        Err(ProxyError::AuthFailed.into())
    }
}

/// RFC 1928 section 4: CONNECT to an IP address, or to a name the proxy
/// resolves (address type DOMAINNAME).
fn connect_request(host: &str, port: u16) -> Vec<u8> {
    let mut request = vec![VERSION, CONNECT, 0];
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(address)) => {
            request.push(IPV4);
            request.extend_from_slice(&address.octets());
        }
        Ok(IpAddr::V6(address)) => {
            request.push(IPV6);
            request.extend_from_slice(&address.octets());
        }
        Err(_) => {
            // At most 255 bytes: checked by the caller.
            request.push(DOMAIN_NAME);
            request.push(u8::try_from(host.len()).unwrap_or(u8::MAX));
            request.extend_from_slice(host.as_bytes());
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    request
}

/// What RFC 1928 section 6 says a reply code means.
pub(super) fn reply_text(code: u8) -> &'static str {
    match code {
        1 => "general SOCKS server failure",
        2 => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused by the destination",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "unassigned reply code",
    }
}

fn check_version(version: u8) -> Result<(), Error> {
    if version == VERSION {
        Ok(())
    } else {
        Err(protocol(format!(
            "not a SOCKS5 proxy (version byte {version})"
        )))
    }
}

fn protocol(why: String) -> Error {
    ProxyError::Protocol(why).into()
}

async fn read_array<S, const N: usize>(stream: &mut S) -> Result<[u8; N], Error>
where
    S: AsyncRead + Unpin,
{
    let mut bytes = [0u8; N];
    read_exact(stream, &mut bytes).await?;
    Ok(bytes)
}

async fn read_exact<S>(stream: &mut S, bytes: &mut [u8]) -> Result<(), Error>
where
    S: AsyncRead + Unpin,
{
    match stream.read_exact(bytes).await {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => Err(protocol(
            "the SOCKS5 proxy closed the connection mid-exchange".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn connect_requests() {
        assert_eq!(
            connect_request("example.com", 443),
            b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"
        );
        assert_eq!(
            connect_request("127.0.0.1", 80),
            [5, 1, 0, 1, 127, 0, 0, 1, 0, 80]
        );
        let v6 = connect_request("::1", 1);
        assert_eq!(&v6[..4], [5, 1, 0, 4]);
        assert_eq!(v6.len(), 4 + 16 + 2);
        assert_eq!(v6[19], 1);
    }

    /// Runs the client against a scripted proxy that sends `answer` at
    /// once; returns the outcome, what the client sent and what is left.
    async fn script(
        answer: &[u8],
        credentials: Option<Credentials>,
    ) -> (Result<(), Error>, Vec<u8>, Vec<u8>) {
        let (mut client, mut proxy) = tokio::io::duplex(4096);
        proxy.write_all(answer).await.unwrap();
        proxy.shutdown().await.unwrap();
        let result = tunnel(&mut client, "example.com", 443, credentials.as_ref()).await;
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        let mut sent = Vec::new();
        drop(client);
        proxy.read_to_end(&mut sent).await.unwrap();
        (result, sent, rest)
    }

    const SUCCESS: &[u8] = &[5, 0, 0, 1, 10, 0, 0, 1, 0x1f, 0x90];

    #[tokio::test]
    async fn no_authentication() {
        let answer = [&[5, 0][..], SUCCESS, b"after"].concat();
        let (result, sent, rest) = script(&answer, None).await;
        result.unwrap();
        assert_eq!(&sent[..3], [5, 1, 0]);
        assert_eq!(&sent[3..], connect_request("example.com", 443));
        assert_eq!(rest, b"after");
    }

    #[tokio::test]
    async fn username_password() {
        let credentials = Credentials {
            user: b"user".to_vec(),
            password: b"pw".to_vec(),
        };
        let answer = [&[5, 2, 1, 0][..], SUCCESS].concat();
        let (result, sent, _) = script(&answer, Some(credentials.clone())).await;
        result.unwrap();
        assert_eq!(&sent[..4], [5, 2, 0, 2]);
        assert_eq!(&sent[4..13], b"\x01\x04user\x02pw");
        let (result, _, _) = script(&[5, 2, 1, 1], Some(credentials)).await;
        assert!(matches!(result, Err(Error::Proxy(ProxyError::AuthFailed))));
    }

    #[tokio::test]
    async fn refusals() {
        let (result, _, _) = script(&[5, 0xff], None).await;
        assert!(matches!(
            result,
            Err(Error::Proxy(ProxyError::NoAcceptableAuth {
                credentials_offered: false
            }))
        ));
        let (result, _, _) = script(&[5, 0, 5, 5, 0, 1, 0, 0, 0, 0, 0, 0], None).await;
        assert!(matches!(
            result,
            Err(Error::Proxy(ProxyError::SocksReply(5)))
        ));
        // Username/password chosen although not offered.
        let (result, _, _) = script(&[5, 2], None).await;
        assert!(matches!(result, Err(Error::Proxy(ProxyError::Protocol(_)))));
        // An HTTP proxy answering a SOCKS greeting.
        let (result, _, _) = script(b"HTTP/1.1 400 Bad Request\r\n\r\n", None).await;
        assert!(matches!(result, Err(Error::Proxy(ProxyError::Protocol(_)))));
        // Closed in the middle of the bound address.
        let (result, _, _) = script(&[5, 0, 5, 0, 0, 3, 9, b'a'], None).await;
        assert!(matches!(result, Err(Error::Proxy(ProxyError::Protocol(_)))));
    }
}
