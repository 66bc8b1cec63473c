"""Checks of user-facing option values, shared by ``train.py``'s config and ``sample.py``'s
settings: a spec says what a value may be, :func:`check` raises one clear ``ValueError``.

A spec is a small frozen object with ``allows(value) -> bool`` and ``what`` (the allowed values in
words, as they appear in ``"<key> must be <what>, got <value>"``). This module imports nothing of
flowgen, so the entry points can use it before anything heavy is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: Seeds every generator accepts (Lightning's ``seed_everything`` takes numpy's uint32 range).
SEED_MAX = 2**32 - 1


def plain(value):
    """OmegaConf containers as plain lists/dicts (for messages and checks); others unchanged."""
    if hasattr(value, "_metadata") and hasattr(value, "_content"):  # a DictConfig/ListConfig
        from omegaconf import OmegaConf

        return OmegaConf.to_container(value)
    return value


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A finite int or float (``True`` is not a number here, ``nan``/``inf`` are not finite)."""
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


@dataclass(frozen=True)
class Int:
    """An integer in ``lo..hi`` (either end open when None)."""
    lo: int | None = None
    hi: int | None = None

    def allows(self, value) -> bool:
        return is_int(value) and (self.lo is None or value >= self.lo) and \
            (self.hi is None or value <= self.hi)

    @property
    def what(self) -> str:
        if self.lo is not None and self.lo == self.hi:
            return str(self.lo)
        if self.lo is not None and self.hi is not None:
            return f"an integer in {self.lo}..{self.hi}"
        if self.lo is not None:
            return f"an integer >= {self.lo}"
        return "an integer" if self.hi is None else f"an integer <= {self.hi}"


@dataclass(frozen=True)
class Real:
    """A finite number in ``[lo, hi]``; ``open_lo``/``open_hi`` exclude that end."""
    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    open_hi: bool = False

    def allows(self, value) -> bool:
        if not is_number(value):
            return False
        low = self.lo is None or (value > self.lo if self.open_lo else value >= self.lo)
        high = self.hi is None or (value < self.hi if self.open_hi else value <= self.hi)
        return low and high

    @property
    def what(self) -> str:
        if self.lo is not None and self.hi is not None:
            return (f"a number in {'(' if self.open_lo else '['}{self.lo:g}, {self.hi:g}"
                    f"{')' if self.open_hi else ']'}")
        if self.lo is not None:
            return f"a finite number {'>' if self.open_lo else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"a finite number {'<' if self.open_hi else '<='} {self.hi:g}"
        return "a finite number"


@dataclass(frozen=True)
class Bool:
    def allows(self, value) -> bool:
        return isinstance(value, bool)

    what = "true or false"


@dataclass(frozen=True)
class Choice:
    """One of fixed values (strings, or ints like Lightning's precision 16/32/64)."""
    options: tuple

    def allows(self, value) -> bool:
        # 1 == True in Python: a bool matches only a bool option
        return any(value == o and isinstance(value, bool) == isinstance(o, bool)
                   for o in self.options)

    @property
    def what(self) -> str:
        names = list(dict.fromkeys(str(o) for o in self.options))  # 16 and "16" read alike
        return names[0] if len(names) == 1 else "one of " + "|".join(names)


@dataclass(frozen=True)
class Text:
    """A non-empty string (Hydra reads ``key=123`` as an int: allowed with ``numbers``)."""
    numbers: bool = False

    def allows(self, value) -> bool:
        return (isinstance(value, str) and value.strip() != "") or (self.numbers and is_int(value))

    what = "a non-empty string"


@dataclass(frozen=True)
class Null:
    def allows(self, value) -> bool:
        return value is None

    what = "null"


@dataclass(frozen=True)
class ListOf:
    """A list of ``lo_len..hi_len`` items, each allowed by ``item``."""
    item: object
    lo_len: int = 1
    hi_len: int | None = None
    example: str = ""

    def allows(self, value) -> bool:
        value = plain(value)
        return isinstance(value, (list, tuple)) and len(value) >= self.lo_len and \
            (self.hi_len is None or len(value) <= self.hi_len) and \
            all(self.item.allows(v) for v in value)

    @property
    def what(self) -> str:
        n = (f"{self.lo_len}" if self.hi_len == self.lo_len else
             f"{self.lo_len}+" if self.hi_len is None else f"{self.lo_len}..{self.hi_len}")
        return f"a list of {n} values, each {self.item.what}" + (f", like {self.example}"
                                                        if self.example else "")


class Either:
    """Any of several specs (``Either(Null(), Int(1))``: null or a positive integer)."""

    def __init__(self, *specs) -> None:
        # flattened, so that the message lists "null, an integer >= 1 or ..." in one sentence
        self.specs = tuple(t for s in specs for t in (s.specs if isinstance(s, Either) else (s,)))

    def allows(self, value) -> bool:
        return any(s.allows(value) for s in self.specs)

    @property
    def what(self) -> str:
        names = [s.what for s in self.specs]
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def nullable(spec) -> Either:
    return Either(Null(), spec)


def check(key: str, value, spec, hint: str = ""):
    """``value`` if ``spec`` allows it, else ``ValueError("<key> must be <what>, got <value>")``
    (``hint``: what the values mean or a typical one, appended in parentheses)."""
    if spec.allows(value):
        return value
    raise ValueError(f"{key} must be {spec.what}, got {plain(value)!r}" +
                     (f" ({hint})" if hint else ""))


def check_cap(key: str, value: int, amount: int, cap: int, unit: str, fix: str) -> None:
    """Refuse ``key=value`` whose ``amount`` (e.g. values held in memory) exceeds ``cap``."""
    if amount > cap:
        raise ValueError(f"{key}={value} needs {amount:,} {unit}, over the cap of {cap:,}: "
                         f"{fix}")


def numbers(key: str, value, minimum: float | None = None,
            example: str = "[1.0,0.8]") -> tuple[float, ...]:
    """A non-empty list of finite numbers (``>= minimum`` if given), as floats."""
    item = Real(lo=minimum)
    if not ListOf(item).allows(value):
        what = "a list of finite numbers" + (f" >= {minimum:g}" if minimum is not None else "")
        raise ValueError(f"{key} must be {what} like {example}, got {plain(value)!r}")
    return tuple(float(v) for v in value)
