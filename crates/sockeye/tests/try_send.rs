//! `try_send`: a send that never waits and says whether the message was
//! queued, queued past the high-water mark, or refused because the buffer
//! is full; and `buffered_amount`, the bytes queued and not yet written.
//!
//! The transport is an in-memory pipe of a fixed capacity, so what the
//! "socket" takes is exact: the peer does not read until the test says so.

use std::time::Duration;

use sockeye::proto::Config;
use sockeye::{Message, Role, SendStatus, WebSocket};
use tokio::io::DuplexStream;

/// Every wait is bounded by this (a hang fails instead of stalling CI).
const HANG_GUARD: Duration = Duration::from_secs(20);

/// What the pipe holds before a write must wait.
const PIPE: usize = 8 * 1024;
const HIGH_WATER: usize = 16 * 1024;
const MAX_BUFFERED: usize = 64 * 1024;
const MESSAGE: usize = 4 * 1024;

fn pair() -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    pair_with(
        Config::default()
            .max_buffered_bytes(MAX_BUFFERED)
            .high_water_bytes(HIGH_WATER),
    )
}

fn pair_with(config: Config) -> (WebSocket<DuplexStream>, WebSocket<DuplexStream>) {
    let (a, b) = tokio::io::duplex(PIPE);
    let sender = WebSocket::from_raw(a, Role::Server, config, &[]);
    let peer = WebSocket::from_raw(b, Role::Client, Config::default(), &[]);
    (sender, peer)
}

/// Message `n`: its number in the first 4 bytes, then filler.
fn message(n: u32) -> Message {
    let mut payload = vec![n as u8; MESSAGE];
    payload[..4].copy_from_slice(&n.to_be_bytes());
    Message::binary(payload)
}

fn number(message: &Message) -> u32 {
    let bytes = message.as_bytes();
    u32::from_be_bytes(bytes[..4].try_into().unwrap())
}

/// What the statuses were, in order, as letters: Q, B, D.
fn letter(status: &SendStatus) -> char {
    match status {
        SendStatus::Queued => 'Q',
        SendStatus::Backpressure => 'B',
        SendStatus::Dropped(_) => 'D',
    }
}

/// Sends with `try_send` (which returns the status and then
/// `buffered_amount`) until a message is dropped, checking the amount as
/// it goes; returns the statuses and how many messages were accepted.
fn fill(mut try_send: impl FnMut(Message) -> (SendStatus, usize)) -> (String, u32) {
    let mut statuses = String::new();
    let mut last_buffered = 0;
    for n in 0..1000 {
        let (status, now) = try_send(message(n));
        statuses.push(letter(&status));
        if n == 0 {
            // The empty pipe took the first message at once: try_send
            // writes what the socket takes, it does not only queue.
            assert_eq!(now, 0);
        }
        match status {
            SendStatus::Queued => assert!(now <= HIGH_WATER, "queued with {now} buffered"),
            SendStatus::Backpressure => {
                assert!(now > HIGH_WATER, "backpressure with {now} buffered");
                assert!(
                    now > last_buffered,
                    "the buffer grows: {last_buffered} -> {now}"
                );
            }
            SendStatus::Dropped(back) => {
                // Handed back whole; nothing was queued.
                assert_eq!(number(&back), n);
                assert_eq!(back.as_bytes().len(), MESSAGE);
                assert_eq!(now, last_buffered);
                assert!(now >= MAX_BUFFERED);
                // Still full: refused again, without waiting.
                return (statuses, n);
            }
        }
        last_buffered = now;
    }
    panic!("never dropped: {statuses}");
}

/// The peer reads `count` messages; they must be 0..count in order.
async fn expect_in_order(peer: &mut WebSocket<DuplexStream>, count: u32) {
    for n in 0..count {
        let received = tokio::time::timeout(HANG_GUARD, peer.recv())
            .await
            .expect("the peer receives within the guard")
            .expect("a message")
            .expect("no error");
        assert_eq!(number(&received), n, "in order, none lost");
        assert_eq!(received.as_bytes().len(), MESSAGE);
    }
}

#[tokio::test]
async fn a_peer_that_does_not_read_gets_backpressure_then_drops() {
    let (mut sender, mut peer) = pair();
    assert_eq!(sender.buffered_amount(), 0);

    let (statuses, accepted) = fill(|message| {
        let status = sender.try_send(message).expect("the connection is open");
        (status, sender.buffered_amount())
    });
    // Queued while the pipe and the buffer take them, then backpressure,
    // then the first refusal; never back and forth.
    let shape = statuses.trim_start_matches('Q').trim_start_matches('B');
    assert_eq!(shape, "D", "statuses: {statuses}");
    assert!(statuses.starts_with('Q'), "statuses: {statuses}");
    assert!(statuses.contains('B'), "statuses: {statuses}");
    // A second attempt while full is refused too.
    assert!(matches!(
        sender.try_send(message(accepted)).unwrap(),
        SendStatus::Dropped(_)
    ));

    // The peer reads; the sender writes the rest. Everything accepted
    // arrives, in order.
    let (flushed, ()) = tokio::join!(
        tokio::time::timeout(HANG_GUARD, sender.flush()),
        expect_in_order(&mut peer, accepted)
    );
    flushed.expect("flushed within the guard").expect("flush");
    assert_eq!(sender.buffered_amount(), 0);

    // Room again: queued at once.
    assert!(matches!(
        sender.try_send(message(accepted)).unwrap(),
        SendStatus::Queued
    ));
    sender.flush().await.unwrap();
    expect_in_order_from(&mut peer, accepted).await;
}

async fn expect_in_order_from(peer: &mut WebSocket<DuplexStream>, n: u32) {
    let received = tokio::time::timeout(HANG_GUARD, peer.recv())
        .await
        .expect("within the guard")
        .expect("a message")
        .expect("no error");
    assert_eq!(number(&received), n);
}

#[tokio::test]
async fn the_receiving_half_writes_what_try_send_left() {
    let (sender, mut peer) = pair();
    let (mut recv_half, mut send_half) = sender.split();
    // The usual shape: a task receives in a loop (the peer sends nothing
    // here); nobody calls flush on the sending half.
    let receiver = tokio::spawn(async move { while let Some(Ok(_)) = recv_half.recv().await {} });

    let (statuses, accepted) = fill(|message| {
        let status = send_half.try_send(message).expect("the connection is open");
        (status, send_half.buffered_amount())
    });
    assert!(
        statuses.contains('B') && statuses.ends_with('D'),
        "statuses: {statuses}"
    );

    // Only the peer reads: the receiving half, woken when the pipe has
    // room, writes the rest.
    expect_in_order(&mut peer, accepted).await;
    assert_eq!(send_half.buffered_amount(), 0);
    receiver.abort();
}

#[tokio::test]
async fn try_send_on_a_closed_connection_is_an_error() {
    let (mut sender, mut peer) = pair();
    let closing = tokio::spawn(async move {
        let _ = peer.close(sockeye::CloseCode::NORMAL, "").await;
    });
    // The sender answers the Close while it receives.
    let end = tokio::time::timeout(HANG_GUARD, sender.recv())
        .await
        .unwrap();
    assert!(end.is_none(), "a clean close");
    closing.await.unwrap();
    assert!(sender.try_send(Message::text("late")).is_err());
}

#[tokio::test]
async fn a_high_water_mark_of_zero_reports_any_leftover_and_the_default_is_a_quarter() {
    // As uWebSockets: backpressure as soon as the socket did not take all.
    let (mut sender, mut peer) = pair_with(Config::default().high_water_bytes(0));
    // The pipe (8 KiB) takes the first message and most of the second.
    assert!(matches!(
        sender.try_send(message(0)).unwrap(),
        SendStatus::Queued
    ));
    assert!(matches!(
        sender.try_send(message(1)).unwrap(),
        SendStatus::Backpressure
    ));
    assert!(sender.buffered_amount() > 0);
    let (flushed, ()) = tokio::join!(sender.flush(), expect_in_order(&mut peer, 2));
    flushed.unwrap();

    let config = Config::default().max_buffered_bytes(100_000);
    assert_eq!(config.get_high_water_bytes(), 25_000);
    assert_eq!(Config::default().get_high_water_bytes(), 256 * 1024);
}
