//! `static/` and the JS SDK's `clients/js/src/` embedded into the binary at compile time, so an image
//! or a copied binary needs no files.

/// One embedded file: its bytes and the Content-Type it is served with.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        asset!("/../static/", $name, $type)
    };
    ($dir:literal, $name:literal, $type:literal) => {
        (
            $name,
            Asset {
                bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), $dir, $name)),
                content_type: $type,
            },
        )
    };
}

macro_rules! sdk {
    ($name:literal) => {
        asset!(
            "/../clients/js/src/",
            $name,
            "text/javascript; charset=utf-8"
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

/// The JS SDK (`clients/js/src/`, served under `/sdk/`), for pages to import as ES modules as they
/// are (the README's browser example does). Browsers refuse a module served with another type than
/// JavaScript, hence the explicit type. A file added to the SDK needs a line here: the unit test
/// below compares this list with the directory.
const SDK: &[(&str, Asset)] = &[
    sdk!("backoff.js"),
    sdk!("bounded-set.js"),
    sdk!("client.js"),
    sdk!("emitter.js"),
    sdk!("errors.js"),
    sdk!("heartbeat.js"),
    sdk!("index.js"),
    sdk!("outbox.js"),
    sdk!("pacer.js"),
    sdk!("room-session.js"),
    sdk!("room-stream.js"),
    sdk!("room.js"),
    sdk!("sse-transport.js"),
    sdk!("token.js"),
    sdk!("transport.js"),
];

fn find(list: &[(&str, Asset)], path: &str) -> Option<Asset> {
    list.iter()
        .find(|(name, _)| *name == path)
        .map(|(_, asset)| *asset)
}

/// Looks a request path below `/static/` up; `None` is a 404.
pub fn get(path: &str) -> Option<Asset> {
    find(ASSETS, path)
}

/// Looks a request path below `/sdk/` up; `None` is a 404.
pub fn get_sdk(path: &str) -> Option<Asset> {
    find(SDK, path)
}

/// Cache header for assets: URLs carry `?v=VERSION`, so a browser may keep them for good.
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

/// FNV-1a over every asset, as hex: changes whenever any embedded file changes.
pub const VERSION: &str = {
    const HASH: u64 = {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        // The page's files and the SDK's: the page's URLs must change when either does.
        let lists: [&[(&str, Asset)]; 2] = [ASSETS, SDK];
        let mut l = 0;
        while l < lists.len() {
            let list = lists[l];
            let mut i = 0;
            while i < list.len() {
                let bytes = list[i].1.bytes;
                let mut j = 0;
                while j < bytes.len() {
                    hash ^= bytes[j] as u64;
                    hash = hash.wrapping_mul(0x0100_0000_01b3);
                    j += 1;
                }
                i += 1;
            }
            l += 1;
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

    #[test]
    fn every_sdk_module_is_embedded_as_javascript() {
        // Every file of clients/js/src is listed (a module missing here breaks the page's imports).
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../clients/js/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("clients/js/src is readable")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".js"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<&str> = SDK.iter().map(|(n, _)| *n).collect();
        listed.sort();
        assert_eq!(listed, on_disk);
        let index = get_sdk("index.js").expect("index.js is embedded");
        assert!(index.content_type.starts_with("text/javascript"));
        assert!(String::from_utf8_lossy(index.bytes).contains("HubClient"));
        assert!(get_sdk("chat.js").is_none());
        assert!(get_sdk("../index.d.ts").is_none());
    }
}
