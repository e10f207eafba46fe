//! Tokens issued per UTC hour, counted in memory at this replica: the token endpoint adds one
//! per successful token response without touching the database, and the sync loop adds the
//! counts to `token_hours` once per sync interval, one upsert per hour (docs/REFERENCE.md §8).
//! What a failed write took is put back, so a database blip loses no count.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Duration, DurationRound, Utc};
use sea_orm::ConnectionTrait;

use crate::store::{self, StoreError};

/// This replica's counts not yet added to the table, by the hour's start.
#[derive(Debug, Default)]
pub struct Tally {
    hours: Mutex<BTreeMap<DateTime<Utc>, u64>>,
}

/// The start of the UTC hour holding `at`.
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::hours(1)).unwrap_or(at)
}

impl Tally {
    fn hours(&self) -> MutexGuard<'_, BTreeMap<DateTime<Utc>, u64>> {
        // A count is a plain number: one left by a panicking holder is still good.
        self.hours.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One token response issued at `at`.
    pub fn count(&self, at: DateTime<Utc>) {
        *self.hours().entry(hour_of(at)).or_default() += 1;
    }

    /// Everything counted so far, leaving nothing.
    pub fn take(&self) -> BTreeMap<DateTime<Utc>, u64> {
        std::mem::take(&mut *self.hours())
    }

    /// Counts taken but not written, added back to whatever was counted meanwhile.
    pub fn put_back(&self, taken: impl IntoIterator<Item = (DateTime<Utc>, u64)>) {
        let mut hours = self.hours();
        for (hour, count) in taken {
            *hours.entry(hour).or_default() += count;
        }
    }

    /// Adds what was counted to `token_hours`, one upsert per hour; on a failed write, that
    /// hour and the ones not yet written go back into the tally for the next flush. Returns
    /// the hours written.
    pub async fn flush(&self, db: &impl ConnectionTrait) -> Result<usize, StoreError> {
        let mut taken = self.take().into_iter();
        let mut written = 0;
        while let Some((hour, count)) = taken.next() {
            if let Err(e) = store::token_hours::add(db, hour, count).await {
                self.put_back(std::iter::once((hour, count)).chain(taken));
                return Err(e);
            }
            written += 1;
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).expect("time").to_utc()
    }

    #[test]
    fn counts_land_in_their_hour_and_what_is_taken_can_be_put_back() {
        let tally = Tally::default();
        tally.count(at("2026-12-04T15:00:00Z"));
        tally.count(at("2026-12-04T15:59:59Z"));
        tally.count(at("2026-12-04T16:00:00Z"));

        let taken = tally.take();
        assert_eq!(
            taken.iter().map(|(h, n)| (*h, *n)).collect::<Vec<_>>(),
            [(at("2026-12-04T15:00:00Z"), 2), (at("2026-12-04T16:00:00Z"), 1)]
        );
        assert!(tally.take().is_empty(), "taking leaves nothing");

        // A write failed while more was counted: nothing is lost, nothing doubled.
        tally.count(at("2026-12-04T16:30:00Z"));
        tally.put_back(taken);
        let again = tally.take();
        assert_eq!(again.get(&at("2026-12-04T15:00:00Z")), Some(&2));
        assert_eq!(again.get(&at("2026-12-04T16:00:00Z")), Some(&2));
        assert_eq!(again.len(), 2);
    }
}
