//! A model split in several GGUF files by llama.cpp's gguf-split, read as one model.
//!
//! The parts are named `PREFIX-00001-of-0000N.gguf` … `PREFIX-0000N-of-0000N.gguf` (five digits
//! each, as llama.cpp's `llama_split_path` formats them) and lie in one directory; llama.cpp is
//! given the first part and opens the others by that pattern. Every part is a GGUF of its own
//! with the keys `split.no` (0-based), `split.count` and `split.tensors.count` (tensors over all
//! parts); the first part carries the model's metadata, and each part holds some of the tensors,
//! their offsets relative to its own data section.
//!
//! [`read_parts`] reads every part's header given the first and checks that they belong
//! together; [`read_model`] reads any model file, split or not, as one [`GgufModel`]: the first
//! part's metadata, the tensors of all parts, their file sizes summed.
//!
//! Knows nothing about llama.cpp, hardware or the network.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::reader::{read_header, GgufError, GgufHeader, GgufModel};

/// `split.no`: the part's index, 0 for the first.
pub const KEY_SPLIT_NO: &str = "split.no";
/// `split.count`: how many parts the model has.
pub const KEY_SPLIT_COUNT: &str = "split.count";
/// `split.tensors.count`: tensors over all parts.
pub const KEY_SPLIT_TENSORS_COUNT: &str = "split.tensors.count";

/// A file name of llama.cpp's split pattern, taken apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitName<'a> {
    /// Everything before `-0000k-of-0000N.gguf`.
    pub prefix: &'a str,
    /// The part's number, 1-based as in the name.
    pub number: u16,
    pub count: u16,
}

/// `PREFIX-0000k-of-0000N.gguf` taken apart, when `name` follows the pattern exactly (five
/// digits each, 1 ≤ k ≤ N, a non-empty prefix).
pub fn parse_split_name(name: &str) -> Option<SplitName<'_>> {
    let stem = name.strip_suffix(".gguf")?;
    let (head, count) = stem.rsplit_once("-of-")?;
    let (prefix, number) = head.rsplit_once('-')?;
    let five = |s: &str| -> Option<u16> {
        (s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let (number, count) = (five(number)?, five(count)?);
    (!prefix.is_empty() && number >= 1 && number <= count).then_some(SplitName {
        prefix,
        number,
        count,
    })
}

/// The name of part `number` (1-based) of `count`, as llama.cpp looks for it.
pub fn split_file_name(prefix: &str, number: u16, count: u16) -> String {
    format!("{prefix}-{number:05}-of-{count:05}.gguf")
}

/// The paths of every part of the split model whose first part is `first`, in order; just
/// `first` when its name is not of the split pattern.
pub fn part_paths(first: &Path) -> Vec<PathBuf> {
    let name = first
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match parse_split_name(&name) {
        Some(s) if s.number == 1 => (1..=s.count)
            .map(|k| first.with_file_name(split_file_name(s.prefix, k, s.count)))
            .collect(),
        _ => vec![first.to_path_buf()],
    }
}

/// Read the headers of every part of the model whose first file is `path`: one header when the
/// file is not split (`split.count` absent or 1), else all of them, checked to belong together:
/// each part present, named as llama.cpp finds it, with the same `split.count` and
/// `split.tensors.count`, its own `split.no`, and no tensor twice; the tensor count over all
/// parts must be `split.tensors.count`.
pub fn read_parts(path: &Path) -> Result<Vec<GgufHeader>, GgufError> {
    let first = read_header(path)?;
    read_parts_with(path, first, &mut |p: &Path| {
        if p.is_file() {
            read_header(p).map(Some)
        } else {
            Ok(None)
        }
    })
}

/// [`read_parts`] with the first part's header already read and the others read by
/// `read_other` (`None`: the part does not exist), so that parts can come from elsewhere than
/// the local disk (range requests to a remote repository). `path` names the first part; the
/// others are asked for by the paths llama.cpp would open next to it.
pub fn read_parts_with(
    path: &Path,
    first: GgufHeader,
    read_other: &mut dyn FnMut(&Path) -> Result<Option<GgufHeader>, GgufError>,
) -> Result<Vec<GgufHeader>, GgufError> {
    let split_err = |path: &Path, detail: String| GgufError::Split {
        path: path.to_path_buf(),
        detail,
    };
    let count = match split_key(&first, KEY_SPLIT_COUNT)? {
        None | Some(1) => return Ok(vec![first]),
        Some(0) => return Err(split_err(path, format!("`{KEY_SPLIT_COUNT}` is 0"))),
        Some(n) => n,
    };
    let no = split_key(&first, KEY_SPLIT_NO)?.unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parsed = parse_split_name(&name);
    if no != 0 {
        let hint = match parsed {
            Some(s) => format!(
                "; give the first part, `{}`",
                split_file_name(s.prefix, 1, s.count)
            ),
            None => String::new(),
        };
        return Err(split_err(
            path,
            format!(
                "it is part {} of {count} (`{KEY_SPLIT_NO}` = {no}){hint}",
                no + 1
            ),
        ));
    }
    let Some(parsed) = parsed.filter(|s| s.number == 1 && u64::from(s.count) == count) else {
        return Err(split_err(
            path,
            format!(
                "its header says it is the first of {count} parts, but its name does not end in \
                 `-00001-of-{count:05}.gguf`, the pattern llama.cpp finds the other parts by"
            ),
        ));
    };
    let total = split_key(&first, KEY_SPLIT_TENSORS_COUNT)?;
    let mut parts = vec![first];
    for k in 2..=parsed.count {
        let part_path = path.with_file_name(split_file_name(parsed.prefix, k, parsed.count));
        let Some(h) = read_other(&part_path)? else {
            return Err(split_err(
                &part_path,
                format!(
                    "part {k} of {count} is missing (`{}` needs every part next to it)",
                    path.display()
                ),
            ));
        };
        let disagree = |what: &str, got: Option<u64>, want: Option<u64>| {
            let shown = |v: Option<u64>| v.map_or("absent".to_string(), |v| v.to_string());
            split_err(
                &part_path,
                format!(
                    "part {k} of {count} has `{what}` {}, expected {}",
                    shown(got),
                    shown(want)
                ),
            )
        };
        let (c, n, t) = (
            split_key(&h, KEY_SPLIT_COUNT)?,
            split_key(&h, KEY_SPLIT_NO)?,
            split_key(&h, KEY_SPLIT_TENSORS_COUNT)?,
        );
        if c != Some(count) {
            return Err(disagree(KEY_SPLIT_COUNT, c, Some(count)));
        }
        if n != Some(u64::from(k) - 1) {
            return Err(disagree(KEY_SPLIT_NO, n, Some(u64::from(k) - 1)));
        }
        if t.is_some() && t != total {
            return Err(disagree(KEY_SPLIT_TENSORS_COUNT, t, total));
        }
        parts.push(h);
    }
    let mut seen = HashSet::new();
    for h in &parts {
        for t in &h.tensors {
            if !seen.insert(t.summary.name.as_str()) {
                return Err(split_err(
                    &h.path,
                    format!("tensor `{}` is in more than one part", t.summary.name),
                ));
            }
        }
    }
    if let Some(total) = total.filter(|&t| t != seen.len() as u64) {
        return Err(split_err(
            path,
            format!(
                "`{KEY_SPLIT_TENSORS_COUNT}` is {total}, but the {count} parts hold {} tensors",
                seen.len()
            ),
        ));
    }
    Ok(parts)
}

/// Read the model at `path`, split or not: for a split model (given its first part) the first
/// part's metadata, the tensor table of all parts and the sum of their file sizes.
pub fn read_model(path: &Path) -> Result<GgufModel, GgufError> {
    merge_parts(read_parts(path)?)
}

/// One model from the headers of its parts (first part first, as [`read_parts`] returns them).
pub fn merge_parts(parts: Vec<GgufHeader>) -> Result<GgufModel, GgufError> {
    let mut parts = parts.into_iter();
    let Some(mut whole) = parts.next() else {
        return Err(GgufError::Split {
            path: PathBuf::new(),
            detail: "no parts to read".into(),
        });
    };
    for h in parts {
        whole.file_bytes = whole.file_bytes.saturating_add(h.file_bytes);
        whole.tensors.extend(h.tensors);
    }
    whole.into_model()
}

/// An integer `split.*` key, `None` when absent; any other type is refused.
fn split_key(h: &GgufHeader, key: &str) -> Result<Option<u64>, GgufError> {
    match h.get(key) {
        None => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| GgufError::Split {
            path: h.path.clone(),
            detail: format!("`{key}` is {v:?}, not a non-negative integer"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_names_follow_llama_cpp_pattern_exactly() {
        assert_eq!(
            parse_split_name("m-q4-00002-of-00003.gguf"),
            Some(SplitName {
                prefix: "m-q4",
                number: 2,
                count: 3
            })
        );
        for bad in [
            "m-00000-of-00003.gguf",
            "m-00004-of-00003.gguf",
            "m-0001-of-00003.gguf",
            "m-00001-of-003.gguf",
            "m-00001-of-00003.bin",
            "-00001-of-00003.gguf",
            "m.gguf",
            "m-0000a-of-00003.gguf",
        ] {
            assert_eq!(parse_split_name(bad), None, "{bad}");
        }
        assert_eq!(split_file_name("m", 1, 3), "m-00001-of-00003.gguf");
        let paths = part_paths(Path::new("/d/m-00001-of-00003.gguf"));
        assert_eq!(paths.len(), 3);
        assert_eq!(paths[2], Path::new("/d/m-00003-of-00003.gguf"));
        assert_eq!(part_paths(Path::new("/d/m.gguf")), [Path::new("/d/m.gguf")]);
    }
}
