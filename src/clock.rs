//! Injectable sources of time and randomness. Nothing outside this module reads the system clock
//! or the OS random generator directly, so tests can fix both.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use uuid::Uuid;

/// A source of the current time, in microseconds since the Unix epoch (UTC).
pub trait Clock: Send + Sync + 'static {
    fn now_micros(&self) -> i64;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(micros: i64) -> Arc<Self> {
        Arc::new(ManualClock(AtomicI64::new(micros)))
    }
    pub fn set(&self, micros: i64) {
        self.0.store(micros, Ordering::SeqCst);
    }
    pub fn advance(&self, micros: i64) {
        self.0.fetch_add(micros, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_micros(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// A source of random bytes: the OS generator in production, a seeded one in tests.
pub trait Entropy: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);

    fn uuid(&self) -> Uuid {
        let mut bytes = [0u8; 16];
        self.fill(&mut bytes);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// A time-ordered id (UUID version 7, RFC 9562): the millisecond of `now_micros`, then 74
    /// random bits. Entry ids are made this way so that an index on them grows at its right edge,
    /// like the journal itself, instead of dirtying one page anywhere in it per entry.
    fn uuid_v7(&self, now_micros: i64) -> Uuid {
        let mut random = [0u8; 10];
        self.fill(&mut random);
        let millis = u64::try_from(now_micros.div_euclid(1000)).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }
}

/// The operating system's generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

/// A deterministic generator for tests and the demo seed.
#[derive(Debug)]
pub struct SeededEntropy(Mutex<StdRng>);

impl SeededEntropy {
    pub fn new(seed: u64) -> Arc<Self> {
        Arc::new(SeededEntropy(Mutex::new(StdRng::seed_from_u64(seed))))
    }
}

impl Entropy for SeededEntropy {
    fn fill(&self, buf: &mut [u8]) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .fill_bytes(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v7_ids_are_version_7_and_ordered_by_their_millisecond() {
        let entropy = SeededEntropy::new(1);
        let ids: Vec<Uuid> = [
            1_700_000_000_000_999,
            1_700_000_000_001_000,
            1_700_000_000_900_000,
        ]
        .iter()
        .map(|&micros| entropy.uuid_v7(micros))
        .collect();
        for (id, millis) in
            ids.iter()
                .zip([1_700_000_000_000u64, 1_700_000_000_001, 1_700_000_000_900])
        {
            assert_eq!(id.get_version_num(), 7);
            let (seconds, nanos) = id
                .get_timestamp()
                .expect("a v7 id carries its time")
                .to_unix();
            assert_eq!(seconds * 1000 + u64::from(nanos) / 1_000_000, millis);
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        // The random part differs within one millisecond.
        assert_ne!(entropy.uuid_v7(5_000), entropy.uuid_v7(5_000));
        // A time before the epoch does not wrap around to the far future.
        let before_epoch = entropy.uuid_v7(-1).get_timestamp().expect("v7");
        assert_eq!(before_epoch.to_unix(), (0, 0));
    }
}
