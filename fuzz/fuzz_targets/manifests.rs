//! The YAML/JSON input layer and the whole engine on arbitrary bytes, rendered in every format.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snippet_guard::input::{Format, add_bytes};
use snippet_guard::model::Workspace;
use snippet_guard::render::{Report, json, sarif, text};
use snippet_guard::{Settings, check};

fuzz_target!(|data: &[u8]| {
    let mut ws = Workspace::new();
    add_bytes(&mut ws, "fuzz.yaml", data, Format::Yaml);
    add_bytes(&mut ws, "fuzz.conf", data, Format::Conf);
    let diags = check(&ws, &Settings::default());
    let report = Report {
        sources: &ws.sources,
        diagnostics: &diags,
        load_errors: &ws.load_errors,
        files: ws.files,
        objects: ws.objects.len(),
        fixed: &[],
    };
    let _ = text::render(&report, false);
    let _ = json::render(&report);
    let _ = sarif::render(&report);
});
