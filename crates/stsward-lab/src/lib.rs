//! # stsward-lab — a self-contained local world for tests and demos
//!
//! Placeholder while the modules land.

pub mod ca;
pub mod dns;
pub mod https;
pub mod smtp;
pub mod scenario;
