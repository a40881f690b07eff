//! JS values ↔ the core's [`Value`], with a few js-sys calls and no serde:
//! smaller than serde-wasm-bindgen (no float formatting, no derive code) and
//! lets the core report config problems by path.

use js_sys::{Array, Object};
use wasm_bindgen::{JsCast, JsValue};

use crate::value::Value;

/// Deepest nesting read; deeper parts (or cycles) become `null`.
const MAX_DEPTH: u32 = 32;

/// Reads a JS value (plain objects, arrays, strings, numbers, booleans).
pub(crate) fn from_js(value: &JsValue) -> Value {
    read(value, 0)
}

fn read(value: &JsValue, depth: u32) -> Value {
    if depth > MAX_DEPTH || value.is_null() || value.is_undefined() {
        return Value::Null;
    }
    if let Some(b) = value.as_bool() {
        return Value::Bool(b);
    }
    if let Some(n) = value.as_f64() {
        return Value::Number(n);
    }
    if let Some(s) = value.as_string() {
        return Value::String(s);
    }
    if Array::is_array(value) {
        let array: &Array = value.unchecked_ref();
        return Value::Array(array.iter().map(|item| read(&item, depth + 1)).collect());
    }
    if value.is_object() && !value.is_function() {
        let entries = Object::entries(value.unchecked_ref());
        return Value::Object(
            entries
                .iter()
                .filter_map(|entry| {
                    let pair: &Array = entry.unchecked_ref();
                    Some((pair.get(0).as_string()?, read(&pair.get(1), depth + 1)))
                })
                .collect(),
        );
    }
    Value::Null
}

/// Builds the JS value for `value` (objects become plain objects).
pub(crate) fn to_js(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => JsValue::from_bool(*b),
        Value::Number(n) => JsValue::from_f64(*n),
        Value::String(s) => JsValue::from_str(s),
        Value::Array(items) => items.iter().map(to_js).collect::<Array>().into(),
        Value::Object(members) => {
            let object = Object::new();
            for (key, member) in members {
                // Setting a data property on a fresh plain object cannot fail.
                let _ = js_sys::Reflect::set(&object, &JsValue::from_str(key), &to_js(member));
            }
            object.into()
        }
    }
}

/// `JSON.parse` into a [`Value`]; `None` if the text is not JSON.
pub(crate) fn parse_json(text: &str) -> Option<Value> {
    js_sys::JSON::parse(text).ok().map(|v| from_js(&v))
}

/// `JSON.stringify` of a [`Value`] (the page stores its state as JSON).
#[cfg(feature = "page")]
pub(crate) fn stringify(value: &Value) -> Option<String> {
    js_sys::JSON::stringify(&to_js(value)).ok()?.as_string()
}
