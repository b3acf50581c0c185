"""web/htm-compact.mjs, the console build's plugin that ships htm templates without what htm ignores:
what it changes and what it leaves alone, and that every template of web/src compacts to the tree htm
built before (the plugin refuses otherwise; web/build.mjs, and so tests/unit/test_web_budget.py, run it
on every file)."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from devtools.services import PROJECT_ROOT
from tests.support.ci import IN_CI

WEB = PROJECT_ROOT / "web"
COMPACT = f"""
import {{ compactSource }} from {json.dumps((WEB / "htm-compact.mjs").as_uri())};
let text = "";
process.stdin.setEncoding("utf8");
for await (const chunk of process.stdin) text += chunk;
const out = [];
for (const [name, source] of JSON.parse(text)) {{
  try {{ out.push(compactSource(source, name)); }} catch (error) {{ out.push({{ error: error.message }}); }}
}}
process.stdout.write(JSON.stringify(out));
"""


def compact(*sources: str) -> list[object]:
    node = shutil.which("node")
    missing = None
    if node is None:
        missing = "Node.js is not installed"
    elif not (WEB / "node_modules" / "htm").is_dir():
        missing = "web/node_modules is not installed (make install)"
    if missing:
        if IN_CI:
            pytest.fail(f"htm-compact needs Node.js and web/node_modules under CI=true: {missing}")
        pytest.skip(missing)
    assert node is not None
    done = subprocess.run(
        [node, "--input-type=module", "-e", COMPACT],
        input=json.dumps([[f"s{i}.js", s] for i, s in enumerate(sources)]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: list[object] = json.loads(done.stdout)
    return result


def test_indentation_closing_tag_names_and_single_token_quotes_go() -> None:
    source = (
        'const a = html`\n  <div class="box" data-testid="x-1">\n    <span title=${t}>${x}</span>\n'
        "  </div>\n`;"
    )
    assert compact(source) == ["const a = html`<div class=box data-testid=x-1><span title=${t}>${x}</></>`;"]


def test_text_inside_quoted_values_with_spaces_and_self_closing_tags_are_kept() -> None:
    source = (
        'html`<p class="a b" aria-label="Two words">Hello\n      world, ${name}!</p>\n'
        '<${Row} key=${k}\n   id="r" />\n<a href="/x/y">link</a>`'
    )
    assert compact(source) == [
        'html`<p class="a b" aria-label="Two words">Hello\n      world, ${name}!</><${Row} key=${k} id=r/>'
        '<a href="/x/y">link</>`'
    ]


def test_nested_templates_in_fields_are_compacted_too() -> None:
    source = 'html`<ul>\n  ${items.map((i) => html`<li class="it">\n    ${i}\n  </li>`)}\n</ul>`'
    assert compact(source) == ["html`<ul>${items.map((i) => html`<li class=it>${i}</>`)}</>`"]


def test_other_templates_strings_comments_and_regexes_are_left_alone() -> None:
    sources = [
        "const t = `  <p> a </p>\n  `; const u = css`  <b> </b>  `;",
        'const s = "html`<p>  </p>`"; // html`<p>  </p>`\n/* html`<i>\n </i>` */',
        "const r = /`html`<b>\\n </b>/g.test(x) ? a / b : `  <q> </q>  `;",
        "const h = html`<pre>\\n  kept</pre>`;",  # a backslash: the template is left as written
        "const c = html`<!-- a comment -->\n  <p>x</p>`;",
    ]
    assert compact(*sources) == sources


def test_every_template_of_the_console_compacts_to_the_same_htm_tree() -> None:
    files = sorted((WEB / "src").rglob("*.js"))
    assert len(files) > 10
    sources = [f.read_text() for f in files]
    results = compact(*sources)
    errors = [(f.name, r) for f, r in zip(files, results, strict=True) if isinstance(r, dict)]
    assert errors == []
    assert all(isinstance(r, str) and len(r) <= len(s) for r, s in zip(results, sources, strict=True))
    assert sum(len(s) - len(str(r)) for r, s in zip(results, sources, strict=True)) > 10_000
