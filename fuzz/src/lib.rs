//! What the browser hands the core, modelled natively for the fuzz targets.
//!
//! In production the page and the worker turn text into a [`Value`] with
//! `JSON.parse` and `web::convert::from_js` (src/web/convert.rs), and a page's
//! config object with `from_js` alone. Both are wasm32-only, so the targets
//! use this model of them instead; `value_json` checks it against serde_json.
//!
//! Modelled: ECMA-404 grammar and whitespace; numbers rounded like
//! `JSON.parse` (`1e400` is `Infinity`); lone surrogate escapes become U+FFFD
//! (wasm-bindgen's string conversion); a repeated key keeps its first position
//! and its last value, and array-index keys come first in ascending order
//! (`Object.entries`); values nested deeper than `from_js`'s `MAX_DEPTH` read
//! as `null`. [`Dialect::JsObject`] adds what a config object can hold and
//! JSON cannot: `NaN`, `Infinity`, `-Infinity` and `undefined`.

use askwell::value::Value;

/// `MAX_DEPTH` of `from_js`: deeper values (and cycles) read as `null`.
pub const MAX_DEPTH: u32 = 32;
/// Nesting at which parsing gives up (V8's `JSON.parse` throws a RangeError
/// somewhere deeper, and the glue then has no value); keeps the stack small.
const MAX_NESTING: u32 = 2_000;

/// Which text the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `JSON.parse` input: push payloads, stored state.
    Json,
    /// A JS object literal, as a page passes to `Askwell.start(config)`.
    JsObject,
}

/// The [`Value`] the glue would hand the core for `bytes` (decoded as UTF-8
/// with replacement, as `PushMessageData.text()` does), or `None` where
/// `JSON.parse` would throw.
pub fn parse(bytes: &[u8], dialect: Dialect) -> Option<Value> {
    let text = String::from_utf8_lossy(bytes);
    let mut parser = Parser {
        s: text.as_bytes(),
        i: 0,
        dialect,
    };
    parser.skip_ws();
    let value = parser.value(0)?;
    parser.skip_ws();
    (parser.i == parser.s.len()).then_some(value)
}

/// The same conversion from a serde_json tree (the reference for `value_json`).
pub fn from_serde(value: &serde_json::Value, depth: u32) -> Value {
    use serde_json::Value as J;
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match value {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        J::String(s) => Value::String(s.clone()),
        J::Array(items) => Value::Array(items.iter().map(|v| from_serde(v, depth + 1)).collect()),
        J::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), from_serde(v, depth + 1)))
                .collect(),
        ),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    dialect: Dialect,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, word: &str) -> Option<()> {
        let end = self.i + word.len();
        (self.s.get(self.i..end)? == word.as_bytes()).then(|| self.i = end)
    }

    fn value(&mut self, depth: u32) -> Option<Value> {
        if depth > MAX_NESTING {
            return None;
        }
        let js = self.dialect == Dialect::JsObject;
        let value = match self.peek()? {
            b'{' => self.object(depth)?,
            b'[' => self.array(depth)?,
            b'"' => Value::String(self.string()?),
            b't' => self.eat("true").map(|()| Value::Bool(true))?,
            b'f' => self.eat("false").map(|()| Value::Bool(false))?,
            b'n' => self.eat("null").map(|()| Value::Null)?,
            b'u' if js => self.eat("undefined").map(|()| Value::Null)?,
            b'N' if js => self.eat("NaN").map(|()| Value::Number(f64::NAN))?,
            b'I' if js => self.eat("Infinity").map(|()| Value::Number(f64::INFINITY))?,
            b'-' if js && self.s.get(self.i + 1) == Some(&b'I') => {
                self.i += 1;
                self.eat("Infinity").map(|()| Value::Number(f64::NEG_INFINITY))?
            }
            b'-' | b'0'..=b'9' => Value::Number(self.number()?),
            _ => return None,
        };
        Some(if depth > MAX_DEPTH { Value::Null } else { value })
    }

    fn array(&mut self, depth: u32) -> Option<Value> {
        self.i += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            self.skip_ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => break,
                _ => return None,
            }
        }
        self.i += 1;
        Some(Value::Array(items))
    }

    fn object(&mut self, depth: u32) -> Option<Value> {
        self.i += 1;
        let mut members: Vec<(String, Value)> = Vec::new();
        self.skip_ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(Value::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.skip_ws();
            self.eat(":")?;
            self.skip_ws();
            let value = self.value(depth + 1)?;
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some(member) => member.1 = value,
                None => members.push((key, value)),
            }
            self.skip_ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => break,
                _ => return None,
            }
        }
        self.i += 1;
        // Object.entries: integer keys first, ascending; then insertion order.
        members.sort_by_key(|(k, _)| array_index(k).unwrap_or(u64::MAX));
        Some(Value::Object(members))
    }

    fn string(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while !matches!(self.peek()?, b'"' | b'\\' | 0..=0x1f) {
                self.i += 1;
            }
            // Stops only at ASCII bytes, so the run is whole UTF-8.
            out.push_str(std::str::from_utf8(&self.s[start..self.i]).ok()?);
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(out);
                }
                b'\\' => {
                    self.i += 1;
                    self.escape(&mut out)?;
                }
                _ => return None,
            }
        }
    }

    fn escape(&mut self, out: &mut String) -> Option<()> {
        let c = self.peek()?;
        self.i += 1;
        let decoded = match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                if (0xD800..0xDC00).contains(&unit) && self.s.get(self.i..self.i + 2) == Some(b"\\u") {
                    let save = self.i;
                    self.i += 2;
                    let low = self.hex4()?;
                    if (0xDC00..0xE000).contains(&low) {
                        let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                        out.push(char::from_u32(code)?);
                        return Some(());
                    }
                    self.i = save;
                }
                char::from_u32(unit).unwrap_or('\u{FFFD}')
            }
            _ => return None,
        };
        out.push(decoded);
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.s.get(self.i..self.i + 4)?).ok()?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.i += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    fn number(&mut self) -> Option<f64> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.need_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.need_digits()?;
        }
        std::str::from_utf8(&self.s[start..self.i]).ok()?.parse().ok()
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn need_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }
}

/// The key as an array index (`"0"`, `"17"`; not `"01"`), as JS orders them.
fn array_index(key: &str) -> Option<u64> {
    let canonical = key == "0" || (!key.starts_with('0') && !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()));
    let n: u64 = if canonical && key.len() <= 10 {
        key.parse().ok()?
    } else {
        return None;
    };
    (n < u64::from(u32::MAX)).then_some(n)
}

/// `value` with every object's members sorted by key, for comparing with
/// serde_json's (sorted) maps.
pub fn sorted(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        Value::Object(members) => {
            let mut members: Vec<(String, Value)> = members.iter().map(|(k, v)| (k.clone(), sorted(v))).collect();
            members.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(members)
        }
        other => other.clone(),
    }
}

/// Equal as trees; numbers to 14 significant digits (serde_json's default
/// float parsing is not correctly rounded for long mantissas; Rust's, which
/// the model uses, is, like `JSON.parse`).
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || (x - y).abs() <= 1e-14 * x.abs().max(y.abs()),
        (Value::Array(xs), Value::Array(ys)) => xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same(x, y)),
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|((k, x), (l, y))| k == l && same(x, y))
        }
        _ => a == b,
    }
}
