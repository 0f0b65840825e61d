//! Generated delimited lines. (Being written.)
