"""What every settings section shares."""

from __future__ import annotations

from pydantic import ConfigDict

FROZEN = ConfigDict(frozen=True, extra="forbid")  # sections are values: unknown fields refused
