//! One file per command: read inputs, call the libraries, print, and pick the exit status.

pub mod access;
pub mod check;
pub mod completions;
pub mod config;
#[cfg(feature = "lab")]
pub mod demo;
pub mod domain;
#[cfg(feature = "lab")]
pub mod lab;
pub mod policy;
pub mod report;
pub mod reports;
pub mod resolve;
pub mod serve;
pub mod tenant;
pub mod token;
pub mod user;
