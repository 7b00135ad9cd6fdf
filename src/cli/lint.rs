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
use crate::settings::{NicSettings, NicVersion};

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
    /// `f5-nginx-ingress`. Every controller by default; an object goes to the one serving its
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
}

/// Print the report of a checked workspace and return the exit status.
pub fn report(ws: &Workspace, diags: &[crate::Diagnostic], out: &OutputArgs) -> Result<ExitStatus> {
    let objects = ws.objects.len() + ws.confs.len();
    let report = Report {
        sources: &ws.sources,
        diagnostics: diags,
        load_errors: &ws.load_errors,
        files: ws.files,
        objects,
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
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
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
