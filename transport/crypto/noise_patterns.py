"""Noise handshake patterns as data (Noise Protocol Framework rev 34, section 7).

How this works
--------------
Each pattern is written in the spec's own notation, e.g. IK::

    <- s
    ...
    -> e, es, s, ss
    <- e, ee, se

flattened to one line: pre-messages before ``...``, messages separated by ``;``.
:func:`parse_pattern` turns a line into a :class:`HandshakePattern` (pre-message
tokens per side, then the message token lists, which strictly alternate starting
with the initiator). The interpreter in :mod:`transport.crypto.noise` executes
any pattern in this form, so every fundamental pattern (one-way section 7.4,
interactive section 7.5) and every deferred pattern (section 7.6) is available;
this package's handshake uses NK and IK (and optionally XX). PSK modifiers are
not implemented.
"""

from __future__ import annotations

from dataclasses import dataclass

from transport.errors import ConfigurationError

__all__ = ["PATTERNS", "HandshakePattern", "get_pattern", "parse_pattern"]

_TOKENS = frozenset({"e", "s", "ee", "es", "se", "ss"})


@dataclass(frozen=True, slots=True)
class HandshakePattern:
    """One handshake pattern.

    ``initiator_pre`` / ``responder_pre``: public keys known before the handshake
    (tokens ``"e"``/``"s"``) of the initiator and the responder. ``messages``: token
    lists; message ``i`` is sent by the initiator when ``i`` is even.
    """

    name: str
    initiator_pre: tuple[str, ...]
    responder_pre: tuple[str, ...]
    messages: tuple[tuple[str, ...], ...]

    @property
    def one_way(self) -> bool:
        """True for N, K, X: one message, and all transport traffic initiator -> responder."""
        return len(self.messages) == 1


def _split_line(part: str) -> tuple[str, tuple[str, ...]]:
    part = part.strip()
    arrow, _, rest = part.partition(" ")
    if arrow not in ("->", "<-"):
        raise ConfigurationError(f"pattern line must start with -> or <-: {part!r}")
    tokens = tuple(t.strip() for t in rest.split(",") if t.strip())
    for token in tokens:
        if token not in _TOKENS:
            raise ConfigurationError(f"unknown Noise token {token!r}")
    return arrow, tokens


def parse_pattern(name: str, notation: str) -> HandshakePattern:
    """Parse ``"<- s ... -> e, es; <- e, ee"`` into a :class:`HandshakePattern`."""
    pre_text, sep, msg_text = notation.partition("...")
    if not sep:
        pre_text, msg_text = "", notation
    initiator_pre: tuple[str, ...] = ()
    responder_pre: tuple[str, ...] = ()
    for part in pre_text.split(";"):
        if not part.strip():
            continue
        arrow, tokens = _split_line(part)
        if arrow == "->":
            initiator_pre = tokens
        else:
            responder_pre = tokens
    messages: list[tuple[str, ...]] = []
    for i, part in enumerate(msg_text.split(";")):
        arrow, tokens = _split_line(part)
        if arrow != ("->" if i % 2 == 0 else "<-"):
            raise ConfigurationError(f"pattern {name}: messages must alternate from ->")
        messages.append(tokens)
    return HandshakePattern(name, initiator_pre, responder_pre, tuple(messages))


_NOTATION: dict[str, str] = {
    # one-way (section 7.4)
    "N": "<- s ... -> e, es",
    "K": "-> s; <- s ... -> e, es, ss",
    "X": "<- s ... -> e, es, s, ss",
    # interactive, fundamental (section 7.5)
    "NN": "-> e; <- e, ee",
    "NK": "<- s ... -> e, es; <- e, ee",
    "NX": "-> e; <- e, ee, s, es",
    "KN": "-> s ... -> e; <- e, ee, se",
    "KK": "-> s; <- s ... -> e, es, ss; <- e, ee, se",
    "KX": "-> s ... -> e; <- e, ee, se, s, es",
    "XN": "-> e; <- e, ee; -> s, se",
    "XK": "<- s ... -> e, es; <- e, ee; -> s, se",
    "XX": "-> e; <- e, ee, s, es; -> s, se",
    "IN": "-> e, s; <- e, ee, se",
    "IK": "<- s ... -> e, es, s, ss; <- e, ee, se",
    "IX": "-> e, s; <- e, ee, se, s, es",
    # deferred (section 7.6)
    "NK1": "<- s ... -> e; <- e, ee, es",
    "NX1": "-> e; <- e, ee, s; -> es",
    "X1N": "-> e; <- e, ee; -> s; <- se",
    "X1K": "<- s ... -> e, es; <- e, ee; -> s; <- se",
    "XK1": "<- s ... -> e; <- e, ee, es; -> s, se",
    "X1K1": "<- s ... -> e; <- e, ee, es; -> s; <- se",
    "X1X": "-> e; <- e, ee, s, es; -> s; <- se",
    "XX1": "-> e; <- e, ee, s; -> es, s, se",
    "X1X1": "-> e; <- e, ee, s; -> es, s; <- se",
    "K1N": "-> s ... -> e; <- e, ee; -> se",
    "K1K": "-> s; <- s ... -> e, es; <- e, ee; -> se",
    "KK1": "-> s; <- s ... -> e; <- e, ee, se, es",
    "K1K1": "-> s; <- s ... -> e; <- e, ee, es; -> se",
    "K1X": "-> s ... -> e; <- e, ee, s, es; -> se",
    "KX1": "-> s ... -> e; <- e, ee, se, s; -> es",
    "K1X1": "-> s ... -> e; <- e, ee, s; -> se, es",
    "I1N": "-> e, s; <- e, ee; -> se",
    "I1K": "<- s ... -> e, es, s; <- e, ee; -> se",
    "IK1": "<- s ... -> e, s; <- e, ee, se, es",
    "I1K1": "<- s ... -> e, s; <- e, ee, es; -> se",
    "I1X": "-> e, s; <- e, ee, s, es; -> se",
    "IX1": "-> e, s; <- e, ee, se, s; -> es",
    "I1X1": "-> e, s; <- e, ee, s; -> se, es",
}

#: Every supported pattern by name.
PATTERNS: dict[str, HandshakePattern] = {
    name: parse_pattern(name, text) for name, text in _NOTATION.items()
}


def get_pattern(name: str) -> HandshakePattern:
    """The pattern called ``name``; :class:`ConfigurationError` if unsupported (e.g. psk)."""
    try:
        return PATTERNS[name]
    except KeyError:
        raise ConfigurationError(f"unsupported Noise handshake pattern {name!r}") from None
