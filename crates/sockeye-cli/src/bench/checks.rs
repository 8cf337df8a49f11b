//! What is checked before a run: the output paths can be written, the
//! options fit together, the servers' addresses resolve.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use super::{BenchArgs, Mode};
use crate::failure::Failure;

/// Fails (bad input, before the run) if `path` cannot be written: its
/// directory does not exist, it is a directory, or it cannot be created
/// or opened for writing. A file created to find out is removed.
pub(super) fn check_writable(path: &Path, what: &str) -> Result<(), Failure> {
    let fail =
        |why: String| Failure::usage(format!("cannot write {what} to {}: {why}", path.display()));
    if path.is_dir() {
        return Err(fail("it is a directory".into()));
    }
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty());
    if let Some(parent) = parent
        && !parent.is_dir()
    {
        return Err(fail(format!(
            "the directory {} does not exist",
            parent.display()
        )));
    }
    let existed = path.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|error| fail(error.to_string()))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Checks the options that depend on each other; the servers'
/// addresses (used by the modes that open TCP themselves), one per URL.
pub(super) async fn check_mode(args: &BenchArgs, mode: Mode) -> Result<Vec<SocketAddr>, Failure> {
    if args.urls.len() > 1 && mode != Mode::Fanout {
        return Err(Failure::usage(
            "several URLs work with --fanout only (its receivers are spread over them)",
        ));
    }
    let opens_tcp = matches!(mode, Mode::RawEcho | Mode::Idle)
        || (mode == Mode::Fanout && (args.no_handshake || args.local_addresses.is_some()));
    if mode == Mode::Fanout && args.size == 0 {
        return Err(Failure::usage(
            "--fanout needs --size of at least 1 (an empty message ends the run)",
        ));
    }
    if args.local_addresses.is_some() && !matches!(mode, Mode::RawEcho | Mode::Idle | Mode::Fanout)
    {
        return Err(Failure::usage(
            "--local-addresses works with --idle, --raw-echo and --fanout only",
        ));
    }
    let mut addresses = Vec::with_capacity(args.urls.len());
    for url in &args.urls {
        addresses.push(resolve_url(url, mode, opens_tcp, args.local_addresses).await?);
    }
    Ok(addresses)
}

/// The address of the server at `url`; a placeholder when the mode does
/// not need it and it does not resolve (the client will say why).
async fn resolve_url(
    url: &str,
    mode: Mode,
    opens_tcp: bool,
    local_addresses: Option<u8>,
) -> Result<SocketAddr, Failure> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| Failure::usage(format!("malformed URL {url:?}")))?;
    let secure = uri
        .scheme_str()
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("wss"));
    let host = uri
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    if opens_tcp && secure {
        return Err(Failure::usage(format!(
            "--{} with --local-addresses or --no-handshake needs ws:// URLs (no TLS)",
            mode.name()
        )));
    }
    let address = match tokio::net::lookup_host((host.as_str(), port)).await {
        Ok(mut addresses) => addresses.next(),
        Err(_) if !opens_tcp => None,
        Err(error) => {
            return Err(Failure::unreachable(format!(
                "cannot resolve {host}: {error}"
            )));
        }
    };
    let address = match address {
        Some(address) => address,
        None if !opens_tcp => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        None => return Err(Failure::unreachable(format!("{host} has no address"))),
    };
    let spread = local_addresses.is_some_and(|count| count > 1);
    if spread && !(address.is_ipv4() && address.ip().is_loopback()) {
        return Err(Failure::usage(
            "--local-addresses needs IPv4 loopback servers (127.x.x.x)",
        ));
    }
    Ok(address)
}
