//! A credential that cannot end up in a log by accident.

use std::fmt;

/// An access token (e.g. `HF_TOKEN`). `Debug` and `Display` print `***`; the only way to the
/// value is [`Secret::expose`], called where the `Authorization` header is built.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a token; surrounding whitespace (a trailing newline in a token file) is dropped.
    /// Returns `None` for an empty token.
    pub fn new(value: impl Into<String>) -> Option<Secret> {
        let v = value.into();
        let t = v.trim();
        if t.is_empty() {
            None
        } else {
            Some(Secret(t.to_string()))
        }
    }

    /// The token itself. Only for building the request header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::new("hf_abcdef\n").unwrap();
        assert_eq!(s.expose(), "hf_abcdef");
        assert!(!format!("{s:?} {s}").contains("abcdef"));
        assert!(Secret::new("  \n").is_none());
    }
}
