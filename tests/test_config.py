"""config.yaml: strict keys, and the precedence defaults < file < OMS_DATABASE_URL < --db."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms_engine.config import ConfigError, load_config


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMS_DATABASE_URL", raising=False)
    monkeypatch.delenv("OMS_CONFIG", raising=False)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(("text", "key"), [
    ("database_url: sqlite:///a.db\ndatabse_url: sqlite:///b.db\n", "databse_url"),
    ("timeouts:\n  payment_mins: 5\n", "timeouts.payment_mins"),
    ("plugin: [x]\n", "plugin"),
])
def test_unknown_key_is_refused_by_name(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert key in str(info.value)
    assert "config.yaml" in str(info.value)


@pytest.mark.parametrize("text", ["batch_size: 0\n", "timeouts:\n  payment_minutes: -1\n", "shard_count: many\n"])
def test_bad_values_are_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError, match=text.split(":")[0].strip()):
        load_config(write(tmp_path, text))


def test_invalid_yaml_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, "database_url: [unclosed\n"))
    with pytest.raises(ConfigError, match="mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))


def test_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path, "database_url: postgresql://file/db\n")
    assert load_config(cfg).database_url == "postgresql://file/db"
    monkeypatch.setenv("OMS_DATABASE_URL", "postgresql://env/db")
    assert load_config(cfg).database_url == "postgresql://env/db"
    assert load_config(cfg, database_url="postgresql://flag/db").database_url == "postgresql://flag/db"
    monkeypatch.delenv("OMS_DATABASE_URL")
    assert load_config(cfg, database_url="postgresql://flag/db").database_url == "postgresql://flag/db"


def test_oms_config_env_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_CONFIG", str(write(tmp_path, "batch_size: 7\n")))
    assert load_config().batch_size == 7


def test_relative_paths_follow_the_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path, "database_url: sqlite:///var/x.db\nrules_dir: myrules\n")
    monkeypatch.chdir("/")
    c = load_config(cfg)
    assert c.resolved_database_url() == f"sqlite:///{tmp_path.resolve() / 'var' / 'x.db'}"
    assert c.path(c.rules_dir) == tmp_path.resolve() / "myrules"
    assert c.path("/abs/dir") == Path("/abs/dir")


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    c = load_config()
    assert c.timeouts.payment_minutes == 30 and c.timeouts.confirm_days == 15
    assert c.timeouts.after_sales_days == 10


BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
plugin_settings: {bomb: {x: *g}}
"""


def test_a_yaml_alias_bomb_in_the_config_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(BOMB, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config.yaml:1: .*(anchor|alias)"):
        load_config(path)


def test_duplicate_keys_in_the_config_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("batch_size: 10\nbatch_size: 20\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"config.yaml:2: .*duplicate key .batch_size."):
        load_config(path)
