//! Table tests for the judge.
