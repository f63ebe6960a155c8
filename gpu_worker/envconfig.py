"""Two small pieces both processes' settings share (pure, no runpod): the error that lists every
bad key at once, and a secret that never prints its value. The gateway (app/settings.py) and the
worker (gpu_worker/settings.py) each read their own keys with them."""

from __future__ import annotations

from collections.abc import Mapping


class ConfigError(ValueError):
    """Every bad setting at once: ``problems`` maps each key to what is wrong with it."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        lines = "\n".join(f"  {key}: {why}" for key, why in sorted(self.problems.items()))
        super().__init__(f"invalid configuration ({len(self.problems)} problem(s)):\n{lines}")


class Secret:
    """A configured secret; never shows its value in repr, str or logs."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__
