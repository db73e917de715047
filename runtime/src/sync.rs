//! The synchronisation sundown's own threads share: [`lock`], which ignores poisoning,
//! and [`Mailbox`], a small queue between threads (signal thread → controller, any
//! thread → stderr writer): a mutex around a `VecDeque` and a condition variable.
//!
//! `std::sync::mpsc` would do, but every message type instantiates all three of its
//! channel flavours; this is the one piece of code both queues share, which keeps the
//! runtime quick to compile. Nothing here blocks a sender: a full queue hands the
//! message back.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// Locks a mutex, ignoring poisoning: sundown's own critical sections leave their
/// data consistent even if a user's `Drop` panics inside one.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(crate) struct Mailbox<T> {
    queue: Mutex<VecDeque<T>>,
    ready: Condvar,
    capacity: usize,
}

impl<T> Mailbox<T> {
    /// A queue that holds at most `capacity` messages.
    pub(crate) const fn new(capacity: usize) -> Self {
        Mailbox {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            capacity,
        }
    }

    /// Queues `msg`, or hands it back when the queue is full.
    pub(crate) fn try_send(&self, msg: T) -> Result<(), T> {
        let mut queue = lock(&self.queue);
        if queue.len() >= self.capacity {
            return Err(msg);
        }
        queue.push_back(msg);
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }

    /// The next message, waiting until `deadline` (for ever without one); `None` when
    /// the deadline passed first.
    pub(crate) fn recv(&self, deadline: Option<Instant>) -> Option<T> {
        let mut queue = lock(&self.queue);
        loop {
            if let Some(msg) = queue.pop_front() {
                return Some(msg);
            }
            queue = match deadline {
                None => self
                    .ready
                    .wait(queue)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(at) => {
                    let left = at.checked_duration_since(Instant::now())?;
                    self.ready
                        .wait_timeout(queue, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Mailbox;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn messages_arrive_in_order_and_a_full_queue_hands_the_message_back() {
        let m = Mailbox::new(2);
        assert_eq!(m.try_send(1), Ok(()));
        assert_eq!(m.try_send(2), Ok(()));
        assert_eq!(m.try_send(3), Err(3));
        assert_eq!(m.recv(None), Some(1));
        assert_eq!(m.recv(None), Some(2));
    }

    #[test]
    fn recv_gives_up_at_its_deadline() {
        let m: Mailbox<u8> = Mailbox::new(1);
        let start = Instant::now();
        assert_eq!(m.recv(Some(start + Duration::from_millis(20))), None);
        assert!(start.elapsed() >= Duration::from_millis(20));
        assert_eq!(m.recv(Some(start)), None, "a past deadline does not wait");
    }

    #[test]
    fn a_waiting_receiver_wakes_for_a_message_from_another_thread() {
        let m = Arc::new(Mailbox::new(4));
        let sender = {
            let m = m.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(10));
                m.try_send("hello")
            })
        };
        assert_eq!(m.recv(None), Some("hello"));
        assert_eq!(sender.join().ok(), Some(Ok(())));
    }
}
