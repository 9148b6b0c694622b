//! `proxy-rewrite`'s templates, split into parts once when the configuration is compiled.
//!
//! - [`Template`]: a `uri` or a header value, APISIX's `resolve_var` syntax: `$name`,
//!   `${name}`, `${name ?? default}`; a `$` after a backslash stays as written. In header
//!   values `$N` and `${N}` are the captures of the `regex_uri` pair that matched
//!   (`resolve_var_with_captures`, which runs first). Variables must be ones the gateway
//!   knows ([`vars::is_known`]): APISIX would quietly put an empty string where an unknown
//!   one stands, which is never what the author meant.
//! - [`Replacement`]: the second string of a `regex_uri` pair, `ngx.re.sub`'s template:
//!   `$0`…`$N` and `${N}` for captures, `$$` for a dollar sign, with its compile errors.

use std::fmt::Write as _;

use regex::bytes::Captures;

use crate::plugins::phase::{Ctx, Request};
use crate::plugins::vars::{self, Facts};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text copied as it is.
    Lit(String),
    /// A request variable, with the default after `??` (an absent one without a default
    /// gives an empty string).
    Var {
        /// The variable's name, without `$`.
        name: String,
        /// The value used when the variable has none.
        default: Option<String>,
    },
    /// Capture `n` of the `regex_uri` match (empty when there is none).
    Capture(usize),
}

/// A compiled `uri` or header-value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The parts, in order.
    pub parts: Vec<Part>,
}

impl Template {
    /// Parses `text`; `captures` enables `$N` (header values). Errors name the variable.
    pub fn parse(text: &str, captures: bool) -> Result<Template, String> {
        let b = text.as_bytes();
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        // Every split point below is an ASCII byte, so each slice is on a char boundary.
        let mut lit_from = 0;
        macro_rules! flush {
            ($upto:expr) => {{
                lit.push_str(&text[lit_from..$upto]);
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
            }};
        }
        while i < b.len() {
            if b[i] != b'$' || (i > 0 && b[i - 1] == b'\\') {
                i += 1;
                continue;
            }
            if captures {
                // APISIX's `\$\{?(\d+)\}?`: sloppy about the braces, as it is.
                let mut j = i + 1;
                if b.get(j) == Some(&b'{') {
                    j += 1;
                }
                let digits = j;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if j > digits {
                    let n = text[digits..j].parse().unwrap_or(usize::MAX);
                    if b.get(j) == Some(&b'}') {
                        j += 1;
                    }
                    flush!(i);
                    parts.push(Part::Capture(n));
                    i = j;
                    lit_from = j;
                    continue;
                }
            }
            if b.get(i + 1) == Some(&b'{') {
                if let Some(close) = text[i + 2..].find('}') {
                    let inner = &text[i + 2..i + 2 + close];
                    let mut segs = inner.splitn(3, "??").map(str::trim);
                    let name = segs.next().unwrap_or_default();
                    let default = segs.next().map(str::to_string);
                    check_var(name)?;
                    flush!(i);
                    parts.push(Part::Var {
                        name: name.to_string(),
                        default,
                    });
                    i += close + 3;
                    lit_from = i;
                    continue;
                }
            }
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] == b'.') {
                j += 1;
            }
            if j > i + 1 {
                let name = &text[i + 1..j];
                check_var(name)?;
                flush!(i);
                parts.push(Part::Var {
                    name: name.to_string(),
                    default: None,
                });
                i = j;
                lit_from = j;
                continue;
            }
            i += 1;
        }
        flush!(b.len());
        Ok(Template { parts })
    }

    /// Whether the template is one piece of text (nothing to resolve per request).
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Appends the template's value to `out`; `escape_var` is applied to each variable's
    /// value (the `uri` escapes `?` in them).
    pub fn render(
        &self,
        out: &mut Vec<u8>,
        env: &RenderEnv<'_, '_>,
        escape_var: impl Fn(&[u8], &mut Vec<u8>),
    ) {
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.extend_from_slice(s.as_bytes()),
                Part::Var { name, default } => match vars::var(name, env.req, env.ctx, env.facts) {
                    Some(v) => escape_var(v.as_bytes(), out),
                    None => {
                        if let Some(d) = default {
                            escape_var(d.as_bytes(), out);
                        }
                    }
                },
                Part::Capture(n) => {
                    if let Some(m) = env.captures.and_then(|c| c.get(*n)) {
                        out.extend_from_slice(m.as_bytes());
                    }
                }
            }
        }
    }
}

/// What a template reads when it is rendered.
pub struct RenderEnv<'r, 'a> {
    /// The request.
    pub req: &'r Request<'a>,
    /// What the plugins before learnt (the consumer).
    pub ctx: &'r Ctx,
    /// Route and connection facts.
    pub facts: &'r Facts<'r>,
    /// The captures of the `regex_uri` pair that matched, if one did.
    pub captures: Option<&'r Captures<'a>>,
}

fn check_var(name: &str) -> Result<(), String> {
    if vars::is_known(name) {
        return Ok(());
    }
    let mut msg = String::new();
    let _ = write!(msg, "unknown variable \"${name}\"");
    if !name.is_empty() && name.bytes().all(|c| c.is_ascii_digit()) {
        msg.push_str(" (regex captures are only available in header values)");
    } else if name.contains('.') {
        let _ = write!(
            msg,
            " (write ${{{}}} to end the name before the dot)",
            name.split('.').next().unwrap_or_default()
        );
    }
    Err(msg)
}

/// A `regex_uri` replacement: literal bytes and capture numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replacement {
    parts: Vec<RepPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum RepPart {
    Lit(Vec<u8>),
    Group(usize),
}

impl Replacement {
    /// Compiles `src` as `ngx.re.sub` does (lua-nginx-module's script compiler); the error
    /// is its message.
    pub fn parse(src: &str) -> Result<Replacement, String> {
        let invalid = || format!("invalid capturing variable name found in \"{src}\"");
        let b = src.as_bytes();
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'$' {
                lit.push(b[i]);
                i += 1;
                continue;
            }
            i += 1;
            let Some(&c) = b.get(i) else {
                return Err(invalid());
            };
            if c == b'$' {
                lit.push(b'$');
                i += 1;
                continue;
            }
            let mut num = c.is_ascii_digit();
            let mut bracket = false;
            if c == b'{' {
                bracket = true;
                i += 1;
                let Some(&c) = b.get(i) else {
                    return Err(invalid());
                };
                num = c.is_ascii_digit();
            }
            let start = i;
            let mut end = i;
            let mut n: usize = 0;
            while i < b.len() {
                let ch = b[i];
                if ch == b'}' && bracket {
                    i += 1;
                    bracket = false;
                    break;
                }
                if num {
                    if ch.is_ascii_digit() {
                        n = n.saturating_mul(10).saturating_add(usize::from(ch - b'0'));
                        i += 1;
                        end = i;
                        continue;
                    }
                    break;
                }
                if ch.is_ascii_alphanumeric() || ch == b'_' {
                    i += 1;
                    end = i;
                    continue;
                }
                break;
            }
            let name = String::from_utf8_lossy(&b[start..end]);
            if bracket {
                return Err(format!(
                    "the closing bracket in \"{name}\" variable is missing"
                ));
            }
            if name.is_empty() {
                return Err(invalid());
            }
            if !num {
                return Err(format!(
                    "attempt to use named capturing variable \"{name}\" (named captures not supported yet)"
                ));
            }
            if !lit.is_empty() {
                parts.push(RepPart::Lit(std::mem::take(&mut lit)));
            }
            parts.push(RepPart::Group(n));
        }
        if !lit.is_empty() {
            parts.push(RepPart::Lit(lit));
        }
        Ok(Replacement { parts })
    }

    /// Appends the replacement for the match `caps` to `out` (a group that did not take
    /// part, or does not exist, gives nothing).
    pub fn expand(&self, caps: &Captures<'_>, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                RepPart::Lit(l) => out.extend_from_slice(l),
                RepPart::Group(n) => {
                    if let Some(m) = caps.get(*n) {
                        out.extend_from_slice(m.as_bytes());
                    }
                }
            }
        }
    }
}
