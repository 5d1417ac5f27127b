//! What a read must see when the store has a read replica: [`Consistency`], and the write
//! position a read-your-writes read waits for, [`WalLsn`].

use std::fmt;
use std::str::FromStr;

/// Where the reads of a [`PgStore`](crate::PgStore) handle go when it has a read replica
/// (`AURA_DB_READ_URL`); without one every read goes to the primary whatever this says.
/// Set per handle with [`PgStore::with_consistency`](crate::PgStore::with_consistency)
/// (a cheap clone, so per call too: `store.with_consistency(Consistency::Primary)`), then
/// hand the handle out as `Arc<dyn Store>`: the traits are unchanged.
///
/// A replica that is down, or lags more than `AURA_DB_READ_MAX_LAG`, never serves a read:
/// the read goes to the primary (every mode below is then as fresh as `Primary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Consistency {
    /// Every read on the primary: sees every committed write.
    Primary,
    /// Reads on the replica (when up and within the lag bound): may miss writes committed
    /// up to that lag ago, this handle's own included.
    Replica,
    /// The default. Reads on the replica once it has replayed every write made through
    /// this handle (and the clones it was made from or shares its writes with, see
    /// [`PgStore::session`](crate::PgStore::session)), else on the primary: a caller
    /// always sees its own writes.
    #[default]
    ReadYourWrites,
    /// Reads on the replica once it has replayed up to this position (a token from
    /// [`PgStore::last_write`](crate::PgStore::last_write), carried across handles,
    /// requests or processes), else on the primary.
    After(WalLsn),
}

/// A position in the primary's write-ahead log (`pg_lsn`, shown as `16/B374D848`): a
/// write's token for read-your-writes. Ordered; parses from and prints as Postgres's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalLsn(pub u64);

impl fmt::Display for WalLsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

/// A text that is not a `pg_lsn` (`<hex>/<hex>`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a WAL position (expected <hex>/<hex>, like 16/B374D848): {0:?}")]
pub struct ParseWalLsnError(String);

impl FromStr for WalLsn {
    type Err = ParseWalLsnError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseWalLsnError(s.chars().take(40).collect());
        let (hi, lo) = s.split_once('/').ok_or_else(bad)?;
        let part = |p: &str| {
            (!p.is_empty() && p.len() <= 8)
                .then(|| u64::from_str_radix(p, 16).ok())
                .flatten()
                .ok_or_else(bad)
        };
        Ok(WalLsn((part(hi)? << 32) | part(lo)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_text_round_trips_and_orders() {
        let lsn: WalLsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("0/1".parse::<WalLsn>().unwrap() < "1/0".parse::<WalLsn>().unwrap());
        for bad in ["", "16", "/1", "1/", "x/1", "1/123456789"] {
            assert!(bad.parse::<WalLsn>().is_err(), "{bad}");
        }
    }
}
