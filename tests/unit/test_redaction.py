"""Secrets planted in log calls, exceptions and URLs never reach the output."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from shared.logging import configure_logging, get_logger, redact, register_secret

TOKEN = "EAAGm0PX4ZCpsBAFZCxyzSECRETTOKEN123"


@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stdout", buffer)
    configure_logging(service="test", level="DEBUG", json_output=True)
    yield buffer
    logging.getLogger().handlers.clear()
    structlog.contextvars.clear_contextvars()


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_token_in_a_log_field_is_masked(output: io.StringIO) -> None:
    get_logger("t").info("connected", access_token=TOKEN, account={"refresh_token": TOKEN, "id": "a1"})
    assert TOKEN not in output.getvalue()
    (line,) = lines(output)
    assert line["access_token"] == "***"
    assert line["account"] == {"refresh_token": "***", "id": "a1"}


def test_token_inside_an_exception_is_masked(output: io.StringIO) -> None:
    try:
        raise RuntimeError(f"platform said no for access_token={TOKEN}")
    except RuntimeError:
        get_logger("t").exception("publish failed")
    text = output.getvalue()
    assert TOKEN not in text
    assert "platform said no" in text
    assert "RuntimeError" in text


def test_token_in_urls_is_masked_for_stdlib_loggers_too(output: io.StringIO) -> None:
    url = f"https://graph.example/v21.0/me?fields=id&access_token={TOKEN}"
    logging.getLogger("httpx").warning("HTTP Request: GET %s", url)
    logging.getLogger("aiokafka").warning("connecting to kafka://user:%s@broker:9092", TOKEN)
    logging.getLogger("faststream").warning("bot url https://api.telegram.example/bot123456:%s/sendMessage", TOKEN)
    logging.getLogger("uvicorn").warning("Authorization: Bearer %s", TOKEN)
    text = output.getvalue()
    assert TOKEN not in text
    assert text.count("***") >= 4


def test_a_registered_secret_is_masked_even_without_a_telltale_key(output: io.StringIO) -> None:
    bare = "zq81-bare-opaque-value-77"
    register_secret(bare)
    get_logger("t").error("unexpected", detail=f"the platform echoed {bare} back")
    assert bare not in output.getvalue()


def test_redact_keeps_harmless_values() -> None:
    assert redact({"error_code": "token_expired", "post_id": "p1", "token": ""}) == {
        "error_code": "token_expired",
        "post_id": "p1",
        "token": "",
    }
