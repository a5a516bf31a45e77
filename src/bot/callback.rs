//! Callback data of inline buttons: at most 64 bytes, and never trusted. A check button says
//! whose check it is, which check, which version of it, and what to do:
//! `<owner hex>.<check hex>.<version hex>.<action>`, e.g. `2a.1f3a9c.3.lower_back`; language buttons
//! are `L.<code>`.

/// What a check button asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action<'a> {
    Choose(&'a str),
    Back,
    Cancel,
}

/// A decoded button press.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Press<'a> {
    Check {
        owner: i64,
        check: u32,
        version: u32,
        action: Action<'a>,
    },
    Lang(&'a str),
    /// An answer to a check-in offer: in how many days (0: no thanks).
    Offer {
        offer: u32,
        days: u32,
    },
    /// An answer during a check-in: a status id or an option id.
    FollowUp {
        id: u32,
        version: u32,
        action: &'a str,
    },
    /// Cancel one of the person's scheduled check-ins.
    CancelCheckIn(i64),
}

/// Telegram's limit on callback data.
pub const MAX_BYTES: usize = 64;

pub fn check_button(owner: i64, check: u32, version: u32, action: Action<'_>) -> String {
    let action = match action {
        Action::Choose(id) => id,
        Action::Back => "<",
        Action::Cancel => "!",
    };
    format!("{:x}.{check:x}.{version:x}.{action}", owner as u64)
}

pub fn offer_button(offer: u32, days: u32) -> String {
    format!("O.{offer:x}.{days:x}")
}

pub fn followup_button(id: u32, version: u32, action: &str) -> String {
    format!("U.{id:x}.{version:x}.{action}")
}

pub fn cancel_checkin_button(id: i64) -> String {
    format!("X.{:x}", id as u64)
}

pub fn lang_button(code: &str) -> String {
    format!("L.{code}")
}

fn is_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 24 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn hex<T: TryFrom<u64>>(s: &str, max_len: usize) -> Option<T> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    T::try_from(u64::from_str_radix(s, 16).ok()?).ok()
}

/// Decodes callback data; `None` for anything malformed (forged or garbage bytes).
pub fn decode(data: &str) -> Option<Press<'_>> {
    if data.len() > MAX_BYTES {
        return None;
    }
    if let Some(code) = data.strip_prefix("L.") {
        return (is_id(code) && code.len() <= 8).then_some(Press::Lang(code));
    }
    if let Some(rest) = data.strip_prefix("O.") {
        let (offer, days) = rest.split_once('.')?;
        return Some(Press::Offer {
            offer: hex::<u32>(offer, 8)?,
            days: hex::<u32>(days, 2)?,
        });
    }
    if let Some(rest) = data.strip_prefix("U.") {
        let mut parts = rest.splitn(3, '.');
        let id = hex::<u32>(parts.next()?, 8)?;
        let version = hex::<u32>(parts.next()?, 8)?;
        let action = parts.next().filter(|a| is_id(a))?;
        return Some(Press::FollowUp {
            id,
            version,
            action,
        });
    }
    if let Some(id) = data.strip_prefix("X.") {
        return Some(Press::CancelCheckIn(hex::<u64>(id, 16)? as i64));
    }
    let mut parts = data.splitn(4, '.');
    let owner = hex::<u64>(parts.next()?, 16)? as i64;
    let check = hex::<u32>(parts.next()?, 8)?;
    let version = hex::<u32>(parts.next()?, 8)?;
    let action = match parts.next()? {
        "<" => Action::Back,
        "!" => Action::Cancel,
        id if is_id(id) => Action::Choose(id),
        _ => return None,
    };
    Some(Press::Check {
        owner,
        check,
        version,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_round_trip_within_64_bytes() {
        let longest_id = "a".repeat(24);
        for action in [Action::Choose(&longest_id), Action::Back, Action::Cancel] {
            let data = check_button(i64::MIN, u32::MAX, u32::MAX, action);
            assert!(data.len() <= MAX_BYTES, "{data}");
            assert_eq!(
                decode(&data),
                Some(Press::Check {
                    owner: i64::MIN,
                    check: u32::MAX,
                    version: u32::MAX,
                    action
                })
            );
        }
        assert_eq!(decode(&lang_button("es")), Some(Press::Lang("es")));
        assert_eq!(
            decode(&offer_button(u32::MAX, 7)),
            Some(Press::Offer {
                offer: u32::MAX,
                days: 7
            })
        );
        let long = "b".repeat(24);
        let data = followup_button(u32::MAX, u32::MAX, &long);
        assert!(data.len() <= MAX_BYTES);
        assert_eq!(
            decode(&data),
            Some(Press::FollowUp {
                id: u32::MAX,
                version: u32::MAX,
                action: &long
            })
        );
        assert_eq!(
            decode(&cancel_checkin_button(i64::MAX)),
            Some(Press::CancelCheckIn(i64::MAX))
        );
    }

    #[test]
    fn garbage_and_forged_data_is_refused() {
        for bad in [
            "",
            "hello",
            "1.2.3",
            "x.1.1.yes",
            "1.zz.1.yes",
            "1.1.-1.yes",
            "+1.1.1.yes",
            "1.1.123456789.yes",
            "1.1.1.",
            "1.1.1.yes;drop",
            "1.123456789.1.yes",
            "L.",
            "L.../etc",
            "O.1",
            "O.1.123",
            "U.1.1.",
            "U.1.1.a b",
            "X.",
            "X.zz",
            &"9".repeat(80),
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
