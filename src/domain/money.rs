//! Money: integer minor units (INR paise), never a float. Totals and refunds are computed here
//! and only here, so rounding is decided once (refunds round down: the platform never refunds
//! more than the percentage promised).

use serde::{Deserialize, Serialize};

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Cents(pub i64);

impl Cents {
    pub const ZERO: Cents = Cents(0);

    /// The price of `quantity` of something costing `self` each. Saturates rather than wraps;
    /// validated orders are many orders of magnitude below the limit.
    pub fn times(self, quantity: u32) -> Cents {
        Cents(self.0.saturating_mul(i64::from(quantity)))
    }

    /// `percent` % of this amount, rounded down.
    pub fn percent(self, percent: u8) -> Cents {
        Cents(self.0.saturating_mul(i64::from(percent)) / 100)
    }
}

impl std::ops::Add for Cents {
    type Output = Cents;
    fn add(self, other: Cents) -> Cents {
        Cents(self.0.saturating_add(other.0))
    }
}

impl std::iter::Sum for Cents {
    fn sum<I: Iterator<Item = Cents>>(iter: I) -> Cents {
        iter.fold(Cents::ZERO, |a, b| a + b)
    }
}

impl std::fmt::Display for Cents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Cents;
    use proptest::prelude::*;

    proptest! {
        /// A refund never exceeds its percentage of the total, and is within a paisa of it.
        #[test]
        fn refunds_round_down_by_less_than_a_paisa(total in 0i64..1_000_000_000, pct in 0u8..=100) {
            let refund = Cents(total).percent(pct).0 as i128;
            let exact = i128::from(total) * i128::from(pct);
            prop_assert!(refund * 100 <= exact);
            prop_assert!(exact - refund * 100 < 100);
        }
    }

    #[test]
    fn line_totals_add_up() {
        let total: Cents = [Cents(9_000).times(2), Cents(4_000).times(1)]
            .into_iter()
            .sum();
        assert_eq!(total, Cents(22_000));
    }
}
