"""structlog JSON logging for our code and for stdlib loggers (aiokafka, FastStream, httpx, uvicorn),
with one redaction step that every line passes through before it is written."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

MASK = "***"

# Keys whose values are secrets wherever they appear (log fields, nested dicts, payloads).
_SENSITIVE_KEY = re.compile(
    r"(token|secret|passw|api[_-]?key|authorization|credential|cookie|private[_-]?key|signature)",
    re.IGNORECASE,
)
_SAFE_KEYS = frozenset({"error_code", "token_expires_at", "event_type"})

_VALUE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Authorization header values.
    (re.compile(r"\b(Bearer|Basic|OAuth)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\1 {MASK}"),
    # Credentials inside URLs: scheme://user:password@host
    (re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]+@", re.IGNORECASE), rf"\1:{MASK}@"),
    # Telegram bot tokens live in the URL path: /bot<id>:<secret>/
    (re.compile(r"bot\d+:[A-Za-z0-9_-]{10,}"), f"bot{MASK}"),
    # key=value and "key": "value" pairs in query strings, form bodies, JSON and reprs.
    (
        re.compile(
            r"((?:access_token|refresh_token|id_token|input_token|fb_exchange_token|client_secret|"
            r"api_key|apikey|password|secret|token|code_verifier)[\"']?\s*[:=]\s*[\"']?)[^\"'\s,&;}#]+",
            re.IGNORECASE,
        ),
        rf"\1{MASK}",
    ),
)

# Literal secret values seen at run time (decrypted tokens): masked wherever they turn up.
_known_secrets: dict[str, None] = {}
_MAX_KNOWN_SECRETS = 10_000
_MIN_SECRET_LENGTH = 6


def register_secret(value: str | None) -> None:
    """Mask this exact value in every later log line, even where no pattern would spot it."""
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    _known_secrets[value] = None
    if len(_known_secrets) > _MAX_KNOWN_SECRETS:
        _known_secrets.pop(next(iter(_known_secrets)))


def redact_text(text: str) -> str:
    for secret in _known_secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _VALUE_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact(value: Any) -> Any:
    """Return a copy of `value` with secrets masked, by key name and by value pattern."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {k: MASK if _is_sensitive_key(k) and v not in (None, "") else redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [redact(v) for v in value]
    if isinstance(value, BaseException):
        return redact_text(f"{type(value).__name__}: {value}")
    return value


def _is_sensitive_key(key: object) -> bool:
    return isinstance(key, str) and key not in _SAFE_KEYS and bool(_SENSITIVE_KEY.search(key))


def _drop_color_message(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    event_dict.pop("color_message", None)  # uvicorn's ANSI duplicate of the message
    return event_dict


def redaction_processor(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    redacted: EventDict = redact(event_dict)
    return redacted


def configure_logging(*, service: str, level: str = "INFO", json_output: bool = True) -> None:
    """Route structlog and stdlib logging through one formatter that redacts, then renders."""
    shared_processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared_processors,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # Exceptions become text first, so the redaction below sees their messages too.
            structlog.processors.format_exc_info,
            redaction_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # FastStream gives its "faststream" logger a stderr handler of its own at import time; route
    # it through ours so its lines are redacted and rendered like the rest.
    import faststream  # noqa: F401, PLC0415 - imported for that side effect before we undo it

    faststream_logger = logging.getLogger("faststream")
    faststream_logger.handlers.clear()
    faststream_logger.propagate = True
    for noisy in ("aiokafka", "kafka", "pymongo", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind per-message context (event_id, post_id, correlation_id) for the logs inside."""
    with structlog.contextvars.bound_contextvars(**{k: v for k, v in values.items() if v is not None}):
        yield
