//! Placeholder; see the relay issue.
