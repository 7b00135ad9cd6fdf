#!/usr/bin/env python3
"""Time snippet-guard against `nginx -t`, `crossplane parse` and gixy-ng on the same files.

Runs are interleaved (tools A, B, C, D, then B, C, D, A, ...) so that load on this shared machine
hits every tool alike and no tool always follows the same one; the table reports the median wall time, the median peak RSS (GNU time), the findings,
and each peer's median divided by snippet-guard's. Called by bench/compare.sh.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEN = os.path.join(ROOT, "..", "shared", "bench", "gen_conf.py")
SG = os.path.join(ROOT, "target", "release", "snippet-guard")
VENV = os.path.join(ROOT, "bench", ".venv", "bin")


def sh(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def timed(cmd):
    """Wall seconds, peak RSS in MB, stdout, exit code (GNU time writes RSS to a file)."""
    with tempfile.NamedTemporaryFile("r") as tf:
        t0 = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name] + cmd,
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
        try:
            rss = int(open(tf.name).read().strip().splitlines()[-1]) / 1024
        except (ValueError, IndexError):
            rss = float("nan")
    return wall, rss, p.stdout, p.returncode, p.stderr


def findings_sg(out):
    d = json.loads(out)
    return sum(1 for x in d["diagnostics"] if x["rule"] == "redundant-forwarded-proto")


def findings_gixy(out):
    """Findings about the duplicated header, and how many others gixy-ng reported (its
    hardening checks: ssl_ciphers, server_tokens, HSTS, default_server, worker limits)."""
    try:
        found = json.loads(out)
    except ValueError:
        return "?"
    dup = sum(1 for f in found if "x-forwarded-proto" in json.dumps(f).lower())
    return f"{dup} (+{len(found) - dup} unrelated)" if len(found) > dup else dup


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sizes", default="1,100,1000,2000")
    ap.add_argument("--skip-gixy-over", type=int, default=2000,
                    help="skip gixy-ng above this many servers (it takes ~17 s at 2000)")
    a = ap.parse_args()
    work = os.path.join(ROOT, "bench-out")
    os.makedirs(work, exist_ok=True)
    nroot = os.path.join(work, "nginx-root")
    for d in ["tmp/body", "tmp/proxy", "tmp/fcgi", "tmp/uwsgi", "tmp/scgi"]:
        os.makedirs(os.path.join(nroot, d), exist_ok=True)
    if not os.path.exists(os.path.join(nroot, "cert.pem")):
        sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=bench", "-keyout", os.path.join(nroot, "key.pem"),
            "-out", os.path.join(nroot, "cert.pem")], check=True)
    nginx_v = sh(["/usr/sbin/nginx", "-v"]).stderr.strip()
    print(f"# {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores; {nginx_v}; "
          f"runs={a.runs} (median), interleaved, the first tool rotating")
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        conf = os.path.join(work, f"nginx-{n}.conf")
        sh([sys.executable, GEN, "--servers", str(n), "--dup-every", "7", "--out", conf,
            "--root", nroot], check=True)
        size_mb = os.path.getsize(conf) / 1e6
        expected = sum(1 for line in open(conf) if "proxy_set_header X-Forwarded-Proto $scheme;" in line)
        tools = {
            "snippet-guard lint": ([SG, "lint", "--format", "json", "--exit-zero", conf], findings_sg),
            "nginx -t": (["/usr/sbin/nginx", "-t", "-p", nroot, "-c", conf], None),
            "crossplane parse": ([os.path.join(VENV, "crossplane"), "parse", "-o", os.devnull, conf], None),
        }
        if n <= a.skip_gixy_over:
            tools["gixy-ng"] = ([os.path.join(VENV, "gixy"), "-f", "json", conf], findings_gixy)
        res = {k: {"wall": [], "rss": [], "find": None, "rc": None} for k in tools}
        names = list(tools)
        for run in range(a.runs):
            # Each run starts with the next tool, so no tool always runs right after another's
            # memory churn.
            for name in names[run % len(names):] + names[:run % len(names)]:
                cmd, count = tools[name]
                wall, rss, out, rc, err = timed(cmd)
                r = res[name]
                r["wall"].append(wall)
                r["rss"].append(rss)
                r["rc"] = rc
                if count and r["find"] is None:
                    r["find"] = count(out)
                if name == "nginx -t" and rc != 0:
                    print(f"nginx -t failed: {err.strip()[:300]}", file=sys.stderr)
        base = statistics.median(res["snippet-guard lint"]["wall"])
        for name, r in res.items():
            med = statistics.median(r["wall"])
            rows.append((n, f"{size_mb:.1f}", name, med, statistics.median(r["rss"]),
                         "n/a" if r["find"] is None else r["find"], expected,
                         med / base, size_mb / med))
    print()
    print("| servers | MB | tool | wall (median) | MB/s | peak RSS | findings | duplicates in file | x snippet-guard |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for n, mb, name, med, rss, find, exp, ratio, tput in rows:
        print(f"| {n} | {mb} | {name} | {med*1000:.1f} ms | {tput:.0f} | {rss:.0f} MB | {find} | {exp} | {ratio:.1f}x |")


if __name__ == "__main__":
    main()
