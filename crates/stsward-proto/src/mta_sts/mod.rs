//! RFC 8461 — MTA-STS (owned by the mta_sts work; placeholder)
