//! Generated aws lines. (Being written.)
