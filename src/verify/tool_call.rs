//! The tool-call check's fixed request: one small function with typed arguments, the prompt that
//! asks for a call of it, the GBNF grammar that admits only a matching call, and the checker that
//! finds a matching JSON object in any text. Pure text in, verdict out; the generations
//! themselves are the caller's.

use serde_json::{Map, Value};

/// The function the model is asked to call.
pub const FUNCTION: &str = "get_disk_usage";

/// Its arguments, in the order the grammar writes them.
pub const ARGUMENTS: &[(&str, ArgType)] = &[
    ("host", ArgType::String),
    ("warn_percent", ArgType::Integer),
];

/// A JSON type an argument may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgType {
    String,
    Integer,
}

impl ArgType {
    fn name(self) -> &'static str {
        match self {
            ArgType::String => "string",
            ArgType::Integer => "integer",
        }
    }

    fn admits(self, v: &Value) -> bool {
        match self {
            ArgType::String => v.is_string(),
            ArgType::Integer => v.is_i64() || v.is_u64(),
        }
    }
}

/// `get_disk_usage(host: string, warn_percent: integer)`, for reports.
pub fn signature() -> String {
    let args: Vec<String> = ARGUMENTS
        .iter()
        .map(|(n, t)| format!("{n}: {}", t.name()))
        .collect();
    format!("{FUNCTION}({})", args.join(", "))
}

/// The system message: the tool, its JSON schema, and the expected reply shape.
pub fn system_prompt() -> String {
    let props: Vec<String> = ARGUMENTS
        .iter()
        .map(|(n, t)| format!("\"{n}\": {{\"type\": \"{}\"}}", t.name()))
        .collect();
    let required: Vec<String> = ARGUMENTS.iter().map(|(n, _)| format!("\"{n}\"")).collect();
    format!(
        "You can call one tool. Tool: {{\"name\": \"{FUNCTION}\", \"description\": \"Disk usage \
         of a server's file systems\", \"parameters\": {{\"type\": \"object\", \"properties\": \
         {{{}}}, \"required\": [{}]}}}}. To call it, reply with only a JSON object of the form \
         {{\"name\": \"{FUNCTION}\", \"arguments\": {{...}}}} and nothing else.",
        props.join(", "),
        required.join(", ")
    )
}

/// The user's request.
pub const REQUEST: &str = "How full are the disks on db01? Warn me above 90 percent.";

/// A GBNF grammar (llama.cpp's grammar format) that admits exactly one call of [`FUNCTION`] with
/// the arguments of [`ARGUMENTS`] in order. Strings and integers are bounded, so a constrained
/// generation ends within [`CONSTRAINED_MAX_CHARS`] characters whatever the model prefers.
pub fn grammar() -> String {
    let mut args = String::new();
    for (i, (name, ty)) in ARGUMENTS.iter().enumerate() {
        if i > 0 {
            args.push_str(" \",\" ws ");
        }
        let value = match ty {
            ArgType::String => "str",
            ArgType::Integer => "int",
        };
        args.push_str(&format!("\"\\\"{name}\\\"\" ws \":\" ws {value} ws"));
    }
    format!(
        "root ::= \"{{\" ws \"\\\"name\\\"\" ws \":\" ws \"\\\"{FUNCTION}\\\"\" ws \",\" ws \
         \"\\\"arguments\\\"\" ws \":\" ws args ws \"}}\"\n\
         args ::= \"{{\" ws {args} \"}}\"\n\
         str ::= \"\\\"\" [a-zA-Z0-9._-]{{1,{STR_MAX}}} \"\\\"\"\n\
         int ::= \"0\" | [1-9] [0-9]{{0,{INT_MAX_DIGITS}}}\n\
         ws ::= \" \"?\n"
    )
}

const STR_MAX: usize = 32;
const INT_MAX_DIGITS: usize = 5;
/// The longest text the grammar admits (a bound for the constrained generation's token budget:
/// every token adds at least one character).
pub const CONSTRAINED_MAX_CHARS: usize = 160;

/// Whether `text` holds a JSON object that is a call of [`FUNCTION`] with exactly the arguments
/// of [`ARGUMENTS`], each of its type. `Ok` names the object; `Err` says what was wrong with the
/// closest one (or that there was none).
pub fn check(text: &str) -> Result<String, String> {
    let mut first_problem: Option<String> = None;
    for (i, _) in text.match_indices('{') {
        let mut objects = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
        let Some(Ok(v)) = objects.next() else {
            continue;
        };
        let Some(o) = v.as_object() else { continue };
        match matches(o) {
            Ok(()) => return Ok(format!("a call of {} at character {i}", signature())),
            Err(why) => {
                first_problem.get_or_insert(why);
            }
        }
    }
    Err(first_problem.unwrap_or_else(|| "no JSON object in the answer".to_string()))
}

fn matches(o: &Map<String, Value>) -> Result<(), String> {
    for k in o.keys() {
        if k != "name" && k != "arguments" {
            return Err(format!("the call has an unexpected field `{k}`"));
        }
    }
    match o.get("name") {
        Some(Value::String(n)) if n == FUNCTION => {}
        Some(Value::String(n)) => return Err(format!("the call names `{n}`, not `{FUNCTION}`")),
        Some(_) => return Err("the call's `name` is not a string".into()),
        None => return Err("the JSON object has no `name`".into()),
    }
    let Some(args) = o.get("arguments") else {
        return Err("the call has no `arguments`".into());
    };
    let Some(args) = args.as_object() else {
        return Err("the call's `arguments` is not an object".into());
    };
    for k in args.keys() {
        if !ARGUMENTS.iter().any(|(n, _)| n == k) {
            return Err(format!(
                "the call has an argument `{k}` the schema does not declare"
            ));
        }
    }
    for (name, ty) in ARGUMENTS {
        match args.get(*name) {
            None => return Err(format!("the call lacks the argument `{name}`")),
            Some(v) if !ty.admits(v) => {
                return Err(format!(
                    "the argument `{name}` is not of type {}",
                    ty.name()
                ))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matching_call_is_found_inside_prose_and_fences() {
        let t = "Sure!\n```json\n{\"name\": \"get_disk_usage\", \"arguments\": {\"host\": \"db01\", \"warn_percent\": 90}}\n```";
        assert!(check(t).is_ok(), "{:?}", check(t));
    }

    #[test]
    fn mismatches_say_what_is_wrong() {
        let cases = [
            ("no json here", "no JSON object"),
            ("{\"name\": \"df\", \"arguments\": {}}", "names `df`"),
            ("{\"name\": \"get_disk_usage\"}", "no `arguments`"),
            (
                "{\"name\": \"get_disk_usage\", \"arguments\": {\"host\": \"db01\", \"warn_percent\": \"90\"}}",
                "not of type integer",
            ),
            (
                "{\"name\": \"get_disk_usage\", \"arguments\": {\"host\": \"db01\", \"warn_percent\": 90, \"unit\": \"GiB\"}}",
                "does not declare",
            ),
            ("{\"name\": \"get_disk_usage\", \"arguments\": {\"host\": \"db01\"", "no JSON object"),
        ];
        for (text, expected) in cases {
            let e = check(text).unwrap_err();
            assert!(e.contains(expected), "{text}: {e}");
        }
    }

    #[test]
    fn the_grammar_names_the_schema() {
        let g = grammar();
        assert!(g.starts_with("root ::= "), "{g}");
        assert!(g.contains(FUNCTION) && g.contains("warn_percent"), "{g}");
        // The longest admitted text: every string and number at its bound, every optional space.
        let longest = format!(
            "{{ \"name\" : \"{FUNCTION}\" , \"arguments\" : {{ \"host\" : \"{}\" , \"warn_percent\" : {} }} }}",
            "x".repeat(STR_MAX),
            "9".repeat(INT_MAX_DIGITS + 1)
        );
        assert!(longest.len() <= CONSTRAINED_MAX_CHARS, "{}", longest.len());
        assert!(check(&longest).is_ok());
    }
}
