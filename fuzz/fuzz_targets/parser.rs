//! The nginx parser and context check on arbitrary text, in every context a snippet can land in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snippet_guard::nginx::context::{Ctx, validate};
use snippet_guard::nginx::parser::parse;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let config = parse(&text);
    for e in &config.errors {
        assert!(e.span.end as usize <= text.len());
    }
    for ctx in [
        Ctx::MAIN,
        Ctx::HTTP,
        Ctx::SERVER,
        Ctx::LOCATION,
        Ctx::STREAM,
    ] {
        let _ = validate(&text, &config, ctx);
    }
});
