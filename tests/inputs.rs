//! Which inputs `lint` reads (README "Which inputs are read"): `.conf` files in a directory walk,
//! nginx fragments in their context, symbolic links and overlapping paths, missing paths, empty
//! directories and the annotation prefix.

use std::path::Path;
use std::process::{Command, Output};

fn bin(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_snippet-guard"));
    c.current_dir(dir);
    c.env("NO_COLOR", "1");
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    bin(dir).args(args).output().expect("run snippet-guard")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// An Ingress whose configuration-snippet sets X-Forwarded-Proto again: one finding.
const FINDING: &str = "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    nginx.ingress.kubernetes.io/configuration-snippet: |\n      proxy_set_header X-Forwarded-Proto $scheme;\n";

const FLUENT_BIT: &str = "[SERVICE]\n    Flush        5\n    Daemon       Off\n    Log_Level    info\n\n[INPUT]\n    Name   tail\n    Path   /var/log/containers/*.log\n\n[OUTPUT]\n    Name   stdout\n    Match  *\n";
const REDIS: &str = "bind 127.0.0.1 -::1\nprotected-mode yes\nport 6379\ninclude /etc/redis/local.conf\nsave 3600 1\n";
const SUPERVISORD: &str = "[supervisord]\nnodaemon=true\nlogfile=/dev/null\n\n[program:web]\ncommand=/usr/local/bin/gunicorn app:app ; the web server\nautorestart=true\n";
/// A `conf.d/*.conf` of `server` blocks (included inside `http`), with one duplicated header.
const SERVER_FRAGMENT: &str = "upstream api { server 10.0.0.1:8080; }\n\nserver {\n    listen 80;\n    server_name api.example.com;\n    location / {\n        proxy_set_header X-Tenant blue;\n        proxy_set_header X-Tenant blue;\n        proxy_pass http://api;\n    }\n}\n";
/// A file of `location` blocks (included inside `server`).
const LOCATION_FRAGMENT: &str = "listen 8080;\nlocation /health {\n    return 200;\n}\nlocation /api/ {\n    proxy_pass http://api;\n}\n";
/// A whole nginx.conf.
const NGINX_CONF: &str = "worker_processes 1;\nevents { worker_connections 512; }\nhttp {\n    server {\n        listen 80;\n        location / { proxy_pass http://a; }\n    }\n}\n";

/// Item 4: in a directory walk, only `.conf` files that are nginx are read; fragments are read in
/// the context they are included in.
#[test]
fn a_walk_reads_only_nginx_conf_files_and_fragments_in_their_context() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    write(&repo.join("logging/fluent-bit.conf"), FLUENT_BIT);
    write(&repo.join("cache/redis.conf"), REDIS);
    write(&repo.join("supervisord.conf"), SUPERVISORD);
    write(&repo.join("nginx/conf.d/api.conf"), SERVER_FRAGMENT);
    write(
        &repo.join("nginx/snippets/locations.conf"),
        LOCATION_FRAGMENT,
    );
    write(&repo.join("nginx/nginx.conf"), NGINX_CONF);
    write(&repo.join("deploy/ingress.yaml"), FINDING);
    // A second name for a skipped file: skipped once, said once.
    std::os::unix::fs::symlink("fluent-bit.conf", repo.join("logging/zz-copy.conf")).unwrap();

    let o = run(dir.path(), &["lint", "--format", "json", "repo"]);
    let v = json(&o);
    let err = stderr(&o);
    let rules: Vec<(&str, &str)> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["rule"].as_str().unwrap(), d["file"].as_str().unwrap()))
        .collect();
    // Nothing about the files that are not nginx, nor about the fragments' top level.
    assert_eq!(
        rules,
        [
            ("redundant-forwarded-proto", "repo/deploy/ingress.yaml"),
            ("duplicate-snippet-header", "repo/nginx/conf.d/api.conf"),
        ],
        "{v:#}\n{err}"
    );
    assert_eq!(v["summary"]["files"], 4, "{v:#}");
    for skipped in [
        "repo/cache/redis.conf",
        "repo/logging/fluent-bit.conf",
        "repo/supervisord.conf",
    ] {
        assert!(
            err.contains(&format!(
                "snippet-guard: skipped {skipped}: not an nginx configuration\n"
            )),
            "{err}"
        );
    }
    assert_eq!(err.lines().count(), 3, "{err}");
    assert_eq!(o.status.code(), Some(1));

    // The same walk in text: the summary counts the files read, not the skipped ones.
    let o = run(dir.path(), &["lint", "repo"]);
    let out = stdout(&o);
    assert!(!out.contains("unexpected end of snippet"), "{out}");
    assert!(!out.contains("not allowed here"), "{out}");
    assert!(out.contains("in 4 files"), "{out}");
}

/// A file named on the command line, or `--input-format conf`, is read whatever it holds.
#[test]
fn a_named_conf_file_is_always_read() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("redis.conf"), REDIS);
    let o = run(dir.path(), &["lint", "--format", "json", "redis.conf"]);
    let v = json(&o);
    assert_eq!(v["diagnostics"][0]["rule"], "invalid-snippet", "{v:#}");
    assert_eq!(v["summary"]["files"], 1);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o), "");

    let o = run(
        dir.path(),
        &["lint", "--format", "json", "--input-format", "conf", "."],
    );
    let v = json(&o);
    assert_eq!(v["diagnostics"][0]["rule"], "invalid-snippet", "{v:#}");
    assert_eq!(v["summary"]["files"], 1);

    // A named whole nginx.conf with a `server` block at its top level is a whole configuration
    // with a misplaced block, not a fragment.
    write(
        &dir.path().join("nginx.conf"),
        "events {}\nhttp {}\nserver { listen 80; }\n",
    );
    let o = run(dir.path(), &["lint", "nginx.conf"]);
    assert!(
        stdout(&o).contains("\"server\" directive is not allowed here (in a main block)"),
        "{}",
        stdout(&o)
    );
}

fn files_in_order(v: &serde_json::Value) -> Vec<String> {
    v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["file"].as_str().unwrap().to_string())
        .collect()
}

/// Item 13: a symbolic link loop is not followed, and a file reached twice is read once.
#[test]
fn symlink_loops_and_overlapping_paths_read_each_file_once() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let deploy = dir.path().join("deploy");
    write(&deploy.join("a.yaml"), FINDING);
    write(
        &deploy.join("b.yaml"),
        &FINDING.replace("name: web", "name: api"),
    );
    // A link to the directory's parent, one to the directory itself, one to itself, and a
    // second name for a file.
    symlink("..", deploy.join("up")).unwrap();
    symlink(".", deploy.join("here")).unwrap();
    symlink("self.yaml", deploy.join("self.yaml")).unwrap();
    symlink("a.yaml", deploy.join("c.yaml")).unwrap();

    let o = run(dir.path(), &["lint", "--format", "json", "deploy"]);
    let v = json(&o);
    assert_eq!(
        files_in_order(&v),
        ["deploy/a.yaml", "deploy/b.yaml"],
        "{v:#}"
    );
    assert_eq!(v["summary"]["files"], 2);
    let err = stderr(&o);
    // `up` leads out to the parent, whose `deploy` is the directory being walked.
    for link in ["deploy/here", "deploy/self.yaml", "deploy/up/deploy"] {
        assert!(
            err.contains(&format!("skipped {link}: a symbolic link loop")),
            "{err}"
        );
    }
    assert_eq!(o.status.code(), Some(1));

    // Overlapping arguments: each file once, in the order the arguments first reach it.
    let overlapping = [
        "lint",
        "--format",
        "json",
        "deploy/b.yaml",
        "deploy",
        "deploy/a.yaml",
        "./deploy/",
        "deploy/c.yaml",
    ];
    let o = run(dir.path(), &overlapping);
    let v = json(&o);
    assert_eq!(
        files_in_order(&v),
        ["deploy/b.yaml", "deploy/a.yaml"],
        "{v:#}"
    );
    assert_eq!(v["summary"]["files"], 2);
    // The run is the same every time.
    let again = run(dir.path(), &overlapping);
    assert_eq!(again.stdout, o.stdout);
    assert_eq!(again.stderr, o.stderr);
}

/// Item 16: a path that does not exist is one line on stderr, the reason said once.
#[test]
fn a_missing_path_is_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &["lint", "nope.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "snippet-guard: error: cannot read nope.yaml: no such file or directory\n"
    );
    assert_eq!(stdout(&o), "");
}

/// Item 16: a directory with nothing to read below it is reported, not silently clean.
#[test]
fn an_empty_directory_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("empty/charts")).unwrap();
    write(&dir.path().join("logging/fluent-bit.conf"), FLUENT_BIT);
    write(&dir.path().join("deploy/web.yaml"), FINDING);

    let o = run(dir.path(), &["lint", "empty"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stderr(&o),
        "snippet-guard: warning: nothing to check in empty: no Kubernetes manifest (.yaml, .yml, .json) or nginx configuration (.conf) below it\n"
    );
    assert!(stdout(&o).contains("in 0 files"), "{}", stdout(&o));

    // A directory whose only .conf file is not nginx has nothing to check either.
    let o = run(dir.path(), &["lint", "logging", "deploy"]);
    let err = stderr(&o);
    assert!(
        err.contains("warning: nothing to check in logging:"),
        "{err}"
    );
    assert!(!err.contains("in deploy"), "{err}");
    assert_eq!(o.status.code(), Some(1));
}

/// Item 16: a prefix with a trailing `/` would match no annotation: refused as a usage error.
#[test]
fn an_annotation_prefix_with_a_trailing_slash_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("web.yaml"), FINDING);
    let o = run(
        dir.path(),
        &[
            "lint",
            "--annotations-prefix",
            "nginx.ingress.kubernetes.io/",
            "web.yaml",
        ],
    );
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("--annotations-prefix takes the prefix without a trailing `/`")
            && err.contains("use `nginx.ingress.kubernetes.io`"),
        "{err}"
    );
    assert_eq!(stdout(&o), "");

    // Without the slash, a custom prefix is the one read.
    write(
        &dir.path().join("custom.yaml"),
        &FINDING.replace("nginx.ingress.kubernetes.io/", "custom.example.com/"),
    );
    let custom = |prefix: &str| {
        run(
            dir.path(),
            &["lint", "--annotations-prefix", prefix, "custom.yaml"],
        )
        .status
        .code()
    };
    assert_eq!(custom("custom.example.com"), Some(1));
    assert_eq!(custom("nginx.ingress.kubernetes.io"), Some(0));
}

/// nginx refuses a configuration that starts with a byte order mark (`unknown directive`); the
/// file is still checked, and the user is told.
#[test]
fn a_byte_order_mark_in_an_nginx_conf_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("conf.d/api.conf"),
        &format!("\u{feff}{SERVER_FRAGMENT}"),
    );
    let o = run(dir.path(), &["lint", "--format", "json", "conf.d"]);
    let v = json(&o);
    assert_eq!(v["diagnostics"][0]["rule"], "duplicate-snippet-header");
    assert_eq!(v["diagnostics"][0]["line"], 8);
    assert_eq!(
        stderr(&o),
        "snippet-guard: warning: conf.d/api.conf starts with a UTF-8 byte order mark: nginx refuses it (`unknown directive`); save the file without it\n"
    );
}
