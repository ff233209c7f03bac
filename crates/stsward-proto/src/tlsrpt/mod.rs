//! RFC 8460 — TLS-RPT (owned by the tlsrpt work; placeholder)
