//! One read buffer per thread, shared by every connection the thread
//! serves: reads between messages land here and only the bytes that
//! arrived are copied into the connection, so thousands of idle
//! connections do not each hold a read buffer.

use std::cell::RefCell;

/// The scratch buffer's size: the most one read takes between messages.
pub(crate) const SIZE: usize = 64 * 1024;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SIZE].into_boxed_slice());
}

/// Runs `read` with the thread's scratch buffer. Should a read ever nest
/// inside another on the same thread, or run during thread teardown, the
/// inner one gets a buffer of its own.
pub(crate) fn with<T>(read: impl FnOnce(&mut [u8]) -> T) -> T {
    let mut read = Some(read);
    let shared = SCRATCH.try_with(|scratch| {
        scratch
            .try_borrow_mut()
            .ok()
            .map(|mut buffer| (read.take().expect("called once"))(&mut buffer))
    });
    match shared {
        Ok(Some(value)) => value,
        _ => (read.take().expect("called once"))(&mut vec![0; SIZE]),
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
}
