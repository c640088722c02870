//! Names in scope: `let` bindings, function parameters, and workspace functions.

use std::collections::HashMap;
use std::sync::Arc;

use crate::ir::{Pipeline, Scalar};
use crate::syntax::ast::{self, Span};

/// A name's meaning.
#[derive(Debug, Clone)]
pub enum Binding {
    Scalar(Scalar),
    Table(Pipeline),
    Function(Function),
}

/// A function: parameters, body, and the names it saw where it was defined.
#[derive(Debug, Clone)]
pub struct Function {
    pub params: Vec<ast::Param>,
    pub body: Vec<ast::Statement>,
    pub env: Env,
    pub span: Span,
    /// A workspace function (from `--functions`): its body sees every workspace
    /// function, whatever the file order, and its positions are not in the rule.
    pub workspace: bool,
}

/// The names in scope. Cheap to clone: functions capture it.
#[derive(Debug, Clone, Default)]
pub struct Env {
    bindings: Arc<HashMap<String, Binding>>,
}

impl Env {
    pub fn get(&self, name: &str) -> Option<&Binding> {
        self.bindings.get(name)
    }

    pub fn bind(&mut self, name: &str, binding: Binding) {
        Arc::make_mut(&mut self.bindings).insert(name.to_string(), binding);
    }
}

/// Workspace functions supplied by the user (`--functions FILE`): KQL `let` definitions
/// or `.create-or-alter function` commands.
#[derive(Debug, Clone, Default)]
pub struct Functions {
    definitions: Vec<ast::Let>,
}

impl Functions {
    pub fn none() -> Functions {
        Functions::default()
    }

    /// Reads a functions file. `.create function` / `.create-or-alter function` commands
    /// are rewritten to `let` statements first (control commands are not KQL queries).
    pub fn parse(text: &str) -> Result<Functions, crate::syntax::SyntaxError> {
        let rewritten = rewrite_commands(text);
        // `let` statements alone are a valid query; add a dummy result if the file ends
        // with a `;` so the parser accepts it either way.
        let query = crate::syntax::parse(&rewritten)?;
        let definitions = query
            .statements
            .into_iter()
            .filter_map(|s| match s {
                ast::Statement::Let(l) => Some(l),
                _ => None,
            })
            .collect();
        Ok(Functions { definitions })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.definitions.iter().map(|l| l.name.name.as_str())
    }

    /// The environment the rule's query starts in: the workspace functions. Stored
    /// functions have no order: each body is read with all of them in scope.
    pub(super) fn env(&self) -> Env {
        let mut env = Env::default();
        for l in &self.definitions {
            if let ast::LetValue::Function(f) | ast::LetValue::View(f) = &l.value {
                let binding = Binding::Function(Function {
                    params: f.params.clone(),
                    body: f.body.clone(),
                    env: Env::default(),
                    span: f.span,
                    workspace: true,
                });
                env.bind(&l.name.name, binding);
            }
        }
        env
    }
}

/// `.create-or-alter function with (folder="x") Name(a:string) { body }` ->
/// `let Name = (a:string) { body };`
fn rewrite_commands(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = find_command(rest) {
        out.push_str(&rest[..start]);
        let command = &rest[start..];
        match parse_command(command) {
            Some((name, params, body, used)) => {
                out.push_str(&format!("let {name} = ({params}) {{{body}}};"));
                rest = &command[used..];
            }
            None => {
                out.push_str(&command[..1]);
                rest = &command[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn find_command(text: &str) -> Option<usize> {
    [
        ".create-or-alter function",
        ".create function",
        ".alter function",
    ]
    .iter()
    .filter_map(|c| text.find(c))
    .min()
}

/// (name, parameter text, body text, bytes used) of one function command.
fn parse_command(command: &str) -> Option<(String, String, String, usize)> {
    let after = command.find("function")? + "function".len();
    let mut i = after;
    let bytes = command.as_bytes();
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if command[i..].starts_with("with") {
        let open = i + command[i..].find('(')?;
        i = matching(command, open, b'(', b')')? + 1;
        skip_ws(&mut i);
    }
    let name_end = i + command[i..].find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    let name = command[i..name_end].to_string();
    i = name_end;
    skip_ws(&mut i);
    if bytes.get(i) != Some(&b'(') {
        return None;
    }
    let params_end = matching(command, i, b'(', b')')?;
    let params = command[i + 1..params_end].to_string();
    i = params_end + 1;
    skip_ws(&mut i);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    let body_end = matching(command, i, b'{', b'}')?;
    let body = command[i + 1..body_end].to_string();
    Some((name, params, body, body_end + 1))
}

/// The index of the bracket closing the one at `open` (strings skipped).
fn matching(text: &str, open: usize, left: u8, right: u8) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if b == left => depth += 1,
            None if b == right => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            None => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_or_alter_becomes_let() {
        let text = ".create-or-alter function with (folder=\"Parsers\", docstring=\"x\") ExcludeAllowlistedIPs(T:(*)) {\n T | where IPAddress !in (\"1.2.3.4\")\n}";
        let f = Functions::parse(text).expect("parses");
        assert_eq!(f.names().collect::<Vec<_>>(), vec!["ExcludeAllowlistedIPs"]);
    }

    #[test]
    fn let_definitions_are_read() {
        let f = Functions::parse("let A = (x:string) { x }; let B = () { SigninLogs };").unwrap();
        assert_eq!(f.names().collect::<Vec<_>>(), vec!["A", "B"]);
    }
}
