//! copier
