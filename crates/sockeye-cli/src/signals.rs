//! Ctrl-C (SIGINT) and, on Unix, SIGTERM, as a stream of interruptions.
//!
//! The handlers are installed when [`Interrupts::new`] returns, not at the
//! first wait: a signal that arrives right after the program says it is
//! ready is not lost (nor does it kill the process the default way).

use crate::failure::Failure;

/// Interruptions to wait for.
pub struct Interrupts {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Interrupts {
    /// Installs the handlers. Must run inside the runtime.
    pub fn new() -> Result<Interrupts, Failure> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let install = |kind| {
                signal(kind).map_err(|error| {
                    Failure::failed(format!("cannot install a signal handler: {error}"))
                })
            };
            Ok(Interrupts {
                interrupt: install(SignalKind::interrupt())?,
                terminate: install(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Interrupts {})
        }
    }

    /// Waits for the next interruption.
    ///
    /// # Cancel safety
    /// Cancel-safe: a signal that arrives while no one waits is kept for
    /// the next call.
    pub async fn recv(&mut self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
