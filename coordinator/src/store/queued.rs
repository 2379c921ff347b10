//! The commands a transaction queued, handed back so their sites are woken once it has
//! committed. A value rather than a second step every caller must remember: it is
//! `#[must_use]`, and only [`crate::live::Live::wake`] consumes it.

use modori_shared::domain::SiteId;

/// Commands queued by one committed transaction, as (site, seq) pairs.
#[must_use = "commands were queued: wake their sites once the transaction has committed"]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Queued(Vec<(SiteId, u64)>);

impl Queued {
    /// Nothing queued.
    pub fn none() -> Self {
        Self::default()
    }

    /// One command, `seq` on `site`'s stream.
    pub fn one(site: SiteId, seq: u64) -> Self {
        Self(vec![(site, seq)])
    }

    pub fn push(&mut self, site: SiteId, seq: u64) {
        self.0.push((site, seq));
    }

    /// Adds what another transaction step queued.
    pub fn extend(&mut self, other: Queued) {
        self.0.extend(other.0);
    }

    /// The highest seq queued for `site`, if any.
    pub fn seq_for(&self, site: &SiteId) -> Option<u64> {
        self.0
            .iter()
            .filter(|(s, _)| s == site)
            .map(|(_, seq)| *seq)
            .max()
    }

    /// Hands the pairs over to be woken; only `Live::wake` calls it.
    pub(crate) fn into_pairs(self) -> Vec<(SiteId, u64)> {
        self.0
    }
}

impl FromIterator<(SiteId, u64)> for Queued {
    fn from_iter<I: IntoIterator<Item = (SiteId, u64)>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

/// Compared with the pairs a test expects.
impl PartialEq<Vec<(SiteId, u64)>> for Queued {
    fn eq(&self, other: &Vec<(SiteId, u64)>) -> bool {
        &self.0 == other
    }
}

/// Read as the pairs, to report or log them before waking.
impl std::ops::Deref for Queued {
    type Target = [(SiteId, u64)];

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}
