//! The re-lint loop behind `lint --fix`, as ruff has it: apply the fixes that the findings carry
//! ([`crate::edit`] made them exact), check again, and repeat while fixes apply (at most
//! [`MAX_ROUNDS`] rounds); then remove the keys whose snippets the fixes emptied. No I/O here:
//! the CLI reads and writes the files.

use std::collections::HashMap;

use crate::diagnostic::{Applicability, Diagnostic, Edit};
use crate::edit::apply;
use crate::engine::Settings;
use crate::input::{self, Format};
use crate::model::{Object, ObjectRef, Text, Workspace};
use crate::registry::RuleMeta;
use crate::source::{FileId, Span};

/// One input of [`run`].
#[derive(Clone, Debug)]
pub struct Input {
    pub name: String,
    pub text: String,
    pub format: Format,
    /// Whether the text may be changed (a file that could not be read is not).
    pub fixable: bool,
}

/// A finding a fix removed.
#[derive(Clone, Debug)]
pub struct Fixed {
    pub rule: &'static RuleMeta,
    /// Index of the input.
    pub input: usize,
    /// Its name.
    pub file: String,
    /// 1-based line in the text as it was when the fix was applied.
    pub line: usize,
    pub object: Option<ObjectRef>,
    pub header: Option<String>,
    pub applicability: Applicability,
}

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.rule.id)?;
        if let Some(h) = &self.header {
            write!(f, " ({h})")?;
        }
        if let Some(o) = &self.object {
            write!(f, " in {o}")?;
        }
        if self.applicability == Applicability::Unsafe {
            f.write_str(" [unsafe fix]")?;
        }
        Ok(())
    }
}

/// What [`run`] did.
#[derive(Debug)]
pub struct Outcome {
    /// The texts after the fixes, one per input.
    pub texts: Vec<String>,
    pub fixed: Vec<Fixed>,
    /// The final texts read and checked again: what remains.
    pub workspace: Workspace,
    pub remaining: Vec<Diagnostic>,
    /// Rounds of fixing that changed something.
    pub rounds: usize,
    /// The bound was reached while fixes still applied.
    pub unfinished: bool,
    /// Inputs whose fixes were undone because the text no longer read cleanly (never expected;
    /// a safety net).
    pub reverted: Vec<usize>,
}

/// Rounds of fix and re-check, at most (ruff uses 100; each round here removes every
/// non-overlapping fixable finding, so two rounds are usual).
pub const MAX_ROUNDS: usize = 10;

fn read_all(inputs: &[(String, String, Format)]) -> Workspace {
    let mut ws = Workspace::new();
    for (name, text, format) in inputs {
        input::add_text(&mut ws, name, text, *format);
    }
    ws
}

/// Apply fixes to `inputs` and check again, while fixes apply (at most [`MAX_ROUNDS`] rounds):
/// safe fixes, and unsafe ones too when `unsafe_fixes`.
#[must_use]
pub fn run(inputs: &[Input], settings: &Settings, unsafe_fixes: bool) -> Outcome {
    let mut texts: Vec<(String, String, Format)> = inputs
        .iter()
        .map(|i| (i.name.clone(), i.text.clone(), i.format))
        .collect();
    let allowed = |a: Applicability| a == Applicability::Safe || unsafe_fixes;
    let mut fixed = Vec::new();
    let mut rounds = 0;
    let mut reverted = Vec::new();
    let mut fixable: Vec<bool> = inputs.iter().map(|i| i.fixable).collect();
    let mut ws = read_all(&texts);
    let errors_before = errors_by_file(&ws, inputs.len());
    let mut diags = crate::engine::check(&ws, settings);
    let mut unfinished = false;
    loop {
        // Per file: each fix's (one) edit and the finding it fixes.
        let mut by_file: Vec<Vec<(&Edit, &Diagnostic)>> = vec![Vec::new(); inputs.len()];
        let mut candidates = 0;
        for d in &diags {
            let Some(fix) = &d.fix else { continue };
            let [edit] = fix.edits.as_slice() else {
                continue;
            };
            if !allowed(fix.applicability) {
                continue;
            }
            let i = edit.file.0 as usize;
            if i < inputs.len() && fixable[i] {
                by_file[i].push((edit, d));
                candidates += 1;
            }
        }
        if candidates == 0 {
            break;
        }
        if rounds == MAX_ROUNDS {
            unfinished = true;
            break;
        }
        let mut changed = false;
        let before = texts.clone();
        let mut done: Vec<(usize, &Diagnostic)> = Vec::new();
        for (i, edits) in by_file.iter().enumerate() {
            if edits.is_empty() {
                continue;
            }
            let refs: Vec<&Edit> = edits.iter().map(|(e, _)| *e).collect();
            let (new, applied) = apply(&texts[i].1, &refs);
            if new != texts[i].1 {
                texts[i].1 = new;
                changed = true;
                done.extend(
                    edits
                        .iter()
                        .zip(applied)
                        .filter(|(_, a)| *a)
                        .map(|((_, d), _)| (i, *d)),
                );
            }
        }
        if !changed {
            break;
        }
        rounds += 1;
        let next = read_all(&texts);
        // Safety net: a file that reads worse than before keeps its text from before this round.
        let errors_now = errors_by_file(&next, inputs.len());
        let mut undo = false;
        for i in 0..inputs.len() {
            if errors_now[i] > errors_before[i] {
                texts[i].1.clone_from(&before[i].1);
                fixable[i] = false;
                reverted.push(i);
                undo = true;
            }
        }
        for (i, d) in done {
            let fix = d.fix.as_ref().expect("candidates have fixes");
            if texts[i].1 == before[i].1 {
                continue;
            }
            fixed.push(Fixed {
                rule: d.rule,
                input: i,
                file: inputs[i].name.clone(),
                line: ws.sources.get(d.primary.file).line_of(d.primary.span.start),
                object: d.object.clone(),
                header: d.header.clone(),
                applicability: fix.applicability,
            });
        }
        ws = if undo { read_all(&texts) } else { next };
        diags = crate::engine::check(&ws, settings);
    }
    // A snippet the fixes emptied: its key goes too, where the YAML allows it.
    let emptied = emptied_keys(inputs, &ws, &texts, &fixable);
    if emptied.iter().any(|e| !e.is_empty()) {
        let kept = texts.clone();
        for (i, edits) in emptied.iter().enumerate() {
            if !edits.is_empty() {
                let refs: Vec<&Edit> = edits.iter().collect();
                texts[i].1 = apply(&texts[i].1, &refs).0;
            }
        }
        let next = read_all(&texts);
        let errors_now = errors_by_file(&next, inputs.len());
        if errors_now.iter().zip(&errors_before).all(|(n, b)| n <= b) {
            ws = next;
            diags = crate::engine::check(&ws, settings);
        } else {
            // Never expected; undo the key removals rather than break a file.
            texts = kept;
            for (i, edits) in emptied.iter().enumerate() {
                if !edits.is_empty() {
                    reverted.push(i);
                }
            }
        }
    }
    Outcome {
        texts: texts.into_iter().map(|t| t.1).collect(),
        fixed,
        workspace: ws,
        remaining: diags,
        rounds,
        unfinished,
        reverted,
    }
}

fn errors_by_file(ws: &Workspace, n: usize) -> Vec<usize> {
    let mut out = vec![0; n];
    for e in &ws.load_errors {
        if let Some(c) = out.get_mut(e.location.file.0 as usize) {
            *c += 1;
        }
    }
    out
}

/// Edits that remove the annotation or ConfigMap keys whose value the fixes emptied, where the
/// key and its value sit alone on one line of a block mapping (`key: |`, `key: ""`); in a flow
/// mapping or JSON the empty value stays.
fn emptied_keys(
    inputs: &[Input],
    ws: &Workspace,
    texts: &[(String, String, Format)],
    fixable: &[bool],
) -> Vec<Vec<Edit>> {
    let original = read_all(
        &inputs
            .iter()
            .map(|i| (i.name.clone(), i.text.clone(), i.format))
            .collect::<Vec<_>>(),
    );
    let had_text: std::collections::HashSet<(usize, ObjectRef, String)> = entries(&original)
        .filter(|(_, _, _, t)| !t.value.trim().is_empty())
        .map(|(f, o, k, _)| (f, o.clone(), k.to_string()))
        .collect();
    let mut readers: HashMap<(FileId, Span), usize> = HashMap::new();
    for (_, _, _, t) in entries(ws) {
        *readers.entry((t.map.file, t.map.value_span)).or_default() += 1;
    }
    let mut out: Vec<Vec<Edit>> = vec![Vec::new(); texts.len()];
    for o in &ws.objects {
        let data = match o {
            Object::ConfigMap(cm) => cm.data.as_slice(),
            _ => &[],
        };
        for e in o.meta().annotations.iter().chain(data) {
            let f = e.value.map.file.0 as usize;
            if f >= texts.len()
                || !fixable[f]
                || !e.value.value.trim().is_empty()
                || !had_text.contains(&(f, o.meta().object.clone(), e.key.clone()))
                || readers
                    .get(&(e.value.map.file, e.value.map.value_span))
                    .copied()
                    .unwrap_or(0)
                    > 1
                || e.key_location.file != e.value.map.file
            {
                continue;
            }
            if let Some(span) =
                crate::edit::entry_lines(&texts[f].1, e.key_location.span, e.value.map.value_span)
            {
                out[f].push(Edit {
                    file: e.value.map.file,
                    span,
                    replacement: String::new(),
                });
            }
        }
    }
    out
}

/// (file index, object, key, value) of every annotation and ConfigMap entry.
fn entries(ws: &Workspace) -> impl Iterator<Item = (usize, &ObjectRef, &str, &Text)> {
    ws.objects.iter().flat_map(|o| {
        let data = match o {
            Object::ConfigMap(cm) => cm.data.as_slice(),
            _ => &[],
        };
        o.meta().annotations.iter().chain(data).map(move |e| {
            (
                e.value.map.file.0 as usize,
                &o.meta().object,
                e.key.as_str(),
                &e.value,
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: a\n  annotations:\n";
    const TAIL: &str = "spec:\n  ingressClassName: nginx\n";
    const KEY: &str = "    nginx.ingress.kubernetes.io/configuration-snippet: ";

    /// The text after `lint --fix --unsafe-fixes`.
    fn fixed(text: &str) -> String {
        let input = Input {
            name: "a.yaml".into(),
            text: text.into(),
            format: Format::Yaml,
            fixable: true,
        };
        let out = run(&[input], &Settings::default(), true);
        assert!(out.reverted.is_empty());
        out.texts.into_iter().next().unwrap()
    }

    fn ingress(annotation: &str) -> String {
        format!("{HEAD}{annotation}{TAIL}")
    }

    #[test]
    fn a_block_scalar_line_goes_with_its_line_break() {
        for header in ["|", "|-", "|+", "|2", ">", ">-"] {
            let src = ingress(&format!(
                "{KEY}{header}\n      more_set_headers \"A: b\";\n      proxy_set_header X-Forwarded-Proto $scheme;\n      more_set_headers \"C: d\";\n"
            ));
            assert_eq!(
                fixed(&src),
                src.replace("      proxy_set_header X-Forwarded-Proto $scheme;\n", ""),
                "{header}"
            );
        }
    }

    #[test]
    fn a_directive_over_several_lines_of_a_block_goes_with_all_of_them() {
        let src = ingress(&format!(
            "{KEY}|\n      more_set_headers \"A: b\";\n      proxy_set_header X-Forwarded-Proto\n\n          $scheme;\n      more_set_headers \"C: d\";\n"
        ));
        assert_eq!(
            fixed(&src),
            src.replace(
                "      proxy_set_header X-Forwarded-Proto\n\n          $scheme;\n",
                ""
            )
        );
        // Folded, the line breaks are spaces: no exact edit, no fix.
        let folded = src.replace(": |\n", ": >\n");
        assert_eq!(fixed(&folded), folded);
    }

    #[test]
    fn a_double_quoted_line_goes_with_its_escaped_line_break() {
        let src = ingress(&format!(
            "{KEY}\"more_set_headers \\\"A: b\\\";\\n\\tproxy_set_header X-Forwarded-Proto $scheme;\\nx_y z;\"\n"
        ));
        assert_eq!(
            fixed(&src),
            src.replace("\\tproxy_set_header X-Forwarded-Proto $scheme;\\n", "")
        );
        // The last line: the line break before it goes.
        let src = ingress(&format!(
            "{KEY}\"more_set_headers \\\"A: b\\\";\\nproxy_set_header X-Forwarded-Proto $scheme;\"\n"
        ));
        assert_eq!(
            fixed(&src),
            src.replace("\\nproxy_set_header X-Forwarded-Proto $scheme;", "")
        );
    }

    #[test]
    fn a_directive_sharing_its_line_goes_with_the_blanks_after_it() {
        let src = ingress(&format!(
            "{KEY}more_set_headers X-A; proxy_set_header X-Forwarded-Proto $scheme;  add_header X-C d;\n"
        ));
        assert_eq!(
            fixed(&src),
            src.replace("proxy_set_header X-Forwarded-Proto $scheme;  ", "")
        );
    }

    #[test]
    fn an_emptied_snippet_goes_with_its_key_or_leaves_an_empty_value() {
        let other = "    a: b\n";
        for value in [
            "|\n      proxy_set_header X-Forwarded-Proto $scheme;\n",
            "|-\n      proxy_set_header X-Forwarded-Proto $scheme;\n\n",
            "\"proxy_set_header X-Forwarded-Proto $scheme;\\n\"\n",
            "'proxy_set_header X-Forwarded-Proto $scheme;'\n",
            "proxy_set_header X-Forwarded-Proto $scheme;\n",
        ] {
            let src = ingress(&format!("{other}{KEY}{value}"));
            let out = fixed(&src);
            assert!(
                out == ingress(other) || out == ingress(&format!("{other}\n")),
                "{value:?}:\n{out}"
            );
        }
        // In a flow mapping the key stays, with an empty value.
        let src = format!(
            "kind: Ingress\napiVersion: networking.k8s.io/v1\nmetadata: {{name: a, annotations: {{nginx.ingress.kubernetes.io/configuration-snippet: \"proxy_set_header X-Forwarded-Proto $scheme;\", a: b}}}}\n{TAIL}"
        );
        assert_eq!(
            fixed(&src),
            src.replace("\"proxy_set_header X-Forwarded-Proto $scheme;\"", "\"\"")
        );
    }

    #[test]
    fn a_shared_anchor_is_an_unsafe_fix_that_says_so() {
        let src = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: networking.k8s.io/v1\n  kind: Ingress\n  metadata:\n    name: a\n    annotations:\n      nginx.ingress.kubernetes.io/configuration-snippet: &s |\n        proxy_set_header X-Forwarded-Proto $scheme;\n        more_set_headers \"A: b\";\n- apiVersion: networking.k8s.io/v1\n  kind: Ingress\n  metadata:\n    name: b\n    annotations:\n      nginx.ingress.kubernetes.io/configuration-snippet: *s\n";
        let mut ws = Workspace::new();
        input::add_text(&mut ws, "a.yaml", src, Format::Yaml);
        let diags = crate::engine::check(&ws, &Settings::default());
        assert_eq!(diags.len(), 2);
        for d in &diags {
            let fix = d.fix.as_ref().expect("a fix");
            assert_eq!(fix.applicability, Applicability::Unsafe);
            assert!(
                d.notes.iter().any(|n| n.contains("2 annotations")),
                "{:?}",
                d.notes
            );
        }
        assert_eq!(
            fixed(src),
            src.replace("        proxy_set_header X-Forwarded-Proto $scheme;\n", "")
        );
    }

    #[test]
    fn an_nginx_conf_line_goes_whole() {
        let conf = "http {\n server {\n  location / {\n   set $namespace \"shop\";\n   set $ingress_name \"web\";\n   proxy_set_header X-Forwarded-Proto $pass_access_scheme;\n   proxy_set_header X-Forwarded-Proto $scheme;\r\n   proxy_pass http://u;\n  }\n }\n}\n";
        let input = Input {
            name: "nginx.conf".into(),
            text: conf.into(),
            format: Format::Conf,
            fixable: true,
        };
        let out = run(&[input], &Settings::default(), false);
        assert_eq!(
            out.texts[0],
            conf.replace("   proxy_set_header X-Forwarded-Proto $scheme;\r\n", "")
        );
        assert_eq!(out.fixed.len(), 1);
    }
}
