//! The manager (filled by later issues).
