//! Response compression: gzip or brotli, whichever the client prefers in
//! `Accept-Encoding` (none without it), for the API's JSON and the static
//! files alike. The page's wasm is ~200 kB and its JS ~40 kB; brotli makes
//! them about a third of that (the printed numbers of `tests/compression.rs`).
//!
//! Compressed on the fly (tower-http's `CompressionLayer`) rather than from
//! precompressed `.gz`/`.br` files: it covers JSON as well, and any `--site`
//! folder an operator points at, with nothing to build or keep in step.
//! The cost is small at tower-http's levels (gzip 6, brotli 4, what nginx
//! uses on the fly; not brotli 11, which takes ~100x longer).

use axum::body::HttpBody;
use axum::http::{header, Response};
use tower_http::compression::predicate::{Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;

/// Bodies below this are sent as they are: one TCP segment (~1460 bytes)
/// carries them either way, and gzip's 18-byte frame can make them larger.
pub const MIN_BYTES: u16 = 1024;

/// Content types that are already compressed (a second pass only costs CPU)
/// or streamed (compression would hold events back). Prefixes, lowercase.
const SKIPPED: [&str; 9] = [
    "image/",
    "audio/",
    "video/",
    "font/woff", // woff and woff2 are compressed formats
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/zstd",
    "text/event-stream",
];

/// The layer `app()` puts around every route and the static files.
pub fn layer() -> CompressionLayer<Compressible> {
    CompressionLayer::new().compress_when(Compressible)
}

/// Which responses are worth compressing: at least [`MIN_BYTES`] (or of
/// unknown length) and not of a [`SKIPPED`] type. SVG is text: compressed.
#[derive(Clone, Copy, Debug)]
pub struct Compressible;

impl Predicate for Compressible {
    fn should_compress<B: HttpBody>(&self, response: &Response<B>) -> bool {
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        SizeAbove::new(MIN_BYTES).should_compress(response) && worth_compressing(content_type)
    }
}

fn worth_compressing(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "image/svg+xml" || !SKIPPED.iter().any(|prefix| essence.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::worth_compressing;

    #[test]
    fn text_wasm_and_svg_are_compressed_images_fonts_and_archives_are_not() {
        for yes in [
            "application/json",
            "application/wasm",
            "text/javascript; charset=utf-8",
            "text/html",
            "image/svg+xml",
            "",
        ] {
            assert!(worth_compressing(yes), "{yes}");
        }
        for no in [
            "image/png",
            "IMAGE/JPEG",
            "image/webp",
            "font/woff2",
            "application/zip",
            "video/mp4",
        ] {
            assert!(!worth_compressing(no), "{no}");
        }
    }
}
