//! The generated SentencePiece-style tokenizer: special tokens, the 256 byte tokens, common
//! words with all their prefixes, filler pieces up to the vocabulary size, and the ChatML chat
//! template.

/// The ChatML template written into every generated model.
pub const CHAT_TEMPLATE: &str = "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// Token ids of the generated tokenizer's special tokens.
pub const TOKEN_UNK: u32 = 0;
pub const TOKEN_BOS: u32 = 1;
pub const TOKEN_EOS: u32 = 2;
pub const TOKEN_IM_START: u32 = 3;
pub const TOKEN_IM_END: u32 = 4;
/// First of the 256 `<0xNN>` byte tokens.
pub const FIRST_BYTE_TOKEN: u32 = 5;
/// Smallest vocabulary the generated tokenizer fits in (special, byte and text tokens).
pub fn min_vocab() -> u32 {
    FIRST_BYTE_TOKEN + 256 + text_pieces().len() as u32
}

/// Common English words, so that ordinary text tokenises into words rather than bytes.
const WORDS: &[&str] = &[
    "the", "of", "and", "to", "a", "in", "is", "it", "you", "that", "he", "was", "for", "on",
    "are", "with", "as", "I", "his", "they", "be", "at", "one", "have", "this", "from", "or",
    "had", "by", "word", "but", "what", "some", "we", "can", "out", "other", "were", "all",
    "there", "when", "up", "use", "your", "how", "said", "an", "each", "she", "which", "do",
    "their", "time", "if", "will", "way", "about", "many", "then", "them", "write", "would",
    "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has", "look",
    "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my",
    "over", "know", "water", "than", "call", "first", "who", "may", "down", "side", "been", "now",
    "find", "hello", "server", "model", "answer",
];

/// SentencePiece token types as llama.cpp numbers them.
const TT_NORMAL: i32 = 1;
const TT_UNKNOWN: i32 = 2;
const TT_CONTROL: i32 = 3;
const TT_BYTE: i32 = 6;
const TT_UNUSED: i32 = 5;

/// The text pieces of the vocabulary: `▁`, single characters, and every prefix of each word
/// behind `▁`. SentencePiece merges two adjacent pieces only when the result is a token, so a word
/// is reachable only through all its prefixes.
fn text_pieces() -> Vec<String> {
    let mut out: Vec<String> = vec!["\u{2581}".to_string()];
    let chars = ('a'..='z')
        .chain('A'..='Z')
        .chain('0'..='9')
        .chain(".,;:!?'\"-()".chars());
    out.extend(chars.map(|c| c.to_string()));
    for w in WORDS {
        for (i, _) in w.char_indices().skip(1).chain([(w.len(), ' ')]) {
            out.push(format!("\u{2581}{}", &w[..i]));
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.clone()));
    out
}

/// Tokens, scores and token types of the generated vocabulary of `n` entries (`n >= min_vocab()`).
pub(super) fn vocabulary(n: u32) -> (Vec<String>, Vec<f32>, Vec<i32>) {
    let mut tokens = Vec::with_capacity(n as usize);
    let mut types = Vec::with_capacity(n as usize);
    for (t, ty) in [
        ("<unk>", TT_UNKNOWN),
        ("<s>", TT_CONTROL),
        ("</s>", TT_CONTROL),
        ("<|im_start|>", TT_CONTROL),
        ("<|im_end|>", TT_CONTROL),
    ] {
        tokens.push(t.to_string());
        types.push(ty);
    }
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        // Random weights pick tokens at random. A lone byte >= 0x80 is not UTF-8 on its own, so
        // those byte tokens are marked unused (llama.cpp renders them as nothing): the text of a
        // generated model stays valid UTF-8 and a verification's UTF-8 check stays meaningful.
        // Prompts are ASCII, so tokenising never needs them.
        types.push(if b < 0x80 { TT_BYTE } else { TT_UNUSED });
    }
    for p in text_pieces() {
        tokens.push(p);
        types.push(TT_NORMAL);
    }
    let mut i = 0u32;
    while tokens.len() < n as usize {
        tokens.push(format!("\u{2581}x{i}"));
        types.push(TT_NORMAL);
        i += 1;
    }
    // SentencePiece merges the highest-scoring pair first: longer pieces score higher, so a word
    // ends as one token; filler scores lowest. Special and byte tokens score 0 (not merged).
    let first_filler = min_vocab();
    let scores = (0..n)
        .map(|id| {
            if id < FIRST_BYTE_TOKEN + 256 {
                0.0
            } else {
                let piece = &tokens[id as usize];
                let filler = id >= first_filler;
                piece.chars().count() as f32 - if filler { 1000.0 } else { 0.0 }
            }
        })
        .collect();
    (tokens, scores, types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_has_the_requested_size_and_unique_pieces() {
        let (tokens, scores, types) = vocabulary(min_vocab() + 10);
        assert_eq!(tokens.len(), (min_vocab() + 10) as usize);
        assert_eq!(scores.len(), tokens.len());
        assert_eq!(types.len(), tokens.len());
        let unique: std::collections::HashSet<_> = tokens.iter().collect();
        assert_eq!(unique.len(), tokens.len());
        assert_eq!(tokens[(FIRST_BYTE_TOKEN + 10) as usize], "<0x0A>");
        assert_eq!(tokens[TOKEN_IM_END as usize], "<|im_end|>");
    }
}
