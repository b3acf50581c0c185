"""The console's JavaScript budget: at most 60 KB gzipped of the app's own code plus Preact, htm and
signals, MSAL excluded (issue 16), and the Activity map's map libraries excluded (issue 19).

web/build.mjs builds the console into a temporary folder, as `make` builds web/dist, and measures the
budget with a second esbuild pass that leaves @azure/msal-browser, d3-geo (with d3-array) and
topojson-client out (external), so the figure is what a browser downloads of everything but those
third-party libraries; the app's own code, the Activity page included, counts. Each excluded library must
stay out of the first load: MSAL only in chunks the app imports on demand, the map libraries only in the
Activity page's chunk (or chunks only it imports), and the world map (world-atlas's TopoJSON) a static
file under /assets, fetched by that page, in no JavaScript at all.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devtools.services import PROJECT_ROOT
from tests.support.ci import IN_CI

WEB = PROJECT_ROOT / "web"
BUDGET_GZIP_BYTES = 60 * 1024
MSAL_PACKAGES = {"@azure/msal-browser", "@azure/msal-common"}
OWN_LIBRARIES = {"preact", "htm", "@preact/signals"}
MAP_PACKAGES = {"d3-geo", "d3-array", "topojson-client"}


@pytest.fixture(scope="module")
def build_info(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "Node.js is not installed"
    elif not (WEB / "node_modules" / "esbuild").is_dir():
        missing = "web/node_modules is not installed (run `make install`, which runs npm ci in web/)"
    if missing:
        if IN_CI:
            pytest.fail(f"the console's budget must be measured under CI=true: {missing}")
        pytest.skip(missing)
    assert node is not None
    outdir = tmp_path_factory.mktemp("console") / "dist"
    done = subprocess.run(
        [node, "build.mjs", "--outdir", str(outdir)],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"web/build.mjs failed:\n{done.stdout}\n{done.stderr}"
    info: dict[str, Any] = json.loads((outdir / "build-info.json").read_text())
    info["outdir"] = outdir
    return info


def test_the_app_and_preact_fit_in_60_kb_gzipped_without_msal(build_info: dict[str, Any]) -> None:
    budget = build_info["budget"]
    inputs = " ".join(budget["inputs"])
    for library in OWN_LIBRARIES:
        assert f"node_modules/{library}/" in inputs, f"{library} is not measured"
    assert "node_modules/@azure/msal" not in inputs
    for library in MAP_PACKAGES:
        assert f"node_modules/{library}/" not in inputs, f"{library} is measured"
    assert "src/pages/activity.js" in inputs, "the Activity page's own code is measured"
    assert "src/main.js" in inputs
    assert budget["gzip_bytes"] == sum(budget["files"].values())
    assert budget["gzip_bytes"] <= BUDGET_GZIP_BYTES, (
        f"the console's JavaScript without MSAL is {budget['gzip_bytes'] / 1024:.1f} KB gzipped, over the "
        f"{BUDGET_GZIP_BYTES // 1024} KB budget: {budget['files']}"
    )


def test_msal_is_loaded_on_demand_not_with_the_app(build_info: dict[str, Any]) -> None:
    files = build_info["files"]
    assert not MSAL_PACKAGES & set(files["app.js"]["packages"]), "app.js must import MSAL with import()"
    msal_chunks = [name for name, f in files.items() if MSAL_PACKAGES & set(f.get("packages", []))]
    assert msal_chunks, "MSAL is in none of the built files"
    assert all(name.startswith("chunks/") or name == "redirect.js" for name in msal_chunks), msal_chunks


def test_the_build_holds_the_pages_the_host_and_the_static_web_app_serve(build_info: dict[str, Any]) -> None:
    outdir: Path = build_info["outdir"]
    for name in (
        "index.html",
        "redirect.html",
        "app.js",
        "app.css",
        "redirect.js",
        "staticwebapp.config.json",
    ):
        assert (outdir / name).is_file(), f"{name} is missing from the build"
    assert not (outdir / "config.json").exists(), "config.json is generated per environment, never built"
    for name, file in build_info["files"].items():
        assert file["bytes"] == (outdir / name).stat().st_size
    built = " ".join((outdir / n).read_text() for n in ("index.html", "redirect.html"))
    scripts = re.findall(r"<script\b[^>]*>", built)
    assert scripts, "the pages load no script"
    assert all(" src=" in tag for tag in scripts), f"inline scripts would need 'unsafe-inline': {scripts}"
    assert "<style" not in built, "inline styles would need 'unsafe-inline' in the CSP"
    assert " style=" not in built, "style attributes would need 'unsafe-inline' in the CSP"
    assert "https://" not in built, "the console loads nothing from a CDN"


STATIC_IMPORT = re.compile(
    r"""(?:^|[;}\s])import\s*(?:[\w${},\s*]+from\s*)?["'](\./[^"']+|/[^"']+|\.\./[^"']+)["']"""
)


def _static_imports(outdir: Path, file: str) -> set[str]:
    """The site paths a built module imports statically (`import … from "./x.js"`), not with import()."""
    source = (outdir / file).read_text()
    found = set()
    for relative_path in STATIC_IMPORT.findall(source):
        found.add(
            "/" + str((outdir / file).parent.joinpath(relative_path).resolve().relative_to(outdir.resolve()))
        )
    return found


def test_index_preloads_every_start_up_chunk_and_the_config(build_info: dict[str, Any]) -> None:
    """The browser fetches app.js's chunks and MSAL's side by side with app.js, not one level at a time."""
    outdir: Path = build_info["outdir"]
    html = (outdir / "index.html").read_text()
    preloaded = re.findall(r'<link rel="modulepreload" href="([^"]+)">', html)
    assert preloaded, "index.html has no modulepreload links"
    for path in preloaded:
        assert (outdir / path.lstrip("/")).is_file(), f"{path} is preloaded but not built"
    imports = _static_imports(outdir, "app.js")
    assert imports, "app.js imports its libraries' chunk statically"
    assert imports <= set(preloaded)
    msal = [p for p in preloaded if MSAL_PACKAGES & set(build_info["files"][p.lstrip("/")]["packages"])]
    assert msal, "MSAL's chunk (imported at start-up) is preloaded"
    pages = {page.stem for page in (WEB / "src" / "pages").glob("*.js")}
    early = [
        p for p in preloaded if re.fullmatch(r"/chunks/(\w+)-\w+\.js", p) and p[8:].split("-")[0] in pages
    ]
    assert not early, f"the pages' chunks load on a page's first visit, not at start-up: {early}"
    assert '<link rel="preload" href="/config.json" as="fetch" crossorigin="anonymous">' in html
    assert html.index("modulepreload") < html.index('<script type="module" src="/app.js">')


def _static_closure(outdir: Path, file: str) -> set[str]:
    """`file` and every built module it imports statically, directly or not (site paths)."""
    seen = {"/" + file}
    todo = [file]
    while todo:
        for path in _static_imports(outdir, todo.pop()):
            if path not in seen:
                seen.add(path)
                todo.append(path.lstrip("/"))
    return seen


def test_the_map_libraries_load_with_the_activity_page_only(build_info: dict[str, Any]) -> None:
    """d3-geo and topojson-client (left out of the budget) are in the Activity page's chunk or chunks only
    it imports, never in app.js, its static imports or the preloads; the world is a static asset."""
    outdir: Path = build_info["outdir"]
    files = build_info["files"]
    holding = {"/" + name for name, f in files.items() if MAP_PACKAGES & set(f.get("packages", []))}
    assert holding, "the map libraries are in none of the built files"
    first_load = _static_closure(outdir, "app.js")
    assert not holding & first_load, f"the map libraries load at start-up: {holding & first_load}"
    html = (outdir / "index.html").read_text()
    assert not [p for p in holding if f'href="{p}"' in html], "a map library chunk is preloaded"
    activity = [name for name in files if re.fullmatch(r"chunks/activity-\w+\.js", name)]
    assert len(activity) == 1, activity
    assert holding <= _static_closure(outdir, activity[0]) - first_load, (holding, activity)
    others = [n for n in files if n.endswith(".js") and "/" + n not in holding and n != activity[0]]
    for name in others:
        assert not holding & _static_imports(outdir, name), f"{name} imports a map library chunk"
    worlds = [n for n in files if re.fullmatch(r"assets/countries-110m-\w+\.json", n)]
    assert len(worlds) == 1, "the world map is one static file under /assets"
    topology = json.loads((outdir / worlds[0]).read_text())
    assert topology["type"] == "Topology"
    assert "countries" in topology["objects"]
    assert f'"../{worlds[0]}"' in (outdir / activity[0]).read_text(), "the Activity page fetches the world"
    for name in files:
        if name.endswith(".js"):
            assert '"Topology"' not in (outdir / name).read_text(), f"{name} embeds the world map"
