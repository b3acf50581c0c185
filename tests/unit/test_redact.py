"""redact(): secrets are masked, ordinary text is left alone."""

from __future__ import annotations

import pytest

from shared.platform.redact import redact

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def test_account_key_in_connection_string() -> None:
    text = (
        "DefaultEndpointsProtocol=https;AccountName=acct;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsu+Fq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "EndpointSuffix=core.windows.net"
    )
    result = redact(text)
    assert result == (
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=core.windows.net"
    )


def test_account_key_is_case_insensitive() -> None:
    assert redact("accountkey=abc123") == "accountkey=***"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SharedAccessKey=abc/def==;EntityPath=q", "SharedAccessKey=***;EntityPath=q"),
        ("Password=hunter2 rest", "Password=*** rest"),
        ("client_secret=s3cr3t&grant_type=x", "client_secret=***&grant_type=x"),
    ],
)
def test_other_key_value_secrets(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_sas_signature_in_url() -> None:
    url = "https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&se=2030-01-01&sig=abc%2Bdef%3D&sp=r"
    result = redact(url)
    assert result == "https://acct.blob.core.windows.net/c/b.txt?sv=2022-11-02&se=2030-01-01&sig=***&sp=r"
    assert "abc%2Bdef" not in result


def test_sig_as_first_query_parameter() -> None:
    assert redact("GET /x?sig=SECRET") == "GET /x?sig=***"


def test_function_code_in_query() -> None:
    text = "calling https://app.azurewebsites.net/api/items?code=abcDEF123-_==&id=5 failed"
    result = redact(text)
    assert result == "calling https://app.azurewebsites.net/api/items?code=***&id=5 failed"


def test_code_after_other_parameter() -> None:
    assert redact("/api/x?id=5&code=SECRET") == "/api/x?id=5&code=***"


def test_access_token_in_query() -> None:
    assert redact("/cb?access_token=tok123&state=1") == "/cb?access_token=***&state=1"


def test_authorization_bearer_header() -> None:
    result = redact("Authorization: Bearer abc.def.ghi-secret")
    assert result == "Authorization: Bearer ***"


def test_authorization_basic_header_lowercase() -> None:
    assert redact("authorization: basic dXNlcjpwYXNz") == "authorization: basic ***"


def test_functions_key_header() -> None:
    assert redact("x-functions-key: abcdef123456") == "x-functions-key: ***"
    assert redact("X-Functions-Key:abcdef123456 next") == "X-Functions-Key:*** next"


def test_api_key_header() -> None:
    assert redact("api-key: 0123456789abcdef") == "api-key: ***"


def test_jwt_is_masked() -> None:
    result = redact(f"token was {JWT} in the log")
    assert result == "token was *** in the log"
    assert "eyJ" not in result


def test_bearer_jwt_is_fully_masked() -> None:
    result = redact(f"Authorization: Bearer {JWT}")
    assert result == "Authorization: Bearer ***"


def test_several_secrets_in_one_text() -> None:
    text = f"AccountKey=k1; url=/x?sig=s1&code=c2 Authorization: Bearer t3 x-functions-key: f4 {JWT}"
    result = redact(text)
    for secret in ("k1", "s1", "c2", "t3", "f4", JWT):
        assert secret not in result
    assert result.count("***") == 6


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Queue work-items: 3 messages processed in 12 ms",
        "ResourceNotFoundError (HTTP 404): The specified queue does not exist.",
        "AccountName=acct;EndpointSuffix=core.windows.net",
        "https://acct.queue.core.windows.net/work-items?timeout=30",
        "the zip code is 12345",
        "encode=utf-8 and decoder=json",
        "eyJ alone is not a token",
        "Authorization header missing",
    ],
)
def test_ordinary_text_untouched(text: str) -> None:
    assert redact(text) == text


def test_redact_is_idempotent() -> None:
    once = redact(f"AccountKey=abc; ?code=def Authorization: Bearer {JWT}")
    assert redact(once) == once


@pytest.mark.parametrize(
    "text",
    [
        str({"x-functions-key": "secret-function-key"}),
        '{"Authorization": "Bearer secret-function-key"}',
        '{"AccountKey": "secret-function-key"}',
    ],
)
def test_secrets_in_json_or_dict_form_are_masked(text: str) -> None:
    assert "secret-function-key" not in redact(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "POST https://hooks.slack.com/services/T000/B000/XXXXXXXXXXXX failed",
            "POST https://hooks.slack.com/*** failed",
        ),
        (
            "url='https://contoso.webhook.office.com/webhookb2/a@b/IncomingWebhook/c/d'",
            "url='https://contoso.webhook.office.com/***'",
        ),
        ("https://discord.com/api/webhooks/123/tok", "https://discord.com/api/webhooks/***"),
    ],
)
def test_webhook_urls_with_the_secret_in_the_path(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected
