"""The local host's console site (devtools/host/static_site.py): web/staticwebapp.config.json's headers,
the SPA fallback, Content-Types, caching, /config.json, and hostile paths that must never leave web/dist.

The folder is a small stand-in for web/dist built in tmp_path; the configuration is the real file.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.host.config import HostKeys
from devtools.host.http_server import HttpDispatcher
from devtools.host.static_site import (
    ConsoleConfig,
    ConsoleNotConfigured,
    StaticSite,
    SwaConfig,
    add_csp_sources,
    expand_braces,
    loopback_authority_metadata,
    route_matches,
)
from devtools.services import PROJECT_ROOT

SWA_CONFIG = PROJECT_ROOT / "web" / "staticwebapp.config.json"
AUTHORITY_ORIGIN = "https://127.0.0.1:7443"
AUTHORITY = f"{AUTHORITY_ORIGIN}/7d1c3f0a-16b2-4e5f-9a8b-c0d1e2f3a416/v2.0"
CLIENT_ID = "3f6d2a1b-9c8e-4b7a-a6f5-e4d3c2b1a016"
SCOPE = "api://aoc-functions/access_as_user"
ORIGIN = "http://127.0.0.1:7071"
INDEX = b"<!doctype html><title>console</title>"
SECRET = b"outside the site"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    (tmp_path / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "dist"
    (root / "chunks").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "redirect.html").write_bytes(b"<!doctype html><title>redirect</title>")
    (root / "app.js").write_bytes(b"export const app = 1;\n")
    (root / "app.css").write_bytes(b"body{margin:0}\n")
    (root / "favicon.svg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    (root / "chunks" / "dist-ABC123.js").write_bytes(b"export const msal = 1;\n")
    (root / "build-info.json").write_text("{}")
    (root / ".console-build").write_text("marker")
    (root / "outside.txt").symlink_to(tmp_path / "secret.txt")
    return root


def _configured() -> ConsoleConfig:
    return ConsoleConfig(client_id=CLIENT_ID, authority=AUTHORITY, scopes=[SCOPE], version="0.1.0")


def _unconfigured() -> ConsoleConfig:
    raise ConsoleNotConfigured("set CONSOLE_CLIENT_ID and CONSOLE_AUTHORITY")


@pytest.fixture
def site(dist: Path) -> StaticSite:
    return StaticSite(dist, SwaConfig.load(SWA_CONFIG), _configured)


def _get(
    site: StaticSite, path: str, method: str = "GET", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    status, response_headers, body = site.serve(
        method, f"{ORIGIN}{path}", {"Host": "127.0.0.1:7071", **headers}
    )
    return status, dict(response_headers.items()), body


def _directives(policy: str) -> dict[str, list[str]]:
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


# -- the configuration file -------------------------------------------------------------------------------


def test_the_swa_configuration_sets_the_security_headers_and_the_fallback() -> None:
    config = SwaConfig.load(SWA_CONFIG)
    headers = {k.lower(): v for k, v in config.global_headers.items()}
    policy = _directives(headers["content-security-policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'self'"]
    assert "https://login.microsoftonline.com" in policy["connect-src"]
    assert "https://login.microsoftonline.com" in policy["frame-src"]
    text = headers["content-security-policy"]
    assert "unsafe-inline" not in text
    assert "unsafe-eval" not in text
    assert "*" not in text
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "SAMEORIGIN"
    assert headers["referrer-policy"]
    assert "camera=()" in headers["permissions-policy"]
    # MSAL's redirect bridge (redirect.html) must not be cut from its opener: no COOP anywhere.
    assert "cross-origin-opener-policy" not in headers
    assert all(
        "cross-origin-opener-policy" not in {k.lower() for k in route.headers} for route in config.routes
    )
    assert config.navigation_fallback is not None
    assert config.navigation_fallback.rewrite == "/index.html"
    assert {"/api/*", "/redirect.html"} <= set(config.navigation_fallback.exclude)


def test_patterns_expand_braces_and_match_like_the_static_web_app() -> None:
    assert expand_braces("*.{js,css}") == ["*.js", "*.css"]
    assert expand_braces("/a/{b,c}/*.{x,y}") == ["/a/b/*.x", "/a/b/*.y", "/a/c/*.x", "/a/c/*.y"]
    assert route_matches("/api/*", "/api/events")
    assert route_matches("/api/*", "/API/events")
    assert route_matches("*.{js,css}", "/chunks/deep/a.js")
    assert not route_matches("*.{js,css}", "/events")
    assert route_matches("/redirect.html", "/redirect.html")
    assert not route_matches("/redirect.html", "/redirect.html/x")


def test_csp_sources_are_added_once_and_missing_directives_start_from_default_src() -> None:
    policy = "default-src 'self'; connect-src 'self' https://a.example; object-src 'none'"
    widened = add_csp_sources(
        policy,
        {"connect-src": ["https://b.example", "https://a.example"], "frame-src": ["https://b.example"]},
    )
    assert _directives(widened) == {
        "default-src": ["'self'"],
        "connect-src": ["'self'", "https://a.example", "https://b.example"],
        "object-src": ["'none'"],
        "frame-src": ["'self'", "https://b.example"],
    }


# -- files, types, caching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/index.html", "text/html; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/app.css", "text/css; charset=utf-8"),
        ("/favicon.svg", "image/svg+xml"),
        ("/build-info.json", "application/json"),
        ("/chunks/dist-ABC123.js", "text/javascript; charset=utf-8"),
    ],
)
def test_files_are_served_with_their_content_type_and_the_global_headers(
    site: StaticSite, dist: Path, path: str, content_type: str
) -> None:
    status, headers, body = _get(site, path)
    assert status == 200
    assert body == (dist / path.lstrip("/")).read_bytes()
    assert headers["Content-Type"] == content_type
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["ETag"].startswith('"')
    assert "Content-Security-Policy" in headers


def test_the_root_serves_index_html_uncached_with_the_authority_in_the_csp(site: StaticSite) -> None:
    status, headers, body = _get(site, "/")
    assert (status, body) == (200, INDEX)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    policy = _directives(headers["Content-Security-Policy"])
    assert AUTHORITY_ORIGIN in policy["connect-src"]
    assert AUTHORITY_ORIGIN in policy["frame-src"]
    assert AUTHORITY_ORIGIN not in policy["script-src"]


def test_redirect_html_is_served_without_coop(site: StaticSite) -> None:
    status, headers, _ = _get(site, "/redirect.html")
    assert status == 200
    assert not any(name.lower().startswith("cross-origin-opener") for name in headers)
    assert headers["X-Frame-Options"] == "SAMEORIGIN"  # MSAL's silent renew frames it on our origin


def test_hashed_chunks_are_cached_for_a_year_and_entry_files_revalidate(site: StaticSite) -> None:
    assert _get(site, "/chunks/dist-ABC123.js")[1]["Cache-Control"] == "public, max-age=31536000, immutable"
    assert _get(site, "/app.js")[1]["Cache-Control"] == "no-cache"


def test_a_matching_etag_answers_304_without_a_body(site: StaticSite) -> None:
    etag = _get(site, "/app.js")[1]["ETag"]
    status, headers, body = _get(site, "/app.js", **{"If-None-Match": etag})
    assert (status, body) == (304, b"")
    assert headers["ETag"] == etag
    assert _get(site, "/app.js", **{"If-None-Match": '"other"'})[0] == 200


def test_a_changed_file_gets_a_new_etag(site: StaticSite, dist: Path) -> None:
    before = _get(site, "/app.css")[1]["ETag"]
    (dist / "app.css").write_bytes(b"body{margin:1px}\n")
    os.utime(dist / "app.css", ns=(1, 1))
    status, headers, body = _get(site, "/app.css")
    assert (status, body) == (200, b"body{margin:1px}\n")
    assert headers["ETag"] != before


def test_head_answers_the_headers_of_get(site: StaticSite) -> None:
    get = _get(site, "/app.js")
    head = _get(site, "/app.js", method="HEAD")
    assert head[0] == get[0] == 200
    assert head[1] == get[1]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_405_with_allow(site: StaticSite, method: str) -> None:
    status, headers, body = _get(site, "/index.html", method=method)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert json.loads(body)["status"] == 405


# -- the SPA fallback -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/events", "/events/abc/", "/alerts?x=1", "/events?q=a%20b&from=2024-01-01"]
)
def test_paths_without_an_extension_fall_back_to_index_html(site: StaticSite, path: str) -> None:
    status, headers, body = _get(site, path)
    assert (status, body) == (200, INDEX)
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert "Content-Security-Policy" in headers


@pytest.mark.parametrize(
    "path", ["/missing.js", "/chunks/gone-XYZ.js", "/app.css.map", "/styles/x.css", "/nope.html", "/api/x"]
)
def test_missing_assets_and_excluded_paths_are_404(site: StaticSite, path: str) -> None:
    status, headers, body = _get(site, path)
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["status"] == 404


def test_a_missing_redirect_html_is_404_not_the_app(dist: Path) -> None:
    (dist / "redirect.html").unlink()
    site = StaticSite(dist, SwaConfig.load(SWA_CONFIG), _configured)
    assert _get(site, "/redirect.html")[0] == 404


# -- hostile paths ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/../secret.txt",
        "/chunks/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/chunks/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/chunks\\..\\..\\secret.txt",
        "/index.html%00.js",
        "/index.html\x00",
        "/%c0%ae%c0%ae/secret.txt",
        "/./index.html",
        "/a%0d%0aSet-Cookie:x=1",
        "/" + "a" * 5000,
    ],
)
def test_hostile_paths_are_400_and_never_read_outside_the_folder(site: StaticSite, path: str) -> None:
    status, headers, body = _get(site, path)
    assert status == 400
    assert SECRET not in body
    assert headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize("path", ["/outside.txt", "/chunks/.hidden.js", "/.git/config.json"])
def test_symlinks_out_of_the_folder_and_hidden_files_are_404(site: StaticSite, dist: Path, path: str) -> None:
    (dist / "chunks" / ".hidden.js").write_text("HIDDEN-CONTENT")
    status, _, body = _get(site, path)
    assert status == 404
    assert SECRET not in body
    assert b"HIDDEN-CONTENT" not in body


@pytest.mark.parametrize("path", ["/.console-build", "/%2econsole-build"])
def test_a_hidden_name_without_extension_gets_the_app_not_the_file(site: StaticSite, path: str) -> None:
    assert _get(site, path)[:3:2] == (200, INDEX)


_PIECES = st.sampled_from(
    [
        "/",
        ".",
        "..",
        "\\",
        "%",
        "%2e",
        "%2E",
        "%2f",
        "%5c",
        "%00",
        "%c0%ae",
        "secret.txt",
        "index.html",
        "site",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, max_size=12).map("".join))
def test_no_path_reads_a_file_outside_the_folder(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    root = tmp_path_factory.getbasetemp() / "hypothesis-dist"
    if not root.exists():
        (root / "site").mkdir(parents=True)
        (root / "secret.txt").write_bytes(SECRET)
        (root / "site" / "index.html").write_bytes(INDEX)
    site = StaticSite(root / "site", SwaConfig.load(SWA_CONFIG), _configured)
    status, _, body = site.serve("GET", f"{ORIGIN}/{text}", {})
    assert status in (200, 400, 404)
    assert SECRET not in body
    if status == 200:
        assert body == INDEX


# -- /config.json -----------------------------------------------------------------------------------------


def test_config_json_is_generated_from_the_settings_for_the_requests_origin(site: StaticSite) -> None:
    status, headers, body = _get(site, "/config.json")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-cache"
    assert json.loads(body) == {
        "apiBaseUrl": "/api",
        "clientId": CLIENT_ID,
        "authority": AUTHORITY,
        "knownAuthorities": ["127.0.0.1:7443"],
        "scopes": [SCOPE],
        "redirectUri": "http://127.0.0.1:7071/redirect.html",
        "version": "0.1.0",
    }
    status, _, body = site.serve("GET", "http://localhost:9999/config.json", {"Host": "localhost:9999"})
    assert json.loads(body)["redirectUri"] == "http://localhost:9999/redirect.html"


def test_a_hostile_host_header_does_not_reach_the_redirect_uri(site: StaticSite) -> None:
    _, _, body = site.serve("GET", f"{ORIGIN}/config.json", {"Host": "evil.example/x?"})
    assert json.loads(body)["redirectUri"] == "http://127.0.0.1:7071/redirect.html"


def test_without_console_settings_config_json_is_503_and_the_csp_keeps_the_file_s_sources(dist: Path) -> None:
    site = StaticSite(dist, SwaConfig.load(SWA_CONFIG), _unconfigured)
    status, _, body = _get(site, "/config.json")
    assert status == 503
    assert "CONSOLE_CLIENT_ID" in json.loads(body)["detail"]
    policy = _directives(_get(site, "/")[1]["Content-Security-Policy"])
    assert policy["connect-src"] == ["'self'", "https://login.microsoftonline.com"]


# -- in the host's dispatcher -----------------------------------------------------------------------------


def _dispatcher(site: StaticSite | None, prefix: str = "api") -> HttpDispatcher:
    return HttpDispatcher(
        [],
        prefix,
        HostKeys(master_key="m", function_keys={"default": "f"}),
        record=lambda *a, **k: None,
        admin_routes={"/admin/host/status": lambda: {"state": "Running"}},
        send_outputs=lambda result: None,
        static_site=site,
    )


def test_the_dispatcher_serves_the_site_outside_the_route_prefix_only(site: StaticSite) -> None:
    dispatcher = _dispatcher(site)
    status, _, body = dispatcher.dispatch("GET", f"{ORIGIN}/events", {}, b"")
    assert (status, body) == (200, INDEX)
    status, headers, _ = dispatcher.dispatch("GET", f"{ORIGIN}/api/nothing-here", {}, b"")
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"
    assert dispatcher.dispatch("GET", f"{ORIGIN}/admin/host/status", {"x-functions-key": "m"}, b"")[0] == 200


def test_without_a_site_the_dispatcher_answers_404_as_before() -> None:
    status, _, _ = _dispatcher(None).dispatch("GET", f"{ORIGIN}/", {}, b"")
    assert status == 404


def test_with_an_empty_route_prefix_the_site_answers_what_no_function_does(site: StaticSite) -> None:
    status, _, body = _dispatcher(site, prefix="").dispatch("GET", f"{ORIGIN}/events", {}, b"")
    assert (status, body) == (200, INDEX)


@pytest.mark.parametrize(
    "authority",
    [
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0",
        "http://127.0.0.1:7072/t/v2.0",  # not TLS: MSAL would refuse it anyway
        "https://127.0.0.2.example/t/v2.0",
        "not a url",
    ],
)
def test_only_an_authority_on_this_machine_has_its_metadata_embedded(authority: str) -> None:
    assert loopback_authority_metadata(authority) is None
    config = ConsoleConfig(client_id="c", authority=authority, scopes=["s"])
    assert "authorityMetadata" not in config.document("http://127.0.0.1:7071")


def test_an_authority_on_this_machine_that_does_not_answer_embeds_nothing() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert loopback_authority_metadata(f"https://127.0.0.1:{port}/t/v2.0") is None


def test_embedded_metadata_is_served_as_given() -> None:
    metadata = {"authorization_endpoint": "https://127.0.0.1:7072/t/oauth2/v2.0/authorize", "issuer": "i"}
    config = ConsoleConfig(
        client_id="c", authority="https://127.0.0.1:7072/t/v2.0", scopes=[], authority_metadata=metadata
    )
    assert config.document("http://127.0.0.1:7071")["authorityMetadata"] == metadata
