//! The `conditions` query language. Owns the tokenizer, a recursive-descent parser and the evaluator over rendered
//! records. Grammar (keywords case-insensitive):
//!
//! ```text
//! expr       := term ("or" term)*
//! term       := factor ("and" factor)*
//! factor     := "not" factor | "(" expr ")" | comparison
//! comparison := path op value | path ["not"] "like" value | path ["not"] "contains" value
//!             | path ["not"] "in" "(" value ("," value)* ")"
//! op         := "=" | "!=" | "<>" | "<" | "<=" | ">" | ">="
//! path       := name ("/" name)*            e.g. company/identifier, _info/lastUpdated
//! value      := 'text' | "text" | number | true | false | null | [2026-01-01T00:00:00Z]
//! ```
//!
//! Quotes inside strings are doubled (`'O''Brien'`) or backslash-escaped (`'O\'Brien'`). `like` takes `%` (any run)
//! and `_` (one character). Text comparisons are case-insensitive, as on ConnectWise's SQL Server. A top-level
//! `lastUpdated` means `_info/lastUpdated`. A path through an array matches when any element does. As in SQL, a
//! missing or null field satisfies only `= null` (and `!= null` only a present one). Syntax errors name the position.

use std::cmp::Ordering;

use serde_json::Value;

use crate::clock;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
    Null,
    Date(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    Contains,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp {
        path: Vec<String>,
        op: Op,
        value: Literal,
    },
    In {
        path: Vec<String>,
        values: Vec<Literal>,
    },
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Op(Op),
    Word(String),
    Path(Vec<String>),
    Lit(Literal),
    End,
}

struct Lexer {
    chars: Vec<char>,
    pos: usize,
}

impl Lexer {
    fn tokens(src: &str) -> Result<Vec<(Tok, usize)>, String> {
        let mut lx = Lexer {
            chars: src.chars().collect(),
            pos: 0,
        };
        let mut out = Vec::new();
        loop {
            while lx.peek().is_some_and(char::is_whitespace) {
                lx.pos += 1;
            }
            let at = lx.pos + 1;
            let Some(c) = lx.peek() else {
                out.push((Tok::End, at));
                return Ok(out);
            };
            let tok = match c {
                '(' => lx.single(Tok::LParen),
                ')' => lx.single(Tok::RParen),
                ',' => lx.single(Tok::Comma),
                '=' => lx.single(Tok::Op(Op::Eq)),
                '!' if lx.at(1) == Some('=') => lx.double(Tok::Op(Op::Ne)),
                '<' if lx.at(1) == Some('=') => lx.double(Tok::Op(Op::Le)),
                '<' if lx.at(1) == Some('>') => lx.double(Tok::Op(Op::Ne)),
                '<' => lx.single(Tok::Op(Op::Lt)),
                '>' if lx.at(1) == Some('=') => lx.double(Tok::Op(Op::Ge)),
                '>' => lx.single(Tok::Op(Op::Gt)),
                '\'' | '"' => Tok::Lit(Literal::Str(lx.string(c, at)?)),
                '[' => Tok::Lit(lx.date(at)?),
                c if c.is_ascii_digit()
                    || (c == '-' && lx.at(1).is_some_and(|d| d.is_ascii_digit())) =>
                {
                    Tok::Lit(lx.number(at)?)
                }
                c if c.is_alphabetic() || c == '_' => lx.word()?,
                other => return Err(format!("unexpected character '{other}' at position {at}")),
            };
            out.push((tok, at));
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at(&self, offset: usize) -> Option<char> {
        self.chars.get(self.pos + offset).copied()
    }

    fn single(&mut self, t: Tok) -> Tok {
        self.pos += 1;
        t
    }

    fn double(&mut self, t: Tok) -> Tok {
        self.pos += 2;
        t
    }

    fn string(&mut self, quote: char, at: usize) -> Result<String, String> {
        self.pos += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(format!("unterminated string starting at position {at}")),
                Some('\\') if matches!(self.at(1), Some(q) if q == quote || q == '\\') => {
                    s.push(self.at(1).unwrap_or(quote));
                    self.pos += 2;
                }
                Some(c) if c == quote => {
                    if self.at(1) == Some(quote) {
                        s.push(quote);
                        self.pos += 2;
                    } else {
                        self.pos += 1;
                        return Ok(s);
                    }
                }
                Some(c) => {
                    s.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn date(&mut self, at: usize) -> Result<Literal, String> {
        self.pos += 1;
        let start = self.pos;
        while self.peek().is_some_and(|c| c != ']') {
            self.pos += 1;
        }
        if self.peek().is_none() {
            return Err(format!("unterminated date starting at position {at}"));
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        self.pos += 1;
        clock::parse_utc(&text).map(Literal::Date).ok_or_else(|| {
            format!("invalid date [{text}] at position {at}; expected [YYYY-MM-DDTHH:MM:SSZ]")
        })
    }

    fn number(&mut self, at: usize) -> Result<Literal, String> {
        let start = self.pos;
        self.pos += 1;
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        text.parse::<f64>()
            .map(Literal::Num)
            .map_err(|_| format!("invalid number '{text}' at position {at}"))
    }

    fn word(&mut self) -> Result<Tok, String> {
        let mut segments = Vec::new();
        loop {
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                self.pos += 1;
            }
            if start == self.pos {
                return Err(format!(
                    "expected a field name after '/' at position {}",
                    self.pos + 1
                ));
            }
            segments.push(self.chars[start..self.pos].iter().collect::<String>());
            if self.peek() == Some('/') {
                self.pos += 1;
            } else {
                break;
            }
        }
        if segments.len() == 1 {
            let word = segments[0].to_ascii_lowercase();
            match word.as_str() {
                "true" => return Ok(Tok::Lit(Literal::Bool(true))),
                "false" => return Ok(Tok::Lit(Literal::Bool(false))),
                "null" => return Ok(Tok::Lit(Literal::Null)),
                "and" | "or" | "not" | "like" | "contains" | "in" => return Ok(Tok::Word(word)),
                _ => {}
            }
        }
        Ok(Tok::Path(segments))
    }
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    i: usize,
}

/// Parses a `conditions` string.
pub(crate) fn parse(src: &str) -> Result<Expr, String> {
    let mut p = Parser {
        toks: Lexer::tokens(src)?,
        i: 0,
    };
    if p.peek() == &Tok::End {
        return Err("conditions is empty".to_string());
    }
    let e = p.or()?;
    match p.peek() {
        Tok::End => Ok(e),
        _ => Err(format!(
            "unexpected {} at position {}",
            p.describe(),
            p.pos()
        )),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].0
    }

    fn pos(&self) -> usize {
        self.toks[self.i].1
    }

    fn next(&mut self) -> Tok {
        let t = self.toks[self.i].0.clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Word(x) if x == w)
    }

    fn describe(&self) -> String {
        match self.peek() {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Op(_) => "operator".into(),
            Tok::Word(w) => format!("'{w}'"),
            Tok::Path(p) => format!("'{}'", p.join("/")),
            Tok::Lit(_) => "value".into(),
            Tok::End => "end of conditions".into(),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.is_word("or") {
            self.next();
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.factor()?;
        while self.is_word("and") {
            self.next();
            left = Expr::And(Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Expr, String> {
        if self.is_word("not") {
            self.next();
            return Ok(Expr::Not(Box::new(self.factor()?)));
        }
        if self.peek() == &Tok::LParen {
            self.next();
            let e = self.or()?;
            if self.peek() != &Tok::RParen {
                return Err(format!(
                    "expected ')' at position {} but found {}",
                    self.pos(),
                    self.describe()
                ));
            }
            self.next();
            return Ok(e);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, String> {
        let path = match self.peek() {
            Tok::Path(p) => p.clone(),
            _ => {
                return Err(format!(
                    "expected a field name at position {} but found {}",
                    self.pos(),
                    self.describe()
                ));
            }
        };
        self.next();
        let negated = if self.is_word("not") {
            self.next();
            true
        } else {
            false
        };
        let wrap = |e: Expr| if negated { Expr::Not(Box::new(e)) } else { e };
        match self.peek().clone() {
            Tok::Op(op) if !negated => {
                self.next();
                let value = self.value()?;
                Ok(Expr::Cmp { path, op, value })
            }
            Tok::Word(w) if w == "like" || w == "contains" => {
                self.next();
                let op = if w == "like" { Op::Like } else { Op::Contains };
                let value = self.value()?;
                if !matches!(value, Literal::Str(_)) {
                    return Err(format!(
                        "'{w}' needs a quoted string after '{}'",
                        path.join("/")
                    ));
                }
                Ok(wrap(Expr::Cmp { path, op, value }))
            }
            Tok::Word(w) if w == "in" => {
                self.next();
                if self.peek() != &Tok::LParen {
                    return Err(format!(
                        "expected '(' after 'in' at position {}",
                        self.pos()
                    ));
                }
                self.next();
                let mut values = vec![self.value()?];
                while self.peek() == &Tok::Comma {
                    self.next();
                    values.push(self.value()?);
                }
                if self.peek() != &Tok::RParen {
                    return Err(format!(
                        "expected ',' or ')' in list at position {}",
                        self.pos()
                    ));
                }
                self.next();
                Ok(wrap(Expr::In { path, values }))
            }
            _ => Err(format!(
                "expected an operator after '{}' at position {} but found {}",
                path.join("/"),
                self.pos(),
                self.describe()
            )),
        }
    }

    fn value(&mut self) -> Result<Literal, String> {
        match self.peek().clone() {
            Tok::Lit(l) => {
                self.next();
                Ok(l)
            }
            _ => Err(format!(
                "expected a value at position {} but found {}",
                self.pos(),
                self.describe()
            )),
        }
    }
}

/// Every field path the expression mentions.
pub(crate) fn paths(e: &Expr) -> Vec<&[String]> {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            let mut v = paths(a);
            v.extend(paths(b));
            v
        }
        Expr::Not(a) => paths(a),
        Expr::Cmp { path, .. } | Expr::In { path, .. } => vec![path.as_slice()],
    }
}

/// Does the (rendered) record satisfy the expression?
pub(crate) fn eval(e: &Expr, record: &Value) -> bool {
    match e {
        Expr::And(a, b) => eval(a, record) && eval(b, record),
        Expr::Or(a, b) => eval(a, record) || eval(b, record),
        Expr::Not(a) => !eval(a, record),
        Expr::Cmp { path, op, value } => {
            let values = lookup(record, path);
            match (op, value) {
                (Op::Eq, Literal::Null) => values.is_empty(),
                (Op::Ne, Literal::Null) => !values.is_empty(),
                (_, Literal::Null) => false,
                (Op::Ne, lit) => {
                    !values.is_empty()
                        && !values
                            .iter()
                            .any(|v| compare(v, lit) == Some(Ordering::Equal))
                }
                (Op::Like, Literal::Str(pattern)) => values
                    .iter()
                    .any(|v| text_of(v).is_some_and(|t| like(&t, pattern))),
                (Op::Contains, Literal::Str(needle)) => values.iter().any(|v| {
                    text_of(v).is_some_and(|t| t.to_lowercase().contains(&needle.to_lowercase()))
                }),
                (op, lit) => values.iter().any(|v| {
                    compare(v, lit).is_some_and(|o| match op {
                        Op::Eq => o == Ordering::Equal,
                        Op::Lt => o == Ordering::Less,
                        Op::Le => o != Ordering::Greater,
                        Op::Gt => o == Ordering::Greater,
                        Op::Ge => o != Ordering::Less,
                        _ => false,
                    })
                }),
            }
        }
        Expr::In { path, values } => {
            let found = lookup(record, path);
            found.iter().any(|v| {
                values
                    .iter()
                    .any(|lit| compare(v, lit) == Some(Ordering::Equal))
            })
        }
    }
}

/// The non-null values at `path` (arrays fan out). A leading `lastUpdated` means `_info/lastUpdated`.
pub(crate) fn lookup<'a>(record: &'a Value, path: &[String]) -> Vec<&'a Value> {
    let aliased: Vec<String>;
    let path = if path.first().map(String::as_str) == Some("lastUpdated")
        && record.get("lastUpdated").is_none()
    {
        aliased = ["_info", "lastUpdated"]
            .into_iter()
            .map(String::from)
            .chain(path[1..].iter().cloned())
            .collect();
        &aliased[..]
    } else {
        path
    };
    let mut current = vec![record];
    for segment in path {
        let mut next = Vec::new();
        for v in current {
            let child = match v {
                Value::Object(map) => map.get(segment.as_str()),
                _ => None,
            };
            match child {
                Some(Value::Array(items)) => next.extend(items.iter()),
                Some(c) => next.push(c),
                None => {}
            }
        }
        current = next;
    }
    current.into_iter().filter(|v| !v.is_null()).collect()
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Orders a record value against a literal; `None` = not comparable (never matches).
fn compare(v: &Value, lit: &Literal) -> Option<Ordering> {
    match (v, lit) {
        (Value::Number(n), Literal::Num(x)) => n.as_f64()?.partial_cmp(x),
        (Value::String(s), Literal::Num(x)) => s.trim().parse::<f64>().ok()?.partial_cmp(x),
        (Value::Number(n), Literal::Str(s)) => {
            n.as_f64()?.partial_cmp(&s.trim().parse::<f64>().ok()?)
        }
        (Value::String(s), Literal::Str(x)) => Some(s.to_lowercase().cmp(&x.to_lowercase())),
        (Value::Bool(b), Literal::Bool(x)) => Some(b.cmp(x)),
        (Value::String(s), Literal::Bool(x)) => s
            .eq_ignore_ascii_case(&x.to_string())
            .then_some(Ordering::Equal),
        (Value::String(s), Literal::Date(t)) => Some(clock::parse_utc(s)?.cmp(t)),
        _ => None,
    }
}

/// SQL `LIKE`, case-insensitive: `%` any run, `_` one character.
fn like(text: &str, pattern: &str) -> bool {
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let (mut ti, mut pi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || (p[pi] != '%' && p[pi] == t[ti])) {
            ti += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn matches(cond: &str, rec: &Value) -> bool {
        eval(&parse(cond).unwrap_or_else(|e| panic!("{cond}: {e}")), rec)
    }

    #[test]
    fn operators_and_logic() {
        let r = json!({"id": 7, "name": "Acme Corp", "flag": true, "price": 12.5,
                       "company": {"identifier": "ACME"}, "_info": {"lastUpdated": "2026-02-01T10:00:00Z"},
                       "types": [{"id": 1}, {"id": 3}]});
        assert!(matches("name='acme corp'", &r));
        assert!(matches("name = \"Acme Corp\"", &r));
        assert!(matches("id=7 and flag=true", &r));
        assert!(matches("id!=8", &r));
        assert!(matches("id<>8", &r));
        assert!(matches(
            "price>12 and price<=12.5 and price>=12.5 and price<13",
            &r
        ));
        assert!(matches("company/identifier='ACME'", &r));
        assert!(matches("lastUpdated>[2026-01-01T00:00:00Z]", &r));
        assert!(matches("_info/lastUpdated<[2026-03-01T00:00:00Z]", &r));
        assert!(!matches("lastUpdated>[2026-02-01T10:00:00Z]", &r));
        assert!(matches("lastUpdated>=[2026-02-01T10:00:00Z]", &r));
        assert!(matches("name like 'Ac%'", &r));
        assert!(matches("name like '%corp'", &r));
        assert!(matches("name like 'A_me%'", &r));
        assert!(!matches("name like 'Corp%'", &r));
        assert!(matches("name not like 'Corp%'", &r));
        assert!(matches("name contains 'me c'", &r));
        assert!(matches("id in (1, 7, 9)", &r));
        assert!(!matches("id not in (1, 7)", &r));
        assert!(matches("name in ('x', 'ACME CORP')", &r));
        assert!(matches("types/id=3", &r));
        assert!(matches("not (id=1 or id=2) and (name='x' or id=7)", &r));
        assert!(
            matches("NOT id=1 AND Name LIKE 'acme%'", &r)
                == matches("not id=1 and Name like 'acme%'", &r)
        );
        assert!(matches("missing=null", &r));
        assert!(!matches("missing!=null", &r));
        assert!(matches("name!=null", &r));
        assert!(!matches("missing!='x'", &r));
        assert!(!matches("missing='x'", &r));
    }

    #[test]
    fn quoting() {
        let r = json!({"name": "O'Brien"});
        assert!(matches("name='O''Brien'", &r));
        assert!(matches("name='O\\'Brien'", &r));
    }

    #[test]
    fn syntax_errors_name_the_problem() {
        for (bad, needle) in [
            ("name=", "expected a value at position 6"),
            ("name 'x'", "expected an operator"),
            ("(id=1", "expected ')'"),
            ("id=1 and", "expected a field name"),
            ("name='abc", "unterminated string"),
            ("lastUpdated>[yesterday]", "invalid date"),
            ("id in 1,2", "expected '(' after 'in'"),
            ("id=1 id=2", "unexpected 'id'"),
            ("id # 1", "unexpected character '#'"),
            ("", "empty"),
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains(needle), "{bad}: {err}");
        }
    }
}
