//! Generated textlogs lines. (Being written.)
