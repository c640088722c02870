//! Rule schedule durations: Sentinel's `5m`/`1h`/`14d` and ARM's ISO 8601 `PT1H`/`P1D`.

use serde::Serialize;

use super::{LoadError, LoadErrorKind};

/// A `queryFrequency`/`queryPeriod`/`suppressionDuration` value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleDuration {
    pub seconds: u64,
    /// The value as written in the file.
    pub text: String,
}

impl RuleDuration {
    /// Parses `5m`, `1h`, `1d`, `30s` (Sentinel YAML) or an ISO 8601 duration made of
    /// weeks, days, hours, minutes and seconds (`PT5M`, `P1D`, `P1DT12H`, ARM exports).
    /// Years and months are refused: they have no fixed length.
    ///
    /// The error is an [`LoadErrorKind::InvalidField`] without a span; the caller adds
    /// the field name and the place.
    pub fn parse(text: &str) -> Result<RuleDuration, LoadError> {
        let trimmed = text.trim();
        let seconds = if trimmed.starts_with(['P', 'p']) {
            parse_iso(trimmed)
        } else {
            parse_short(trimmed)
        };
        match seconds {
            Ok(seconds) => Ok(RuleDuration {
                seconds,
                text: text.to_string(),
            }),
            Err(why) => Err(LoadError {
                kind: LoadErrorKind::InvalidField,
                message: format!(
                    "invalid duration `{text}`: {why} (expected a number with a unit s, m, h or d such as `5m`, or an ISO 8601 duration such as `PT1H`)"
                ),
                span: None,
            }),
        }
    }
}

/// `<digits><unit>`.
fn parse_short(text: &str) -> Result<u64, &'static str> {
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).ok_or("no unit")?;
    if digits_end == 0 {
        return Err("no number");
    }
    let number: u64 = text[..digits_end].parse().map_err(|_| "number too large")?;
    let unit = match &text[digits_end..] {
        "s" | "S" => 1,
        "m" | "M" => 60,
        "h" | "H" => 3600,
        "d" | "D" => 86_400,
        _ => return Err("unknown unit"),
    };
    number.checked_mul(unit).ok_or("number too large")
}

/// `P[nW][nD][T[nH][nM][nS]]`, case-insensitive, integer components only.
fn parse_iso(text: &str) -> Result<u64, &'static str> {
    let upper = text.to_ascii_uppercase();
    let rest = upper.strip_prefix('P').ok_or("no `P`")?;
    let (date, time) = match rest.split_once('T') {
        Some((date, time)) => {
            if time.is_empty() {
                return Err("nothing after `T`");
            }
            (date, Some(time))
        }
        None => (rest, None),
    };
    if date.is_empty() && time.is_none() {
        return Err("no components");
    }
    let mut total: u64 = 0;
    let mut add = |part: &str, units: &[(char, u64)]| -> Result<(), &'static str> {
        let mut number: Option<u64> = None;
        let mut last_unit = 0;
        for c in part.chars() {
            if let Some(d) = c.to_digit(10) {
                let n = number.unwrap_or(0);
                number = Some(
                    n.checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(d)))
                        .ok_or("number too large")?,
                );
                continue;
            }
            if c == 'Y' || (c == 'M' && units[0].0 != 'H') {
                return Err("years and months have no fixed length");
            }
            let position = units
                .iter()
                .position(|&(u, _)| u == c)
                .ok_or("unexpected character")?;
            // Components must come in order, each at most once.
            if position < last_unit {
                return Err("components out of order");
            }
            last_unit = position + 1;
            let n = number.take().ok_or("a unit without a number")?;
            let seconds = n.checked_mul(units[position].1).ok_or("number too large")?;
            total = total.checked_add(seconds).ok_or("number too large")?;
        }
        if number.is_some() {
            return Err("a number without a unit");
        }
        Ok(())
    };
    add(date, &[('W', 604_800), ('D', 86_400)])?;
    if let Some(time) = time {
        add(time, &[('H', 3600), ('M', 60), ('S', 1)])?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(text: &str) -> u64 {
        RuleDuration::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {}", e.message))
            .seconds
    }

    #[test]
    fn sentinel_forms() {
        assert_eq!(seconds("5m"), 300);
        assert_eq!(seconds("1h"), 3600);
        assert_eq!(seconds("1d"), 86_400);
        assert_eq!(seconds("14d"), 14 * 86_400);
        assert_eq!(seconds("30s"), 30);
        assert_eq!(seconds("0m"), 0);
    }

    #[test]
    fn iso_forms() {
        assert_eq!(seconds("PT1H"), 3600);
        assert_eq!(seconds("P1D"), 86_400);
        assert_eq!(seconds("PT5M"), 300);
        assert_eq!(seconds("P14D"), 14 * 86_400);
        assert_eq!(seconds("P1DT12H"), 86_400 + 12 * 3600);
        assert_eq!(seconds("PT1H30M15S"), 3600 + 1800 + 15);
        assert_eq!(seconds("P2W"), 14 * 86_400);
        assert_eq!(seconds("pt24h"), 86_400);
    }

    #[test]
    fn text_is_kept_as_written() {
        let d = RuleDuration::parse("PT1H").unwrap();
        assert_eq!(d.text, "PT1H");
    }

    #[test]
    fn invalid_forms_are_invalid_field_errors() {
        for bad in [
            "",
            "m",
            "5",
            "5x",
            "1h30m",
            "1.5h",
            "-5m",
            "P",
            "PT",
            "P1M",
            "P1Y",
            "PT1H2D",
            "P1",
            "PTH",
            "PT1M1H",
            "PT1H1H",
            "P1DT",
            "abc",
            "99999999999999999999m",
            "P999999999999999999D",
        ] {
            let err = RuleDuration::parse(bad).expect_err(bad);
            assert_eq!(err.kind, LoadErrorKind::InvalidField, "{bad}");
            assert!(err.message.contains("invalid duration"), "{bad}");
        }
    }
}
