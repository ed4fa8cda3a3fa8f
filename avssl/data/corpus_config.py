"""What the settings dataclasses of the generated corpora (embedded demo, AV-Digits) share.

A corpus config is a frozen dataclass whose fields all enter its cache fingerprint, so it must
compare and hash equal however it was built — from Python tuples, from JSON lists or from a CLI —
and it must name the field and the value when one is wrong.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NoReturn, TypeVar

Config = TypeVar("Config", bound="CorpusConfig")


class CorpusConfig:
    """Mix-in for ``@dataclass(frozen=True)`` corpus settings.

    Subclasses list their sequence fields in ``SEQUENCE_FIELDS`` (turned into tuples on
    construction) and check their values in ``_validate``, reporting with :meth:`_fail`.
    """

    SEQUENCE_FIELDS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in self.SEQUENCE_FIELDS:
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)):
                self._fail(name, "must be a tuple or list")
            object.__setattr__(self, name, tuple(value))  # frozen: set through object
        self._validate()

    def _validate(self) -> None:
        """Raise (through :meth:`_fail`) on the first field with an unusable value."""

    def _fail(self, field: str, problem: str) -> NoReturn:
        raise ValueError(f"{type(self).__name__}.{field}: {problem} (got {getattr(self, field)!r})")

    def to_dict(self) -> dict[str, Any]:
        """Every field, tuples as lists (JSON)."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_dict(cls: type[Config], values: dict[str, Any]) -> Config:
        """The config of :meth:`to_dict`'s output; an unknown key is an error naming the known ones."""
        known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {unknown}; known fields: {sorted(known)}")
        return cls(**values)


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
