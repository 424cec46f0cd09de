//! The rules for the values that say which model file to fetch and how to check it: a model file
//! name or path inside a repository, a sha256, a Hugging Face `ORG/NAME` repository id and a Hugging
//! Face endpoint (or mirror) URL.
//!
//! The registry loader, the fetch stage and the CLI all check these values here, so a value the
//! registry refuses is refused by `download` too, and the other way round. This module is the
//! bottom layer: it imports nothing from the rest of the crate and knows nothing about files,
//! fields or flags. An error says what is wrong with the value and what a valid one looks like;
//! the caller adds where the value came from (the registry file and field, or the flag).

/// Why a value was refused. Each message quotes the value, says what is wrong with it and what a
/// valid value looks like; the caller prefixes where the value came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("the value is empty; {expected}", expected = .kind.expected())]
    Empty { kind: Kind },

    #[error("`{}` is an absolute path; {expected}", .value.escape_debug())]
    AbsolutePath {
        value: String,
        expected: &'static str,
    },
    #[error("`{}` contains a backslash; {expected}", .value.escape_debug())]
    Backslash {
        value: String,
        expected: &'static str,
    },
    #[error("`{}` contains a control character; {expected}", .value.escape_debug())]
    ControlCharacter {
        value: String,
        expected: &'static str,
    },
    #[error("`{}` contains `..`; {expected}", .value.escape_debug())]
    DotDot {
        value: String,
        expected: &'static str,
    },
    #[error("`{}` has an empty path segment (`//`, or a `/` at the start or end); {expected}", .value.escape_debug())]
    EmptySegment {
        value: String,
        expected: &'static str,
    },
    #[error("`{}` has a name starting with `.` (a hidden file); {expected}", .value.escape_debug())]
    HiddenName {
        value: String,
        expected: &'static str,
    },
    #[error("`{}` contains `/`; {NAME_EXPECTED}", .value.escape_debug())]
    Directory { value: String },
    #[error("`{}` does not end in `.gguf`; {expected}", .value.escape_debug())]
    NotGguf {
        value: String,
        expected: &'static str,
    },

    #[error("`{}` contains `{}`, which is not a hex digit; {SHA256_EXPECTED}", .value.escape_debug(), .found.escape_debug())]
    Sha256NotHex { value: String, found: char },
    #[error("`{}` has {len} characters, not 64; {SHA256_EXPECTED}", .value.escape_debug())]
    Sha256Length { value: String, len: usize },
    #[error("`{value}` has upper-case hex digits; write it in lower case, `{}`: {SHA256_EXPECTED}", .value.to_ascii_lowercase())]
    Sha256UpperCase { value: String },

    #[error("`{}` is not of the form ORG/NAME (exactly one `/` between two non-empty parts); {REPO_EXPECTED}", .value.escape_debug())]
    RepoShape { value: String },
    #[error("`{}` contains `{}`; {REPO_EXPECTED}", .value.escape_debug(), .found.escape_debug())]
    RepoCharacter { value: String, found: char },
    #[error("`{value}` contains `{sequence}`, which Hugging Face does not allow in a repository id; {REPO_EXPECTED}")]
    RepoSequence {
        value: String,
        sequence: &'static str,
    },
    #[error("`{value}` has a part that starts or ends with `-` or `.`; {REPO_EXPECTED}")]
    RepoEdge { value: String },
    #[error("`{value}` has {len} characters, more than the {REPO_ID_MAX_CHARS} Hugging Face allows; {REPO_EXPECTED}")]
    RepoTooLong { value: String, len: usize },

    #[error("`{}` is not a URL ({reason}); {ENDPOINT_EXPECTED}", .value.escape_debug())]
    NotUrl { value: String, reason: String },
    #[error("`{}` is a `{scheme}:` URL, not http or https; {ENDPOINT_EXPECTED}", .value.escape_debug())]
    Scheme { value: String, scheme: String },
    #[error("`{}` names no host; {ENDPOINT_EXPECTED}", .value.escape_debug())]
    NoHost { value: String },
    #[error("`{}` has a query (`?`) or fragment (`#`), which the file's path would be appended after; {ENDPOINT_EXPECTED}", .value.escape_debug())]
    QueryOrFragment { value: String },
    #[error("`{}` carries a user name or password, which would show in logs and errors; {ENDPOINT_EXPECTED}, and the token goes in HF_TOKEN", .value.escape_debug())]
    Credentials { value: String },
}

/// Which kind of value an [`ValidationError::Empty`] was meant to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ModelFileName,
    ModelFilePath,
    Sha256,
    RepoId,
    Endpoint,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::ModelFileName => NAME_EXPECTED,
            Kind::ModelFilePath => PATH_EXPECTED,
            Kind::Sha256 => SHA256_EXPECTED,
            Kind::RepoId => REPO_EXPECTED,
            Kind::Endpoint => ENDPOINT_EXPECTED,
        }
    }
}

const NAME_EXPECTED: &str =
    "a model file name is one plain name ending in `.gguf`, e.g. `qwen2.5-3b-instruct-q4_k_m.gguf`";
const PATH_EXPECTED: &str = "a model file's path in a repository is plain names joined by `/`, ending in `.gguf`, e.g. `qwen2.5-3b-instruct-q4_k_m.gguf` or `Q4_K_M/model-00001-of-00002.gguf`";
const SHA256_EXPECTED: &str =
    "a sha256 is 64 lowercase hex digits (0-9, a-f), as `sha256sum FILE` prints it";
const REPO_EXPECTED: &str = "a Hugging Face repository id is ORG/NAME of letters, digits, `-`, `_` and `.`, e.g. `Qwen/Qwen2.5-3B-Instruct-GGUF`";
const ENDPOINT_EXPECTED: &str = "a Hugging Face endpoint is an http(s) base URL such as `https://huggingface.co` or `https://mirror.example/hf`";

/// The longest repository id Hugging Face accepts (`huggingface_hub.utils.validate_repo_id`).
pub const REPO_ID_MAX_CHARS: usize = 96;

/// A model file name as stored in the models directory and listed in the registry: a path of
/// one plain name (see [`model_file_path`]), so that it cannot lead out of the directory.
pub fn model_file_name(value: &str) -> Result<(), ValidationError> {
    check_model_file(value, false)
}

/// A model file's path inside a repository (`--file`): relative, `/` between folders, every
/// segment a plain name (not empty, not starting with `.`), no `..` anywhere, no backslash or
/// control character, ending in `.gguf`.
///
/// `..` is refused inside a name too (`x..gguf`): no GGUF publisher needs it, and one rule for
/// every name is easier to trust than a parser of which `..` are harmless. A leading `.` would
/// make a hidden file, and names like `.m.gguf.from-cache-1` are the fetch stage's own.
pub fn model_file_path(value: &str) -> Result<(), ValidationError> {
    check_model_file(value, true)
}

fn check_model_file(value: &str, allow_dirs: bool) -> Result<(), ValidationError> {
    let (kind, expected) = if allow_dirs {
        (Kind::ModelFilePath, PATH_EXPECTED)
    } else {
        (Kind::ModelFileName, NAME_EXPECTED)
    };
    let value_owned = || value.to_string();
    if value.is_empty() {
        return Err(ValidationError::Empty { kind });
    }
    if value.starts_with('/') {
        return Err(ValidationError::AbsolutePath {
            value: value_owned(),
            expected,
        });
    }
    if value.contains('\\') {
        return Err(ValidationError::Backslash {
            value: value_owned(),
            expected,
        });
    }
    // `char::is_control` covers NUL, the rest of C0, DEL and C1.
    if value.chars().any(char::is_control) {
        return Err(ValidationError::ControlCharacter {
            value: value_owned(),
            expected,
        });
    }
    if value.contains("..") {
        return Err(ValidationError::DotDot {
            value: value_owned(),
            expected,
        });
    }
    if value.split('/').any(str::is_empty) {
        return Err(ValidationError::EmptySegment {
            value: value_owned(),
            expected,
        });
    }
    if value.split('/').any(|s| s.starts_with('.')) {
        return Err(ValidationError::HiddenName {
            value: value_owned(),
            expected,
        });
    }
    if !allow_dirs && value.contains('/') {
        return Err(ValidationError::Directory {
            value: value_owned(),
        });
    }
    if !value.ends_with(".gguf") {
        return Err(ValidationError::NotGguf {
            value: value_owned(),
            expected,
        });
    }
    Ok(())
}

/// A sha256 as the registry stores it and `sha256sum` prints it: exactly 64 lowercase hex
/// digits. Upper case is refused rather than lowered, so that the value a user gives is the
/// value stored, reported and compared, everywhere; the error shows the lowercase spelling.
pub fn sha256(value: &str) -> Result<(), ValidationError> {
    if value.is_empty() {
        return Err(ValidationError::Empty { kind: Kind::Sha256 });
    }
    if let Some(found) = value.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(ValidationError::Sha256NotHex {
            value: value.to_string(),
            found,
        });
    }
    if value.len() != 64 {
        return Err(ValidationError::Sha256Length {
            value: value.to_string(),
            len: value.len(),
        });
    }
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ValidationError::Sha256UpperCase {
            value: value.to_string(),
        });
    }
    Ok(())
}

/// A Hugging Face repository id `ORG/NAME`, by the hub's own rule
/// (`huggingface_hub.utils.validate_repo_id`): at most 96 characters of ASCII letters, digits,
/// `-`, `_` and `.`; no `--` or `..` (the hub cache spells `/` as `--` in folder names); no part
/// starting or ending with `-` or `.`. The organisation is required: every GGUF repository has one.
pub fn hf_repo_id(value: &str) -> Result<(), ValidationError> {
    let value_owned = || value.to_string();
    if value.is_empty() {
        return Err(ValidationError::Empty { kind: Kind::RepoId });
    }
    let parts: Vec<&str> = value.split('/').collect();
    if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
        return Err(ValidationError::RepoShape {
            value: value_owned(),
        });
    }
    if let Some(found) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/')))
    {
        return Err(ValidationError::RepoCharacter {
            value: value_owned(),
            found,
        });
    }
    if value.len() > REPO_ID_MAX_CHARS {
        return Err(ValidationError::RepoTooLong {
            value: value_owned(),
            len: value.len(),
        });
    }
    for sequence in ["--", ".."] {
        if value.contains(sequence) {
            return Err(ValidationError::RepoSequence {
                value: value_owned(),
                sequence,
            });
        }
    }
    let edge = |c: char| c == '-' || c == '.';
    if parts
        .iter()
        .any(|p| p.starts_with(edge) || p.ends_with(edge))
    {
        return Err(ValidationError::RepoEdge {
            value: value_owned(),
        });
    }
    Ok(())
}

/// A Hugging Face endpoint or mirror: an http(s) URL with a host, optionally a base path, no
/// query, fragment or credentials. Returns it without trailing `/`, ready for
/// `{endpoint}/{repo}/resolve/...`.
pub fn hf_endpoint(value: &str) -> Result<String, ValidationError> {
    let value_owned = || value.to_string();
    if value.is_empty() {
        return Err(ValidationError::Empty {
            kind: Kind::Endpoint,
        });
    }
    // The URL parser would quietly drop surrounding spaces and tabs inside; refuse them instead.
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ValidationError::NotUrl {
            value: value_owned(),
            reason: "it contains white space or a control character".to_string(),
        });
    }
    let url = reqwest::Url::parse(value).map_err(|e| ValidationError::NotUrl {
        value: value_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ValidationError::Scheme {
            value: value_owned(),
            scheme: url.scheme().to_string(),
        });
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::NoHost {
            value: value_owned(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ValidationError::QueryOrFragment {
            value: value_owned(),
        });
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ValidationError::Credentials {
            value: value_owned(),
        });
    }
    Ok(value.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    type E = ValidationError;
    /// A value, and the variant it must be refused with (`None`: it is valid).
    type Case<'a> = (&'a str, Option<fn(&E) -> bool>);

    fn check<T>(rule: fn(&str) -> Result<T, E>, cases: &[Case<'_>], name: &str) {
        for (value, expect) in cases {
            match (rule(value), expect) {
                (Ok(_), None) => {}
                (Err(e), Some(is)) => {
                    assert!(is(&e), "{name}({value:?}): wrong error {e:?}");
                    let msg = e.to_string();
                    // Every message shows the value (escaped) and what a valid one looks like.
                    if !value.is_empty() {
                        let shown: String = value.escape_debug().collect();
                        assert!(msg.contains(&shown), "{name}({value:?}): {msg}");
                    }
                    assert!(
                        msg.contains("e.g.")
                            || msg.contains("such as")
                            || msg.contains("as `sha256sum"),
                        "{msg}"
                    );
                }
                (Ok(_), Some(_)) => panic!("{name}({value:?}) was accepted"),
                (Err(e), None) => panic!("{name}({value:?}) was refused: {e}"),
            }
        }
    }

    #[test]
    fn model_file_paths() {
        check(
            model_file_path,
            &[
                ("qwen2.5-3b-instruct-q4_k_m.gguf", None),
                ("Q4_K_M/model-00001-of-00002.gguf", None),
                ("a b/c d.gguf", None),
                (
                    "",
                    Some(|e| {
                        matches!(
                            e,
                            E::Empty {
                                kind: Kind::ModelFilePath
                            }
                        )
                    }),
                ),
                (
                    "/etc/passwd.gguf",
                    Some(|e| matches!(e, E::AbsolutePath { .. })),
                ),
                ("a\\b.gguf", Some(|e| matches!(e, E::Backslash { .. }))),
                ("C:\\m.gguf", Some(|e| matches!(e, E::Backslash { .. }))),
                (
                    "a\0.gguf",
                    Some(|e| matches!(e, E::ControlCharacter { .. })),
                ),
                (
                    "a\nb.gguf",
                    Some(|e| matches!(e, E::ControlCharacter { .. })),
                ),
                ("a/../b.gguf", Some(|e| matches!(e, E::DotDot { .. }))),
                (
                    "../../etc/passwd.gguf",
                    Some(|e| matches!(e, E::DotDot { .. })),
                ),
                ("x..gguf", Some(|e| matches!(e, E::DotDot { .. }))),
                ("..", Some(|e| matches!(e, E::DotDot { .. }))),
                ("a//b.gguf", Some(|e| matches!(e, E::EmptySegment { .. }))),
                ("sub/", Some(|e| matches!(e, E::EmptySegment { .. }))),
                ("./a.gguf", Some(|e| matches!(e, E::HiddenName { .. }))),
                (".hidden.gguf", Some(|e| matches!(e, E::HiddenName { .. }))),
                ("sub/.gguf", Some(|e| matches!(e, E::HiddenName { .. }))),
                ("model.bin", Some(|e| matches!(e, E::NotGguf { .. }))),
                ("model.GGUF", Some(|e| matches!(e, E::NotGguf { .. }))),
                (
                    "sub/model.gguf.part",
                    Some(|e| matches!(e, E::NotGguf { .. })),
                ),
            ],
            "model_file_path",
        );
    }

    #[test]
    fn model_file_names() {
        check(
            model_file_name,
            &[
                ("tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf", None),
                (
                    "",
                    Some(|e| {
                        matches!(
                            e,
                            E::Empty {
                                kind: Kind::ModelFileName
                            }
                        )
                    }),
                ),
                ("sub/m.gguf", Some(|e| matches!(e, E::Directory { .. }))),
                ("/tmp/m.gguf", Some(|e| matches!(e, E::AbsolutePath { .. }))),
                ("../m.gguf", Some(|e| matches!(e, E::DotDot { .. }))),
                (".m.gguf", Some(|e| matches!(e, E::HiddenName { .. }))),
                ("m", Some(|e| matches!(e, E::NotGguf { .. }))),
            ],
            "model_file_name",
        );
    }

    #[test]
    fn sha256s() {
        let good = "9fecc3b3cd76bba89d504f29b616eedf7da85b96540e490ca5824d3f7d2776a0";
        let upper = good.to_ascii_uppercase();
        let spaced = format!(" {good}");
        let long = format!("{good}0");
        check(
            sha256,
            &[
                (good, None),
                (&"0".repeat(64), None),
                ("", Some(|e| matches!(e, E::Empty { kind: Kind::Sha256 }))),
                ("abc", Some(|e| matches!(e, E::Sha256Length { len: 3, .. }))),
                (
                    &long,
                    Some(|e| matches!(e, E::Sha256Length { len: 65, .. })),
                ),
                (
                    "not-a-hash",
                    Some(|e| matches!(e, E::Sha256NotHex { found: 'n', .. })),
                ),
                (
                    &spaced,
                    Some(|e| matches!(e, E::Sha256NotHex { found: ' ', .. })),
                ),
                (
                    &"g".repeat(64),
                    Some(|e| matches!(e, E::Sha256NotHex { .. })),
                ),
                (&upper, Some(|e| matches!(e, E::Sha256UpperCase { .. }))),
            ],
            "sha256",
        );
        // The upper-case refusal shows the spelling to use instead.
        assert!(sha256(&upper).unwrap_err().to_string().contains(good));
    }

    #[test]
    fn repo_ids() {
        let long = format!("org/{}", "a".repeat(93));
        check(
            hf_repo_id,
            &[
                ("Qwen/Qwen2.5-3B-Instruct-GGUF", None),
                ("hugging-quants/Llama-3.2-1B-Instruct-Q4_K_M-GGUF", None),
                ("a_b/c_d", None),
                (&long[..96], None),
                ("", Some(|e| matches!(e, E::Empty { kind: Kind::RepoId }))),
                ("gpt2", Some(|e| matches!(e, E::RepoShape { .. }))),
                ("org/", Some(|e| matches!(e, E::RepoShape { .. }))),
                ("/name", Some(|e| matches!(e, E::RepoShape { .. }))),
                ("a/b/c", Some(|e| matches!(e, E::RepoShape { .. }))),
                ("org/name/", Some(|e| matches!(e, E::RepoShape { .. }))),
                (
                    "org/na me",
                    Some(|e| matches!(e, E::RepoCharacter { found: ' ', .. })),
                ),
                (
                    "org/name?x",
                    Some(|e| matches!(e, E::RepoCharacter { found: '?', .. })),
                ),
                (
                    "org\\x/name",
                    Some(|e| matches!(e, E::RepoCharacter { found: '\\', .. })),
                ),
                (&long, Some(|e| matches!(e, E::RepoTooLong { len: 97, .. }))),
                (
                    "org/a--b",
                    Some(|e| matches!(e, E::RepoSequence { sequence: "--", .. })),
                ),
                (
                    "../name",
                    Some(|e| matches!(e, E::RepoSequence { sequence: "..", .. })),
                ),
                ("./name", Some(|e| matches!(e, E::RepoEdge { .. }))),
                ("org/.", Some(|e| matches!(e, E::RepoEdge { .. }))),
                ("-org/name", Some(|e| matches!(e, E::RepoEdge { .. }))),
                ("org/name.", Some(|e| matches!(e, E::RepoEdge { .. }))),
            ],
            "hf_repo_id",
        );
    }

    #[test]
    fn endpoints() {
        check(
            hf_endpoint,
            &[
                ("https://huggingface.co", None),
                ("http://127.0.0.1:8080", None),
                ("https://mirror.example/hf/", None),
                ("HTTPS://Mirror.Example", None),
                ("http://[::1]:9000", None),
                (
                    "",
                    Some(|e| {
                        matches!(
                            e,
                            E::Empty {
                                kind: Kind::Endpoint
                            }
                        )
                    }),
                ),
                ("huggingface.co", Some(|e| matches!(e, E::NotUrl { .. }))),
                (
                    " https://huggingface.co",
                    Some(|e| matches!(e, E::NotUrl { .. })),
                ),
                (
                    "https://hugging face.co",
                    Some(|e| matches!(e, E::NotUrl { .. })),
                ),
                ("http://", Some(|e| matches!(e, E::NotUrl { .. }))),
                (
                    "ftp://mirror.example",
                    Some(|e| matches!(e, E::Scheme { .. })),
                ),
                ("file:///srv/hf", Some(|e| matches!(e, E::Scheme { .. }))),
                (
                    "https://mirror.example/?a=1",
                    Some(|e| matches!(e, E::QueryOrFragment { .. })),
                ),
                (
                    "https://mirror.example/#x",
                    Some(|e| matches!(e, E::QueryOrFragment { .. })),
                ),
                (
                    "https://user:pw@mirror.example",
                    Some(|e| matches!(e, E::Credentials { .. })),
                ),
            ],
            "hf_endpoint",
        );
        // Trailing slashes go, so `{endpoint}/{repo}` has exactly one.
        assert_eq!(
            hf_endpoint("https://mirror.example/hf//").unwrap(),
            "https://mirror.example/hf"
        );
        assert_eq!(
            hf_endpoint("https://huggingface.co/").unwrap(),
            "https://huggingface.co"
        );
    }
}
