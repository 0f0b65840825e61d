//! Decompression of input streams. (Being written.)
