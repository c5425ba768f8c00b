"""Rules in the database: every ruleset version, every activation, and the versions in force."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class RuleVersion(Base):
    """The text of every ruleset version ever stored; a version is its content hash."""

    __tablename__ = "rule_versions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ruleset: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime)
    __table_args__ = (UniqueConstraint("ruleset", "version", name="uq_rule_version"),)


class RuleChange(Base):
    """One activation: which rulesets moved from which version to which, by whom, when."""

    __tablename__ = "rule_changes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")
    # {ruleset: [version before or null, version after or null]}
    entries: Mapped[dict[str, Any]] = mapped_column(JSON)
    # A change undone by `oms rules rollback` names the change that undid it; the undoing change
    # names the one it reverts.
    rolled_back_by: Mapped[int | None] = mapped_column(BigId, nullable=True)
    reverts: Mapped[int | None] = mapped_column(BigId, nullable=True)


class ActiveRule(Base):
    """The version of each ruleset every process decides with."""

    __tablename__ = "active_rules"
    ruleset: Mapped[str] = mapped_column(String(64), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("rule_versions.id"))
    change_id: Mapped[int] = mapped_column(ForeignKey("rule_changes.id"))
