//! # stsward-store — persistence for stsward
//!
//! One interface over two databases: a SQLite file (the embedded default) and PostgreSQL
//! (several replicas sharing one database). Migrations run when a store is opened.
//!
//! Times are integer epoch seconds, so that the schema ports between the two.
