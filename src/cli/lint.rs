//! `snippet-guard lint`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, ValueEnum};

use crate::cli::ExitStatus;
use crate::diagnostic::Severity;
use crate::engine::Settings;
use crate::input::{self, Format};
use crate::model::Workspace;
use crate::profile::ingress_nginx::Version;
use crate::render::{self, Report};
use crate::settings::{NgfSettings, NicSettings, NicVersion};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Code frames pointing at the line (default).
    Text,
    /// One JSON object: diagnostics and summary.
    Json,
    /// SARIF 2.1.0, for code scanning.
    Sarif,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Error,
    Warning,
    Info,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// By extension (.yaml/.yml/.json, .conf), else by content.
    Auto,
    /// Kubernetes manifests (YAML or JSON; multi-document streams and `kind: List`).
    Yaml,
    /// A rendered nginx.conf.
    Conf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Color {
    Auto,
    Always,
    Never,
}

/// Options shared by `lint` and the cluster commands: how to judge objects.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// ingress-nginx version the cluster runs (1.9 to 1.15).
    #[arg(long, value_name = "VERSION", default_value = "1.15", value_parser = parse_version)]
    pub controller_version: Version,
    /// The ingress-nginx controller ConfigMap as NAMESPACE/NAME (repeatable). Without it, a
    /// ConfigMap is recognised by its name, its labels or its ingress-nginx keys.
    #[arg(long, value_name = "NS/NAME")]
    pub controller_configmap: Vec<String>,
    /// An ingress class served by ingress-nginx besides `nginx` (repeatable).
    #[arg(long, value_name = "NAME")]
    pub ingress_class: Vec<String>,
    /// ingress-nginx `--annotations-prefix`, without a trailing `/`.
    #[arg(long, value_name = "PREFIX", default_value = crate::profile::ingress_nginx::DEFAULT_ANNOTATION_PREFIX)]
    pub annotations_prefix: String,
    /// Only these rules (repeatable, or comma-separated).
    #[arg(long, value_name = "RULE", value_delimiter = ',')]
    pub select: Vec<String>,
    /// Skip these rules (repeatable, or comma-separated).
    #[arg(long, value_name = "RULE", value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Do not honour `snippet-guard.io/ignore-*` annotations.
    #[arg(long)]
    pub no_annotation_suppressions: bool,
    /// Judge only these controllers (repeatable, or comma-separated): `ingress-nginx`,
    /// `f5-nginx-ingress`, `nginx-gateway-fabric`. Every controller by default; an object goes to the one serving its
    /// class.
    #[arg(long = "controller", value_name = "NAME", value_delimiter = ',')]
    pub controllers: Vec<String>,
    /// F5 NGINX Ingress Controller version the cluster runs (3.7 to 5.5).
    #[arg(long, value_name = "VERSION", default_value = "5.5", value_parser = parse_nic_version)]
    pub nic_version: NicVersion,
    /// Whether F5 NGINX Ingress Controller runs with `-enable-snippets` (its default is false).
    /// Unset: snippets are judged as rendered. `false`: an Ingress with snippet annotations is
    /// reported as rejected, and snippet fields of VirtualServers as ignored.
    #[arg(long, value_name = "BOOL")]
    pub nic_enable_snippets: Option<bool>,
    /// An ingress class served by F5 NGINX Ingress Controller besides `nginx` (repeatable).
    #[arg(long, value_name = "NAME")]
    pub nic_ingress_class: Vec<String>,
    /// Whether NGINX Gateway Fabric runs with `--snippets` (its default is false). Unset:
    /// snippets are judged as rendered. `false`: SnippetsFilters and SnippetsPolicies are
    /// reported as not rendered, and route rules that reference a SnippetsFilter as answering 500.
    #[arg(long, value_name = "BOOL")]
    pub ngf_snippets: Option<bool>,
    /// F5 NGINX Ingress Controller's ConfigMap as NAMESPACE/NAME (its `-nginx-configmaps`).
    /// Without it, a ConfigMap is recognised by its name, labels or keys.
    #[arg(long, value_name = "NS/NAME")]
    pub nic_configmap: Vec<String>,
}

fn parse_nic_version(s: &str) -> Result<NicVersion, String> {
    NicVersion::parse(s).map_err(|e| e.to_string())
}

fn parse_version(s: &str) -> Result<Version, String> {
    Version::parse(s).map_err(|e| e.to_string())
}

impl CheckArgs {
    /// Engine settings; fails on unknown rule ids.
    pub fn settings(&self) -> Result<Settings> {
        for id in self.select.iter().chain(&self.ignore) {
            if crate::rules::by_id(id).is_none() {
                let ids: Vec<&str> = crate::rules::ALL.iter().map(|r| r.id).collect();
                bail!("unknown rule `{id}`; rules are: {}", ids.join(", "));
            }
        }
        // ingress-nginx joins its prefix and an annotation name with a `/` of its own: with a
        // trailing one, no annotation would ever match.
        if let Some(prefix) = self.annotations_prefix.strip_suffix('/') {
            bail!(
                "--annotations-prefix takes the prefix without a trailing `/`, as ingress-nginx's flag does: use `{prefix}`"
            );
        }
        for (flag, cm) in self
            .controller_configmap
            .iter()
            .map(|c| ("--controller-configmap", c))
            .chain(self.nic_configmap.iter().map(|c| ("--nic-configmap", c)))
        {
            if cm.split('/').count() != 2 || cm.starts_with('/') || cm.ends_with('/') {
                bail!("{flag} takes NAMESPACE/NAME, got `{cm}`");
            }
        }
        let known = crate::profile::names();
        for c in &self.controllers {
            if !known.contains(&c.as_str()) {
                bail!(
                    "unknown controller `{c}`; controllers are: {}",
                    known.join(", ")
                );
            }
        }
        Ok(Settings {
            version: self.controller_version,
            annotation_prefix: self.annotations_prefix.clone(),
            controller_configmaps: self.controller_configmap.clone(),
            ingress_classes: self.ingress_class.clone(),
            select: self.select.clone(),
            ignore: self.ignore.clone(),
            annotation_suppressions: !self.no_annotation_suppressions,
            profiles: self.controllers.clone(),
            nic: NicSettings {
                version: self.nic_version,
                snippets: self.nic_enable_snippets,
                ingress_classes: self.nic_ingress_class.clone(),
                configmaps: self.nic_configmap.clone(),
            },
            ngf: NgfSettings {
                snippets: self.ngf_snippets,
            },
        })
    }
}

/// Options for printing a report.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Exit 1 when a finding has at least this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Always exit 0 when the run itself succeeded (reporting runs).
    #[arg(long)]
    pub exit_zero: bool,
    /// Colour in text output.
    #[arg(long, value_enum, default_value_t = Color::Auto)]
    pub color: Color,
}

#[derive(Debug, Args)]
pub struct LintArgs {
    /// Files or directories to lint; `-` reads standard input.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// How to read the inputs.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub input_format: InputFormat,
    #[command(flatten)]
    pub check: CheckArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub fix: FixArgs,
}

/// Options of `lint` that change files.
#[derive(Debug, Clone, Args)]
pub struct FixArgs {
    /// Apply the safe fixes in place, check again while fixes apply, and report what remains.
    /// Files are written through a temporary file and a rename; a file that changed since it was
    /// read is left alone. With `-` as the only path, the fixed standard input is printed to
    /// stdout (and the report to stderr).
    #[arg(long)]
    pub fix: bool,
    /// With --fix or --diff, apply the unsafe fixes too (they can change what a backend receives).
    #[arg(long)]
    pub unsafe_fixes: bool,
    /// Print the fixes as a unified diff and write nothing.
    #[arg(long, conflicts_with = "fix")]
    pub diff: bool,
}

/// Print the report of a checked workspace and return the exit status.
pub fn report(ws: &Workspace, diags: &[crate::Diagnostic], out: &OutputArgs) -> Result<ExitStatus> {
    report_to(ws, diags, &[], out, &mut std::io::stdout().lock())
}

/// [`report`] with the findings `lint --fix` removed, to `sink`.
fn report_to(
    ws: &Workspace,
    diags: &[crate::Diagnostic],
    fixed: &[crate::fix::Fixed],
    out: &OutputArgs,
    sink: &mut dyn Write,
) -> Result<ExitStatus> {
    let objects = ws.objects.len() + ws.confs.len();
    let report = Report {
        sources: &ws.sources,
        diagnostics: diags,
        load_errors: &ws.load_errors,
        files: ws.files,
        objects,
        fixed,
    };
    let color = match out.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let text = match out.format {
        OutputFormat::Text => render::text::render(&report, color),
        OutputFormat::Json => render::json::render(&report),
        OutputFormat::Sarif => render::sarif::render(&report),
    };
    if let Err(e) = sink.write_all(text.as_bytes()).and_then(|()| sink.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(e.into());
    }
    let threshold = match out.fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
        FailOn::Info => Severity::Info,
    };
    if !ws.load_errors.is_empty() {
        // An input that could not be read is never a green build, whatever the flags say.
        Ok(ExitStatus::Error)
    } else if !out.exit_zero && diags.iter().any(|d| d.severity >= threshold) {
        Ok(ExitStatus::Failure)
    } else {
        Ok(ExitStatus::Success)
    }
}

pub fn run(args: &LintArgs) -> Result<ExitStatus> {
    let settings = args.check.settings()?;
    let format = match args.input_format {
        InputFormat::Auto => Format::Auto,
        InputFormat::Yaml => Format::Yaml,
        InputFormat::Conf => Format::Conf,
    };
    let mut ws = Workspace::new();
    for notice in input::load_paths(&mut ws, &args.paths, format)? {
        if notice.is_warning() {
            eprintln!("snippet-guard: warning: {notice}");
        } else {
            eprintln!("snippet-guard: {notice}");
        }
    }
    if args.fix.fix || args.fix.diff {
        return fix(args, ws, &settings);
    }
    if args.fix.unsafe_fixes {
        bail!("--unsafe-fixes applies with --fix or --diff");
    }
    let context = crate::engine::Context::from_workspace(&ws, &settings);
    for warning in context.warnings() {
        eprintln!("snippet-guard: warning: {warning}");
    }
    let diags = crate::engine::check_with(&context, &ws);
    let status = report(&ws, &diags, &args.output);
    // The process exits next: freeing the syntax tree of a 16 MB nginx.conf node by node (and
    // the allocator handing its pages back) would only delay that by a few milliseconds.
    std::mem::forget(diags);
    std::mem::forget(ws);
    status
}

/// `lint --fix` and `lint --diff`: fix, check again, write (or print a diff), report what remains.
fn fix(args: &LintArgs, ws: Workspace, settings: &Settings) -> Result<ExitStatus> {
    let stdin = args.paths.iter().any(|p| p.as_os_str() == "-");
    if stdin && args.fix.fix && args.paths.len() > 1 {
        bail!(
            "--fix never edits standard input: with `-` alone it prints the fixed input to stdout; lint the files and standard input separately"
        );
    }
    let inputs: Vec<crate::fix::Input> = ws
        .sources
        .iter()
        .map(|(id, f)| crate::fix::Input {
            name: f.name.clone(),
            text: f.text.as_str().to_owned(),
            format: if ws.confs.contains(&id) {
                Format::Conf
            } else {
                Format::Yaml
            },
            fixable: !ws.load_errors.iter().any(|e| e.location.file == id),
        })
        .collect();
    let context = crate::engine::Context::from_workspace(&ws, settings);
    for warning in context.warnings() {
        eprintln!("snippet-guard: warning: {warning}");
    }
    drop(ws);
    let outcome = crate::fix::run(&inputs, settings, args.fix.unsafe_fixes);
    for &i in &outcome.reverted {
        eprintln!(
            "snippet-guard: warning: the fixes of {} were undone: the fixed text did not read as cleanly as the original (please report this)",
            inputs[i].name
        );
    }
    if outcome.unfinished {
        eprintln!(
            "snippet-guard: warning: fixes still applied after {} rounds; run again",
            crate::fix::MAX_ROUNDS
        );
    }
    let changed: Vec<usize> = (0..inputs.len())
        .filter(|&i| outcome.texts[i] != inputs[i].text)
        .collect();
    if args.fix.diff {
        let mut stdout = std::io::stdout().lock();
        for &i in &changed {
            let name = &inputs[i].name;
            let diff = similar::TextDiff::from_lines(&inputs[i].text, &outcome.texts[i]);
            let text = diff
                .unified_diff()
                .context_radius(3)
                .header(&format!("a/{name}"), &format!("b/{name}"))
                .to_string();
            write_out(&mut stdout, text.as_bytes())?;
        }
        drop(stdout);
        let fixes = outcome.fixed.len();
        eprintln!(
            "snippet-guard: would fix {fixes} finding{} in {} file{}; {} would remain",
            if fixes == 1 { "" } else { "s" },
            changed.len(),
            if changed.len() == 1 { "" } else { "s" },
            outcome.remaining.len()
        );
        return Ok(status(&outcome.workspace, &outcome.remaining, &args.output));
    }
    let mut failed = false;
    for &i in &changed {
        let name = &inputs[i].name;
        if name == input::STDIN_NAME {
            continue;
        }
        if let Err(e) = write_back(
            std::path::Path::new(name),
            &inputs[i].text,
            &outcome.texts[i],
        ) {
            eprintln!("snippet-guard: {name} not fixed: {e:#}");
            failed = true;
        }
    }
    let stdin_fixed = stdin && args.fix.fix;
    let status = if stdin_fixed {
        // The fixed document is the output; the report goes to stderr.
        let text = outcome.texts.first().map_or("", String::as_str);
        write_out(&mut std::io::stdout().lock(), text.as_bytes())?;
        report_to(
            &outcome.workspace,
            &outcome.remaining,
            &outcome.fixed,
            &args.output,
            &mut std::io::stderr().lock(),
        )?
    } else {
        report_to(
            &outcome.workspace,
            &outcome.remaining,
            &outcome.fixed,
            &args.output,
            &mut std::io::stdout().lock(),
        )?
    };
    if failed {
        return Ok(ExitStatus::Error);
    }
    Ok(status)
}

fn write_out(sink: &mut dyn Write, bytes: &[u8]) -> Result<()> {
    match sink.write_all(bytes).and_then(|()| sink.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The exit status of a report, without printing it.
fn status(ws: &Workspace, diags: &[crate::Diagnostic], out: &OutputArgs) -> ExitStatus {
    let threshold = match out.fail_on {
        FailOn::Error => Severity::Error,
        FailOn::Warning => Severity::Warning,
        FailOn::Info => Severity::Info,
    };
    if !ws.load_errors.is_empty() {
        ExitStatus::Error
    } else if !out.exit_zero && diags.iter().any(|d| d.severity >= threshold) {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    }
}

/// Replace the file at `path`, read as `was`, with `now`: refused when the file no longer holds
/// `was`; written to a temporary file beside it (same permissions), then renamed over it, so that
/// a reader sees the old file or the new one, never a part. A byte order mark is kept.
fn write_back(path: &std::path::Path, was: &str, now: &str) -> Result<()> {
    use anyhow::Context as _;
    const BOM: &[u8] = "\u{feff}".as_bytes();
    // A symbolic link stays one: the file it points to is replaced.
    let path = &std::fs::canonicalize(path).context("cannot read it again")?;
    let current = std::fs::read(path).context("cannot read it again")?;
    let (bom, body) = match current.strip_prefix(BOM) {
        Some(rest) => (true, rest),
        None => (false, current.as_slice()),
    };
    if body != was.as_bytes() {
        bail!("it changed since it was read; run again");
    }
    let meta = std::fs::metadata(path)?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut attempt = 0u32;
    let (tmp, mut file) = loop {
        let tmp = dir.join(format!(
            ".{file_name}.snippet-guard-{}-{attempt}.tmp",
            std::process::id()
        ));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(e) => return Err(e).context("cannot create a temporary file beside it"),
        }
    };
    let written = (|| -> std::io::Result<()> {
        if bom {
            file.write_all(BOM)?;
        }
        file.write_all(now.as_bytes())?;
        file.sync_all()?;
        std::fs::set_permissions(&tmp, meta.permissions())?;
        // The last look before the rename: a write in between is not overwritten.
        if std::fs::read(path)? != current {
            return Err(std::io::Error::other(
                "it changed while the fix was written; run again",
            ));
        }
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_changed_since_it_was_read_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "a: 2\n").unwrap();
        let e = write_back(&path, "a: 1\n", "a: 3\n").unwrap_err();
        assert!(
            format!("{e:#}").contains("changed since it was read"),
            "{e:#}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a: 2\n");
        write_back(&path, "a: 2\n", "a: 3\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a: 3\n");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_stays_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.yaml");
        let link = dir.path().join("link.yaml");
        std::fs::write(&target, "a: 1\n").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_back(&link, "a: 1\n", "a: 2\n").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "a: 2\n");
    }

    #[cfg(unix)]
    #[test]
    fn the_written_file_keeps_its_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.yaml");
        std::fs::write(&path, "a: 1\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_back(&path, "a: 1\n", "a: 2\n").unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }
}
