//! Hand-built observations for the judge tests.
