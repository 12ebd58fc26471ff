//! Graceful shutdown: one sender, many listeners (as in mini-redis).
//!
//! Long work checks [`Shutdown::is_shutdown`] between pages and waits on [`Shutdown::recv`] in
//! `select!` while sleeping, so a stop request ends a sync after the page in flight.

use tokio::sync::watch;

/// Triggers shutdown for every [`Shutdown`] made from it.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// Listens for shutdown.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl ShutdownTrigger {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }

    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    /// A listener that never fires (one-shot commands without signal handling).
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        std::mem::forget(tx);
        Shutdown { rx }
    }

    pub fn is_shutdown(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes when shutdown is requested.
    pub async fn recv(&mut self) {
        while !*self.rx.borrow() {
            if self.rx.changed().await.is_err() {
                // The trigger is gone: nobody can ask for shutdown any more.
                std::future::pending::<()>().await;
            }
        }
    }
}
