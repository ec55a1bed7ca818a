//! Waiting for the signals that ask Ferry to stop (SIGINT, SIGTERM), so
//! that servers clean up and locks are released.

/// Signal handlers installed now, awaited later. Installing them before a
/// lock is taken means a signal that arrives in between is not fatal: it is
/// kept and seen by the next [`Signals::received`].
pub struct Signals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers. Must run inside a tokio runtime.
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                terminate: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Self {}
        }
    }

    /// Returns when SIGINT (Ctrl-C) or SIGTERM has been received since
    /// [`Signals::listen`].
    pub async fn received(&mut self) {
        #[cfg(unix)]
        {
            async fn next(signal: &mut Option<tokio::signal::unix::Signal>) {
                match signal {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                () = next(&mut self.terminate) => {}
                () = next(&mut self.interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Returns when the process receives SIGINT (Ctrl-C) or SIGTERM.
pub async fn signalled() {
    Signals::listen().received().await;
}
