//! The agent (filled by later issues).
