//! Placeholder; see the keyserver issue.
