//! Personalised push content: a notification's copy written once as
//! templates over the recipient's traits (`{user.first_name|there}`) and
//! the per-recipient data the app sends with it (`{data.product}`), then
//! rendered once per delivery with the core's template engine (the one that
//! renders prompts and journey sends).
//!
//! Three things the complaints about other products ask for:
//! - a missing value never prints a raw placeholder: it renders as the
//!   field's fallback, or as nothing with the spaces around it tidied, and a
//!   title that could come out blank is refused up front;
//! - a field that *no* recipient has is a typo, not a fallback to show to
//!   everyone: [`Census::unknown`] names it so the server can refuse the send;
//! - a value can fill a link but never redirect it: placeholders in `url` and
//!   `image` only come after a fixed origin, and their values are
//!   percent-encoded (see [`Template::render_for`]).

use std::collections::BTreeMap;

use crate::error::FieldProblems;
use crate::journey::Fields;
use crate::template::{fixed_origin, is_safe_url, Template};

/// A notification's copy as the app wrote it (the fields that may hold
/// placeholders), with the paths errors name them by.
#[derive(Debug, Clone, Default)]
pub struct CopySource<'a> {
    /// What the paths in errors start with (default `notification`; a
    /// variant's are `notification.variants[1]`).
    pub prefix: &'a str,
    /// `notification.title`.
    pub title: &'a str,
    /// `notification.body`.
    pub body: Option<&'a str>,
    /// `notification.url`.
    pub url: Option<&'a str>,
    /// `notification.image`.
    pub image: Option<&'a str>,
    /// `notification.actions[i].title`.
    pub action_titles: Vec<&'a str>,
}

/// Parsed, checked copy templates.
#[derive(Debug, Clone)]
pub struct Copy {
    prefix: String,
    title: Template,
    body: Option<Template>,
    url: Option<Template>,
    image: Option<Template>,
    actions: Vec<Template>,
}

/// One recipient's copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Never blank ([`Copy::parse`] refuses a title that could be).
    pub title: String,
    /// Absent when the template was.
    pub body: Option<String>,
    /// Absent when the template was.
    pub url: Option<String>,
    /// Absent when the template was.
    pub image: Option<String>,
    /// In the order of the actions.
    pub action_titles: Vec<String>,
}

const BLANK: &str =
    "would be blank for a recipient without its fields: add fixed text or a fallback ({user.first_name|there})";

/// Where placeholders may read from.
const USER: &str = "user.";
const DATA: &str = "data.";

impl Copy {
    /// Parses and checks the templates: every placeholder is `{user.<trait>}`
    /// or (when the request carries per-recipient data, `data_allowed`)
    /// `{data.<name>}`; a title is never blank when its fields are missing;
    /// `url` and `image` stay http(s) or relative with placeholders only after
    /// the origin. Every problem is listed, each by its path.
    ///
    /// # Errors
    /// The problems found.
    pub fn parse(source: &CopySource<'_>, data_allowed: bool) -> Result<Self, FieldProblems> {
        let mut problems = FieldProblems::default();
        let prefix = if source.prefix.is_empty() {
            "notification"
        } else {
            source.prefix
        };
        let at = |field: &str| format!("{prefix}.{field}");
        let mut text = |path: &str, source: &str| {
            let template = Template::parse(source);
            known_fields(&template, path, data_allowed, &mut problems);
            template
        };
        let title = text(&at("title"), source.title);
        let body = source.body.map(|body| text(&at("body"), body));
        let actions: Vec<Template> = (source.action_titles.iter().enumerate())
            .map(|(i, title)| text(&at(&format!("actions[{i}].title")), title))
            .collect();
        let labels = std::iter::once((at("title"), &title))
            .chain((actions.iter().enumerate()).map(|(i, t)| (at(&format!("actions[{i}].title")), t)));
        for (path, label) in labels {
            if label.has_fields() && label.render(|_| None).is_empty() {
                problems.push(path, BLANK);
            }
        }
        let url = source.url.map(|url| link(&at("url"), url, data_allowed, &mut problems));
        let image = source
            .image
            .map(|image| link(&at("image"), image, data_allowed, &mut problems));
        if !problems.0.is_empty() {
            return Err(problems);
        }
        Ok(Self {
            prefix: prefix.to_owned(),
            title,
            body,
            url,
            image,
            actions,
        })
    }

    /// Whether any field has a placeholder (else every recipient gets the
    /// same payload and nothing needs rendering per delivery).
    pub fn is_personal(&self) -> bool {
        self.templates().any(|(_, template)| template.has_fields())
    }

    /// Each placeholder's field with the path of the first template using
    /// it, in field order.
    pub fn fields(&self) -> Vec<(String, &str)> {
        let mut seen: Vec<(String, &str)> = Vec::new();
        for (path, template) in self.templates() {
            for field in template.fields() {
                if !seen.iter().any(|(_, f)| *f == field) {
                    seen.push((path.clone(), field));
                }
            }
        }
        seen
    }

    /// The copy for one recipient, with `user` their traits and `data` the
    /// request's data for them; every field they lack goes into `missed`
    /// (once).
    pub fn render<'t>(&'t self, user: &Fields, data: &Fields, missed: &mut Vec<&'t str>) -> Rendered {
        let lookup = |field: &str| -> Option<&str> {
            if let Some(name) = field.strip_prefix(USER) {
                return user.get(name).map(String::as_str);
            }
            data.get(field.strip_prefix(DATA)?).map(String::as_str)
        };
        let mut text = |t: &'t Template, url: bool| t.render_for(lookup, url, missed);
        Rendered {
            title: text(&self.title, false),
            body: self.body.as_ref().map(|t| text(t, false)),
            url: self.url.as_ref().map(|t| text(t, true)),
            image: self.image.as_ref().map(|t| text(t, true)),
            action_titles: self.actions.iter().map(|t| text(t, false)).collect(),
        }
    }

    fn templates(&self) -> impl Iterator<Item = (String, &Template)> {
        let prefix = &self.prefix;
        let fixed = [
            ("title", Some(&self.title)),
            ("body", self.body.as_ref()),
            ("url", self.url.as_ref()),
            ("image", self.image.as_ref()),
        ];
        let fixed = fixed
            .into_iter()
            .filter_map(move |(field, template)| Some((format!("{prefix}.{field}"), template?)));
        let actions = (self.actions.iter().enumerate()).map(move |(i, t)| (format!("{prefix}.actions[{i}].title"), t));
        fixed.chain(actions)
    }
}

/// A URL template (see [`Copy::parse`]).
fn link(path: &str, source: &str, data_allowed: bool, problems: &mut FieldProblems) -> Template {
    let template = Template::parse(source);
    known_fields(&template, path, data_allowed, problems);
    if !is_safe_url(&template.render(|_| Some("x"))) || !fixed_origin(source) {
        problems.push(
            path,
            "expected an http(s) or relative URL, with placeholders only after the scheme and host",
        );
    }
    template
}

fn known_fields(template: &Template, path: &str, data_allowed: bool, problems: &mut FieldProblems) {
    for field in template.fields() {
        let user = field.strip_prefix(USER).is_some_and(|name| !name.is_empty());
        let data = field.strip_prefix(DATA).is_some_and(|name| !name.is_empty());
        if user || (data && data_allowed) {
            continue;
        }
        let message = if data {
            format!("{{{field}}} reads per-recipient data: send it as batch[].data (or use {{user.<trait>}})")
        } else if data_allowed {
            format!("unknown placeholder {{{field}}}: expected {{user.<trait>}} or {{data.<name>}}")
        } else {
            format!("unknown placeholder {{{field}}}: expected {{user.<trait>}} (or {{data.<name>}} with batch)")
        };
        problems.push(path, message);
    }
}

/// What rendering found over all recipients: how many there were and, per
/// field, how many lacked it (and so got its fallback, or nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Census {
    /// Recipients rendered for.
    pub recipients: u64,
    /// Field → recipients without it.
    pub missing: BTreeMap<String, u64>,
}

impl Census {
    /// Counts one recipient and the fields they lacked.
    pub fn record(&mut self, missed: &[&str]) {
        self.recipients += 1;
        for field in missed {
            match self.missing.get_mut(*field) {
                Some(count) => *count += 1,
                None => {
                    self.missing.insert((*field).to_owned(), 1);
                }
            }
        }
    }

    /// The fields of `copy` that no recipient had, with the path naming
    /// each: most likely a typo (`{user.frist_name}`), which a fallback
    /// would hide by showing it to everyone. None when there were no
    /// recipients (nothing to judge by).
    pub fn unknown<'c>(&self, copy: &'c Copy) -> Vec<(String, &'c str)> {
        if self.recipients == 0 {
            return Vec::new();
        }
        copy.fields()
            .into_iter()
            .filter(|(_, field)| self.missing.get(*field) == Some(&self.recipients))
            .collect()
    }
}

#[cfg(test)]
#[path = "personalise_tests.rs"]
mod tests;
