//! The publish/subscribe hub (`sockeye::hub`) over real connections:
//! loopback TCP where the network and the handshake matter (fan-out,
//! permessage-deflate, axum upgrades), in-memory pipes where a client must
//! stop reading (the slow-subscriber policies, the stall timeout), and
//! tokio's paused clock where timing matters. Every wait is bounded.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::get;
use sockeye::hub::{Hub, SlowPolicy, Subscriber, SubscriberState};
use sockeye::proto::Config;
use sockeye::{
    ClientBuilder, ClientStream, CloseCode, Closed, DeflateConfig, Event, Message, Role, SendHalf,
    ServerBuilder, WebSocket,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, DuplexStream, ReadBuf, duplex};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Bounds every wait: a broken hub fails a test instead of hanging it.
const GUARD: Duration = Duration::from_secs(10);

/// Far beyond any test: the stall timeout when a test is not about it.
const NEVER: Duration = Duration::from_secs(3600);

async fn bounded<F: Future>(what: &str, future: F) -> F::Output {
    match tokio::time::timeout(GUARD, future).await {
        Ok(output) => output,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Waits until `condition` holds, looking every millisecond (bounded).
async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    bounded(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

/// Under a paused clock: lets every task run until all wait, and moves
/// the clock by a millisecond (far less than any timer of the hub's).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

/// The next data message (Pings and Pongs are skipped).
async fn next<S>(ws: &mut WebSocket<S>) -> Message
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    bounded("a message", async {
        loop {
            match ws.recv_event().await {
                Some(Ok(Event::Message(message))) => return message,
                Some(Ok(Event::Closed(closed))) => {
                    panic!("closed instead of a message: {closed:?}")
                }
                Some(Ok(_)) => {}
                other => panic!("expected a message, got {other:?}"),
            }
        }
    })
    .await
}

/// The next `count` messages, as text.
async fn texts<S>(ws: &mut WebSocket<S>, count: usize) -> Vec<String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut texts = Vec::new();
    for _ in 0..count {
        let message = next(ws).await;
        texts.push(message.as_text().expect("a text message").to_owned());
    }
    texts
}

/// How the connection ends; the next event must be its end.
async fn end<S>(ws: &mut WebSocket<S>) -> Closed
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    bounded("the end", async {
        loop {
            match ws.recv_event().await {
                Some(Ok(Event::Closed(closed))) => return closed,
                Some(Ok(Event::Message(message))) => {
                    panic!("a message instead of the end: {message:?}")
                }
                Some(Ok(_)) => {}
                other => panic!("expected the end, got {other:?}"),
            }
        }
    })
    .await
}

/// Message `i` of a numbered series: 512 bytes, the number first (frames
/// of 516 bytes).
fn numbered(i: u32) -> Message {
    let mut payload = i.to_be_bytes().to_vec();
    payload.resize(512, 0x5a);
    Message::binary(payload)
}

fn number(message: &Message) -> u32 {
    let bytes = message.as_bytes();
    assert!(message.is_binary() && bytes.len() == 512, "{message:?}");
    assert!(
        bytes[4..].iter().all(|&byte| byte == 0x5a),
        "bytes unchanged"
    );
    u32::from_be_bytes(bytes[..4].try_into().unwrap())
}

/// What the server's receiving half got, and how the connection ended.
type ServerEnd = JoinHandle<(Vec<Message>, Option<Closed>)>;

/// A connection over an in-memory pipe holding `capacity` bytes each way,
/// whose server engine queues at most `max_buffered` bytes before its
/// writes wait. Returns the server's sending half (for the hub), the
/// client, and a task that drives the server's receiving half as an
/// application does. No keepalive: paused clocks jump.
fn pipe(
    capacity: usize,
    max_buffered: usize,
) -> (SendHalf<DuplexStream>, WebSocket<DuplexStream>, ServerEnd) {
    let (client_io, server_io) = duplex(capacity);
    let config = Config::new()
        .keepalive_interval(None)
        .max_buffered_bytes(max_buffered);
    let server = WebSocket::from_raw(server_io, Role::Server, config, &[]);
    let client = WebSocket::from_raw(client_io, Role::Client, Config::default(), &[]);
    let (receiver, sender) = server.split();
    (sender, client, tokio::spawn(drive(receiver)))
}

/// Receives until the end, as the application's reading loop does.
async fn drive(mut receiver: sockeye::RecvHalf<DuplexStream>) -> (Vec<Message>, Option<Closed>) {
    let mut received = Vec::new();
    while let Some(event) = receiver.recv_event().await {
        match event {
            Ok(Event::Message(message)) => received.push(message),
            Ok(Event::Closed(closed)) => return (received, Some(closed)),
            Ok(_) => {}
            Err(_) => break,
        }
    }
    (received, None)
}

/// A subscriber attached to an in-memory connection, and its client.
struct Piped {
    me: Subscriber,
    client: WebSocket<DuplexStream>,
    server: ServerEnd,
}

/// A subscriber on a roomy pipe (1 MiB each way).
fn attach(hub: &Hub) -> Piped {
    let (sender, client, server) = pipe(1 << 20, 1 << 20);
    Piped {
        me: hub.attach(sender),
        client,
        server,
    }
}

/// A subscriber whose client does not read (until the test says so): a
/// 2 KiB pipe, and a server engine that queues at most 2 KiB. Four
/// numbered messages fill it: the fourth is written in part.
fn attach_unread(hub: &Hub) -> Piped {
    let (sender, client, server) = pipe(2048, 2048);
    Piped {
        me: hub.attach(sender),
        client,
        server,
    }
}

/// A loopback server whose connections the hub writes to. Each
/// connection's subscriber goes to the test once accepted (subscribed to
/// `room` first, if any); what a client sends is published to `room` but
/// not back to it, as a chat server does.
async fn hub_server(
    hub: &Hub,
    room: Option<&'static str>,
) -> (String, mpsc::UnboundedReceiver<Arc<Subscriber>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let (accepted, subscribers) = mpsc::unbounded_channel();
    let hub = hub.clone();
    tokio::spawn(async move {
        let server = ServerBuilder::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let (server, hub, accepted) = (server.clone(), hub.clone(), accepted.clone());
            tokio::spawn(async move {
                let Ok(ws) = server.accept_tcp(tcp).await else {
                    return;
                };
                let (mut receiver, sender) = ws.split();
                let me = Arc::new(hub.attach(sender));
                if let Some(room) = room {
                    me.subscribe(room);
                }
                let _ = accepted.send(me.clone());
                while let Some(Ok(message)) = receiver.recv().await {
                    if let Some(room) = room {
                        hub.publish_excluding(room, message, &me);
                    }
                }
            });
        }
    });
    (url, subscribers)
}

/// Connects a client to `url` and returns it with its subscriber (the
/// next one accepted: connect clients one at a time).
async fn join(
    url: &str,
    subscribers: &mut mpsc::UnboundedReceiver<Arc<Subscriber>>,
    deflate: DeflateConfig,
) -> (WebSocket<ClientStream>, Arc<Subscriber>) {
    let (ws, _) = bounded(
        "the handshake",
        ClientBuilder::new(url).deflate(deflate).connect(),
    )
    .await
    .unwrap();
    let me = bounded("the server's subscriber", subscribers.recv())
        .await
        .unwrap();
    (ws, me)
}

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

/// Message `i` of publisher `p`: text for even `i`, binary (every byte
/// value) for odd.
fn sample(p: u32, i: u32) -> Message {
    if i.is_multiple_of(2) {
        Message::text(format!("{p} {i} κόσμε ✓"))
    } else {
        let mut payload = vec![p as u8];
        payload.extend_from_slice(&i.to_be_bytes());
        payload.extend(0..=255u8);
        Message::binary(payload)
    }
}

/// Which publisher sent `message`, and its index.
fn identify(message: &Message) -> (u32, u32) {
    match message.as_text() {
        Some(text) => {
            let mut words = text.split(' ');
            let p = words.next().unwrap().parse().unwrap();
            let i = words.next().unwrap().parse().unwrap();
            (p, i)
        }
        None => {
            let bytes = message.as_bytes();
            (
                u32::from(bytes[0]),
                u32::from_be_bytes(bytes[1..5].try_into().unwrap()),
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_every_message_once_and_in_order() {
    const CLIENTS: usize = 4;
    const PUBLISHERS: u32 = 3;
    const EACH: u32 = 400;
    // Room for everything: this test is about delivery, not slowness.
    let hub = Hub::builder().queue_capacity(1 << 16).build();
    let (url, mut subscribers) = hub_server(&hub, None).await;
    let mut clients = Vec::new();
    let mut handles = Vec::new();
    for _ in 0..CLIENTS {
        let (ws, me) = join(&url, &mut subscribers, DeflateConfig::new()).await;
        assert!(me.subscribe("feed"));
        assert!(!me.subscribe("feed"), "already subscribed");
        clients.push(ws);
        handles.push(me);
    }
    assert_eq!(hub.subscriber_count("feed"), CLIENTS);

    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                for _ in 0..PUBLISHERS * EACH {
                    got.push(next(&mut ws).await);
                }
                (ws, got)
            })
        })
        .collect();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|p| {
            let hub = hub.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    assert_eq!(hub.publish("feed", sample(p, i)), CLIENTS);
                    if i % 8 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for publisher in publishers {
        bounded("the publishers", publisher).await.unwrap();
    }
    let mut clients = Vec::new();
    for reader in readers {
        let (ws, got) = bounded("the readers", reader).await.unwrap();
        let mut expected = [0u32; PUBLISHERS as usize];
        for message in &got {
            let (p, i) = identify(message);
            assert_eq!(
                i, expected[p as usize],
                "publisher {p}'s messages arrive once each and in order"
            );
            assert_eq!(*message, sample(p, i), "type and bytes unchanged");
            expected[p as usize] += 1;
        }
        assert_eq!(expected, [EACH; PUBLISHERS as usize]);
        clients.push(ws);
    }

    let stats = hub.stats();
    let total = u64::from(PUBLISHERS * EACH);
    assert_eq!(stats.published, total);
    assert_eq!(stats.queued, total * CLIENTS as u64);
    assert_eq!(stats.delivered, total * CLIENTS as u64);
    assert_eq!(
        (stats.dropped_full, stats.dropped_slow, stats.dropped_closed),
        (0, 0, 0)
    );
    assert_eq!((stats.kicked, stats.stalled), (0, 0));
    // Nothing else was sent: a direct message comes next.
    for (ws, me) in clients.iter_mut().zip(&handles) {
        assert!(me.send("the end"));
        assert_eq!(next(ws).await.as_text(), Some("the end"));
        assert_eq!(me.dropped(), 0);
    }
}

#[tokio::test]
async fn publish_excluding_skips_only_the_sender() {
    let hub = Hub::new();
    let (url, mut subscribers) = hub_server(&hub, Some("room")).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(join(&url, &mut subscribers, DeflateConfig::new()).await.0);
    }
    let [a, b, c] = &mut clients[..] else {
        unreachable!()
    };

    a.send(Message::text("from a")).await.unwrap();
    assert_eq!(next(b).await.as_text(), Some("from a"));
    assert_eq!(next(c).await.as_text(), Some("from a"));
    assert_eq!(hub.publish("room", "to everyone"), 3);
    // a's next message is this one: it did not get its own.
    for ws in [&mut *a, &mut *b, &mut *c] {
        assert_eq!(next(ws).await.as_text(), Some("to everyone"));
    }

    b.send(Message::binary(vec![0u8, 1, 255])).await.unwrap();
    assert_eq!(next(a).await, Message::binary(vec![0u8, 1, 255]));
    assert_eq!(next(c).await, Message::binary(vec![0u8, 1, 255]));
    assert_eq!(hub.publish("room", "again"), 3);
    for ws in [&mut *a, &mut *b, &mut *c] {
        assert_eq!(next(ws).await.as_text(), Some("again"));
    }
    let stats = hub.stats();
    assert_eq!(stats.published, 4);
    assert_eq!(stats.queued, 2 + 3 + 2 + 3);
}

#[tokio::test]
async fn topics_are_isolated_and_a_subscriber_may_have_several() {
    let hub = Hub::new();
    let mut x = attach(&hub);
    let mut y = attach(&hub);
    let mut z = attach(&hub);
    assert!(x.me.subscribe("a"));
    assert!(y.me.subscribe("b"));
    assert!(z.me.subscribe("a"));
    assert!(z.me.subscribe("b"));
    assert_eq!(hub.publish("a", "a1"), 2);
    assert_eq!(hub.publish("b", "b1"), 2);
    assert_eq!(hub.publish("a", "a2"), 2);
    assert_eq!(hub.publish("c", "c1"), 0);
    assert_eq!(sorted(z.me.topics()), ["a", "b"]);
    assert_eq!(
        sorted(hub.topics()),
        [("a".to_owned(), 2), ("b".to_owned(), 2)]
    );
    for piped in [&x, &y, &z] {
        assert!(piped.me.send("end"));
    }
    assert_eq!(texts(&mut x.client, 3).await, ["a1", "a2", "end"]);
    assert_eq!(texts(&mut y.client, 2).await, ["b1", "end"]);
    assert_eq!(texts(&mut z.client, 4).await, ["a1", "b1", "a2", "end"]);
}

#[tokio::test]
async fn unsubscribe_stops_delivery() {
    let hub = Hub::new();
    let mut x = attach(&hub);
    x.me.subscribe("a");
    x.me.subscribe("b");
    assert_eq!(hub.publish("a", "a1"), 1);
    assert_eq!(hub.publish("b", "b1"), 1);
    assert!(x.me.unsubscribe("a"));
    assert!(!x.me.unsubscribe("a"), "no longer subscribed");
    assert!(!x.me.unsubscribe("never"), "never subscribed");
    assert_eq!(x.me.topics(), ["b"]);
    assert_eq!(hub.subscriber_count("a"), 0);
    assert_eq!(hub.topics(), [("b".to_owned(), 1)]);
    assert_eq!(hub.publish("a", "a2"), 0);
    assert_eq!(hub.publish("b", "b2"), 1);
    assert_eq!(texts(&mut x.client, 3).await, ["a1", "b1", "b2"]);
    // And back again.
    assert!(x.me.subscribe("a"));
    assert_eq!(hub.publish("a", "a3"), 1);
    assert_eq!(next(&mut x.client).await.as_text(), Some("a3"));
}

#[tokio::test]
async fn dropping_the_subscriber_leaves_every_topic() {
    let hub = Hub::new();
    let mut x = attach(&hub);
    let mut y = attach(&hub);
    for topic in ["a", "b", "c"] {
        x.me.subscribe(topic);
    }
    y.me.subscribe("a");
    assert_eq!(sorted(x.me.topics()), ["a", "b", "c"]);
    assert_eq!(
        sorted(hub.topics()),
        [
            ("a".to_owned(), 2),
            ("b".to_owned(), 1),
            ("c".to_owned(), 1)
        ]
    );
    let stats = hub.stats();
    assert_eq!(
        (stats.topics, stats.subscribers, stats.subscriptions),
        (3, 2, 4)
    );

    // Queued before the drop: still written.
    assert_eq!(hub.publish("c", "last words"), 1);
    drop(x.me);
    assert_eq!(hub.topics(), [("a".to_owned(), 1)]);
    assert_eq!(hub.subscriber_count("a"), 1);
    assert_eq!(hub.subscriber_count("b"), 0);
    assert_eq!(hub.subscriber_count("c"), 0);
    let stats = hub.stats();
    assert_eq!(
        (stats.topics, stats.subscribers, stats.subscriptions),
        (1, 1, 1)
    );
    assert_eq!(hub.publish("b", "gone"), 0);
    assert_eq!(hub.publish("a", "still here"), 1);
    assert_eq!(next(&mut x.client).await.as_text(), Some("last words"));
    assert_eq!(next(&mut y.client).await.as_text(), Some("still here"));
}

#[tokio::test]
async fn publishing_to_a_topic_nobody_subscribes_to_queues_nothing() {
    let hub = Hub::new();
    let mut x = attach(&hub);
    x.me.subscribe("a");
    let before = hub.stats();
    assert_eq!(hub.publish("nobody", "into the void"), 0);
    assert_eq!(hub.publish("nobody", Message::binary(vec![1u8; 100])), 0);
    let after = hub.stats();
    assert_eq!(after.published, before.published + 2);
    assert_eq!(after.queued, before.queued);
    assert_eq!((after.queue_depth_total, after.queue_depth_max), (0, 0));
    assert_eq!((after.topics, after.subscriptions), (1, 1));
    assert_eq!(hub.subscriber_count("nobody"), 0);
    assert_eq!(hub.topics(), [("a".to_owned(), 1)]);
    assert_eq!(x.me.queue_depth(), 0);
    assert!(x.me.send("only this"));
    assert_eq!(next(&mut x.client).await.as_text(), Some("only this"));
}

#[tokio::test]
async fn a_subscriber_queues_until_it_is_attached() {
    let hub = Hub::new();
    let me = hub.subscriber();
    assert!(me.subscribe("t"));
    for text in ["one", "two", "three"] {
        assert_eq!(hub.publish("t", text), 1);
    }
    assert!(me.send("direct"));
    assert_eq!(me.queue_depth(), 4);
    assert_eq!(me.delivered(), 0);
    assert_eq!(me.state(), SubscriberState::Open);
    let stats = hub.stats();
    assert_eq!((stats.subscribers, stats.queue_depth_total), (1, 4));

    let (sender, mut client, _server) = pipe(1 << 20, 1 << 20);
    assert!(me.attach(sender));
    assert_eq!(
        texts(&mut client, 4).await,
        ["one", "two", "three", "direct"]
    );
    eventually("delivered counted", || me.delivered() == 4).await;
    assert_eq!(me.queue_depth(), 0);

    // A second connection is refused (and dropped); the first goes on.
    let (second, _second_client, _second_server) = pipe(1 << 20, 1 << 20);
    assert!(!me.attach(second));
    assert_eq!(hub.publish("t", "four"), 1);
    assert_eq!(next(&mut client).await.as_text(), Some("four"));
}

#[tokio::test]
async fn send_and_close_go_after_what_is_queued() {
    let hub = Hub::new();
    let mut x = attach(&hub);
    x.me.subscribe("t");
    assert_eq!(hub.publish("t", "one"), 1);
    assert!(x.me.send(Message::binary(vec![7u8; 3])));
    assert_eq!(hub.publish("t", "two"), 1);
    assert!(x.me.close(CloseCode::new(4000), "bye"));
    assert_eq!(x.me.state(), SubscriberState::Closing);
    assert!(!x.me.is_open());
    assert!(!x.me.close(CloseCode::NORMAL, "again"), "closing already");
    assert!(!x.me.send("after the close"));
    assert_eq!(hub.publish("t", "after the close"), 0);

    assert_eq!(next(&mut x.client).await.as_text(), Some("one"));
    assert_eq!(next(&mut x.client).await, Message::binary(vec![7u8; 3]));
    assert_eq!(next(&mut x.client).await.as_text(), Some("two"));
    let closed = end(&mut x.client).await;
    assert_eq!(closed.code(), CloseCode::new(4000));
    assert_eq!(closed.reason(), "bye");
    assert!(closed.is_clean());
    let (received, server_closed) = bounded("the server's end", x.server).await.unwrap();
    assert!(received.is_empty());
    assert!(server_closed.expect("a closing handshake").is_clean());
    eventually("the writer ends", || x.me.state() == SubscriberState::Ended).await;
    assert_eq!(hub.subscriber_count("t"), 0);
    assert_eq!(hub.stats().subscribers, 0);
    assert_eq!(x.me.delivered(), 3);
}

#[tokio::test(start_paused = true)]
async fn close_policy_disconnects_a_client_that_does_not_read() {
    const CAPACITY: u64 = 4;
    let hub = Hub::builder()
        .queue_capacity(CAPACITY as usize)
        .slow_policy(SlowPolicy::Close)
        .stall_timeout(NEVER)
        .build();
    let mut x = attach_unread(&hub);
    x.me.subscribe("feed");
    let mut published = 0;
    while x.me.is_open() {
        assert!(published < 100, "never closed");
        hub.publish("feed", numbered(published));
        published += 1;
        settle().await;
    }
    assert_eq!(x.me.state(), SubscriberState::TooSlow);
    let stats = hub.stats();
    assert_eq!(stats.kicked, 1);
    assert_eq!(
        stats.dropped_slow,
        CAPACITY + 1,
        "its full queue and the message that found it full"
    );
    assert_eq!(x.me.dropped(), CAPACITY + 1);
    let delivered = stats.delivered;
    assert!(delivered > 0, "some were written before the pipe filled");
    assert_eq!(u64::from(published), delivered + CAPACITY + 1);
    assert_eq!(hub.publish("feed", numbered(999)), 0, "no longer taken");

    // The client reads at last: what was written before, then the Close.
    for i in 0..delivered {
        assert_eq!(u64::from(number(&next(&mut x.client).await)), i);
    }
    let closed = end(&mut x.client).await;
    assert_eq!(closed.code(), CloseCode::POLICY_VIOLATION);
    assert_eq!(closed.reason(), "too slow to keep up");
    eventually("the writer ends", || hub.stats().subscribers == 0).await;
    assert_eq!(hub.subscriber_count("feed"), 0);
    assert_eq!(x.me.state(), SubscriberState::TooSlow);
    assert_eq!(hub.stats().kicked, 1);
}

/// Publishes `count` numbered messages to a subscriber whose client does
/// not read, under `policy` with a queue of `capacity`, letting the writer
/// run after each; then lets the client read everything that comes, which
/// ends with a Close the test sends after the last one. Returns the
/// numbers received, how many were dropped, and the publishes' results.
async fn fill_then_read(
    policy: SlowPolicy,
    capacity: usize,
    count: u32,
) -> (Vec<u32>, u64, Vec<usize>) {
    let hub = Hub::builder()
        .queue_capacity(capacity)
        .slow_policy(policy)
        .stall_timeout(NEVER)
        .build();
    let mut x = attach_unread(&hub);
    x.me.subscribe("feed");
    let mut results = Vec::new();
    for i in 0..count {
        results.push(hub.publish("feed", numbered(i)));
        settle().await;
    }
    assert_eq!(x.me.state(), SubscriberState::Open);
    assert_eq!(x.me.queue_depth(), capacity, "the queue is full");
    let dropped = x.me.dropped();
    assert!(dropped > 0);
    let stats = hub.stats();
    assert_eq!(stats.dropped_full, dropped);
    assert_eq!((stats.kicked, stats.dropped_slow), (0, 0));

    let mut received = Vec::new();
    for _ in 0..u64::from(count) - dropped {
        received.push(number(&next(&mut x.client).await));
    }
    // Nothing else comes before a Close sent now.
    assert!(x.me.close(CloseCode::NORMAL, "done"));
    let closed = end(&mut x.client).await;
    assert_eq!(
        (closed.code(), closed.reason()),
        (CloseCode::NORMAL, "done")
    );
    assert_eq!(hub.stats().delivered, received.len() as u64);
    (received, dropped, results)
}

#[tokio::test(start_paused = true)]
async fn drop_oldest_keeps_the_newest_for_a_client_that_does_not_read() {
    const CAPACITY: usize = 4;
    const COUNT: u32 = 40;
    let (received, dropped, results) =
        fill_then_read(SlowPolicy::DropOldest, CAPACITY, COUNT).await;
    assert!(results.iter().all(|&queued| queued == 1), "{results:?}");
    assert_eq!(received.len() as u64 + dropped, u64::from(COUNT));
    // What was written before the pipe filled, then the newest.
    let written_before = (received.len() - CAPACITY) as u32;
    assert!(written_before > 0);
    let expected: Vec<u32> = (0..written_before)
        .chain(COUNT - CAPACITY as u32..COUNT)
        .collect();
    assert_eq!(received, expected);
}

#[tokio::test(start_paused = true)]
async fn drop_newest_keeps_the_first_for_a_client_that_does_not_read() {
    const CAPACITY: usize = 4;
    const COUNT: u32 = 40;
    let (received, dropped, results) =
        fill_then_read(SlowPolicy::DropNewest, CAPACITY, COUNT).await;
    assert_eq!(received.len() as u64 + dropped, u64::from(COUNT));
    assert_eq!(received, (0..received.len() as u32).collect::<Vec<_>>());
    let accepted = received.len();
    assert_eq!(results[..accepted], vec![1; accepted][..]);
    assert_eq!(results[accepted..], vec![0; COUNT as usize - accepted][..]);
}

#[tokio::test(start_paused = true)]
async fn a_write_that_makes_no_progress_is_closed_after_the_stall_timeout() {
    let stall = Duration::from_secs(2);
    let hub = Hub::builder().stall_timeout(stall).build();
    let mut x = attach_unread(&hub);
    x.me.subscribe("feed");
    for i in 0..8 {
        assert_eq!(hub.publish("feed", numbered(i)), 1);
        settle().await;
    }
    // The pipe filled with the fourth: the writer waits, four are queued.
    let stuck = tokio::time::Instant::now();
    assert_eq!(x.me.queue_depth(), 4);
    assert_eq!(x.me.delivered(), 4);

    tokio::time::sleep_until(stuck + stall - Duration::from_millis(100)).await;
    assert_eq!(x.me.state(), SubscriberState::Open);
    assert_eq!(hub.stats().stalled, 0);
    tokio::time::sleep_until(stuck + stall + Duration::from_millis(100)).await;
    assert_eq!(x.me.state(), SubscriberState::Stalled);
    let stats = hub.stats();
    assert_eq!((stats.stalled, stats.kicked), (1, 0));

    // Its Close cannot be written either; the writer gives up on it and
    // ends, and what was queued is lost.
    tokio::time::sleep_until(stuck + stall + Duration::from_millis(1200)).await;
    let stats = hub.stats();
    assert_eq!(stats.subscribers, 0);
    assert_eq!(hub.subscriber_count("feed"), 0);
    assert_eq!(stats.dropped_closed, 4);
    assert_eq!(x.me.dropped(), 4);
    assert_eq!(x.me.state(), SubscriberState::Stalled);

    // The client reads at last: what was written, then the Close.
    for i in 0..4 {
        assert_eq!(number(&next(&mut x.client).await), i);
    }
    let closed = end(&mut x.client).await;
    assert_eq!(closed.code(), CloseCode::POLICY_VIOLATION);
    assert_eq!(closed.reason(), "too slow to keep up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_never_waits_for_a_stuck_subscriber() {
    const CAPACITY: usize = 8;
    const COUNT: u32 = 200;
    let hub = Hub::builder()
        .queue_capacity(CAPACITY)
        .slow_policy(SlowPolicy::DropNewest)
        .stall_timeout(NEVER)
        .build();
    let mut stuck = attach_unread(&hub);
    let live = attach(&hub);
    stuck.me.subscribe("feed");
    live.me.subscribe("feed");
    let mut live_client = live.client;
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        for _ in 0..COUNT {
            got.push(number(&next(&mut live_client).await));
        }
        got
    });
    let live_me = live.me;
    // Published from a thread of its own: a publish that waited for the
    // stuck subscriber would hold it, not the runtime.
    let publisher = tokio::task::spawn_blocking({
        let hub = hub.clone();
        move || {
            let mut results = Vec::new();
            let mut publishing = Duration::ZERO;
            for i in 0..COUNT {
                if i % 4 == 0 {
                    // The live subscriber keeps up: its queue never fills.
                    let waiting = std::time::Instant::now();
                    while live_me.queue_depth() > 0 {
                        assert!(waiting.elapsed() < GUARD, "the live subscriber is stuck");
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
                let started = std::time::Instant::now();
                results.push(hub.publish("feed", numbered(i)));
                publishing += started.elapsed();
            }
            (results, publishing, live_me)
        }
    });
    let (results, publishing, live_me) = bounded("the publisher", publisher).await.unwrap();
    assert!(
        publishing < Duration::from_secs(1),
        "{COUNT} publishes took {publishing:?}"
    );
    let got = bounded("the live client", reader).await.unwrap();
    assert_eq!(got, (0..COUNT).collect::<Vec<_>>());
    assert_eq!(live_me.dropped(), 0);

    // Both took messages until the stuck one's queue was full; from then
    // on only the live one did.
    let accepted = results.iter().take_while(|&&queued| queued == 2).count();
    assert!(
        results[accepted..].iter().all(|&queued| queued == 1),
        "{results:?}"
    );
    assert_eq!(stuck.me.state(), SubscriberState::Open);
    assert_eq!(stuck.me.queue_depth(), CAPACITY);
    assert_eq!(stuck.me.dropped(), u64::from(COUNT) - accepted as u64);
    assert!(accepted as u64 >= stuck.me.delivered() + CAPACITY as u64);
    // The stuck client reads at last: the first ones, in order.
    for i in 0..accepted as u32 {
        assert_eq!(number(&next(&mut stuck.client).await), i);
    }
}

/// Reads `count` whole unmasked frames, header included, from a raw
/// stream.
async fn raw_frames(stream: &mut ClientStream, count: usize) -> Vec<Vec<u8>> {
    let mut wire = Vec::new();
    bounded("raw frames", async {
        loop {
            if let Some(frames) = split_frames(&wire, count) {
                return frames;
            }
            let mut chunk = [0u8; 4096];
            let read = stream.read(&mut chunk).await.unwrap();
            assert!(read > 0, "the connection ended");
            wire.extend_from_slice(&chunk[..read]);
        }
    })
    .await
}

/// `wire` as exactly `count` frames, or `None` if they are not all there.
fn split_frames(wire: &[u8], count: usize) -> Option<Vec<Vec<u8>>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while frames.len() < count {
        let rest = &wire[at..];
        if rest.len() < 2 {
            return None;
        }
        assert_eq!(rest[1] & 0x80, 0, "a server's frames are not masked");
        let (header, length) = match rest[1] & 0x7f {
            126 if rest.len() >= 4 => (4, usize::from(u16::from_be_bytes([rest[2], rest[3]]))),
            127 if rest.len() >= 10 => (
                10,
                u64::from_be_bytes(rest[2..10].try_into().unwrap()) as usize,
            ),
            126 | 127 => return None,
            length => (2, usize::from(length)),
        };
        if rest.len() < header + length {
            return None;
        }
        frames.push(rest[..header + length].to_vec());
        at += header + length;
    }
    assert_eq!(at, wire.len(), "nothing but the frames expected");
    Some(frames)
}

#[tokio::test]
async fn deflate_shares_one_frame_without_context_takeover_and_not_with_it() {
    let hub = Hub::new();
    let (url, mut subscribers) = hub_server(&hub, Some("feed")).await;
    let mut raw = Vec::new();
    let mut handles = Vec::new();
    for takeover in [false, false, true] {
        let deflate = DeflateConfig::new().server_no_context_takeover(!takeover);
        let (ws, me) = join(&url, &mut subscribers, deflate).await;
        let params = ws.connection().deflate_params().expect("negotiated");
        assert_eq!(params.server_no_context_takeover, !takeover);
        // From here on the test reads the raw frames.
        let parts = ws.into_parts();
        assert!(parts.unwritten.is_empty());
        raw.push((parts.stream, parts.connection));
        handles.push(me);
    }
    let quote = r#"{"symbol":"ACME","bid":"101.25","ask":"101.27","venue":"XNAS"}"#.repeat(20);
    assert_eq!(hub.publish("feed", Message::text(quote.clone())), 3);
    assert_eq!(hub.publish("feed", Message::text(quote.clone())), 3);

    let mut frames = Vec::new();
    for (stream, _) in &mut raw {
        frames.push(raw_frames(stream, 2).await);
    }
    for frame in frames.iter().flatten() {
        assert_eq!(frame[0], 0xc1, "FIN, RSV1 (compressed), text");
        assert!(frame.len() < quote.len() / 2, "compressed");
    }
    // No context takeover: one frame for both connections and both
    // messages.
    assert_eq!(frames[0], frames[1]);
    assert_eq!(frames[0][0], frames[0][1]);
    // Context takeover: its own compressor, whose second frame refers back
    // to the first message.
    assert!(
        frames[2][1].len() < frames[2][0].len(),
        "{} then {} bytes",
        frames[2][0].len(),
        frames[2][1].len()
    );
    // Every client decodes both.
    for ((_, engine), frames) in raw.iter_mut().zip(&frames) {
        for frame in frames {
            engine.receive_data(frame);
            match engine.next_event() {
                Some(Event::Message(message)) => assert_eq!(message.as_text(), Some(&quote[..])),
                other => panic!("expected the quote, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn axum_upgrades_attach_to_the_hub() {
    async fn websocket(
        State((server, hub)): State<(ServerBuilder, Hub)>,
        mut request: Request,
    ) -> Response {
        match server.upgrade(&mut request) {
            Ok(upgrade) => {
                tokio::spawn(async move {
                    let Ok(ws) = upgrade.websocket.await else {
                        return;
                    };
                    let (mut receiver, sender) = ws.split();
                    let me = hub.attach(sender);
                    me.subscribe("news");
                    while let Some(Ok(message)) = receiver.recv().await {
                        hub.publish_excluding("news", message, &me);
                    }
                });
                upgrade.response.map(|()| Body::empty())
            }
            Err(refusal) => refusal.response.map(Body::from),
        }
    }
    let hub = Hub::new();
    let app = Router::new()
        .route("/ws", get(websocket))
        .with_state((ServerBuilder::new(), hub.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/ws", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut clients = Vec::new();
    for present in 1..=2 {
        let (ws, _) = bounded("the upgrade", sockeye::connect(&url))
            .await
            .unwrap();
        clients.push(ws);
        eventually("subscribed", || hub.subscriber_count("news") == present).await;
    }
    let [a, b] = &mut clients[..] else {
        unreachable!()
    };
    a.send(Message::text("hello from a")).await.unwrap();
    assert_eq!(next(b).await.as_text(), Some("hello from a"));
    assert_eq!(hub.publish("news", "bulletin"), 2);
    assert_eq!(next(a).await.as_text(), Some("bulletin"));
    assert_eq!(next(b).await.as_text(), Some("bulletin"));

    let closed = bounded("b's close", b.close(CloseCode::NORMAL, "")).await;
    assert!(closed.unwrap().is_clean());
    eventually("b left", || hub.subscriber_count("news") == 1).await;
    assert_eq!(hub.publish("news", "to a"), 1);
    assert_eq!(next(a).await.as_text(), Some("to a"));
}

/// Counts the writes that reach the transport.
struct Counting {
    inner: DuplexStream,
    writes: Arc<AtomicUsize>,
}

impl Counting {
    fn count(&self, written: &Poll<io::Result<usize>>) {
        if matches!(written, Poll::Ready(Ok(n)) if *n > 0) {
            self.writes.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.count(&written);
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.count(&written);
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test]
async fn a_backlog_leaves_in_one_write() {
    let hub = Hub::new();
    let me = hub.subscriber();
    me.subscribe("t");
    for i in 0..20 {
        assert_eq!(hub.publish("t", format!("message {i}")), 1);
    }
    let (client_io, server_io) = duplex(1 << 20);
    let writes = Arc::new(AtomicUsize::new(0));
    let transport = Counting {
        inner: server_io,
        writes: writes.clone(),
    };
    let config = Config::new().keepalive_interval(None);
    let server = WebSocket::from_raw(transport, Role::Server, config, &[]);
    let (_receiver, sender) = server.split();
    assert!(me.attach(sender));
    let mut client = WebSocket::from_raw(client_io, Role::Client, Config::default(), &[]);
    let expected: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
    assert_eq!(texts(&mut client, 20).await, expected);
    assert_eq!(
        writes.load(Ordering::SeqCst),
        1,
        "twenty messages, one write"
    );
}

#[tokio::test]
async fn the_connection_ending_ends_the_subscriber() {
    let hub = Hub::new();
    let mut x = attach(&hub);
    x.me.subscribe("t");
    assert_eq!(hub.publish("t", "before"), 1);
    assert_eq!(next(&mut x.client).await.as_text(), Some("before"));
    let closed = bounded("the close", x.client.close(CloseCode::GOING_AWAY, "")).await;
    assert!(closed.unwrap().is_clean());
    let (_, server_closed) = bounded("the server's end", x.server).await.unwrap();
    assert_eq!(server_closed.unwrap().code(), CloseCode::GOING_AWAY);
    // The hub learns of the end when it next writes.
    hub.publish("t", "after");
    eventually("the writer ends", || x.me.state() == SubscriberState::Ended).await;
    assert_eq!(hub.subscriber_count("t"), 0);
    assert_eq!(hub.stats().subscribers, 0);
    assert!(
        !x.me.subscribe("u"),
        "an ended subscriber subscribes to nothing"
    );
    assert!(!x.me.send("too late"));
}

#[tokio::test]
async fn direct_sends_are_counted_like_publications() {
    let hub = Hub::builder()
        .queue_capacity(2)
        .slow_policy(SlowPolicy::DropOldest)
        .build();
    let me = hub.subscriber();
    assert!(me.send("one"));
    assert!(me.send("two"));
    assert!(me.send("three"), "queued, the oldest dropped for it");
    let stats = hub.stats();
    assert_eq!(stats.published, 0, "sent to one subscriber, not published");
    assert_eq!(stats.queued, 3);
    assert_eq!(stats.dropped_full, 1);
    assert_eq!(stats.queue_depth_total, 2);
    assert_eq!(me.dropped(), 1);

    let (sender, mut client, _server) = pipe(1 << 20, 1 << 20);
    me.attach(sender);
    assert_eq!(texts(&mut client, 2).await, ["two", "three"]);
    eventually("delivered counted", || hub.stats().delivered == 2).await;
    let stats = hub.stats();
    assert_eq!(
        stats.queued,
        stats.delivered + stats.dropped_full,
        "every queued message is delivered or dropped: {stats:?}"
    );
}

#[tokio::test]
async fn dropping_a_subscriber_that_never_had_a_connection_counts_its_queue() {
    let hub = Hub::new();
    let me = hub.subscriber();
    me.subscribe("t");
    for text in ["one", "two", "three"] {
        assert_eq!(hub.publish("t", text), 1);
    }
    drop(me);
    let stats = hub.stats();
    assert_eq!((stats.subscribers, stats.queue_depth_total), (0, 0));
    assert_eq!(stats.queued, 3);
    assert_eq!(
        stats.dropped_closed, 3,
        "queued, never written, and gone: {stats:?}"
    );
}

#[tokio::test]
async fn a_message_for_a_connection_that_has_ended_is_counted_as_dropped() {
    let hub = Hub::new();
    let mut x = attach(&hub);
    x.me.subscribe("t");
    let closed = bounded("the close", x.client.close(CloseCode::NORMAL, "")).await;
    assert!(closed.unwrap().is_clean());
    bounded("the server's end", x.server).await.unwrap();
    // Still subscribed: the hub learns of the end when it writes.
    assert_eq!(hub.publish("t", "too late"), 1);
    eventually("the writer ends", || x.me.state() == SubscriberState::Ended).await;
    let stats = hub.stats();
    assert_eq!((stats.queued, stats.delivered), (1, 0));
    assert_eq!(stats.dropped_closed, 1, "{stats:?}");
    assert_eq!(x.me.dropped(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_but_steady_reader_is_not_stalled() {
    const COUNT: u32 = 20;
    let stall = Duration::from_secs(2);
    let hub = Hub::builder().stall_timeout(stall).build();
    // A raw client on a 1 KiB pipe, reading 256 bytes every 250 ms: the
    // backlog takes about 10 s to leave, making progress all along.
    let (mut client_io, server_io) = duplex(1024);
    let config = Config::new()
        .keepalive_interval(None)
        .max_buffered_bytes(1024);
    let server = WebSocket::from_raw(server_io, Role::Server, config, &[]);
    let (receiver, sender) = server.split();
    let _server = tokio::spawn(drive(receiver));
    let me = hub.attach(sender);
    me.subscribe("feed");
    for i in 0..COUNT {
        assert_eq!(hub.publish("feed", numbered(i)), 1);
    }
    let started = tokio::time::Instant::now();
    let total = COUNT as usize * 516;
    let mut wire = Vec::new();
    for _ in 0..120 {
        if wire.len() >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut chunk = [0u8; 256];
        if let Ok(read) =
            tokio::time::timeout(Duration::from_millis(1), client_io.read(&mut chunk)).await
        {
            wire.extend_from_slice(&chunk[..read.unwrap()]);
        }
    }
    assert!(
        started.elapsed() > 2 * stall,
        "the backlog took longer than the stall timeout to leave"
    );
    assert_eq!(me.state(), SubscriberState::Open);
    assert_eq!(hub.stats().stalled, 0);
    assert_eq!(wire.len(), total, "every message, and no Close");
    let mut engine = sockeye::proto::Connection::new(Role::Client, Config::default());
    engine.receive_data(&wire);
    for i in 0..COUNT {
        match engine.next_event() {
            Some(Event::Message(message)) => assert_eq!(number(&message), i),
            other => panic!("expected message {i}, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn stats_add_up_in_a_scripted_scenario() {
    let hub = Hub::builder()
        .queue_capacity(3)
        .slow_policy(SlowPolicy::DropOldest)
        .build();
    let a = hub.subscriber();
    let b = hub.subscriber();
    a.subscribe("t");
    b.subscribe("t");
    b.subscribe("u");
    let stats = hub.stats();
    assert_eq!(
        (stats.topics, stats.subscribers, stats.subscriptions),
        (2, 2, 3)
    );
    assert_eq!((stats.published, stats.queued), (0, 0));

    assert_eq!(hub.publish("t", "1"), 2);
    assert_eq!(hub.publish("t", "2"), 2);
    assert_eq!(hub.publish("u", "3"), 1);
    assert_eq!(hub.publish("nobody", "4"), 0);
    let stats = hub.stats();
    assert_eq!(
        (stats.published, stats.queued, stats.dropped_full),
        (4, 5, 0)
    );
    assert_eq!((stats.queue_depth_total, stats.queue_depth_max), (5, 3));

    // b's queue is full: its oldest goes.
    assert_eq!(hub.publish("u", "5"), 1);
    assert_eq!(b.dropped(), 1);
    assert!(a.send("direct"));
    let stats = hub.stats();
    assert_eq!(
        (stats.published, stats.queued, stats.dropped_full),
        (5, 7, 1)
    );
    assert_eq!((stats.queue_depth_total, stats.queue_depth_max), (6, 3));
    assert_eq!((a.queue_depth(), b.queue_depth()), (3, 3));

    // a gets a connection and is written to.
    let (sender, mut client, _server) = pipe(1 << 20, 1 << 20);
    assert!(a.attach(sender));
    assert_eq!(texts(&mut client, 3).await, ["1", "2", "direct"]);
    eventually("delivered counted", || hub.stats().delivered == 3).await;
    let stats = hub.stats();
    assert_eq!((stats.queue_depth_total, stats.queue_depth_max), (3, 3));
    assert_eq!((a.delivered(), a.queue_depth()), (3, 0));

    // b never gets one.
    drop(b);
    let stats = hub.stats();
    assert_eq!(
        (stats.topics, stats.subscribers, stats.subscriptions),
        (1, 1, 1)
    );
    assert_eq!((stats.queue_depth_total, stats.queue_depth_max), (0, 0));
    assert_eq!(stats.dropped_closed, 3);

    // a is closed.
    assert!(a.close(CloseCode::NORMAL, ""));
    assert!(end(&mut client).await.is_clean());
    eventually("a's writer ends", || hub.stats().subscribers == 0).await;
    let stats = hub.stats();
    assert_eq!((stats.topics, stats.subscriptions), (0, 0));
    assert_eq!(stats.published, 5);
    assert_eq!(stats.queued, 7);
    assert_eq!(stats.delivered, 3);
    assert_eq!(
        (stats.dropped_full, stats.dropped_slow, stats.dropped_closed),
        (1, 0, 3)
    );
    assert_eq!((stats.kicked, stats.stalled), (0, 0));
    // Every message queued was delivered or dropped.
    assert_eq!(
        stats.queued,
        stats.delivered + stats.dropped_full + stats.dropped_closed
    );
}
