//! The raw TCP broadcast server (`sockeye-bench-peer --peer raw
//! --broadcast`): the floor for fan-out, as the raw echo server is for
//! echoes.
//!
//! Every connection is a member of one room. What a member sends is read
//! as WebSocket client frames (masked, RFC 6455 section 5.3), and each
//! complete frame is written, unmasked, as the server frame a WebSocket
//! server would send, to every other member. There is no handshake, no
//! UTF-8 check and no message assembly: per read it parses the frames,
//! unmasks their payloads once into one buffer, and writes that buffer to
//! each other member with one write (what the socket does not take at
//! once is kept in that member's memory and written when it can take
//! more). So it moves the same bytes as `sockeye serve --broadcast` with
//! the least work a server can do for it; `sockeye bench --fanout
//! --no-handshake` is its load generator.
//!
//! Single-threaded (a tokio current-thread runtime and a `LocalSet`), so
//! the room is shared without locks.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Bytes read at once.
const READ_SIZE: usize = 64 * 1024;

thread_local! {
    /// The read buffer, shared by the thread's connections.
    static READ_BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_SIZE]);
    /// The server frames made from one read, shared likewise.
    static OUT_BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(READ_SIZE));
}

/// Listens on `listen`, prints `listening on ADDR` and serves forever.
pub fn run(listen: &str) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async {
        let listener = TcpListener::bind(listen).await?;
        println!("listening on {}", listener.local_addr()?);
        serve(listener).await
    })
}

/// Starts a server on a thread of its own for tests: its address.
pub fn spawn_for_test() -> io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let address = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let local = tokio::task::LocalSet::new();
        local.block_on(&runtime, async move {
            let listener = TcpListener::from_std(listener).expect("a listener");
            let _ = serve(listener).await;
        });
    });
    Ok(address)
}

/// One connection.
struct Member {
    tcp: TcpStream,
    /// Bytes for it that its socket did not take yet.
    pending: RefCell<Vec<u8>>,
    /// Told when `pending` gains bytes.
    wake: Notify,
}

/// Every connection, by slot.
#[derive(Default)]
struct Room {
    members: RefCell<Vec<Option<Rc<Member>>>>,
    free: RefCell<Vec<usize>>,
}

impl Room {
    fn join(&self, member: Rc<Member>) -> usize {
        let mut members = self.members.borrow_mut();
        match self.free.borrow_mut().pop() {
            Some(slot) => {
                members[slot] = Some(member);
                slot
            }
            None => {
                members.push(Some(member));
                members.len() - 1
            }
        }
    }

    fn leave(&self, slot: usize) {
        self.members.borrow_mut()[slot] = None;
        self.free.borrow_mut().push(slot);
    }

    /// Writes `bytes` to every member but the one in slot `from`.
    fn broadcast(&self, from: usize, bytes: &[u8]) {
        let members = self.members.borrow();
        for (slot, member) in members.iter().enumerate() {
            let Some(member) = member else { continue };
            if slot == from {
                continue;
            }
            member.send(bytes);
        }
    }
}

impl Member {
    /// Writes `bytes` now if nothing waits before them and the socket
    /// takes them; keeps the rest for the member's task.
    fn send(&self, bytes: &[u8]) {
        let mut pending = self.pending.borrow_mut();
        if !pending.is_empty() {
            pending.extend_from_slice(bytes);
            return;
        }
        let written = match self.tcp.try_write(bytes) {
            Ok(written) => written,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
            // A broken connection: its own task will see it fail.
            Err(_) => return,
        };
        if written < bytes.len() {
            pending.extend_from_slice(&bytes[written..]);
            self.wake.notify_one();
        }
    }

    /// Writes what is pending, as far as the socket takes it.
    fn flush(&self) -> io::Result<()> {
        let mut pending = self.pending.borrow_mut();
        let mut written = 0;
        while written < pending.len() {
            match self.tcp.try_write(&pending[written..]) {
                Ok(count) => written += count,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) => return Err(error),
            }
        }
        pending.drain(..written);
        if pending.capacity() > READ_SIZE * 4 && pending.is_empty() {
            *pending = Vec::new();
        }
        Ok(())
    }
}

/// Accepts connections forever; must run inside a `LocalSet`.
pub async fn serve(listener: TcpListener) -> io::Result<()> {
    let room = Rc::new(Room::default());
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let room = room.clone();
        tokio::task::spawn_local(async move {
            let member = Rc::new(Member {
                tcp,
                pending: RefCell::new(Vec::new()),
                wake: Notify::new(),
            });
            let slot = room.join(member.clone());
            if let Err(error) = serve_member(&room, slot, &member).await
                && std::env::var_os("SOCKEYE_BENCH_DEBUG").is_some()
            {
                eprintln!("connection: {error}");
            }
            room.leave(slot);
        });
    }
}

/// Reads a member's frames and broadcasts them; writes what is pending
/// for it. Ends at its end of stream.
async fn serve_member(room: &Room, slot: usize, member: &Member) -> io::Result<()> {
    // An incomplete frame from this member.
    let mut partial: Vec<u8> = Vec::new();
    loop {
        let wants_write = !member.pending.borrow().is_empty();
        tokio::select! {
            readable = member.tcp.readable() => {
                readable?;
                if !read_and_broadcast(room, slot, member, &mut partial)? {
                    return Ok(());
                }
            }
            writable = member.tcp.writable(), if wants_write => {
                writable?;
                member.flush()?;
            }
            () = member.wake.notified(), if !wants_write => {}
        }
    }
}

/// One read: its complete frames go to every other member in one write
/// each. `false` at the end of the stream.
fn read_and_broadcast(
    room: &Room,
    slot: usize,
    member: &Member,
    partial: &mut Vec<u8>,
) -> io::Result<bool> {
    READ_BUFFER.with_borrow_mut(|buffer| {
        let read = match member.tcp.try_read(buffer) {
            Ok(0) => return Ok(false),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(error) => return Err(error),
        };
        OUT_BUFFER.with_borrow_mut(|out| {
            out.clear();
            let input: &[u8] = if partial.is_empty() {
                &buffer[..read]
            } else {
                partial.extend_from_slice(&buffer[..read]);
                partial
            };
            let used = server_frames(input, out);
            let rest = input[used..].to_vec();
            *partial = rest;
            if !out.is_empty() {
                room.broadcast(slot, out);
            }
            Ok(true)
        })
    })
}

/// Appends the server frame of each complete client frame at the start
/// of `input` to `out`: the same header without the mask bit and key,
/// the payload unmasked. Returns the bytes of `input` used.
pub fn server_frames(input: &[u8], out: &mut Vec<u8>) -> usize {
    let mut at = 0;
    while let Some((header, key, length)) = frame_header(&input[at..]) {
        let start = at + header;
        let end = start + length;
        if end > input.len() {
            break;
        }
        let masked = key.is_some();
        let key_len = if masked { 4 } else { 0 };
        out.push(input[at]);
        out.push(input[at + 1] & 0x7f);
        out.extend_from_slice(&input[at + 2..start - key_len]);
        let payload_at = out.len();
        out.extend_from_slice(&input[start..end]);
        if let Some(key) = key {
            unmask(&mut out[payload_at..], key);
        }
        at = end;
    }
    at
}

/// A frame's header length (with the masking key), its key, and its
/// payload length, if the whole header is in `input`.
fn frame_header(input: &[u8]) -> Option<(usize, Option<[u8; 4]>, usize)> {
    if input.len() < 2 {
        return None;
    }
    let masked = input[1] & 0x80 != 0;
    let (extended, length) = match input[1] & 0x7f {
        126 => (
            2,
            u64::from(u16::from_be_bytes([*input.get(2)?, *input.get(3)?])),
        ),
        127 => {
            let bytes: [u8; 8] = input.get(2..10)?.try_into().ok()?;
            (8, u64::from_be_bytes(bytes))
        }
        short => (0, u64::from(short)),
    };
    let key_at = 2 + extended;
    let header = key_at + if masked { 4 } else { 0 };
    if input.len() < header {
        return None;
    }
    let key = masked.then(|| {
        [
            input[key_at],
            input[key_at + 1],
            input[key_at + 2],
            input[key_at + 3],
        ]
    });
    Some((header, key, usize::try_from(length).ok()?))
}

/// XORs `payload` with the masking key, eight bytes at a time.
fn unmask(payload: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    for (index, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= key[index % 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(opcode: u8, payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            short @ 0..=125 => frame.push(0x80 | short as u8),
            medium @ 126..=65535 => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(medium as u16).to_be_bytes());
            }
            long => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(long as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&key);
        frame.extend(
            payload
                .iter()
                .enumerate()
                .map(|(index, byte)| byte ^ key[index % 4]),
        );
        frame
    }

    #[test]
    fn client_frames_become_server_frames() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for size in [0usize, 5, 125, 126, 1000, 70_000] {
            let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let mut input = client_frame(0x2, &payload, key);
            input.extend(client_frame(0x1, b"hello", key));
            let mut out = Vec::new();
            // Every cut: what is complete is converted, the rest waits.
            let cut = input.len() - 3;
            let used = server_frames(&input[..cut], &mut out);
            assert!(used <= cut);
            let mut rest = input[used..].to_vec();
            let used_rest = server_frames(&rest, &mut out);
            assert_eq!(used_rest, rest.len(), "size {size}");
            rest.clear();
            let header = match size {
                0..=125 => vec![0x82, size as u8],
                126..=65535 => {
                    let mut header = vec![0x82, 126];
                    header.extend_from_slice(&(size as u16).to_be_bytes());
                    header
                }
                _ => {
                    let mut header = vec![0x82, 127];
                    header.extend_from_slice(&(size as u64).to_be_bytes());
                    header
                }
            };
            let mut expected = header;
            expected.extend_from_slice(&payload);
            expected.extend_from_slice(&[0x81, 5]);
            expected.extend_from_slice(b"hello");
            assert!(out == expected, "size {size}");
        }
    }

    #[test]
    fn an_incomplete_header_waits() {
        let mut out = Vec::new();
        assert_eq!(server_frames(&[0x81], &mut out), 0);
        assert_eq!(server_frames(&[0x81, 0xfe, 0x01], &mut out), 0);
        assert_eq!(server_frames(&[0x81, 0x85, 1, 2, 3], &mut out), 0);
        assert!(out.is_empty());
    }
}
