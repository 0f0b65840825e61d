//! Generated syslog lines. (Being written.)
