//! Command-line options of `interop-peer`, parsed by hand (a test tool
//! with a dozen flags needs no parser crate).

use std::path::PathBuf;

use crate::compression::Compression;

/// `interop-peer server ...`
#[derive(Debug)]
pub struct ServerArgs {
    pub listen: String,
    pub compression: Compression,
    /// Holds `server.pem` and `server-key.pem` (see `interop-peer pki`).
    pub tls_dir: Option<PathBuf>,
    /// Files served over plain HTTP on the WebSocket port.
    pub web: Option<PathBuf>,
    /// Accept browsers from any origin (the page may come from another
    /// server).
    pub any_origin: bool,
    /// Serve each connection with `serve_tcp`: HTTP/1.1 and HTTP/2
    /// (prior knowledge in cleartext, ALPN `h2` over TLS) on one port.
    pub http2: bool,
}

/// `interop-peer client URL ...`
#[derive(Debug)]
pub struct ClientArgs {
    /// `ws://HOST:PORT` or `wss://HOST:PORT`, without a path.
    pub url: String,
    pub checks: Vec<String>,
    pub compression: Compression,
    /// A PEM file with the CA certificate that signed the server's.
    pub ca: Option<PathBuf>,
    /// Every check's WebSockets are streams of one HTTP/2 connection
    /// (RFC 8441), opened at the start.
    pub http2: bool,
}

impl ServerArgs {
    pub fn parse(arguments: &[String]) -> Result<ServerArgs, String> {
        let mut options = ServerArgs {
            listen: "127.0.0.1:0".to_owned(),
            compression: Compression::Off,
            tls_dir: None,
            web: None,
            any_origin: false,
            http2: false,
        };
        let mut arguments = arguments.iter();
        while let Some(flag) = arguments.next() {
            match flag.as_str() {
                "--listen" => options.listen = value(flag, arguments.next())?,
                "--compression" => {
                    options.compression = Compression::parse(&value(flag, arguments.next())?)?
                }
                "--tls-dir" => options.tls_dir = Some(value(flag, arguments.next())?.into()),
                "--web" => options.web = Some(value(flag, arguments.next())?.into()),
                "--any-origin" => options.any_origin = true,
                "--http2" => options.http2 = true,
                other => return Err(format!("server: unknown argument {other:?}")),
            }
        }
        Ok(options)
    }
}

impl ClientArgs {
    pub fn parse(arguments: &[String]) -> Result<ClientArgs, String> {
        let mut url = None;
        let mut options = ClientArgs {
            url: String::new(),
            checks: Vec::new(),
            compression: Compression::Off,
            ca: None,
            http2: false,
        };
        let mut arguments = arguments.iter();
        while let Some(argument) = arguments.next() {
            match argument.as_str() {
                "--checks" => {
                    options.checks = value(argument, arguments.next())?
                        .split(',')
                        .filter(|check| !check.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "--compression" => {
                    options.compression = Compression::parse(&value(argument, arguments.next())?)?
                }
                "--ca" => options.ca = Some(value(argument, arguments.next())?.into()),
                "--http2" => options.http2 = true,
                flag if flag.starts_with("--") => {
                    return Err(format!("client: unknown argument {flag:?}"));
                }
                positional if url.is_none() => url = Some(positional.trim_end_matches('/')),
                extra => return Err(format!("client: unexpected argument {extra:?}")),
            }
        }
        options.url = url.ok_or("client: no URL")?.to_owned();
        if options.checks.is_empty() {
            return Err("client: no --checks".to_owned());
        }
        Ok(options)
    }
}

fn value(flag: &str, value: Option<&String>) -> Result<String, String> {
    value
        .cloned()
        .ok_or_else(|| format!("{flag} needs a value"))
}
