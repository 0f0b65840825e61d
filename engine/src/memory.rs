//! One memory budget for a whole run, shared by every operator that holds data.
//!
//! Like DataFusion's `MemoryPool`: only consumers that hold memory in proportion to the input
//! reserve (buffered batches, sort keys); small per-chunk scratch does not. A
//! [`MemoryReservation`] is RAII: what it holds returns to the pool when it is dropped, so an
//! error path cannot leak budget, and tests can assert the pool is back to zero.
//!
//! ```text
//!   MemoryPool { limit, used } ◀── try_grow / shrink ── MemoryReservation (per consumer)
//!                                  (drop = free all)
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::{EngineError, Result};

/// Budget when the machine's memory cannot be read: 4 GiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 4 << 30;

/// Default budget as a share of the machine's memory (or of the cgroup's limit, if lower).
pub const DEFAULT_MEMORY_SHARE: f64 = 0.5;

/// Memory a run uses beyond its budget, by design: the program and its libraries, thread
/// stacks, I/O buffers (1 MiB per open file), per-chunk parser scratch and allocator slack.
/// Measured peak RSS stays under budget + this (see DESIGN.md, "Memory").
pub const DOCUMENTED_OVERHEAD: usize = 128 << 20;

/// The default budget: [`DEFAULT_MEMORY_SHARE`] of the physical memory or the cgroup limit,
/// whichever is lower; [`DEFAULT_MEMORY_LIMIT`] if neither can be read.
pub fn default_memory_limit() -> usize {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    });
    // cgroup v2 (unified), then v1; "max" or a huge v1 value means no limit
    let cgroup = [
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]
    .iter()
    .filter_map(|p| std::fs::read_to_string(p).ok())
    .filter_map(|s| s.trim().parse::<u64>().ok())
    .find(|&v| v < 1 << 60);
    match (meminfo, cgroup) {
        (None, None) => DEFAULT_MEMORY_LIMIT,
        (a, b) => {
            let total = a.unwrap_or(u64::MAX).min(b.unwrap_or(u64::MAX));
            (total as f64 * DEFAULT_MEMORY_SHARE) as usize
        }
    }
}

/// A memory budget. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct MemoryPool {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
}

impl MemoryPool {
    /// A pool that hands out at most `limit` bytes.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(MemoryPool {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// Most bytes ever reserved at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Acquire)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A new, empty reservation for `consumer`.
    pub fn reservation(self: &Arc<Self>, consumer: impl Into<String>) -> MemoryReservation {
        MemoryReservation {
            pool: Arc::clone(self),
            consumer: consumer.into(),
            size: 0,
        }
    }

    fn try_grow(&self, consumer: &str, bytes: usize) -> Result<()> {
        let mut cur = self.used.load(Ordering::Acquire);
        loop {
            let next = cur.saturating_add(bytes);
            if next > self.limit {
                return Err(EngineError::ResourcesExhausted {
                    consumer: consumer.to_string(),
                    requested: bytes,
                    used: cur,
                    limit: self.limit,
                });
            }
            match self
                .used
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.peak.fetch_max(next, Ordering::AcqRel);
                    return Ok(());
                }
                Err(actual) => cur = actual,
            }
        }
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// Bytes held by one consumer; returned to the pool on drop.
#[derive(Debug)]
pub struct MemoryReservation {
    pool: Arc<MemoryPool>,
    consumer: String,
    size: usize,
}

impl MemoryReservation {
    /// Bytes held.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Holds `bytes` more, or fails with [`EngineError::ResourcesExhausted`] holding nothing more.
    pub fn try_grow(&mut self, bytes: usize) -> Result<()> {
        self.pool.try_grow(&self.consumer, bytes)?;
        self.size += bytes;
        Ok(())
    }

    /// Gives back `bytes` (at most what is held).
    pub fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.size);
        self.pool.release(bytes);
        self.size -= bytes;
    }

    /// Holds exactly `bytes`, growing or shrinking.
    pub fn try_resize(&mut self, bytes: usize) -> Result<()> {
        if bytes > self.size {
            self.try_grow(bytes - self.size)
        } else {
            self.shrink(self.size - bytes);
            Ok(())
        }
    }

    /// Gives everything back.
    pub fn free(&mut self) {
        self.shrink(self.size);
    }
}

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.free();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_account_and_release() {
        let pool = MemoryPool::new(100);
        let mut a = pool.reservation("a");
        let mut b = pool.reservation("b");
        a.try_grow(60).unwrap();
        let err = b.try_grow(50).unwrap_err();
        assert!(matches!(
            err,
            EngineError::ResourcesExhausted {
                requested: 50,
                used: 60,
                limit: 100,
                ..
            }
        ));
        assert_eq!(b.size(), 0);
        b.try_grow(40).unwrap();
        assert_eq!(pool.used(), 100);
        a.try_resize(10).unwrap();
        assert_eq!(pool.used(), 50);
        drop(a);
        drop(b);
        assert_eq!(pool.used(), 0);
        assert_eq!(pool.peak(), 100);
    }
}
