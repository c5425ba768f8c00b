"""``senders:`` in config.yaml chooses the sender of each medium; a name that cannot be used stops the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms_engine.config import Config, ConfigError, load_config
from oms_engine.plugin.faults import PluginFault
from oms_engine.plugin.manager import build_plugin_manager
from oms_engine.plugin.registry import PluginRegistry, RegistryError
from tests.support.cli import Cli

from .conftest import FROM

SMTP = {"host": "smtp.example.com", "from": FROM}
HOUSE_SENDER = '''
from oms_engine import hookimpl


class HouseMail:
    name = "house_mail"
    medium = "email"

    def send(self, notification):
        pass


@hookimpl
def oms_register_senders(register):
    register(HouseMail())
'''


def registry(tmp_path: Path, plugins: tuple[str, ...] = (), **config: object) -> PluginRegistry:
    cfg = Config(base_dir=str(tmp_path), **config)  # type: ignore[arg-type]
    return PluginRegistry(build_plugin_manager(plugins, base_dir=tmp_path, entry_points=False), cfg)


def test_without_a_choice_the_first_sender_registered_delivers_as_before(tmp_path: Path) -> None:
    r = registry(tmp_path, plugin_settings={"smtp": SMTP})
    assert (r.sender_for("email").name, r.sender_for("sms").name) == ("file_email", "file_sms")
    assert (r.sender_for("app").name, r.sender_for("webhook").name) == ("app_http", "webhook_http")
    (tmp_path / "house.py").write_text(HOUSE_SENDER, encoding="utf-8")
    assert registry(tmp_path, ("house.py",)).sender_for("email").name == "house_mail"


def test_the_chosen_sender_delivers_its_medium(tmp_path: Path) -> None:
    (tmp_path / "house.py").write_text(HOUSE_SENDER, encoding="utf-8")
    r = registry(tmp_path, ("house.py",), senders={"email": "smtp"}, plugin_settings={"smtp": SMTP})
    assert r.sender_for("email").name == "smtp"
    assert r.sender_for("sms").name == "file_sms"      # a medium not named: as before
    assert registry(tmp_path, ("house.py",), senders={"email": "file_email"}).sender_for("email").name == "file_email"


@pytest.mark.parametrize(("senders", "says"), [
    ({"email": "smpt"}, "config senders: medium 'email' names sender 'smpt', which is not registered "
                        "(senders of medium 'email': file_email, smtp)"),
    ({"email": "sms_http"}, "config senders: medium 'email' names sender 'sms_http', which sends medium 'sms' "
                            "(senders of medium 'email': file_email, smtp)"),
    ({"fax": "file_email"}, "config senders: medium 'fax' names sender 'file_email', which sends medium 'email' "
                             "(senders of medium 'fax': none)"),
])
def test_a_sender_that_cannot_deliver_the_medium_stops_the_start(tmp_path: Path, senders: dict[str, str],
                                                                 says: str) -> None:
    with pytest.raises(RegistryError) as info:
        registry(tmp_path, senders=senders)
    assert str(info.value) == says


@pytest.mark.parametrize(("name", "medium", "settings"), [
    ("smtp", "email", "plugin_settings.smtp is missing"),
    ("sms_http", "sms", "plugin_settings.sms_http is missing"),
    ("webhook_http", "webhook", "plugin_settings.webhook_http is missing"),
])
def test_a_chosen_sender_without_its_settings_stops_the_start(tmp_path: Path, name: str, medium: str,
                                                              settings: str) -> None:
    with pytest.raises(PluginFault, match=settings):
        registry(tmp_path, senders={medium: name})


def test_settings_given_are_checked_at_start_even_when_not_chosen(tmp_path: Path) -> None:
    with pytest.raises(PluginFault, match=r"plugin_settings.sms_http: .*unknown parameter 'secret'"):
        registry(tmp_path, plugin_settings={"sms_http": {"url": "https://sms.example.com", "secret": "x"}})


@pytest.mark.parametrize(("text", "says"), [
    ("senders:\n  ' email': smtp\n", "senders"),
    ("senders:\n  email: ''\n", "name the sender"),
    ("senders:\n  email: [smtp]\n", "senders.email"),
    ("senders: smtp\n", "senders"),
])
def test_the_setting_is_validated(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=says):
        load_config(path)
    path.write_text("senders:\n  email: smtp\n  sms: sms_http\n", encoding="utf-8")
    assert load_config(path).senders == {"email": "smtp", "sms": "sms_http"}


def test_the_command_line_says_so_in_one_line(cli: Cli) -> None:
    cli.write_config(senders={"email": "smpt"})
    p = cli("run", ok=False)
    assert "medium 'email' names sender 'smpt', which is not registered" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
