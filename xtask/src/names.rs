//! Short import and export names for a shipped wasm binary and its glue.
//!
//! wasm-bindgen names every import `__wbg_<name>_<16 hex digits>` and a
//! closure's invoke export after its full Rust type (up to 300 characters);
//! the page module has 143 imports and 29 exports. `wasm-opt
//! --minify-imports-and-exports-and-modules` renames them all (`a`, `b`, …,
//! one import module `a`) and prints the mapping; this module renames them
//! to match in the glue (and the wasm's `.d.ts`), so the two stay one unit.
//! The hashes do not compress: the page's wasm is 3.4 kB gz smaller.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

/// What wasm-opt renamed: import `(module, name)` → new name, export → new
/// name, and the one module every import now comes from.
#[derive(Debug, Default)]
pub(crate) struct Renames {
    imports: HashMap<String, String>,
    old_modules: Vec<String>,
    new_module: String,
    exports: HashMap<String, String>,
}

/// Minifies `wasm`'s import and export names in place and renames them in
/// `glue` (wasm-bindgen's JS, before terser) and `dts` (its `_bg.wasm.d.ts`).
pub(crate) fn minify(root: &Path, wasm: &Path, glue: &Path, dts: Option<&Path>) -> Result<(), String> {
    let output = Command::new(root.join("node_modules/.bin/wasm-opt"))
        .arg("--minify-imports-and-exports-and-modules")
        .args(crate::package::WASM_FEATURES)
        .arg(wasm)
        .arg("-o")
        .arg(wasm)
        .output()
        .map_err(|err| format!("cannot run wasm-opt: {err}"))?;
    if !output.status.success() {
        return Err(format!(
            "wasm-opt --minify-imports-and-exports-and-modules failed on {}: {}",
            wasm.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let bytes = fs::read(wasm).map_err(|err| format!("{}: {err}", wasm.display()))?;
    let module = first_import_module(&bytes).ok_or_else(|| format!("{}: no import section", wasm.display()))?;
    let renames = Renames::read(&String::from_utf8_lossy(&output.stdout), module)?;
    let text = fs::read_to_string(glue).map_err(|err| format!("{}: {err}", glue.display()))?;
    let renamed = renames
        .glue(&text)
        .map_err(|err| format!("{}: {err}", glue.display()))?;
    fs::write(glue, renamed).map_err(|err| format!("{}: {err}", glue.display()))?;
    if let Some(dts) = dts {
        let text = fs::read_to_string(dts).map_err(|err| format!("{}: {err}", dts.display()))?;
        fs::write(dts, renames.declarations(&text)).map_err(|err| format!("{}: {err}", dts.display()))?;
    }
    Ok(())
}

impl Renames {
    /// Reads wasm-opt's mapping: `{ "imports": [[module, name, new]],
    /// "exports": [[name, new]] }`.
    fn read(mapping: &str, new_module: String) -> Result<Self, String> {
        // wasm-opt may print other lines before the JSON.
        let json = mapping.find('{').map_or(mapping, |at| &mapping[at..]);
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|err| format!("wasm-opt's name mapping is not JSON: {err}"))?;
        let mut renames = Renames {
            new_module,
            ..Renames::default()
        };
        let triples = value["imports"].as_array().ok_or("wasm-opt's mapping has no imports")?;
        for triple in triples {
            let [module, name, new] = strings(triple).ok_or("an import mapping is not [module, name, new]")?;
            if !renames.old_modules.contains(&module) {
                renames.old_modules.push(module);
            }
            renames.imports.insert(name, new);
        }
        let pairs = value["exports"].as_array().ok_or("wasm-opt's mapping has no exports")?;
        for pair in pairs {
            let [name, new] = strings(pair).ok_or("an export mapping is not [name, new]")?;
            renames.exports.insert(name, new);
        }
        Ok(renames)
    }

    /// The glue with the new names: the import object's module key, its
    /// members (`name: function …`) and every `wasm.<export>`. Fails when
    /// an import is not found (wasm-bindgen's glue changed shape).
    fn glue(&self, text: &str) -> Result<String, String> {
        let mut text = text.to_owned();
        for module in &self.old_modules {
            let quoted = format!("\"{module}\"");
            if text.matches(&quoted).count() != 1 {
                return Err(format!("expected the import module {quoted} once"));
            }
            text = text.replace(&quoted, &format!("\"{}\"", self.new_module));
        }
        let mut out = String::with_capacity(text.len());
        let mut found = 0;
        let mut rest = text.as_str();
        while let Some(start) = rest.find(is_ident) {
            let (before, from) = rest.split_at(start);
            out.push_str(before);
            let end = from.find(|c: char| !is_ident(c)).unwrap_or(from.len());
            let (token, after) = from.split_at(end);
            let export = out.ends_with("wasm.") && !out[..out.len() - 5].ends_with(is_ident);
            let key = after.trim_start().starts_with(':') && !out.ends_with('.');
            match (export, key) {
                (true, _) if self.exports.contains_key(token) => out.push_str(&self.exports[token]),
                (false, true) if self.imports.contains_key(token) => {
                    found += 1;
                    out.push_str(&self.imports[token]);
                }
                _ => out.push_str(token),
            }
            rest = after;
        }
        out.push_str(rest);
        if found != self.imports.len() {
            return Err(format!(
                "renamed {found} of {} imports: wasm-bindgen's glue no longer lists them as `name: function`",
                self.imports.len()
            ));
        }
        Ok(out)
    }

    /// The `_bg.wasm.d.ts` with the new export names (`export const name`).
    fn declarations(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for (old, new) in &self.exports {
            for suffix in [":", "("] {
                text = text.replace(
                    &format!("export const {old}{suffix}"),
                    &format!("export const {new}{suffix}"),
                );
                text = text.replace(
                    &format!("export function {old}{suffix}"),
                    &format!("export function {new}{suffix}"),
                );
            }
        }
        text
    }
}

/// Characters of a JS identifier as wasm-bindgen and wasm-opt write them.
fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '$'
}

fn strings<const N: usize>(value: &serde_json::Value) -> Option<[String; N]> {
    let items = value.as_array()?;
    let texts: Vec<String> = items
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect::<Option<_>>()?;
    texts.try_into().ok()
}

/// The module name of the binary's first import (after
/// `--minify-imports-and-exports-and-modules`, the one module of all).
fn first_import_module(wasm: &[u8]) -> Option<String> {
    let mut at = 8; // magic and version
    while at < wasm.len() {
        let id = *wasm.get(at)?;
        at += 1;
        let size = leb(wasm, &mut at)?;
        if id == 2 {
            let _count = leb(wasm, &mut at)?;
            let len = leb(wasm, &mut at)?;
            let name = wasm.get(at..at + len)?;
            return String::from_utf8(name.to_vec()).ok();
        }
        at += size;
    }
    None
}

/// An unsigned LEB128 at `at`, moving past it.
fn leb(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let mut value = 0usize;
    let mut shift = 0;
    loop {
        let byte = *bytes.get(*at)?;
        *at += 1;
        value |= usize::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renames() -> Renames {
        Renames::read(
            r#"{ "imports": [["./x_bg.js", "__wbg_get_0123456789abcdef", "a"], ["./x_bg.js", "__wbindgen_cast_1", "b"]],
                 "exports": [["memory", "c"], ["askwell_start", "d"]] }"#,
            "a".into(),
        )
        .expect("mapping")
    }

    #[test]
    fn the_glue_gets_the_new_names_and_nothing_else() {
        let glue =
            "const import0 = { __proto__: null, __wbg_get_0123456789abcdef: function(a) { return wasm.memory; },\n\
                    __wbindgen_cast_1 : function() { return memory.askwell_start; } };\n\
                    return { \"./x_bg.js\": import0 }; wasm.askwell_start(); mywasm.memory; x = { memory: 1 };";
        let out = renames().glue(glue).expect("renamed");
        assert_eq!(
            out,
            "const import0 = { __proto__: null, a: function(a) { return wasm.c; },\n\
             b : function() { return memory.askwell_start; } };\n\
             return { \"a\": import0 }; wasm.d(); mywasm.memory; x = { memory: 1 };"
        );
    }

    #[test]
    fn a_glue_without_the_imports_is_an_error() {
        let err = renames().glue("return { \"./x_bg.js\": {} };").expect_err("missing");
        assert!(err.contains("renamed 0 of 2 imports"), "{err}");
    }

    #[test]
    fn the_declarations_get_the_new_export_names() {
        let dts = "export const memory: WebAssembly.Memory;\nexport const askwell_start: (a: any) => any;\n";
        assert_eq!(
            renames().declarations(dts),
            "export const c: WebAssembly.Memory;\nexport const d: (a: any) => any;\n"
        );
    }

    #[test]
    fn the_first_import_module_is_read_from_the_binary() {
        // magic, version; a type section (id 1, 4 bytes); an import section.
        let mut wasm = b"\0asm\x01\0\0\0".to_vec();
        wasm.extend([1, 4, 1, 0x60, 0, 0]);
        wasm.extend([2, 7, 1, 1, b'a', 1, b'b', 0, 0]);
        assert_eq!(first_import_module(&wasm).as_deref(), Some("a"));
    }
}
