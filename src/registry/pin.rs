//! Filling a family file's missing `sha256` / `size_bytes` (and `checksum_source`) in place.
//!
//! The file is edited as text, field by field inside the entry's own lines, so that its layout,
//! key order and every other byte stay as they were; the result is parsed again and must equal
//! the original in every other field, or nothing is written.

use super::load::{parse_family, RegistryError};
use super::ModelFile;

/// What to fill in for one entry. Only fields that are `null` in the file are filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub id: String,
    pub sha256: Option<String>,
    pub size_bytes: Option<u64>,
    pub checksum_source: Option<String>,
}

/// `text` (the family file `file`) with `pins` applied. Fields already set are left alone.
pub fn pin_family_text(text: &str, file: &str, pins: &[Pin]) -> Result<String, RegistryError> {
    let before = parse_family(text, file)?;
    let mut out = text.to_string();
    for pin in pins {
        let key = format!("\"id\": {}", json_string(&pin.id));
        let start = match out.match_indices(&key).map(|(i, _)| i).collect::<Vec<_>>()[..] {
            [one] => one,
            _ => {
                return Err(edit_error(
                    file,
                    &pin.id,
                    "its `\"id\": ...` line is not found exactly once",
                ))
            }
        };
        let Some((start, end)) = enclosing_object(&out, start) else {
            return Err(edit_error(file, &pin.id, "its entry is not a JSON object"));
        };
        let mut entry = out[start..end].to_string();
        if let Some(sha) = &pin.sha256 {
            set_null(&mut entry, "sha256", &json_string(sha));
        }
        if let Some(size) = pin.size_bytes {
            set_null(&mut entry, "size_bytes", &size.to_string());
        }
        if let Some(source) = &pin.checksum_source {
            set_null(&mut entry, "checksum_source", &json_string(source));
        }
        out.replace_range(start..end, &entry);
    }
    let after = parse_family(&out, file)?;
    for (old, new) in before.iter().zip(&after) {
        let pin = pins.iter().find(|p| p.id == old.id);
        if !same_but_pinned(old, new, pin) {
            return Err(edit_error(
                file,
                &old.id,
                "editing the file would change more than the pinned fields",
            ));
        }
    }
    if before.len() != after.len() {
        return Err(edit_error(
            file,
            "-",
            "editing the file changed its entries",
        ));
    }
    Ok(out)
}

/// The byte range of the innermost JSON object around byte `at` of `text`, braces included.
fn enclosing_object(text: &str, at: usize) -> Option<(usize, usize)> {
    let mut open: Vec<usize> = Vec::new();
    let mut target_depth = None;
    let (mut in_string, mut escaped) = (false, false);
    for (i, c) in text.char_indices() {
        if i == at {
            target_depth = Some(open.len());
        }
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => open.push(i),
            '}' => {
                let start = open.pop()?;
                if target_depth == Some(open.len() + 1) {
                    return Some((start, i + 1));
                }
            }
            _ => {}
        }
    }
    None
}

/// Replace `"field": null` in `entry` with `"field": value`; no change when it is not null.
fn set_null(entry: &mut String, field: &str, value: &str) {
    let null = format!("\"{field}\": null");
    if let Some(i) = entry.find(&null) {
        entry.replace_range(i..i + null.len(), &format!("\"{field}\": {value}"));
    }
}

fn same_but_pinned(old: &ModelFile, new: &ModelFile, pin: Option<&Pin>) -> bool {
    let mut expected = old.clone();
    if let Some(p) = pin {
        if expected.sha256.is_none() {
            expected.sha256 = p.sha256.clone();
        }
        if expected.size_bytes.is_none() {
            expected.size_bytes = p.size_bytes;
        }
        if expected.checksum_source.is_none() {
            expected.checksum_source = p.checksum_source.clone();
        }
    }
    expected == *new
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

fn edit_error(file: &str, id: &str, why: &str) -> RegistryError {
    RegistryError::Field {
        file: file.to_string(),
        entry: format!("model `{id}`"),
        field: "sha256".to_string(),
        detail: format!("cannot pin: {why}; nothing was written"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::EMBEDDED_REGISTRY_FILES;

    #[test]
    fn pins_only_the_null_fields_and_keeps_every_other_byte() {
        let (name, text) = EMBEDDED_REGISTRY_FILES
            .iter()
            .find(|(n, _)| *n == "qwen2.5.json")
            .unwrap();
        let files = parse_family(text, name).unwrap();
        let open = files.iter().find(|f| f.sha256.is_none()).unwrap();
        let pinned_already = files.iter().find(|f| f.sha256.is_some()).unwrap();
        let sha = "ab".repeat(32);
        let pins = [
            Pin {
                id: open.id.clone(),
                sha256: Some(sha.clone()),
                size_bytes: Some(4_683_073_952),
                checksum_source: Some("Hugging Face file metadata".into()),
            },
            // A pin for an entry that has its values already changes nothing.
            Pin {
                id: pinned_already.id.clone(),
                sha256: Some("cd".repeat(32)),
                size_bytes: Some(1),
                checksum_source: Some("other".into()),
            },
        ];
        let out = pin_family_text(text, name, &pins).unwrap();
        let after = parse_family(&out, name).unwrap();
        let got = after.iter().find(|f| f.id == open.id).unwrap();
        assert_eq!(got.sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(got.size_bytes, Some(4_683_073_952));
        let kept = after.iter().find(|f| f.id == pinned_already.id).unwrap();
        assert_eq!(kept, pinned_already);
        // Exactly three lines differ, each the pinned field of that entry.
        let changed: Vec<(&str, &str)> = text
            .lines()
            .zip(out.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 3, "{changed:#?}");
        assert_eq!(text.lines().count(), out.lines().count());
        assert!(changed.iter().all(|(a, _)| a.ends_with("null,")));
    }

    #[test]
    fn an_unknown_id_is_refused() {
        let (name, text) = EMBEDDED_REGISTRY_FILES[0];
        let pin = Pin {
            id: "no-such-model".into(),
            sha256: Some("ab".repeat(32)),
            size_bytes: None,
            checksum_source: None,
        };
        let e = pin_family_text(text, name, &[pin]).unwrap_err();
        assert!(e.to_string().contains("no-such-model"), "{e}");
    }

    #[test]
    fn a_bad_sha256_fails_validation_and_nothing_is_returned() {
        let (name, text) = EMBEDDED_REGISTRY_FILES
            .iter()
            .find(|(n, _)| *n == "qwen2.5.json")
            .unwrap();
        let open = parse_family(text, name)
            .unwrap()
            .into_iter()
            .find(|f| f.sha256.is_none())
            .unwrap();
        let pin = Pin {
            id: open.id,
            sha256: Some("AB".repeat(32)),
            size_bytes: None,
            checksum_source: None,
        };
        let e = pin_family_text(text, name, &[pin]).unwrap_err();
        assert!(e.to_string().contains("sha256"), "{e}");
    }
}
