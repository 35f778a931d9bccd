//! Locking that survives a panic elsewhere.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `m`, taking the data of a lock poisoned by a panic elsewhere: a group that stopped
/// deciding, or a state file that refused every signal, after one panicked request would be
/// worse than going on with what that request left.
pub fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
