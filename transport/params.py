"""Transport parameters exchanged in the handshake.

How this works
--------------
Each side sends its parameters once, as a sequence of TLV entries
``(id varint, length varint, value)`` (docs/wire-format.md, "Transport
parameters"). Integer values are varints; connection IDs and tokens are raw
bytes; flags (COMPACT_STREAM) have an empty value and are True when present.
Unknown ids are skipped so later versions can add parameters; a known
id that appears twice or holds a malformed value is a
TRANSPORT_PARAMETER_ERROR.
"""

from __future__ import annotations

from dataclasses import dataclass

from transport.errors import RemoteProtocolError, WireError
from transport.wire import encode_varint
from transport.wire._varint_pure import read_varint
from transport.wire.constants import ErrorCode
from transport.wire.constants import TransportParameter as TP

_INT_PARAMS: dict[int, str] = {
    TP.MAX_IDLE_TIMEOUT_MS: "max_idle_timeout_ms",
    TP.MAX_UDP_PAYLOAD_SIZE: "max_udp_payload_size",
    TP.INITIAL_MAX_DATA: "initial_max_data",
    TP.INITIAL_MAX_STREAM_DATA_BIDI_LOCAL: "initial_max_stream_data_bidi_local",
    TP.INITIAL_MAX_STREAM_DATA_BIDI_REMOTE: "initial_max_stream_data_bidi_remote",
    TP.INITIAL_MAX_STREAM_DATA_UNI: "initial_max_stream_data_uni",
    TP.INITIAL_MAX_STREAMS_BIDI: "initial_max_streams_bidi",
    TP.INITIAL_MAX_STREAMS_UNI: "initial_max_streams_uni",
    TP.ACK_DELAY_EXPONENT: "ack_delay_exponent",
    TP.MAX_ACK_DELAY_MS: "max_ack_delay_ms",
    TP.ACTIVE_CONNECTION_ID_LIMIT: "active_connection_id_limit",
    TP.MAX_DATAGRAM_FRAME_SIZE: "max_datagram_frame_size",
    TP.FEC_CAPABILITY: "fec_capability",
    TP.AEAD_ALGORITHM: "aead_algorithm",
}
_BYTES_PARAMS: dict[int, str] = {
    TP.ORIGINAL_DESTINATION_CID: "original_destination_cid",
    TP.STATELESS_RESET_TOKEN: "stateless_reset_token",
    TP.INITIAL_SOURCE_CID: "initial_source_cid",
    TP.RETRY_SOURCE_CID: "retry_source_cid",
}
MAX_PARAMS_BYTES = 4096
#: decoded integer values, shared by every TransportParameters that carries
#: them (peers announce the same few values: a server with thousands of
#: connections keeps one int object per value, not one per connection)
_SHARED_INTS: dict[int, int] = {}
_MAX_SHARED_INTS = 1024
_FLAG_PARAMS: dict[int, str] = {
    TP.COMPACT_STREAM: "compact_stream",
}
_ID_BYTES = {pid: encode_varint(pid) for pid in (*_INT_PARAMS, *_BYTES_PARAMS, *_FLAG_PARAMS)}
_LENGTH_BYTES = {n: encode_varint(n) for n in (1, 2, 4, 8)}


@dataclass(slots=True)
class TransportParameters:
    """Values one side announces. ``None`` means "not sent" (the default applies)."""

    original_destination_cid: bytes | None = None
    stateless_reset_token: bytes | None = None
    initial_source_cid: bytes | None = None
    retry_source_cid: bytes | None = None
    max_idle_timeout_ms: int | None = None
    max_udp_payload_size: int | None = None
    initial_max_data: int | None = None
    initial_max_stream_data_bidi_local: int | None = None
    initial_max_stream_data_bidi_remote: int | None = None
    initial_max_stream_data_uni: int | None = None
    initial_max_streams_bidi: int | None = None
    initial_max_streams_uni: int | None = None
    ack_delay_exponent: int | None = None
    max_ack_delay_ms: int | None = None
    active_connection_id_limit: int | None = None
    max_datagram_frame_size: int | None = None
    fec_capability: int | None = None
    aead_algorithm: int | None = None
    #: the sender accepts compact STREAM frames (docs/wire-format.md 10.25)
    compact_stream: bool = False

    def encode(self) -> bytes:
        out = bytearray()
        for param_id, name in _BYTES_PARAMS.items():
            value = getattr(self, name)
            if value is not None:
                out += _ID_BYTES[param_id] + encode_varint(len(value)) + value
        for param_id, name in _INT_PARAMS.items():
            value = getattr(self, name)
            if value is not None:
                body = encode_varint(value)
                out += _ID_BYTES[param_id] + _LENGTH_BYTES[len(body)] + body
        for param_id, name in _FLAG_PARAMS.items():
            if getattr(self, name):
                out += _ID_BYTES[param_id] + b"\x00"
        return bytes(out)

    @classmethod
    def decode(cls, data: bytes) -> TransportParameters:
        """Parse a TLV list; raise RemoteProtocolError(TRANSPORT_PARAMETER_ERROR)."""
        end = len(data)
        if end > MAX_PARAMS_BYTES:
            raise _param_error("transport parameters too long")
        view = memoryview(data).cast("B")
        params = cls()
        seen: set[int] = set()
        pos = 0
        try:
            while pos < end:
                param_id, pos = read_varint(view, pos, end)
                length, pos = read_varint(view, pos, end)
                stop = pos + length
                if stop > end:
                    raise _param_error("transport parameter overruns its block")
                if param_id in seen:
                    raise _param_error(f"duplicate transport parameter 0x{param_id:x}")
                seen.add(param_id)
                name = _INT_PARAMS.get(param_id)
                if name is not None:
                    number, after = read_varint(view, pos, stop)
                    if after != stop:
                        raise _param_error(f"malformed transport parameter 0x{param_id:x}")
                    shared = _SHARED_INTS.get(number)
                    if shared is not None:
                        number = shared
                    elif len(_SHARED_INTS) < _MAX_SHARED_INTS:
                        _SHARED_INTS[number] = number
                    setattr(params, name, number)
                elif (name := _BYTES_PARAMS.get(param_id)) is not None:
                    setattr(params, name, bytes(view[pos:stop]))
                elif (name := _FLAG_PARAMS.get(param_id)) is not None:
                    if length:
                        raise _param_error(f"transport parameter 0x{param_id:x} has a value")
                    setattr(params, name, True)
                pos = stop
        except WireError as exc:
            raise _param_error(f"malformed transport parameters: {exc}") from exc
        params._validate()
        return params

    def _validate(self) -> None:
        if self.max_udp_payload_size is not None and self.max_udp_payload_size < 1200:
            raise _param_error("max_udp_payload_size below 1200")
        if self.ack_delay_exponent is not None and self.ack_delay_exponent > 20:
            raise _param_error("ack_delay_exponent above 20")
        if self.max_ack_delay_ms is not None and self.max_ack_delay_ms >= 2**14:
            raise _param_error("max_ack_delay_ms too large")
        for name in ("initial_max_streams_bidi", "initial_max_streams_uni"):
            value = getattr(self, name)
            if value is not None and value > 2**60:
                raise _param_error(f"{name} above 2**60")
        token = self.stateless_reset_token
        if token is not None and len(token) != 16:
            raise _param_error("stateless_reset_token must be 16 bytes")
        for name in ("original_destination_cid", "initial_source_cid", "retry_source_cid"):
            value = getattr(self, name)
            if value is not None and len(value) > 20:
                raise _param_error(f"{name} longer than 20 bytes")


def _param_error(reason: str) -> RemoteProtocolError:
    return RemoteProtocolError(ErrorCode.TRANSPORT_PARAMETER_ERROR, reason)
