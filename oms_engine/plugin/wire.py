"""Helpers for connectors that talk to their system over the wire (HTTP, signed callbacks)."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any


class SettingsError(ValueError):
    """A warehouse's connector settings lack what the connector needs (an endpoint, a secret)."""


def callback_body(payload: Mapping[str, Any]) -> bytes:
    """The bytes of an HTTP callback as the system sent them, from the inbox payload the core stored for it
    (``POST /api/wms/WAREHOUSE/callbacks``)."""
    text = payload.get("body", "")
    if payload.get("encoding") == "base64":
        return base64.b64decode(text)
    return str(text).encode("utf-8")


def secret_from(settings: Mapping[str, Any], key: str = "secret_env") -> str:
    """The secret a warehouse's settings name: ``settings[key]`` is the name of the environment variable
    holding it (secrets are never stored in the database). SettingsError when it is not set."""
    name = settings.get(key)
    if not isinstance(name, str) or not name:
        raise SettingsError(f"the connector settings need '{key}': the environment variable holding the secret")
    value = os.environ.get(name, "")
    if not value:
        raise SettingsError(f"the environment variable {name} (settings '{key}') is not set")
    return value
