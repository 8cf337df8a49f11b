//! `--idle`: connections that are opened and then held without a message,
//! to measure what an idle connection costs the server.
//!
//! Each connection opens its own TCP socket (from one of the
//! `--local-addresses` when they are spread, so that ten thousand
//! connections do not run out of ephemeral ports), performs the WebSocket
//! handshake (none with `--raw-echo`), waits for the end of the hold, and
//! closes. Anything the server sends meanwhile, or the server closing,
//! is an error. At most [`OPENING_AT_ONCE`] connections are being opened
//! at any time: ten thousand at once would overflow the server's accept
//! backlog, and the kernel would then drop handshakes and retry them
//! seconds later.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sockeye::proto::handshake::ClientHandshake;
use sockeye::{Error, WebSocket};
use tokio::net::TcpStream;

use super::lane::LaneEnd;
use super::{ClientSettings, Plan, Shared};

/// Connections being opened (TCP and WebSocket handshakes) at once.
pub const OPENING_AT_ONCE: usize = 128;

/// The longest a handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connection `id`: waits `delay`, opens, holds until the run stops,
/// closes.
pub async fn run(id: u32, plan: Arc<Plan>, shared: Arc<Shared>, delay: Duration) -> LaneEnd {
    let mut end = LaneEnd::default();
    tokio::time::sleep(delay).await;
    let Ok(permit) = plan.opening.acquire().await else {
        end.error = Some("internal error: the opening semaphore is closed".into());
        return end;
    };
    if plan.sessions.is_some() {
        // A stream of a shared HTTP/2 connection.
        let opened = plan.connect(id).await.map(|(ws, _)| ws);
        drop(permit);
        let Some(mut ws) = end.opened(format_args!("connection {id}"), &shared, opened) else {
            return end;
        };
        end.compressed = ws.connection().deflate_params().is_some();
        if let Err(error) = hold(&mut ws, &shared).await {
            end.error = Some(error);
            return end;
        }
        end.close(&mut ws).await;
        return end;
    }
    let tcp = match plan.open_tcp(id).await {
        Ok(tcp) => tcp,
        Err(error) => {
            end.opened::<(), _>(format_args!("connection {id}"), &shared, Err(error));
            return end;
        }
    };
    if plan.raw {
        drop(permit);
        end.opened(format_args!("connection {id}"), &shared, Ok::<_, Error>(()));
        end.error = hold_raw(tcp, &shared).await.err();
        return end;
    }
    let opened = handshake(tcp, plan.client()).await;
    drop(permit);
    let Some(mut ws) = end.opened(format_args!("connection {id}"), &shared, opened) else {
        return end;
    };
    end.compressed = ws.connection().deflate_params().is_some();
    if let Err(error) = hold(&mut ws, &shared).await {
        end.error = Some(error);
        return end;
    }
    end.close(&mut ws).await;
    end
}

/// The client side of the opening handshake over `tcp` to `client`'s
/// URL, offering permessage-deflate unless it is off.
pub async fn handshake(
    tcp: TcpStream,
    client: &ClientSettings,
) -> Result<WebSocket<TcpStream>, Error> {
    let mut builder = ClientHandshake::builder(client.url());
    if let Some(offer) = client.deflate().offer() {
        builder = builder.extension(offer);
    }
    let request = builder.build()?;
    let config = client.config().clone();
    let opening = sockeye::client_handshake(tcp, &request, config);
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, opening).await {
        Ok(Ok((ws, _, _))) => Ok(ws),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(Error::OpenTimeout),
    }
}

/// Waits for the run to stop; anything from the server is an error.
async fn hold<S>(ws: &mut WebSocket<S>, shared: &Shared) -> Result<(), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let stopped = shared.stopped.notified();
    if shared.stop.load(Ordering::Relaxed) {
        return Ok(());
    }
    tokio::select! {
        () = stopped => Ok(()),
        received = ws.recv() => match received {
            Some(Ok(_)) => Err("the server sent a message to an idle connection".into()),
            Some(Err(error)) => Err(format!("connection failed: {error}")),
            None => Err("the server closed the connection".into()),
        },
    }
}

/// [`hold`] for a raw TCP connection.
async fn hold_raw(tcp: TcpStream, shared: &Shared) -> Result<(), String> {
    loop {
        let stopped = shared.stopped.notified();
        if shared.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        tokio::select! {
            () = stopped => return Ok(()),
            readable = tcp.readable() => {
                if let Err(error) = readable {
                    return Err(format!("connection failed: {error}"));
                }
                let mut byte = [0u8; 1];
                match tcp.try_read(&mut byte) {
                    Ok(0) => return Err("the server closed the connection".into()),
                    Ok(_) => return Err("the server sent bytes to an idle connection".into()),
                    Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(error) => return Err(format!("connection failed: {error}")),
                }
            }
        }
    }
}
