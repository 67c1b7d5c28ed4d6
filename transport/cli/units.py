"""Parsing of human units on the command line (50mbit, 25ms, 2%)."""

from __future__ import annotations


def parse_rate(text: str) -> float:
    units = {"k": 1e3, "m": 1e6, "g": 1e9}
    value = text.strip().lower().removesuffix("bit").removesuffix("bps")
    if value and value[-1] in units:
        return float(value[:-1]) * units[value[-1]]
    return float(value)


def parse_seconds(text: str) -> float:
    value = text.strip().lower()
    if value.endswith("ms"):
        return float(value[:-2]) / 1000
    return float(value.removesuffix("s"))


def parse_fraction(text: str) -> float:
    value = text.strip()
    if value.endswith("%"):
        return float(value[:-1]) / 100
    return float(value)
