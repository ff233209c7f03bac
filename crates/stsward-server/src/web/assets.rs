//! The dashboard's static files, embedded in the binary: its own style sheet and script, and
//! the vendored uPlot 1.6.32 (`vendor/uplot/README.md` says how it was fetched). Nothing is
//! loaded from another site, and nothing is built at run time.
//!
//! Each file is served under a name that carries its version, with a long `Cache-Control`,
//! so that a new release is fetched anew.

/// One embedded file.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// Its name under `/assets/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

/// Every file under `/assets/`.
pub const ASSETS: &[Asset] = &[
    Asset {
        name: "dashboard.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/dashboard.css"),
    },
    Asset {
        name: "dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/dashboard.js"),
    },
    Asset {
        name: "uplot-1.6.32.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../../../vendor/uplot/uPlot.iife.min.js"),
    },
    Asset {
        name: "uplot-1.6.32.min.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../../../vendor/uplot/uPlot.min.css"),
    },
];

/// The file called `name`, if there is one.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_found_and_not_empty() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{}", a.name);
            assert_eq!(find(a.name).map(|f| f.name), Some(a.name));
        }
        assert!(find("../Cargo.toml").is_none());
        assert!(find("").is_none());
    }

    #[test]
    fn the_vendored_uplot_is_the_pinned_release() {
        let js = find("uplot-1.6.32.min.js").expect("uplot");
        let text = String::from_utf8_lossy(js.body);
        assert!(text.contains("uPlot"), "the file is uPlot's browser build");
    }
}
