//! Exact arithmetic on Kubernetes quantities (`500m`, `4`, `1.5`, `8Gi`, `1e3`, `10M`).
//!
//! Amounts are kept in thousandths of the base unit ([`Milli`]: millicores, milli-bytes,
//! milli-pods), so that every quantity Kubernetes accepts is represented exactly and sums and
//! comparisons never round.
//!
//! ```
//! use liqo_core::quantity::{format_milli, parse};
//!
//! assert_eq!(parse("500m")?, 500);
//! assert_eq!(parse("2")?, 2_000);
//! assert_eq!(parse("1Ki")?, 1_024_000);
//! assert_eq!(format_milli(parse("1.5")?).0, "1500m");
//! assert!(parse("lots").is_err());
//! # Ok::<(), liqo_core::Error>(())
//! ```

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::error::{Error, Result};

/// Amounts in thousandths of the base unit.
pub type Milli = i128;

/// Parses a Kubernetes quantity into thousandths of its base unit.
///
/// # Errors
///
/// [`Error::InvalidQuantity`] for anything that is not a quantity.
pub fn parse(text: &str) -> Result<Milli> {
    let bad = || Error::InvalidQuantity {
        text: text.to_owned(),
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(t.len());
    let (number, suffix) = t.split_at(split);
    if number.is_empty() {
        return Err(bad());
    }
    let (mult_num, mult_den): (i128, i128) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: u32 = s[1..].parse().map_err(|_| bad())?;
            (10i128.checked_pow(exp).ok_or_else(bad)?, 1)
        }
        _ => return Err(bad()),
    };
    let negative = number.starts_with('-');
    let digits = number.trim_start_matches(['+', '-']);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    let int: i128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    // Exact fixed point: value * 1000 * mult_num / mult_den, fraction digits included.
    let frac_digits = u32::try_from(frac.len()).map_err(|_| bad())?;
    let frac_value: i128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    let scale = 10i128.checked_pow(frac_digits).ok_or_else(bad)?;
    let total_scaled = int
        .checked_mul(scale)
        .and_then(|v| v.checked_add(frac_value))
        .ok_or_else(bad)?;
    let milli = total_scaled
        .checked_mul(1000)
        .and_then(|v| v.checked_mul(mult_num))
        .ok_or_else(bad)?
        / scale
        / mult_den;
    Ok(if negative { -milli } else { milli })
}

/// Formats thousandths as a quantity: whole units when exact (`4`), else millis (`500m`).
#[must_use]
pub fn format_milli(value: Milli) -> Quantity {
    if value % 1000 == 0 {
        Quantity((value / 1000).to_string())
    } else {
        Quantity(format!("{value}m"))
    }
}

/// Sums resource maps (e.g. the allocatable of every node, or the requests of every pod).
///
/// # Errors
///
/// [`Error::InvalidQuantity`] for an unparsable quantity.
pub fn sum<'a>(
    maps: impl IntoIterator<Item = &'a BTreeMap<String, Quantity>>,
) -> Result<BTreeMap<String, Milli>> {
    let mut total = BTreeMap::new();
    for map in maps {
        for (name, q) in map {
            *total.entry(name.clone()).or_insert(0) += parse(&q.0)?;
        }
    }
    Ok(total)
}
