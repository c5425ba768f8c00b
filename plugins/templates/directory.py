"""Message templates from the templates directory.

Templates are files ``templates/<name>.<medium>.j2``, and
``templates/<name>.<medium>.<language>.j2`` for a language's version of it
(``shipped.sms.zh.j2``); an e-mail template may start with a ``Subject: ...``
line. They are rendered by the core in Jinja2's sandbox.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from oms_engine import Template, hookimpl


def load_templates(directory: Path) -> list[Template]:
    out = []
    for path in sorted(directory.glob("*.j2")):
        parts = path.name[:-3].split(".")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"{path}: template files are named <name>.<medium>.j2 or <name>.<medium>.<language>.j2")
        name, medium, language = (*parts, "") if len(parts) == 2 else parts
        text = path.read_text(encoding="utf-8")
        subject = ""
        if text.startswith("Subject:"):
            first, _, text = text.partition("\n")
            subject = first[len("Subject:"):].strip()
            # The body's line 1 is the file's line 2: errors name the file's lines.
            text = "\n" + text
        out.append(Template(name=name, medium=medium, body=text, subject=subject, language=language,
                            origin=str(path)))
    return out


@hookimpl(trylast=True)
def oms_register_templates(register: Any, config: Any) -> None:
    for template in load_templates(config.path(config.templates_dir)):
        register(template)
