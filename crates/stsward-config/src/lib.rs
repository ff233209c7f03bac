//! Layered TOML configuration, shared by `stsward.toml` (stsward-server) and the resolver's
//! file (stsward-resolver): a file, then environment overrides, one variable per key.
//!
//! - [`keys`]: the keys a file may hold, traced from its `Deserialize` types (so that a new
//!   field is a new key everywhere: overrides, the template, the documentation tests);
//! - [`doc`]: the documentation's table of keys, checked against them;
//! - [`layers`]: reading the file and the overrides into one value, each error located by the
//!   file's line or the variable that set it, and named by its key.

pub mod doc;
pub mod keys;
pub mod layers;

pub use keys::{Key, KeyKind, Keys, TraceError};
pub use layers::{Invalid, Layers, Loaded, Origin, Override, Problem, locate};
