//! When clients go. After berthd answers a client, what it still has to do
//! (for `run --rm`: the shim's shutdown, the spare and standby refills)
//! competes for the CPU with the client's own exit, which on two cores
//! slowed `docker run --rm` (the docker CLI needs ~5 ms to exit after its
//! last answer). Such work waits until the client it answered has gone
//! (its connection closed), any request comes in (someone wants
//! something now), or [`CLIENT_EXIT_CAP`] passed (a client that keeps
//! its connection, as SDKs with a connection pool do).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The longest background work waits for its client.
pub(crate) const CLIENT_EXIT_CAP: Duration = Duration::from_millis(50);

/// Counts requests; waiters sleep on `changed`, which requests and
/// closed connections signal only while someone waits (they are on every
/// request's path).
#[derive(Debug, Default)]
pub(crate) struct Activity {
    requests: Mutex<u64>,
    changed: Condvar,
    waiters: AtomicUsize,
}

/// Held by a connection's task: its drop tells [`ClientGone`] waiters.
#[derive(Debug)]
pub(crate) struct Connection {
    activity: Arc<Activity>,
    closed: Arc<AtomicBool>,
}

/// Whether a connection (the client that sent a request) has gone; put in
/// each request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct ClientGone(Arc<AtomicBool>);

impl ClientGone {
    fn is_gone(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

impl Activity {
    /// A new connection: hold the result while it is served.
    pub(crate) fn connection(self: &Arc<Self>) -> Connection {
        Connection {
            activity: self.clone(),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// A request came in. Unseen by waits that begin after it.
    pub(crate) fn request(&self) {
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.changed.notify_all();
    }

    /// Wakes the waiters, if any, to look again.
    fn closed(&self) {
        if self.waiters.load(Ordering::SeqCst) == 0 {
            return;
        }
        // Under the lock, so a waiter between its check and its sleep
        // does not miss it.
        let _requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        self.changed.notify_all();
    }

    /// Waits until every one of `clients` has gone, a request comes in, or
    /// `cap` passed.
    pub(crate) fn wait_for_clients(&self, clients: &[ClientGone], cap: Duration) {
        let deadline = Instant::now() + cap;
        // Counted before the baseline is read: a request or close after
        // that signals.
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let mut requests = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        let seen = *requests;
        while *requests == seen && !clients.iter().all(ClientGone::is_gone) {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            requests = self
                .changed
                .wait_timeout(requests, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(requests);
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Connection {
    /// What the connection's requests carry.
    pub(crate) fn client(&self) -> ClientGone {
        ClientGone(self.closed.clone())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::SeqCst);
        self.activity.closed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough that a wait ending sooner was ended by what it waits for.
    const LONG: Duration = Duration::from_secs(60);

    fn waiter(activity: &Arc<Activity>, client: ClientGone) -> std::thread::JoinHandle<Duration> {
        let activity = activity.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            activity.wait_for_clients(&[client], LONG);
            started.elapsed()
        })
    }

    #[test]
    fn a_wait_ends_when_its_client_has_gone() {
        let activity = Arc::new(Activity::default());
        let connection = activity.connection();
        let waiter = waiter(&activity, connection.client());
        drop(connection);
        assert!(waiter.join().unwrap() < LONG / 2);
    }

    #[test]
    fn a_wait_ends_at_a_request() {
        let activity = Arc::new(Activity::default());
        let connection = activity.connection();
        let waiter = waiter(&activity, connection.client());
        while !waiter.is_finished() {
            activity.request();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(waiter.join().unwrap() < LONG / 2);
        drop(connection);
    }

    #[test]
    fn a_client_that_stays_is_waited_for_until_the_cap() {
        let activity = Arc::new(Activity::default());
        let connection = activity.connection();
        let cap = Duration::from_millis(20);
        let started = Instant::now();
        activity.wait_for_clients(&[connection.client()], cap);
        assert!(started.elapsed() >= cap);
        // No clients: nothing to wait for.
        activity.wait_for_clients(&[], LONG);
    }
}
