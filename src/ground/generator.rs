//! A stream written as one `async` block that hands out its items as it goes: the shape the
//! crate's streams need when an item borrows nothing but the loop that makes it holds a borrow
//! across items (a transaction, and the rows of one `fetch` read off it as they arrive).
//!
//! [`generate`] polls the block each time the stream is polled. The block calls
//! [`Yielder::send`], which parks the item in a slot and returns `Pending` once without waking
//! anyone; the stream then finds the item in the slot and returns it. No channel, no task, no
//! second thread: the block runs inside the caller's own `poll_next`, and dropping the stream
//! drops the block at the `await` it was stopped at (which is what the crate's streams rely on:
//! sqlx then finishes what that `await` had started, as it does for any dropped query).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use futures::Stream;

/// The sending half given to a [`generate`] block.
pub(crate) struct Yielder<T> {
    slot: Arc<Mutex<Option<T>>>,
}

impl<T> Yielder<T> {
    /// Hands `item` to the stream's caller; resolves when the caller polls for the next one.
    pub(crate) fn send(&self, item: T) -> impl Future<Output = ()> + Send + '_ {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(item);
        YieldOnce { yielded: false }
    }
}

/// `Pending` once (the stream returns the parked item in the same poll), then `Ready`.
struct YieldOnce {
    yielded: bool,
}

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.yielded {
            Poll::Ready(())
        } else {
            self.yielded = true;
            Poll::Pending
        }
    }
}

/// The stream of what `body` sends; it ends when `body` returns.
pub(crate) struct Generator<T, F> {
    slot: Arc<Mutex<Option<T>>>,
    body: Option<Pin<Box<F>>>,
}

/// Runs `body` as a stream of the items it sends through its [`Yielder`].
pub(crate) fn generate<T, F>(body: impl FnOnce(Yielder<T>) -> F) -> Generator<T, F>
where
    F: Future<Output = ()>,
{
    let slot = Arc::new(Mutex::new(None));
    let yielder = Yielder {
        slot: Arc::clone(&slot),
    };
    Generator {
        slot,
        body: Some(Box::pin(body(yielder))),
    }
}

impl<T, F> Stream for Generator<T, F>
where
    F: Future<Output = ()>,
{
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        let finished = body.as_mut().poll(cx).is_ready();
        if finished {
            this.body = None;
        }
        let item = this
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match item {
            Some(item) => Poll::Ready(Some(item)),
            // The body is waiting on I/O, which has registered `cx`'s waker.
            None if !finished => Poll::Pending,
            None => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn items_come_out_in_order_and_the_stream_ends_with_the_body() {
        let stream = generate(|out| async move {
            for i in 0..5 {
                out.send(i).await;
            }
        });
        let items: Vec<i32> = stream.collect().await;
        assert_eq!(items, [0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn dropping_the_stream_drops_the_body_where_it_stopped() {
        struct Flag(Arc<Mutex<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                *self.0.lock().unwrap() = true;
            }
        }
        let dropped = Arc::new(Mutex::new(false));
        let flag = Flag(Arc::clone(&dropped));
        let sent = Arc::new(Mutex::new(0));
        let counted = Arc::clone(&sent);
        let mut stream = generate(|out| async move {
            let _flag = flag;
            for i in 0..1000 {
                *counted.lock().unwrap() += 1;
                out.send(i).await;
            }
        });
        let first: Vec<i32> = (&mut stream).take(3).collect().await;
        assert_eq!(first, [0, 1, 2]);
        assert!(!*dropped.lock().unwrap());
        drop(stream);
        assert!(
            *dropped.lock().unwrap(),
            "the body is dropped with the stream"
        );
        assert_eq!(
            *sent.lock().unwrap(),
            3,
            "the body made no item past the last taken"
        );
    }

    #[tokio::test]
    async fn a_body_that_waits_is_polled_again_when_woken() {
        let (tx, rx) = tokio::sync::oneshot::channel::<i32>();
        let stream = generate(|out| async move {
            out.send(1).await;
            let value = rx.await.unwrap_or(-1);
            out.send(value).await;
        });
        let sender = tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            tx.send(2).ok();
        });
        let items: Vec<i32> = stream.collect().await;
        sender.await.unwrap();
        assert_eq!(items, [1, 2]);
    }
}
