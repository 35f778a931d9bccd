//! The ring buffer from the sampler thread to its consumer: an [`rtrb`] single-producer,
//! single-consumer queue of fixed-size [`Sample`]s, lock-free and allocation-free per push.
//!
//! **When full, the newest sample is dropped.** In an SPSC ring only the consumer may pop, so
//! the producer could evict the oldest entry only by taking a lock or sharing the read index,
//! which would make the sampler wait on its consumer. Dropping at the producer end keeps the
//! sampler wait-free; the consumer then sees a contiguous run of old samples followed by a gap
//! that the samples' tick numbers reveal, and every dropped sample is counted.

use std::sync::{Arc, OnceLock};
use std::thread::Thread;

use crate::sample::Sample;

/// Creates a ring holding up to `capacity` samples (at least 2).
pub fn ring(capacity: usize) -> (SampleSender, SampleReceiver) {
    let (p, c) = rtrb::RingBuffer::new(capacity.max(2));
    let waiter = Arc::new(OnceLock::new());
    (
        SampleSender {
            inner: p,
            dropped: 0,
            waiter: waiter.clone(),
        },
        SampleReceiver { inner: c, waiter },
    )
}

/// The producer end, owned by the sampler thread.
#[derive(Debug)]
pub struct SampleSender {
    inner: rtrb::Producer<Sample>,
    dropped: u64,
    /// The consumer's thread, woken after each push when it asked to be.
    waiter: Arc<OnceLock<Thread>>,
}

impl SampleSender {
    /// Pushes `sample` if there is room; otherwise drops it, counts the drop and returns false.
    /// Never blocks.
    pub fn push(&mut self, sample: Sample) -> bool {
        match self.inner.push(sample) {
            Ok(()) => {
                // Unparking is a wait-free flag swap (plus a futex wake if the consumer sleeps).
                if let Some(t) = self.waiter.get() {
                    t.unpark();
                }
                true
            }
            Err(_) => {
                self.dropped += 1;
                false
            }
        }
    }

    /// Samples dropped so far because the ring was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// The consumer end of the ring.
#[derive(Debug)]
pub struct SampleReceiver {
    inner: rtrb::Consumer<Sample>,
    waiter: Arc<OnceLock<Thread>>,
}

impl SampleReceiver {
    /// Asks the sampler to unpark the calling thread after every sample it pushes, so the
    /// consumer can sleep in `std::thread::park_timeout` and react at once. Only the first
    /// registration counts.
    pub fn wake_on_push(&self) {
        let _ = self.waiter.set(std::thread::current());
    }

    /// Takes the oldest waiting sample, if any.
    pub fn try_recv(&mut self) -> Option<Sample> {
        self.inner.pop().ok()
    }

    /// Number of samples waiting.
    pub fn len(&self) -> usize {
        self.inner.slots()
    }

    /// Whether no sample is waiting.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Whether the sampler has gone (its sender was dropped); waiting samples can still be read.
    pub fn is_abandoned(&self) -> bool {
        self.inner.is_abandoned()
    }
}
