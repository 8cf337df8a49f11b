//! Broadcast mode (`sockeye serve --broadcast`): chat rooms on the
//! library's publish/subscribe hub ([`sockeye::hub`]).
//!
//! A WebSocket at `/` joins the default room; one at `/room/NAME` joins
//! room NAME (percent-decoded). Each room is a topic of the hub: what a
//! client says goes to everyone else in its room, framed and compressed
//! once for all of them. A client whose queue (`--queue`) is full is
//! handled by `--slow-policy`: by default it is closed with 1008 (policy
//! violation: the server's policy is a bounded queue per client), as the
//! hub's [`SlowPolicy::Close`] does, so one stalled reader cannot hold
//! back the room or grow memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sockeye::hub::{Backplane, Hub, SlowPolicy, Subscriber, SubscriberState};
use sockeye::{ServerStream, WebSocket};
use tracing::{debug, info, warn};

use crate::failure::Failure;

/// The hub topic of the default room (`/`): no room path gives the empty
/// name, so it cannot collide with a named room.
pub const DEFAULT_ROOM: &str = "";

/// The longest room name, in bytes: it is a topic name on the backplane
/// too (a Redis channel, a NATS subject).
pub const MAX_ROOM_NAME: usize = 200;

/// The room a WebSocket request's path asks for: `Ok(topic)`, or why
/// there is no such room (answered 404).
pub fn room_for_path(path: &str) -> Result<String, &'static str> {
    if path == "/" {
        return Ok(DEFAULT_ROOM.to_owned());
    }
    let Some(raw) = path.strip_prefix("/room/") else {
        return Err("no room here: WebSockets join / or /room/NAME");
    };
    let name = crate::http::percent_decode(raw).ok_or("a room name must be UTF-8 once decoded")?;
    if name.is_empty() || name.contains('/') {
        return Err("a room name is one non-empty path segment");
    }
    if name.len() > MAX_ROOM_NAME {
        return Err("a room name has at most 200 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("a room name has no control characters");
    }
    Ok(name)
}

/// How a room's name is shown in the log.
pub(crate) fn shown(room: &str) -> String {
    if room == DEFAULT_ROOM {
        "the default room".to_owned()
    } else {
        format!("room {room:?}")
    }
}

/// A `--slow-policy` value.
pub fn parse_slow_policy(text: &str) -> Result<SlowPolicy, String> {
    match text {
        "close" => Ok(SlowPolicy::Close),
        "drop-oldest" => Ok(SlowPolicy::DropOldest),
        "drop-newest" => Ok(SlowPolicy::DropNewest),
        other => Err(format!(
            "{other:?}: expected close, drop-oldest or drop-newest"
        )),
    }
}

/// A `--backplane` value: which messaging system, and its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackplaneUrl {
    /// `redis://HOST:PORT`: Redis pub/sub ([`sockeye_redis`]).
    Redis(String),
    /// `nats://HOST:PORT`: NATS core pub/sub ([`sockeye_nats`]).
    Nats(String),
}

impl BackplaneUrl {
    fn url(&self) -> &str {
        match self {
            BackplaneUrl::Redis(url) | BackplaneUrl::Nats(url) => url,
        }
    }
}

/// Parses `--backplane`: the scheme picks the messaging system; the rest
/// is checked by its client when the server starts.
pub fn parse_backplane(text: &str) -> Result<BackplaneUrl, String> {
    let scheme = text.split_once("://").map(|(scheme, _)| scheme);
    match scheme.map(str::to_ascii_lowercase).as_deref() {
        Some("redis") => Ok(BackplaneUrl::Redis(text.to_owned())),
        Some("nats") => Ok(BackplaneUrl::Nats(text.to_owned())),
        _ => Err(format!(
            "{text:?}: expected redis://HOST:PORT or nats://HOST:PORT"
        )),
    }
}

/// The hub of `serve --broadcast`, on a backplane if one is given (with a
/// task that logs the backplane's state changes).
pub fn hub(
    queue: usize,
    policy: SlowPolicy,
    backplane: Option<&BackplaneUrl>,
) -> Result<Hub, Failure> {
    let builder = Hub::builder().queue_capacity(queue).slow_policy(policy);
    let Some(url) = backplane else {
        return Ok(builder.build());
    };
    let bad = |error: &dyn std::fmt::Display| Failure::usage(format!("--backplane: {error}"));
    let client: Arc<dyn Backplane> = match url {
        BackplaneUrl::Redis(text) => Arc::new(
            sockeye_redis::RedisBackplane::builder(text)
                .build()
                .map_err(|error| bad(&error))?,
        ),
        BackplaneUrl::Nats(text) => Arc::new(
            sockeye_nats::NatsBackplane::builder()
                .url(text.clone())
                .build()
                .map_err(|error| bad(&error))?,
        ),
    };
    let hub = builder.shared_backplane(client).build();
    note!(
        "sockeye: node {} on the backplane {}",
        hub.node_id(),
        redacted(url.url())
    );
    tokio::spawn(watch_backplane(hub.clone(), redacted(url.url())));
    Ok(hub)
}

/// A URL with its password, if any, left out, for the log.
fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// How often the backplane's state is looked at for the log.
const WATCH_INTERVAL: Duration = Duration::from_millis(250);

/// Logs when the backplane connects, goes away and comes back, with what
/// was lost meanwhile; ends with the hub.
async fn watch_backplane(hub: Hub, url: String) {
    let weak = hub.downgrade();
    drop(hub);
    let mut connected = false;
    let mut ever = false;
    let mut since = Instant::now();
    let mut dropped_at_loss = 0;
    loop {
        let Some(hub) = weak.upgrade() else { return };
        let Some(status) = hub.backplane_status() else {
            return;
        };
        let dropped = hub.stats().dropped_backplane;
        drop(hub);
        if status.connected != connected {
            connected = status.connected;
            if connected && !ever {
                note!("sockeye: backplane {url}: connected");
            } else if connected {
                note!(
                    "sockeye: backplane {url}: reconnected after {:.1?} ({} cross-node publish(es) dropped meanwhile)",
                    since.elapsed(),
                    dropped - dropped_at_loss
                );
            } else {
                warn!(
                    "backplane {url}: connection lost; local delivery goes on, cross-node publishes are dropped until it is back"
                );
                dropped_at_loss = dropped;
            }
            ever |= connected;
            since = Instant::now();
        } else if !connected && !ever && since.elapsed() >= Duration::from_secs(5) {
            warn!("backplane {url}: not reachable yet; retrying (local delivery works meanwhile)");
            since = Instant::now();
        }
        tokio::time::sleep(WATCH_INTERVAL).await;
    }
}

/// A member of a room, subscribed before its handshake is answered: a
/// client that sees itself connected already receives what others say.
pub struct Member {
    subscriber: Subscriber,
    room: String,
}

/// Subscribes a new member to `room`.
pub fn join(hub: &Hub, room: String) -> Member {
    let subscriber = hub.subscriber();
    subscriber.subscribe(&room);
    Member { subscriber, room }
}

/// Serves one member until it leaves, is closed for being slow, or the
/// server's drain closes it (the library sends that Close, from the
/// reading half).
pub async fn serve(hub: &Hub, member: Member, ws: WebSocket<ServerStream>, peer: SocketAddr) {
    let Member { subscriber, room } = member;
    info!(
        "{peer}: joined {} ({} present)",
        shown(&room),
        hub.subscriber_count(&room)
    );
    let (mut receiver, sender) = ws.split();
    subscriber.attach(sender);
    while let Some(received) = receiver.recv().await {
        match received {
            Ok(message) => {
                hub.publish_excluding(&room, message, &subscriber);
            }
            Err(error) => {
                debug!("{peer}: connection failed: {error}");
                break;
            }
        }
    }
    let dropped = subscriber.dropped();
    let state = subscriber.state();
    drop(subscriber);
    let lost = if dropped > 0 {
        format!(" ({dropped} message(s) not delivered)")
    } else {
        String::new()
    };
    match state {
        SubscriberState::TooSlow => {
            info!("{peer}: too slow to keep up (queue full), closed with 1008{lost}");
        }
        SubscriberState::Stalled => {
            info!("{peer}: too slow to keep up (no progress writing), closed with 1008{lost}");
        }
        _ => {}
    }
    info!("{peer}: left {}{lost}", shown(&room));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_by_path() {
        assert_eq!(room_for_path("/").unwrap(), DEFAULT_ROOM);
        assert_eq!(room_for_path("/room/lobby").unwrap(), "lobby");
        assert_eq!(room_for_path("/room/caf%C3%A9").unwrap(), "café");
        assert_eq!(room_for_path("/room/a%20b").unwrap(), "a b");
        assert!(room_for_path("/room/").is_err());
        assert!(room_for_path("/room/a/b").is_err());
        assert!(room_for_path("/room/a%2Fb").is_err());
        assert!(room_for_path("/room/%ff").is_err());
        assert!(room_for_path("/room/%0a").is_err());
        assert!(room_for_path("/chat").is_err());
        assert!(room_for_path(&format!("/room/{}", "x".repeat(201))).is_err());
        assert!(room_for_path(&format!("/room/{}", "x".repeat(200))).is_ok());
    }

    #[test]
    fn slow_policies() {
        assert_eq!(parse_slow_policy("close"), Ok(SlowPolicy::Close));
        assert_eq!(parse_slow_policy("drop-oldest"), Ok(SlowPolicy::DropOldest));
        assert_eq!(parse_slow_policy("drop-newest"), Ok(SlowPolicy::DropNewest));
        assert!(parse_slow_policy("wait").is_err());
    }

    #[test]
    fn backplane_urls() {
        assert_eq!(
            parse_backplane("redis://127.0.0.1:6379"),
            Ok(BackplaneUrl::Redis("redis://127.0.0.1:6379".into()))
        );
        assert_eq!(
            parse_backplane("nats://127.0.0.1:4222"),
            Ok(BackplaneUrl::Nats("nats://127.0.0.1:4222".into()))
        );
        assert!(parse_backplane("127.0.0.1:6379").is_err());
        assert!(parse_backplane("kafka://x:1").is_err());
        assert_eq!(redacted("redis://:secret@host:1/0"), "redis://***@host:1/0");
        assert_eq!(redacted("nats://host:4222"), "nats://host:4222");
    }
}
