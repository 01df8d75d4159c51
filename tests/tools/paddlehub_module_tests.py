"""Run PaddleHub's own module test files against hubcls, and count what passes.

PaddleHub ships a ``test.py`` (unittest) for some classification modules
(``modules/image/classification/<name>/test.py``). This tool reads them from a PaddleHub clone at run
time (nothing of PaddleHub's is stored in hubcls) and runs each one twice, unchanged except for the
photo and the weights, which this machine cannot download:

* ``--via hubcls``: ``import paddlehub as hub`` becomes ``import hubcls.hub as hub`` (the hubcls Module);
* ``--via paddlehub``: real PaddleHub (tests/install_peers.sh's venv) with the module made by
  ``hubcls hub-module <name>`` and ``hub install``-ed into a scratch HUB_HOME.

The photo: the test downloads ``img_url`` with requests; the URL is pointed at a 127.0.0.1 server
holding a real photo (scikit-image's cat). The weights: the file at the official URL's place in the
cache (HUBCLS_OFFLINE=1) is ``tests/_hub_helpers.weights_answering``: a backbone with random weights
and a head that answers the class the test checks ("Pembroke", or "Cardigan") for that photo.
Every other line of the test runs as PaddleHub wrote it.

    python tests/tools/paddlehub_module_tests.py /path/to/PaddleHub/.git                   # all modules, both ways
    python tests/tools/paddlehub_module_tests.py /path/to/PaddleHub/.git --modules efficientnetb0_imagenet --via hubcls
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
ROOT = "modules/image/classification/"
HUB_VENV = REPO / "build" / "peers" / "paddlehub-venv"
# runs test.py with unittest and prints each test's outcome as one JSON line at the end
RUNNER = """
import json, sys, unittest
suite = unittest.defaultTestLoader.loadTestsFromName("test")
ids = [t.id().rsplit(".", 1)[-1] for t in suite._tests[0]] if suite._tests else []
res = unittest.TextTestRunner(verbosity=2).run(suite)
out = dict.fromkeys(ids, "ok")
for kind, rows in (("FAIL", res.failures), ("ERROR", res.errors)):
    for test, _ in rows:
        tid = test.id().rsplit(".", 1)[-1]
        out[tid if tid in out else "setUpClass/tearDownClass " + tid] = kind
for test, why in res.skipped:
    out[test.id().rsplit(".", 1)[-1]] = "skipped: " + why
print("RESULTS" + json.dumps(out))
"""


def git(gitdir, *args) -> str:
    return subprocess.run(["git", f"--git-dir={gitdir}", *args], check=True, capture_output=True, text=True).stdout


def test_files(gitdir, ref):
    """{module name: test.py text} for every module with a test.py in PaddleHub at ``ref``."""
    files = [f for f in git(gitdir, "ls-tree", "-r", "--name-only", ref, ROOT).splitlines() if f.endswith("/test.py")]
    return {f.split("/")[-2]: git(gitdir, "show", f"{ref}:{f}") for f in files}


def adapt(text: str, photo_url: str, via: str) -> str:
    """The two changes: where the photo comes from, and (via hubcls) which ``hub`` is imported."""
    out, n = re.subn(r"img_url = '[^']*'", f"img_url = '{photo_url}'", text)
    if n != 1:
        raise ValueError("test.py: expected exactly one img_url = '...'")
    if via == "hubcls":
        out, n = re.subn(r"^import paddlehub as hub$", "import hubcls.hub as hub", out, flags=re.M)
        if n != 1:
            raise ValueError("test.py: expected `import paddlehub as hub`")
    return out


def checked_label(text: str) -> str:
    labels = set(re.findall(r"self\.assertTrue\('([^']+)' in data\)", text))
    if len(labels) != 1:
        raise ValueError(f"test.py checks {labels or 'no'} labels; expected one")
    return labels.pop()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve(root: Path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def _prepare_weights(model: str, label: str, photo_path: Path, env: dict) -> None:
    """The stand-in official weights, written where HUBCLS_HOME's cache keeps them (in a subprocess,
    so the big models' memory goes back at once)."""
    code = (
        "import sys, cv2\n"
        "from _hub_helpers import weights_answering\n"
        "from hubcls.data.label_lists import builtin_labels\n"
        "from hubcls.hub.download import cache_path\n"
        "from hubcls.models import resolve\n"
        "cfg = resolve(sys.argv[1])\n"
        "names = [n.split(',')[0].strip() for n in builtin_labels('imagenet1k')]\n"
        "target = names.index(sys.argv[2])\n"
        "rgb = cv2.imread(sys.argv[3])[:, :, ::-1]\n"
        "weights_answering(cache_path(cfg.weight_urls()[0]), cfg.name, rgb, target)\n"
    )
    r = subprocess.run([sys.executable, "-c", code, model, label, str(photo_path)], env=env, cwd=str(REPO / "tests"),
                       capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(f"weights for {model}: {r.stderr[-2000:]}")


def run_module(name: str, text: str, via: str, work: Path, photo_url: str, photo_path: Path, model: str) -> dict:
    d = work / f"{name}-{via}"
    d.mkdir(parents=True)
    hubcls_home, hub_home = d / "hubcls_home", d / "hub_home"
    (hub_home / "conf").mkdir(parents=True)
    # PaddleHub's server (module search, usage reports) -> the 127.0.0.1 stand-in, which has nothing
    (hub_home / "conf" / "config.yaml").write_text(f"server: {photo_url.rsplit('/', 1)[0]}/paddlehub\n"
                                                   f"log:\n  enable: true\n  level: WARNING\n")
    env = dict(os.environ, HUBCLS_HOME=str(hubcls_home), HUB_HOME=str(hub_home), HUBCLS_OFFLINE="1",
               OMP_NUM_THREADS="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.pop("PYTHONPATH", None)
    _prepare_weights(model, checked_label(text), photo_path, env)
    python = sys.executable
    if via == "paddlehub":
        python = str(HUB_VENV / "bin" / "python")
        subprocess.run([sys.executable, "-m", "hubcls", "hub-module", name, "-o", str(d / "mods")], env=env,
                       check=True, capture_output=True)
        r = subprocess.run([str(HUB_VENV / "bin" / "hub"), "install", str(d / "mods" / name)], env=env,
                           capture_output=True, text=True)
        if r.returncode:
            return {"module": name, "via": via, "error": f"hub install failed: {r.stderr[-1500:]}", "tests": {}}
    (d / "test.py").write_text(adapt(text, photo_url, via), encoding="utf-8")
    t0 = time.time()
    r = subprocess.run([python, "-c", RUNNER], cwd=str(d), env=env, capture_output=True, text=True)
    tests = json.loads(r.stdout.rsplit("RESULTS", 1)[1]) if "RESULTS" in r.stdout else {}
    out = {"module": name, "via": via, "tests": tests, "seconds": round(time.time() - t0, 1)}
    failed = {k for k, v in tests.items() if v != "ok"}
    if failed or not tests:
        out["log_tail"] = r.stderr[-3000:]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("gitdir", help="a PaddleHub clone's .git directory")
    p.add_argument("--ref", default="HEAD")
    p.add_argument("--modules", default="", help="comma-separated module names (default: every one hubcls has)")
    p.add_argument("--via", choices=("hubcls", "paddlehub", "both"), default="both")
    p.add_argument("--json", help="also write the per-test results here")
    args = p.parse_args(argv)
    from _hub_helpers import jpeg_bytes, photo

    from hubcls.models import paddlehub_module

    files = test_files(args.gitdir, args.ref)
    wanted = [m for m in args.modules.split(",") if m] or sorted(files)
    vias = ("hubcls", "paddlehub") if args.via == "both" else (args.via,)
    if "paddlehub" in vias and not (HUB_VENV / "bin" / "hub").exists():
        p.error(f"no PaddleHub venv at {HUB_VENV}: run `bash tests/install_peers.sh`")
    results, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="ph-tests-") as tmp:
        work = Path(tmp)
        (work / "www").mkdir()
        photo_path = work / "www" / "photo.jpg"
        photo_path.write_bytes(jpeg_bytes(photo(2)))
        httpd = _serve(work / "www")
        url = f"http://127.0.0.1:{httpd.server_address[1]}/photo.jpg"
        try:
            for name in wanted:
                row = paddlehub_module(name)
                if name not in files or row is None or not row.model:
                    skipped.append(name)
                    continue
                for via in vias:
                    res = run_module(name, files[name], via, work, url, photo_path, row.model)
                    results.append(res)
                    ok = sum(v == "ok" for v in res["tests"].values())
                    print(f"{name:40s} via {via:9s}: {ok}/{len(res['tests'])} passed "
                          f"({res.get('seconds', '-')} s) {res.get('error', '')}", flush=True)
                    for k, v in sorted(res["tests"].items()):
                        if v != "ok":
                            print(f"    {k}: {v}")
        finally:
            httpd.shutdown()
    for via in vias:
        rs = [r for r in results if r["via"] == via]
        total = sum(len(r["tests"]) for r in rs)
        ok = sum(v == "ok" for r in rs for v in r["tests"].values())
        print(f"via {via}: {ok} of {total} PaddleHub module tests passed ({len(rs)} modules)")
    if skipped:
        print(f"not run (no test.py, or a module hubcls does not have): {', '.join(skipped)}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
