//! Timestamps: one type for every instant the tool records (state, history, verification,
//! installation), serialised as RFC 3339 UTC (`2026-11-22T23:54:15Z`).
//!
//! `jiff::Timestamp` parses and prints RFC 3339; whole seconds are kept so that files stay
//! readable and two writes in the same second compare equal.

pub use jiff::Timestamp;

/// Now, to the whole second.
pub fn now() -> Timestamp {
    let t = Timestamp::now();
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// Seconds since the Unix epoch (0 before it).
pub fn unix_seconds(t: Timestamp) -> u64 {
    u64::try_from(t.as_second()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_and_parses_rfc3339_utc() {
        let t = Timestamp::from_second(1_795_391_655).unwrap();
        assert_eq!(t.to_string(), "2026-11-22T23:54:15Z");
        assert_eq!(
            Timestamp::from_second(951_782_400).unwrap().to_string(),
            "2000-02-29T00:00:00Z"
        );
        let back: Timestamp = "2026-11-22T23:54:15Z".parse().unwrap();
        assert_eq!(back, t);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"2026-11-22T23:54:15Z\"");
        assert_eq!(serde_json::from_str::<Timestamp>(&json).unwrap(), t);
    }

    #[test]
    fn now_has_whole_seconds() {
        let t = now();
        assert_eq!(t.subsec_nanosecond(), 0);
        assert!(unix_seconds(t) > 1_700_000_000);
    }
}
