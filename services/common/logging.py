"""Structured JSON logs, with personal data masked in every string value."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from services.common.masking import mask_personal_data


def _masked(value: Any) -> Any:
    """Strings masked wherever they sit: in lists, tuples and mappings too."""
    if isinstance(value, str):
        return mask_personal_data(value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v) for v in value]
    return value


def _mask(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        event_dict[key] = _masked(value)
    return event_dict


# Libraries that print payloads at DEBUG: aiokafka every record it sends ("Sending (key=…
# value=…)"), httpcore the response headers (session cookies), signxml the canonical XML it
# digests (the whole package), httpx the URLs with their query strings. They stay at INFO
# whatever the service's level, as masking cannot find a name in a payload.
PAYLOAD_LOGGERS = ("aiokafka", "kafka", "httpx", "httpcore", "signxml")
# pyHanko's and its validator's warnings quote certificate subjects (the signer's name), with
# tracebacks; a verdict says what they would.
QUIET_LOGGERS = ("pyhanko", "pyhanko_certvalidator")


def configure_logging(level: str = "INFO", *, service: str) -> None:
    """Write structlog and stdlib records (aiokafka, uvicorn) as JSON lines to stderr."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _mask,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    structlog.contextvars.bind_contextvars(service=service)
    floor = max(root.level, logging.INFO)
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(floor)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(root.level, logging.ERROR))
    # Access logs carry query strings and client addresses; the metrics say what they would.
    logging.getLogger("uvicorn.access").setLevel(max(root.level, logging.WARNING))


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
