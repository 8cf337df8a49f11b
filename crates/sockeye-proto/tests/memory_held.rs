//! `Connection::memory_held` (what a front-end charges to a server's memory
//! budget) and `Connection::abort` (how it gives the memory back).

mod common;

use common::*;
use sockeye_proto::extension::deflate::{DeflateConfig, DeflateNegotiator};
use sockeye_proto::handshake::ExtensionNegotiator;
use sockeye_proto::{CloseCode, Config, Connection, Error, Event, Message, Role, State};

const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;

fn server() -> Connection {
    Connection::new(Role::Server, Config::default())
}

/// Every event the bytes received so far hold.
fn drain_events(conn: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| conn.next_event()).collect()
}

#[test]
fn an_idle_connection_holds_nothing() {
    let mut conn = server();
    assert_eq!(conn.memory_held(), 0);
    conn.receive_data(&client_frame(true, BINARY, b"hello"));
    assert_eq!(drain_events(&mut conn).len(), 1);
    assert_eq!(conn.memory_held(), 0, "a delivered message is not held");
}

#[test]
fn a_frame_arriving_counts_its_bytes_not_its_reserved_room() {
    let mut conn = server();
    let payload = vec![7u8; 1 << 20];
    let frame = client_frame(true, BINARY, &payload);
    // Header, mask and the first 1000 payload bytes: the engine reserves
    // room for the whole frame, but holds 1014 bytes.
    conn.receive_data(&frame[..1014]);
    assert!(drain_events(&mut conn).is_empty());
    assert!(conn.receive_buffer().capacity() > 1 << 20);
    assert_eq!(conn.memory_held(), 1000);
    conn.receive_data(&frame[1014..500_000]);
    assert!(drain_events(&mut conn).is_empty());
    assert_eq!(conn.memory_held(), 500_000 - 14);
    conn.receive_data(&frame[500_000..]);
    let events = drain_events(&mut conn);
    assert_eq!(events, vec![Event::Message(Message::binary(payload))]);
    assert_eq!(conn.memory_held(), 0);
}

#[test]
fn a_fragmented_message_counts_while_it_is_assembled() {
    let mut conn = server();
    conn.receive_data(&client_frame(false, BINARY, &[1u8; 100_000]));
    assert!(drain_events(&mut conn).is_empty());
    let first = conn.memory_held();
    assert!((100_000..=200_000).contains(&first), "{first}");
    conn.receive_data(&client_frame(false, CONTINUATION, &[2u8; 100_000]));
    assert!(drain_events(&mut conn).is_empty());
    let second = conn.memory_held();
    assert!((200_000..=400_000).contains(&second), "{second}");
    conn.receive_data(&client_frame(true, CONTINUATION, &[3u8; 10]));
    assert_eq!(drain_events(&mut conn).len(), 1);
    assert_eq!(conn.memory_held(), 0);
}

#[test]
fn queued_output_counts_until_it_is_taken() {
    let mut conn = server();
    conn.send(Message::binary(vec![0u8; 300_000])).unwrap();
    conn.send(Message::text("hi")).unwrap();
    assert_eq!(conn.memory_held(), 10 + 300_000 + 4);
    let first = conn.poll_transmit().unwrap();
    assert_eq!(conn.memory_held(), 10 + 300_000 + 4 - first.len());
    while conn.poll_transmit().is_some() {}
    assert_eq!(conn.memory_held(), 0);
}

#[test]
fn an_inflating_message_counts_its_inflated_bytes() {
    let config = DeflateConfig::new();
    let offer = config.offer().expect("deflate is enabled");
    let answer = DeflateNegotiator::new(config).negotiate(&[offer]);
    let params = config.accept_response(&answer[0]).unwrap();
    let mut client = Connection::new(Role::Client, Config::default());
    let mut server = server();
    client.enable_deflate(params, &config);
    server.enable_deflate(params, &config);

    // 4 MiB of zeros compress to a few KiB; half the wire bytes inflate
    // to about half the message, which the server holds.
    client
        .send(Message::binary(vec![0u8; 4 << 20]))
        .expect("queued");
    let mut wire = Vec::new();
    client.data_to_send(&mut wire);
    assert!(wire.len() < 64 * 1024, "{}", wire.len());
    server.receive_data(&wire[..wire.len() / 2]);
    assert!(drain_events(&mut server).is_empty());
    let held = server.memory_held();
    assert!(held >= 1 << 20, "inflated bytes count: {held}");
    server.receive_data(&wire[wire.len() / 2..]);
    let events = drain_events(&mut server);
    assert_eq!(events.len(), 1);
    // What stays is the inflate buffer's bounded spare room.
    assert!(
        server.memory_held() <= 64 * 1024,
        "{}",
        server.memory_held()
    );
}

#[test]
fn abort_drops_everything_and_queues_a_close() {
    let mut conn = server();
    conn.receive_data(&client_frame(false, BINARY, &[1u8; 100_000]));
    conn.receive_data(&client_frame(false, CONTINUATION, &[2u8; 50]));
    assert!(drain_events(&mut conn).is_empty());
    conn.send(Message::binary(vec![0u8; 300_000])).unwrap();
    assert!(conn.memory_held() > 400_000);

    conn.abort(CloseCode::TRY_AGAIN_LATER, "memory budget exhausted")
        .unwrap();
    assert_eq!(conn.state(), State::Closed);
    let mut wire = Vec::new();
    conn.data_to_send(&mut wire);
    let frames = decode_all(&wire);
    assert_eq!(frames.len(), 1, "only the Close: queued data is dropped");
    assert_eq!(frames[0].opcode, 0x8);
    assert_eq!(&frames[0].payload[..2], &1013u16.to_be_bytes());
    assert_eq!(conn.memory_held(), 0);
    assert!(conn.should_close_transport());
    assert!(!conn.wants_read());
    match drain_events(&mut conn).as_slice() {
        [Event::Closed(closed)] => {
            assert_eq!(closed.code(), CloseCode::TRY_AGAIN_LATER);
            assert_eq!(
                closed.error,
                Some(Error::Aborted(CloseCode::TRY_AGAIN_LATER))
            );
        }
        other => panic!("expected the end, got {other:?}"),
    }
    assert_eq!(
        conn.abort(CloseCode::TRY_AGAIN_LATER, ""),
        Err(Error::AlreadyClosed)
    );
}

#[test]
fn abort_inside_a_frame_sends_no_close() {
    let mut conn = server();
    conn.send(Message::binary(vec![0u8; 300_000])).unwrap();
    // The header is taken; its payload is the next chunk.
    let header = conn.poll_transmit().unwrap();
    assert_eq!(header.len(), 10);
    conn.abort(CloseCode::TRY_AGAIN_LATER, "").unwrap();
    assert_eq!(conn.poll_transmit(), None, "a Close cannot follow a header");
    assert_eq!(conn.memory_held(), 0);
    assert!(conn.should_close_transport());
}
