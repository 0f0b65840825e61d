//! Generated logfmt lines. (Being written.)
