//! One read buffer per thread, shared by every connection the thread
//! serves: reads between messages land here and only the bytes that
//! arrived are copied into the connection, so thousands of idle
//! connections do not each hold a read buffer. (The tokio front-end's
//! buffer, [`with_bytes`], can also be given away whole after a large
//! read, so that a large read is not copied.)

use std::cell::RefCell;
use std::thread::LocalKey;

use bytes::BytesMut;

/// The scratch buffer's size: the most one read takes between messages.
pub(crate) const SIZE: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SIZE].into_boxed_slice());
    static SCRATCH_BYTES: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// Runs `read` with the thread's scratch buffer. Should a read ever nest
/// inside another on the same thread, or run during thread teardown, the
/// inner one gets a buffer of its own.
pub(crate) fn with<T>(read: impl FnOnce(&mut [u8]) -> T) -> T {
    borrow(
        &SCRATCH,
        || vec![0; SIZE].into_boxed_slice(),
        |buffer| read(buffer),
    )
}

/// Runs `read` with the thread's scratch `BytesMut`: empty, with room for
/// at least [`SIZE`] bytes (not initialized: read into it with
/// `BufMut`-based reads). `read` may keep the buffer (`std::mem::take`);
/// the thread then gets a new one on its next read. Whatever `read`
/// leaves in it is cleared.
pub(crate) fn with_bytes<T>(read: impl FnOnce(&mut BytesMut) -> T) -> T {
    borrow(
        &SCRATCH_BYTES,
        || BytesMut::with_capacity(SIZE),
        |buffer| {
            if buffer.capacity() < SIZE {
                *buffer = BytesMut::with_capacity(SIZE);
            }
            let value = read(buffer);
            buffer.clear();
            value
        },
    )
}

/// Runs `read` with the buffer in `key`, or with one made by `fresh` when
/// that one is already borrowed (a nested read) or gone (thread teardown).
fn borrow<B: 'static, T>(
    key: &'static LocalKey<RefCell<B>>,
    fresh: impl FnOnce() -> B,
    read: impl FnOnce(&mut B) -> T,
) -> T {
    let mut read = Some(read);
    let shared = key.try_with(|scratch| {
        scratch
            .try_borrow_mut()
            .ok()
            .map(|mut buffer| (read.take().expect("called once"))(&mut buffer))
    });
    match shared {
        Ok(Some(value)) => value,
        _ => (read.take().expect("called once"))(&mut fresh()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_reads_get_their_own_buffer() {
        let sum = with(|outer| {
            outer[0] = 1;
            with(|inner| {
                assert_eq!(inner.len(), SIZE);
                assert_eq!(inner[0], 0, "not the outer buffer");
                inner[0] = 2;
            });
            outer[0]
        });
        assert_eq!(sum, 1);
        with(|again| assert_eq!(again[0], 1, "the shared buffer is reused"));
    }

    #[test]
    fn the_bytes_buffer_is_reused_cleared_and_replaced_when_taken() {
        let first = with_bytes(|buffer| {
            assert!(buffer.is_empty());
            assert!(buffer.capacity() >= SIZE);
            buffer.extend_from_slice(b"left over");
            buffer.as_ptr()
        });
        let second = with_bytes(|buffer| {
            assert!(buffer.is_empty(), "cleared after use");
            with_bytes(|inner| {
                assert_ne!(
                    inner.as_ptr(),
                    buffer.as_ptr(),
                    "nested reads get their own"
                )
            });
            buffer.as_ptr()
        });
        assert_eq!(first, second, "the shared buffer is reused");
        let taken = with_bytes(|buffer| {
            buffer.extend_from_slice(b"kept");
            std::mem::take(buffer)
        });
        assert_eq!(&taken[..], b"kept");
        with_bytes(|buffer| {
            assert!(buffer.capacity() >= SIZE, "a taken buffer is replaced");
            assert_ne!(buffer.as_ptr(), taken.as_ptr());
        });
    }
}
