//! `static/` embedded into the binary at compile time, so an image or a copied binary needs no files.

/// One embedded file: its bytes and the Content-Type it is served with.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        (
            $name,
            Asset {
                bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../static/", $name)),
                content_type: $type,
            },
        )
    };
}

/// Every file under `static/`. Adding a file there means adding a line here (it is a short list, and
/// an explicit one means no path from a request ever reaches the file system).
const ASSETS: &[(&str, Asset)] = &[
    asset!("chat.js", "text/javascript; charset=utf-8"),
    asset!("chat.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("status.js", "text/javascript; charset=utf-8"),
    asset!("status.css", "text/css; charset=utf-8"),
];

/// Looks a request path below `/static/` up; `None` is a 404.
pub fn get(path: &str) -> Option<Asset> {
    ASSETS
        .iter()
        .find(|(name, _)| *name == path)
        .map(|(_, asset)| *asset)
}

/// Cache header for assets: URLs carry `?v=VERSION`, so a browser may keep them for good.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// FNV-1a over every asset, as hex: changes whenever any embedded file changes.
pub const VERSION: &str = {
    const HASH: u64 = {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut i = 0;
        while i < ASSETS.len() {
            let bytes = ASSETS[i].1.bytes;
            let mut j = 0;
            while j < bytes.len() {
                hash ^= bytes[j] as u64;
                hash = hash.wrapping_mul(0x0100_0000_01b3);
                j += 1;
            }
            i += 1;
        }
        hash
    };
    const HEX: [u8; 16] = {
        let digits = b"0123456789abcdef";
        let mut out = [0u8; 16];
        let mut i = 0;
        while i < 16 {
            out[i] = digits[((HASH >> (60 - 4 * i)) & 0xf) as usize];
            i += 1;
        }
        out
    };
    match std::str::from_utf8(&HEX) {
        Ok(s) => s,
        Err(_) => panic!("hex digits are ASCII"),
    }
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_files_are_found_with_their_type_and_others_are_not() {
        let js = get("chat.js").expect("chat.js is embedded");
        assert!(js.content_type.starts_with("text/javascript"));
        assert!(!js.bytes.is_empty());
        assert!(get("chat.css").is_some());
        assert!(get("missing.js").is_none());
        assert!(get("../Cargo.toml").is_none());
        assert_eq!(VERSION.len(), 16);
    }
}
