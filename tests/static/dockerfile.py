"""A small Dockerfile reader for the static tests: instructions grouped by build stage.

hadolint checks style; these helpers let tests check what the project relies on (ports, user,
build args) against the code and the Kubernetes manifests.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        """The argument strings of every ``keyword`` instruction in this stage, in order."""
        return [rest for kw, rest in self.instructions if kw == keyword]

    def words(self, keyword: str) -> list[list[str]]:
        """Like :meth:`args`, split into shell words."""
        return [shlex.split(rest) for rest in self.args(keyword)]

    def exec_form(self, keyword: str) -> list[str]:
        """The JSON-array form of the last ``keyword`` instruction (ENTRYPOINT, CMD)."""
        return json.loads(self.args(keyword)[-1])

    def env(self) -> dict[str, str]:
        """``ENV`` keys and (unexpanded) values, ``KEY=VALUE`` form."""
        pairs = (word.split("=", 1) for words in self.words("ENV") for word in words)
        return {key: value for key, value in pairs}

    def build_args(self) -> dict[str, str]:
        """``ARG`` names and their defaults (empty string when none)."""
        return {name: default for name, _, default in (a.partition("=") for a in self.args("ARG"))}


def logical_lines(text: str) -> list[str]:
    """Join backslash continuations and drop comments and blank lines, as Docker does."""
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    if current:
        lines.append(current)
    return lines


def stages(path: Path = DOCKERFILE) -> list[Stage]:
    """Every ``FROM`` stage with its instructions (keywords upper-cased)."""
    result: list[Stage] = []
    for line in logical_lines(path.read_text()):
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = [word for word in rest.split() if not word.startswith("--")]  # --platform=...
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=words[0], name=name))
        elif result:
            result[-1].instructions.append((keyword, rest))
    return result


def runtime_stage() -> Stage:
    """The last stage: what ``docker build`` produces."""
    return stages()[-1]


def stage(name: str) -> Stage:
    (found,) = [s for s in stages() if s.name == name]
    return found


def exposed_ports() -> list[int]:
    return [int(port.split("/")[0]) for words in runtime_stage().words("EXPOSE") for port in words]
