"""The simulator's sign-in page: the HTML the authorize endpoint shows instead of Microsoft's login.

The page lets a developer (or a browser test) pick a user of the simulated tenant's directory and the
app roles to sign in with. It is plain HTML with a form and one style sheet served from the simulator
itself: no script, no inline style, so it works under a strict Content-Security-Policy. Hidden fields
carry the authorization request; the authorize endpoint validates them again when the form is posted.

Selectors the browser tests rely on: `select#user` (value = the user's object id), checkboxes
`input[name=role]` (value = the app role, label Reader / Analyst / Admin / Privacy), the buttons
`button[name=action][value=sign_in]` ("Sign in") and `...[value=cancel]` ("Cancel").
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from devtools.simulator.directory import User

STATIC_DIR = Path(__file__).resolve().parent / "static"
# The page's own files, served by the identity router at /static/{name}: name -> content type.
STATIC_FILES: Mapping[str, str] = {
    "signin.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
STYLESHEET_PATH = "/static/signin.css"
ICON_PATH = "/static/favicon.svg"
HTML_TYPE = "text/html; charset=utf-8"

# What the page says about each AOC app role; other roles are listed by their value.
ROLE_DESCRIPTIONS: Mapping[str, tuple[str, str]] = {
    "AOC.Reader": ("Reader", "search and read events"),
    "AOC.Analyst": ("Analyst", "tag and comment events, set alert status"),
    "AOC.Admin": ("Admin", "rules, probe runs and the audit log"),
    "AOC.Privacy": ("Privacy", "see services and operations marked sensitive"),
}


@dataclass(frozen=True)
class SignInView:
    """Everything the page shows; `hidden` are the authorization request's fields, posted back."""

    action_url: str
    tenant_id: str
    domain: str
    client_id: str
    api_name: str
    scopes: Sequence[str]
    users: Sequence[User]
    roles: Sequence[str]
    selected_user: str | None
    selected_roles: frozenset[str]
    hidden: Mapping[str, str]


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def security_headers(form_action_origins: Iterable[str] = ()) -> list[tuple[str, str]]:
    """Headers for every page the simulator renders: no script at all, styles only from itself, the
    form may post only to itself and be redirected to the client's own origin."""
    form_action = " ".join(["'self'", *sorted(set(form_action_origins))])
    csp = (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        f"form-action {form_action}; frame-ancestors 'none'"
    )
    return [
        ("Content-Type", HTML_TYPE),
        ("Content-Security-Policy", csp),
        ("Cache-Control", "no-store"),
        ("Pragma", "no-cache"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("X-Frame-Options", "DENY"),
    ]


def _document(title: str, body: str) -> bytes:
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n"
        f'<link rel="stylesheet" href="{STYLESHEET_PATH}">\n'
        f'<link rel="icon" href="{ICON_PATH}" type="image/svg+xml">\n'
        "</head>\n<body>\n"
        f"{body}"
        "</body>\n</html>\n"
    ).encode()


def _role_label(role: str) -> tuple[str, str]:
    return ROLE_DESCRIPTIONS.get(role, (role, ""))


def render_sign_in(view: SignInView) -> bytes:
    """The sign-in page: pick a user and roles, then Sign in or Cancel."""
    options = []
    for user in view.users:
        selected = " selected" if user.id == view.selected_user else ""
        text = f"{user.display_name} ({user.upn}), {user.job_title}"
        options.append(f'<option value="{_e(user.id)}"{selected}>{_e(text)}</option>')
    roles = []
    for index, role in enumerate(view.roles):
        label, description = _role_label(role)
        checked = " checked" if role in view.selected_roles else ""
        detail = f' <span class="hint">{_e(description)}</span>' if description else ""
        roles.append(
            f'<div class="choice"><input type="checkbox" id="role-{index}" name="role" '
            f'value="{_e(role)}"{checked}>'
            f'<label for="role-{index}">{_e(label)}</label>{detail}</div>'
        )
    hidden = "".join(
        f'<input type="hidden" name="{_e(name)}" value="{_e(value)}">\n'
        for name, value in view.hidden.items()
    )
    scopes = ", ".join(view.scopes)
    body = (
        '<main class="card">\n'
        '<p class="brand">Tenant simulator <span class="badge">not Microsoft</span></p>\n'
        "<h1>Sign in</h1>\n"
        f'<p class="lead">to <strong>{_e(view.domain)}</strong> for application '
        f"<code>{_e(view.client_id)}</code>, which asks for <code>{_e(scopes)}</code> on "
        f"<code>{_e(view.api_name)}</code>.</p>\n"
        f'<form method="post" action="{_e(view.action_url)}">\n'
        f"{hidden}"
        '<div class="field">\n<label for="user">User</label>\n'
        f'<select id="user" name="user" required>\n{chr(10).join(options)}\n</select>\n</div>\n'
        "<fieldset>\n<legend>App roles</legend>\n"
        f"{chr(10).join(roles)}\n"
        '<p class="hint">Roles become the access token\'s <code>roles</code> claim. '
        "None at all is a user without access.</p>\n"
        "</fieldset>\n"
        '<div class="actions">\n'
        '<button type="submit" name="action" value="sign_in" class="primary">Sign in</button>\n'
        '<button type="submit" name="action" value="cancel">Cancel</button>\n'
        "</div>\n</form>\n"
        f'<p class="foot">Tenant <code>{_e(view.tenant_id)}</code></p>\n'
        "</main>\n"
    )
    return _document("Sign in: tenant simulator", body)


def render_message(title: str, message: str, detail: str | None = None) -> bytes:
    """An error (or signed-out) page: a heading, a sentence and an optional error code."""
    extra = f'<p class="code"><code>{_e(detail)}</code></p>\n' if detail else ""
    body = (
        '<main class="card">\n'
        '<p class="brand">Tenant simulator <span class="badge">not Microsoft</span></p>\n'
        f"<h1>{_e(title)}</h1>\n<p>{_e(message)}</p>\n{extra}</main>\n"
    )
    return _document(f"{title}: tenant simulator", body)


def static_file(name: str) -> tuple[bytes, str] | None:
    """A file of the page (style sheet, icon) and its content type; None for any other name."""
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        return None
    return (STATIC_DIR / name).read_bytes(), content_type
