//! Controller end to end (being built).
