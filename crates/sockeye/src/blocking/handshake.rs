//! The opening handshake for the blocking front-end: [`connect`] and
//! [`accept`], with `wss://` over rustls. Proxies and redirects are the
//! tokio client's; a blocking client connects directly.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, Response};
use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use sockeye_proto::extension::deflate::DeflateConfig;
use sockeye_proto::handshake::{self, ClientHandshake, HandshakeError, Parsed, ResponseParser};
use sockeye_proto::{Config, Connection, Role};

use super::{Transport, WebSocket};
use crate::client::Target;
use crate::error::Error;
use crate::policy::{ConnectionInfo, ServerBuilder};
use crate::tls::default_client_config;

/// What a blocking client connects over: TCP, or TLS for `wss://`.
#[derive(Debug)]
pub enum ClientStream {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl ClientStream {
    fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(tcp) => tcp,
            ClientStream::Tls(tls) => &tls.sock,
        }
    }
}

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.read(buf),
            ClientStream::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.write(buf),
            ClientStream::Tls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            ClientStream::Plain(tcp) => tcp.write_vectored(bufs),
            ClientStream::Tls(tls) => tls.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ClientStream::Plain(tcp) => tcp.flush(),
            ClientStream::Tls(tls) => tls.flush(),
        }
    }
}

impl Transport for ClientStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self.tcp(), timeout.map(|t| t.max(Duration::from_millis(1))))
    }

    fn shutdown(&mut self) -> io::Result<()> {
        if let ClientStream::Tls(tls) = self {
            tls.conn.send_close_notify();
            tls.flush()?;
        }
        self.tcp().shutdown(std::net::Shutdown::Write)
    }
}

/// Connects to a `ws://` or `wss://` URL (default TLS roots, 30 s open
/// timeout, default engine config) and performs the opening handshake.
pub fn connect(url: &str) -> Result<(WebSocket<ClientStream>, Response<()>), Error> {
    // The URL first: a bad one is `InvalidUrl`, whatever else is wrong.
    Target::parse(url)?;
    let mut handshake = ClientHandshake::builder(url);
    if let Some(offer) = DeflateConfig::new().offer() {
        handshake = handshake.extension(offer);
    }
    connect_with(
        url,
        handshake.build()?,
        Config::default(),
        Duration::from_secs(30),
        default_client_config(),
    )
}

/// Connects with a prepared handshake (subprotocols, Origin, headers), an
/// engine config, an open timeout covering TCP, TLS and HTTP, and a
/// rustls client configuration for `wss://`.
pub fn connect_with(
    url: &str,
    handshake: ClientHandshake,
    config: Config,
    open_timeout: Duration,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(WebSocket<ClientStream>, Response<()>), Error> {
    let deadline = Instant::now() + open_timeout;
    let target = Target::parse(url)?;
    let tcp = connect_tcp(&target, deadline)?;
    tcp.set_nodelay(true)?;
    let mut stream = if target.secure {
        let name = ServerName::try_from(target.host.clone())
            .map_err(|_| Error::InvalidUrl(format!("invalid host {}", target.host)))?;
        let connection = ClientConnection::new(tls, name)
            .map_err(|error| Error::Tls(io::Error::other(error)))?;
        let mut tls = StreamOwned::new(connection, tcp);
        set_deadline(&tls.sock, deadline)?;
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|error| timeout_or(error, Error::Tls))?;
        }
        ClientStream::Tls(Box::new(tls))
    } else {
        ClientStream::Plain(tcp)
    };
    let mut request = Vec::with_capacity(512);
    handshake::write_request(handshake.request(), &mut request);
    stream.write_all(&request)?;
    stream.flush()?;
    let mut parser = ResponseParser::new();
    let (response, leftover) = read_head(&mut stream, deadline, |bytes| parser.parse(bytes))?;
    let negotiated = handshake.finish(&response)?;
    stream.set_read_timeout(None)?;
    stream.tcp().set_write_timeout(None)?;
    let mut engine = Connection::new(Role::Client, config);
    if let Some(params) = negotiated.deflate {
        engine.enable_deflate(params, &DeflateConfig::new());
    }
    let ws = WebSocket::from_engine(stream, engine, &leftover);
    Ok((ws, response))
}

fn connect_tcp(target: &Target, deadline: Instant) -> Result<TcpStream, Error> {
    let mut last = None;
    for address in (target.host.as_str(), target.port).to_socket_addrs()? {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::OpenTimeout);
        }
        match TcpStream::connect_timeout(&address, left) {
            Ok(tcp) => return Ok(tcp),
            Err(error) => last = Some(error),
        }
    }
    Err(match last {
        Some(error) if error.kind() == io::ErrorKind::TimedOut => Error::OpenTimeout,
        Some(error) => Error::Io(error),
        None => Error::InvalidUrl(format!("{} resolves to no address", target.host)),
    })
}

/// Accepts a WebSocket connection on `stream` with the default policy;
/// see [`crate::accept`].
pub fn accept<S: Transport>(stream: S) -> Result<WebSocket<S>, Error> {
    accept_with(&ServerBuilder::new(), stream).map(|(ws, _)| ws)
}

/// Accepts with `server`'s policy, limits, config and handshake timeout
/// (enforced when the transport supports read timeouts). Refusals are
/// answered with their HTTP status. Returns the connection and the
/// request.
pub fn accept_with<S: Transport>(
    server: &ServerBuilder,
    mut stream: S,
) -> Result<(WebSocket<S>, Request<()>), Error> {
    let deadline = Instant::now() + server.get_handshake_timeout();
    let mut parser = server.request_parser();
    let known = ConnectionInfo::new(stream.peer_addr(), None);
    let result = read_head(&mut stream, deadline, |bytes| parser.parse(bytes))
        .inspect_err(|error| {
            if let Error::Handshake(refusal) = error {
                server.record_refusal(crate::stats::RefusalReason::of_handshake(refusal));
            }
        })
        .and_then(|(request, leftover)| {
            let admission = server.admit(&request, known)?;
            Ok((request, leftover, admission))
        });
    match result {
        Ok((request, leftover, admission)) => {
            let mut bytes = Vec::with_capacity(256);
            handshake::write_response(&admission.response, &mut bytes);
            stream.write_all(&bytes)?;
            stream.flush()?;
            stream.set_read_timeout(None)?;
            let mut ws = WebSocket::from_engine(stream, admission.engine, &leftover);
            let mut permit = admission.permit;
            // Frames the client sent with its request.
            permit.tally.read(leftover.len());
            ws.permit = Some(permit);
            ws.budget = Some(admission.budget);
            Ok((ws, request))
        }
        Err(error) => {
            if let Error::Handshake(refusal) = &error
                && let Some(response) = refusal.to_response()
            {
                let mut bytes = Vec::new();
                handshake::write_response_with_body(&response, &mut bytes);
                // Best effort: the client may be gone.
                let _ = stream.write_all(&bytes).and_then(|()| stream.shutdown());
            }
            Err(error)
        }
    }
}

/// Reads until `parse` returns a head, within `deadline`.
fn read_head<S: Transport, T>(
    stream: &mut S,
    deadline: Instant,
    mut parse: impl FnMut(&[u8]) -> Result<Option<Parsed<T>>, HandshakeError>,
) -> Result<(T, Vec<u8>), Error> {
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::OpenTimeout);
        }
        stream.set_read_timeout(Some(left))?;
        let read = match stream.read(&mut buffer) {
            Ok(0) => return Err(Error::UnexpectedEof),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(timeout_or(error, Error::Io)),
        };
        if let Some(parsed) = parse(&buffer[..read])? {
            return Ok((parsed.head, buffer[parsed.consumed..read].to_vec()));
        }
    }
}

fn set_deadline(tcp: &TcpStream, deadline: Instant) -> Result<(), Error> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Error::OpenTimeout);
    }
    tcp.set_read_timeout(Some(left))?;
    tcp.set_write_timeout(Some(left))?;
    Ok(())
}

fn timeout_or(error: io::Error, wrap: fn(io::Error) -> Error) -> Error {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::OpenTimeout,
        _ => wrap(error),
    }
}
