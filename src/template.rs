//! Prompt copy with placeholders: `"Want to know when {entity.name} replies?"`,
//! and the copy rules that keep prompts short, specific and respectful.
//!
//! Rendering produces plain text only; the glue sets it with `textContent`, so
//! no entity name can ever become markup. A placeholder whose field is missing
//! renders as nothing (and the spaces around it collapse) rather than as `{…}`,
//! or as its fallback when it has one: `{event.item|your cart}`.

/// Longest message copy, in characters of fixed text (README, *Use it in a page*: ≤ 90).
pub const MAX_MESSAGE_CHARS: usize = 90;
/// Longest button label, in characters.
pub const MAX_BUTTON_CHARS: usize = 15;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    /// A placeholder, with the copy to show when its field is missing.
    Field(String, Option<String>),
}

/// A parsed copy template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `{field.path}` and `{field.path|fallback}` placeholders; an
    /// unclosed `{` stays literal text.
    pub fn parse(source: &str) -> Self {
        let mut parts = Vec::new();
        let mut rest = source;
        while let Some(open) = rest.find('{') {
            let Some(close) = rest[open..].find('}') else { break };
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let inside = &rest[open + 1..open + close];
            let (name, fallback) = match inside.split_once('|') {
                Some((name, fallback)) => (name, Some(fallback.trim().to_owned())),
                None => (inside, None),
            };
            parts.push(Part::Field(name.trim().to_owned(), fallback));
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Self { parts }
    }

    /// Number of characters of fixed copy, for length checks.
    pub fn literal_chars(&self) -> usize {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.chars().count(),
                Part::Field(_, fallback) => fallback.as_deref().map_or(0, |f| f.chars().count()),
            })
            .sum()
    }

    /// The field names of the placeholders, in order (for validation).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|part| match part {
            Part::Field(name, _) => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Renders with `lookup(field)`; missing fields vanish, whitespace is tidied.
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
        self.render_with(lookup, false)
    }

    /// Renders copy for people to read: like [`Template::render`], with each
    /// inserted value bidi-isolated (U+2068 FIRST STRONG ISOLATE … U+2069 POP
    /// DIRECTIONAL ISOLATE, Unicode UAX #9). A user-chosen name is then laid
    /// out on its own: its direction cannot reorder the fixed copy around it,
    /// and an unterminated override inside it (`"\u{202e}llib"`) ends at the
    /// isolate's end instead of flipping the rest of the sentence.
    pub fn render_copy<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> String {
        self.render_with(lookup, true)
    }

    fn render_with<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>, isolate: bool) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(name, fallback) => match lookup(name).map(str::trim).filter(|v| !v.is_empty()) {
                    Some(value) if isolate => {
                        out.push('\u{2068}');
                        out.push_str(value);
                        out.push('\u{2069}');
                    }
                    Some(value) => out.push_str(value),
                    None => out.push_str(fallback.as_deref().unwrap_or("")),
                },
            }
        }
        tidy_whitespace(&out)
    }
}

#[cfg(feature = "journeys")]
impl Template {
    /// Renders one recipient's push copy (see [`crate::personalise`]): like
    /// [`Template::render`], and records in `missed` each field that had no
    /// value, so that its fallback (or nothing) showed. For a URL (`url`),
    /// each inserted value is percent-encoded as `encodeURIComponent` does
    /// (a value can then never add a `/`, `?`, `#` or `:` and so never
    /// changes where the link goes, only the part it fills), and nothing is
    /// tidied.
    pub fn render_for<'t, 'a>(
        &'t self,
        lookup: impl Fn(&str) -> Option<&'a str>,
        url: bool,
        missed: &mut Vec<&'t str>,
    ) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Field(name, fallback) => match lookup(name).map(str::trim).filter(|v| !v.is_empty()) {
                    Some(value) if url => encode_component(value, &mut out),
                    Some(value) => out.push_str(value),
                    None => {
                        if !missed.contains(&name.as_str()) {
                            missed.push(name);
                        }
                        match fallback.as_deref() {
                            Some(fallback) if url => encode_component(fallback, &mut out),
                            Some(fallback) => out.push_str(fallback),
                            None => {}
                        }
                    }
                },
            }
        }
        if url {
            out
        } else {
            tidy_whitespace(&out)
        }
    }

    /// Whether it has any placeholder.
    pub fn has_fields(&self) -> bool {
        self.fields().next().is_some()
    }
}

/// Appends `value` percent-encoded like JavaScript's `encodeURIComponent`
/// (ECMA-262: all but `A-Z a-z 0-9 - _ . ! ~ * ' ( )`, as UTF-8 bytes).
#[cfg(feature = "journeys")]
fn encode_component(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
}

/// Whether every placeholder of a URL template comes after the URL's
/// origin: a field in the scheme or host could send the click anywhere
/// (`{event.next}` = `javascript:…` or another site). Relative URLs start
/// with one `/`; absolute ones are `http(s)://host/…`.
#[cfg(feature = "journeys")]
pub(crate) fn fixed_origin(source: &str) -> bool {
    let Some(first) = source.find('{') else {
        return true;
    };
    let head = &source[..first];
    if head.starts_with('/') && !head.starts_with("//") {
        return true;
    }
    let lower = head.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    rest.is_some_and(|after| after.find('/').is_some_and(|slash| slash > 0))
}

/// Collapses runs of whitespace and removes space before punctuation left by a
/// missing field (`"when  replies ?"` → `"when replies?"`).
fn tidy_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        let glues_left = word.starts_with(['?', '!', '.', ',', ';', ':']);
        if !out.is_empty() && !glues_left {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Whether a decline label shames the user ("No, I hate saving money"):
/// a first-person confession or "hate". Plain labels ("Not now", "No thanks",
/// "Maybe later", "Skip") pass.
pub(crate) fn is_confirm_shaming(label: &str) -> bool {
    // ASCII lowercasing: Unicode case tables would add ~17 kB to the page bundle.
    let lower = label.to_ascii_lowercase().replace('’', "'");
    lower
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .any(|word| word == "i" || word.starts_with("i'") || word == "hate" || word == "me")
}

/// Whether `url` may reach the DOM (an avatar's `src`, an action prompt's
/// navigation): http(s) or relative only, never `javascript:`, `data:` or
/// another scheme.
/// The server checks every URL of a push with it before one is queued, and
/// the worker again when it reads one.
// Bytewise, without lowercasing a copy: it runs on every URL of a push in
// the worker, whose download is budgeted.
pub fn is_safe_url(url: &str) -> bool {
    // A URL parser drops leading C0 controls and spaces first.
    let url = url.trim_start_matches(|c: char| c <= ' ');
    // A colon before any '/', '?' or '#' ends a scheme.
    match url.bytes().position(|b| matches!(b, b':' | b'/' | b'?' | b'#')) {
        Some(end) if url.as_bytes().get(end) == Some(&b':') => {
            let scheme = &url[..end];
            scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(source: &str, name: Option<&'static str>) -> String {
        Template::parse(source).render(|field| if field == "entity.name" { name } else { None })
    }

    #[test]
    fn a_missing_field_shows_its_fallback() {
        assert_eq!(
            render("Still thinking about {entity.name|your cart}?", None),
            "Still thinking about your cart?"
        );
        assert_eq!(
            render("Still thinking about {entity.name|your cart}?", Some("the red shoes")),
            "Still thinking about the red shoes?"
        );
        let template = Template::parse("{ user.name | there }, {event.item}");
        assert_eq!(template.fields().collect::<Vec<_>>(), ["user.name", "event.item"]);
        assert_eq!(template.literal_chars(), 7, "the fallback counts as fixed copy");
    }

    #[test]
    fn fills_a_placeholder() {
        assert_eq!(
            render("Want to know when {entity.name} replies?", Some("Bill")),
            "Want to know when Bill replies?"
        );
    }

    #[test]
    fn renders_a_missing_field_as_nothing() {
        assert_eq!(render("Get alerts about {entity.name}?", None), "Get alerts about?");
        assert_eq!(render("Hi {nope} there", None), "Hi there");
    }

    #[test]
    fn keeps_markup_as_literal_text() {
        let html = "<img src=x onerror=alert(1)>";
        assert_eq!(render("{entity.name}", Some(html)), html);
    }

    #[test]
    fn leaves_an_unclosed_brace_literal() {
        assert_eq!(render("a {b", None), "a {b");
    }

    #[test]
    fn counts_only_fixed_copy() {
        assert_eq!(Template::parse("ab{entity.name}cd").literal_chars(), 4);
    }

    #[test]
    fn spots_confirm_shaming_declines() {
        for shaming in [
            "No, I hate saving money",
            "I don't like deals",
            "No thanks, I’d rather pay more",
            "Don't tell me",
        ] {
            assert!(is_confirm_shaming(shaming), "{shaming}");
        }
        for plain in ["Not now", "No thanks", "Maybe later", "Skip", "Dismiss", "Nein, danke"] {
            assert!(!is_confirm_shaming(plain), "{plain}");
        }
    }

    #[test]
    fn allows_only_http_and_relative_urls() {
        for ok in [
            "https://x.test/a.png",
            "HTTP://x/a",
            "/img/a.png",
            "a.png",
            "./a?b=c:d",
            "//cdn.test/a.png",
        ] {
            assert!(is_safe_url(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            " JavaScript:alert(1)",
            "\u{1}\tjavascript:alert(1)",
            "java\nscript:alert(1)",
            "https\u{0}:x",
            "data:image/png;base64,AA",
            "blob:x",
            "file:///etc/passwd",
        ] {
            assert!(!is_safe_url(bad), "{bad}");
        }
    }
}
