"""Non-blocking UDP socket with batched send/receive (GSO/GRO when available).

How this works
--------------
Drivers (``transport.threaded``, ``transport.aio``) move datagrams in batches:
``Endpoint.datagrams_to_send`` returns a list, and a readable socket usually
holds many datagrams. :class:`UdpSocket` turns those batches into as few system
calls as the kernel allows:

* **Send (UDP GSO).** Consecutive datagrams to the same address whose sizes
  are all equal except a shorter last one are concatenated and handed to one
  ``sendmsg`` with a ``UDP_SEGMENT`` control message (Linux >= 4.18); the
  kernel (or NIC) cuts the buffer back into datagrams. A group is bounded by
  :data:`MAX_GSO_SEGMENTS` segments and :data:`MAX_GSO_BYTES` bytes. Anything
  else goes out with plain ``sendto``.
* **Receive (UDP GRO).** With ``UDP_GRO`` enabled the kernel may deliver
  several datagrams of one flow as one "super-buffer" plus a control message
  giving the segment size; :meth:`UdpSocket.recv_batch` splits it again,
  :meth:`UdpSocket.recv_groups` hands it over uncut (with the segment size)
  for ``Endpoint.receive_groups``, which opens bulk packets where they lie.
* **Run-time detection.** Both options are probed with ``setsockopt`` when the
  socket is created; if the kernel refuses (or a GSO send later fails with
  ``EIO``/``EINVAL``) the socket silently falls back to plain calls.
  ``gso=False`` / ``gro=False`` force the fallback (tests, benchmarks).
* **ICMP errors.** ``IP_RECVERR`` / ``IPV6_RECVERR`` make the kernel report
  "port unreachable" on an unconnected socket too. The error queue is drained
  (so ``poll`` does not spin on ``POLLERR``) and each report becomes a
  :class:`~transport.errors.PortUnreachableError` carrying the address that
  refused. Datagrams read before the error are returned first; the error is
  raised by the next :meth:`~UdpSocket.recv_batch`.
* **ECN.** With ``ecn=True`` the TOS / traffic class byte of each received
  datagram is read (``IP_RECVTOS`` / ``IPV6_RECVTCLASS``) and counted in
  :attr:`UdpSocket.ecn_counts` (RFC 3168 codepoints: Not-ECT, ECT(1), ECT(0),
  CE); :attr:`UdpSocket.recv_ecn` holds the codepoint of each datagram the
  last :meth:`~UdpSocket.recv_batch` returned (for ``receive_datagram(ecn=)``).
  :meth:`UdpSocket.send_batch_ecn` sends ``(data, addr, codepoint)`` triples,
  setting ``IP_TOS`` / ``IPV6_TCLASS`` once per run of equal codepoints.

Addresses are ``(host, port)`` tuples for both families (IPv6 flow info and
scope are dropped, as the sans-IO core keys paths by ``(host, port)``).
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import operator
import socket
import struct
from collections import deque
from collections.abc import Sequence
from itertools import groupby
from typing import Any

from transport.errors import ConfigurationError, NetworkError, PortUnreachableError

__all__ = ["MAX_GSO_BYTES", "MAX_GSO_SEGMENTS", "Address", "UdpSocket"]

Address = tuple[str, int]

SOL_UDP = 17
UDP_SEGMENT = int(getattr(socket, "UDP_SEGMENT", 103))
UDP_GRO = int(getattr(socket, "UDP_GRO", 104))
IP_RECVERR = int(getattr(socket, "IP_RECVERR", 11))
IPV6_RECVERR = int(getattr(socket, "IPV6_RECVERR", 25))
IP_RECVTOS = int(getattr(socket, "IP_RECVTOS", 13))
IP_TOS = int(getattr(socket, "IP_TOS", 1))
IPV6_RECVTCLASS = int(getattr(socket, "IPV6_RECVTCLASS", 66))
IPV6_TCLASS = int(getattr(socket, "IPV6_TCLASS", 67))
MSG_ERRQUEUE = int(getattr(socket, "MSG_ERRQUEUE", 0x2000))
SO_RCVBUFFORCE = int(getattr(socket, "SO_RCVBUFFORCE", 33))
SO_SNDBUFFORCE = int(getattr(socket, "SO_SNDBUFFORCE", 32))

#: Most segments per GSO send (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels).
MAX_GSO_SEGMENTS = 64
#: A batch of at most this many blocks of equal-sized datagrams is sent block by
#: block at C speed (more blocks: one datagram at a time).
MAX_UNIFORM_BLOCKS = 8
#: Most bytes per GSO send (below the 65507-byte IPv4 UDP payload limit).
MAX_GSO_BYTES = 65000
#: Receive buffer per recvmsg call: one GRO super-buffer or one datagram.
RECV_BUFFER_BYTES = 65536
MAX_ERRORS_QUEUED = 64

_SOCK_EXTENDED_ERR = struct.Struct("=IBBBBII")
_GSO_SIZE = struct.Struct("=H")
_INT = struct.Struct("=i")
_UNREACHABLE_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}
)
_RETRY_PLAIN_ERRNOS = frozenset({errno.EIO, errno.EINVAL, errno.EOPNOTSUPP})
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)
_third = operator.itemgetter(2)


def _family_of(host: str) -> socket.AddressFamily:
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
        if not infos:  # pragma: no cover - getaddrinfo raises instead
            raise ConfigurationError(f"cannot resolve {host!r}") from None
        return infos[0][0]


class UdpSocket:
    """A non-blocking UDP socket that sends and receives lists of datagrams."""

    __slots__ = (
        "_errors",
        "_send_tos",
        "_sock",
        "_v6",
        "ecn",
        "ecn_counts",
        "family",
        "gro_supported",
        "gso_supported",
        "recv_buffer_bytes",
        "recv_ecn",
    )

    def __init__(
        self,
        bind: Address = ("127.0.0.1", 0),
        *,
        family: socket.AddressFamily | None = None,
        reuse_port: bool = False,
        buffer_bytes: int = 4 * 1024 * 1024,
        gso: bool = True,
        gro: bool = True,
        ecn: bool = False,
        recv_buffer_bytes: int = RECV_BUFFER_BYTES,
    ) -> None:
        if buffer_bytes < 1 or recv_buffer_bytes < 1200:
            raise ConfigurationError("buffer_bytes must be positive and recv_buffer_bytes >= 1200")
        self.family = family if family is not None else _family_of(bind[0])
        self._v6 = self.family == socket.AF_INET6
        self.recv_buffer_bytes = recv_buffer_bytes
        self._errors: deque[NetworkError] = deque(maxlen=MAX_ERRORS_QUEUED)
        #: received datagrams per ECN codepoint: [Not-ECT, ECT(1), ECT(0), CE]
        self.ecn_counts = [0, 0, 0, 0]
        #: with ``ecn``: the codepoint of each datagram of the last recv_batch
        self.recv_ecn: list[int] = []
        self._send_tos = 0
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        self._sock = sock
        try:
            sock.setblocking(False)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self._set_buffers(buffer_bytes)
            if self._v6:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            with contextlib.suppress(OSError):
                if self._v6:
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVERR, 1)
                else:
                    sock.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
            self.gso_supported = gso and self._try_option(SOL_UDP, UDP_SEGMENT, 0)
            self.gro_supported = gro and self._try_option(SOL_UDP, UDP_GRO, 1)
            self.ecn = ecn and (
                self._try_option(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
                if self._v6
                else self._try_option(socket.IPPROTO_IP, IP_RECVTOS, 1)
            )
            sock.bind(bind)
        except BaseException:
            sock.close()
            raise

    # ------------------------------------------------------------ properties
    def fileno(self) -> int:
        return self._sock.fileno()

    @property
    def local_address(self) -> Address:
        addr = self._sock.getsockname()
        return (addr[0], addr[1])

    @property
    def socket(self) -> socket.socket:
        """The underlying socket (for event loops that want the object)."""
        return self._sock

    @property
    def closed(self) -> bool:
        return self._sock.fileno() < 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> UdpSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = "closed" if self.closed else f"{self.local_address}"
        return f"<UdpSocket {where} gso={self.gso_supported} gro={self.gro_supported}>"

    # ------------------------------------------------------------------ send
    def send_batch(self, datagrams: list[tuple[bytes, Address]]) -> int:
        """Send datagrams in order; return how many went out before the socket
        buffer was full (``EAGAIN``). The caller keeps the rest for later.

        Datagrams whose destination reports an error on send (unreachable,
        refused) are counted as sent (UDP gives no delivery promise) and the
        error is queued for :meth:`recv_batch`.
        """
        return self._send(datagrams)

    def _send(self, datagrams: Sequence[tuple[Any, ...]]) -> int:
        """:meth:`send_batch` of items whose first two fields are data and
        address (the ECN triples of :meth:`send_batch_ecn` too, unconverted)."""
        count = len(datagrams)
        if self.gso_supported and count > 2:
            # the bulk case -- one address, equal sizes but maybe a shorter last
            # one -- is checked and cut into groups at C speed
            datas = list(map(_first, datagrams))
            size = len(datas[0])
            sizes = list(map(len, datas))
            addr = datagrams[0][1]
            if list(map(_second, datagrams)).count(addr) == count:
                equal = sizes.count(size)
                if equal == count or (equal == count - 1 and sizes[-1] < size):
                    return self._send_uniform(datas, size, sizes[-1], addr)
                # a few blocks of equal sizes (packet-number lengths grow by a
                # byte within a batch): each block as a uniform batch
                blocks = [(n, len(list(group))) for n, group in groupby(sizes)]
                if len(blocks) <= MAX_UNIFORM_BLOCKS and min(b[1] for b in blocks[:-1]) > 1:
                    return self._send_blocks(datas, blocks, addr)
        return self._send_general(datagrams)

    def _send_blocks(self, datas: list[bytes], blocks: list[tuple[int, int]],
                     addr: Address) -> int:
        """:meth:`send_batch` of ``datas`` to one address as consecutive blocks of
        ``(size, count)``, each sent as :meth:`_send_uniform` sends it."""
        start = 0
        for size, count in blocks:
            if not self.gso_supported:  # a block found GSO unusable: plain from here
                return start + self._send_general([(d, addr) for d in datas[start:]])
            sent = self._send_uniform(datas[start : start + count], size, size, addr)
            start += sent
            if sent < count:
                return start
        return start

    def _send_general(self, datagrams: Sequence[tuple[Any, ...]]) -> int:
        """:meth:`send_batch` for any mix of sizes and addresses."""
        count = len(datagrams)
        i = 0
        sock = self._sock
        while i < count:
            item = datagrams[i]
            data, addr = item[0], item[1]
            j = i + 1
            if self.gso_supported:
                size = len(data)
                total = size
                # extend the group while the next datagram goes to the same
                # address and is no larger (a shorter one ends the group)
                while j < count and j - i < MAX_GSO_SEGMENTS:
                    item = datagrams[j]
                    nxt, nxt_addr = item[0], item[1]
                    n = len(nxt)
                    if nxt_addr != addr or n > size or total + n > MAX_GSO_BYTES:
                        break
                    total += n
                    j += 1
                    if n < size:
                        break
            try:
                if j - i > 1:
                    # one iovec per datagram: the kernel gathers them (no join copy)
                    sock.sendmsg(list(map(_first, datagrams[i:j])),
                                 [(SOL_UDP, UDP_SEGMENT, _GSO_SIZE.pack(len(data)))], 0, addr)
                else:
                    sock.sendto(data, addr)
            except BlockingIOError:
                return i
            except OSError as exc:
                if exc.errno in _RETRY_PLAIN_ERRNOS and j - i > 1:
                    self.gso_supported = False  # kernel or device cannot segment
                    continue
                if self._send_failed(exc, addr):
                    return i
            i = j
        return i

    def _send_failed(self, exc: OSError, addr: Address) -> bool:
        """A send to ``addr`` failed for a reason other than GSO's refusal:
        True when the caller stops here (the kernel's buffers are full); an
        unreachable peer is reported through the error queue and its datagrams
        are skipped (False); anything else raises NetworkError."""
        if exc.errno in _UNREACHABLE_ERRNOS:
            self._drain_error_queue(exc, addr)
            return False
        if exc.errno in (errno.ENOBUFS, errno.ENOMEM):
            return True
        raise NetworkError(f"sendto {addr}: {exc.strerror}") from exc

    def send_batch_ecn(self, datagrams: list[tuple[bytes, Address, int]]) -> int:
        """:meth:`send_batch` for ``(data, addr, ecn_codepoint)`` triples: each
        run of equal codepoints goes out with that codepoint in the IP header
        (the socket's TOS / traffic class is changed only between runs)."""
        sent = 0
        count = len(datagrams)
        codepoints = list(map(_third, datagrams))
        # the common batch (one connection's datagrams) has one codepoint: one
        # run, found and sent without a per-datagram loop or conversion
        uniform = count > 0 and codepoints.count(codepoints[0]) == count
        while sent < count:
            codepoint = codepoints[sent]
            end = count if uniform else sent + 1
            while end < count and codepoints[end] == codepoint:
                end += 1
            if codepoint != self._send_tos:
                level, option = (
                    (socket.IPPROTO_IPV6, IPV6_TCLASS) if self._v6 else (socket.IPPROTO_IP, IP_TOS)
                )
                with contextlib.suppress(OSError):  # unmarked if the kernel refuses
                    self._sock.setsockopt(level, option, codepoint & 3)
                    self._send_tos = codepoint
            n = self._send(datagrams if uniform else datagrams[sent:end])
            if n < end - sent:  # the socket buffer is full
                return sent + n
            sent = end
        return sent

    def _send_uniform(self, datas: list[bytes], size: int, last_size: int,
                      addr: Address) -> int:
        """:meth:`send_batch` of datagrams to one address, all ``size`` bytes but
        the last (``last_size``): the same GSO groups as the general loop."""
        count = len(datas)
        step = max(1, min(MAX_GSO_SEGMENTS, MAX_GSO_BYTES // size))
        segment = [(SOL_UDP, UDP_SEGMENT, _GSO_SIZE.pack(size))]
        sock = self._sock
        i = 0
        while i < count:
            j = min(i + step, count)
            if (
                j == count - 1
                and last_size < size
                and j - i < MAX_GSO_SEGMENTS
                and (j - i) * size + last_size <= MAX_GSO_BYTES
            ):
                j = count  # a shorter last datagram still fits the group
            try:
                if j - i > 1:
                    sock.sendmsg(datas[i:j], segment, 0, addr)
                else:
                    sock.sendto(datas[i], addr)
            except BlockingIOError:
                return i
            except OSError as exc:
                if exc.errno in _RETRY_PLAIN_ERRNOS and j - i > 1:
                    self.gso_supported = False  # kernel or device cannot segment
                    return i + self._send_general([(d, addr) for d in datas[i:]])
                if self._send_failed(exc, addr):
                    return i
            i = j
        return i

    # --------------------------------------------------------------- receive
    def recv_batch(self, max_datagrams: int = 256) -> list[tuple[bytes, Address]]:
        """Read up to about ``max_datagrams`` waiting datagrams ([] when none).

        Raises :class:`PortUnreachableError` (a :class:`NetworkError`) when the
        kernel reported an ICMP error and no datagram was read in this call.
        """
        groups = self.recv_groups(max_datagrams)
        if not any(map(_second, groups)):  # (no GRO buffer: recv_ecn is per datagram)
            return [(data, addr) for data, _, addr in groups]
        out: list[tuple[bytes, Address]] = []
        codes = self.recv_ecn
        per_datagram: list[int] = []
        for index, (data, segment, addr) in enumerate(groups):
            first = len(out)
            if segment:
                out += [(data[start : start + segment], addr)
                        for start in range(0, len(data), segment)]
            else:
                out.append((data, addr))
            if codes:
                per_datagram += [codes[index]] * (len(out) - first)
        if codes:
            self.recv_ecn = per_datagram
        return out

    def recv_groups(self, max_datagrams: int = 256) -> list[tuple[bytes, int, Address]]:
        """:meth:`recv_batch` without cutting GRO buffers apart: each entry is
        ``(data, segment, addr)``, one datagram (``segment`` 0) or a buffer of
        ``segment``-byte datagrams back to back (the last maybe shorter), for
        :meth:`Endpoint.receive_groups <transport.endpoint.Endpoint.receive_groups>`.
        :attr:`recv_ecn` then holds one codepoint per entry. Reads until about
        ``max_datagrams`` datagrams are in; raises as :meth:`recv_batch`."""
        if self._errors:
            raise self._errors.popleft()
        out: list[tuple[bytes, int, Address]] = []
        sock = self._sock
        v6 = self._v6
        bufsize = self.recv_buffer_bytes
        recv_ecn = self.recv_ecn = []
        try:
            if not self.gro_supported and not self.ecn:
                recvfrom = sock.recvfrom
                while len(out) < max_datagrams:
                    data, addr = recvfrom(bufsize)
                    out.append((data, 0, (addr[0], addr[1]) if v6 else addr))
                return out
            recvmsg = sock.recvmsg
            ancsize = socket.CMSG_SPACE(4) * 2
            count = 0
            while count < max_datagrams:
                data, ancdata, _flags, addr = recvmsg(bufsize, ancsize)
                if v6:
                    addr = (addr[0], addr[1])
                segment = 0
                codepoint = 0
                for level, kind, cdata in ancdata:
                    if level == SOL_UDP and kind == UDP_GRO:
                        segment = _INT.unpack_from(cdata.ljust(4, b"\0"))[0]
                    elif self.ecn:
                        codepoint = self._count_ecn(level, kind, cdata, data, segment)
                if segment and len(data) > segment:
                    out.append((data, segment, addr))
                    count += -(-len(data) // segment)
                else:
                    out.append((data, 0, addr))
                    count += 1
                if self.ecn:
                    recv_ecn.append(codepoint)
        except BlockingIOError:
            return out
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            return out
        except OSError as exc:
            if exc.errno not in _UNREACHABLE_ERRNOS:
                raise NetworkError(f"recv: {exc.strerror}") from exc
            self._drain_error_queue(exc, None)
            if out or not self._errors:
                return out
            raise self._errors.popleft() from None
        return out

    def pending_errors(self) -> list[NetworkError]:
        """Take the queued ICMP errors without raising them."""
        errors = list(self._errors)
        self._errors.clear()
        return errors

    # -------------------------------------------------------------- internals
    def _count_ecn(self, level: int, kind: int, cdata: bytes, data: bytes, segment: int) -> int:
        """Count a received TOS / traffic class; returns its ECN codepoint."""
        if (level == socket.IPPROTO_IP and kind == IP_TOS) or (
            level == socket.IPPROTO_IPV6 and kind == IPV6_TCLASS
        ):
            if not cdata:
                return 0
            tos = cdata[0] if len(cdata) == 1 else _INT.unpack_from(cdata.ljust(4, b"\0"))[0]
            n = -(-len(data) // segment) if segment else 1
            # RFC 3168 codepoint (low two bits) -> [Not-ECT, ECT(1), ECT(0), CE]
            self.ecn_counts[tos & 3] += n
            return int(tos & 3)
        return 0

    def _drain_error_queue(self, exc: OSError, fallback: Address | None) -> None:
        """Turn the kernel's queued ICMP reports into typed errors."""
        sock = self._sock
        found = False
        for _ in range(MAX_ERRORS_QUEUED):
            try:
                _data, ancdata, _flags, addr = sock.recvmsg(1, 512, MSG_ERRQUEUE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            err_no = exc.errno or errno.ECONNREFUSED
            for _level, _kind, cdata in ancdata:
                if len(cdata) >= _SOCK_EXTENDED_ERR.size:
                    err_no = _SOCK_EXTENDED_ERR.unpack_from(cdata)[0] or err_no
            peer = (addr[0], addr[1]) if addr else fallback
            self._errors.append(_make_error(err_no, peer))
            found = True
        if not found:
            self._errors.append(_make_error(exc.errno or errno.ECONNREFUSED, fallback))

    def _set_buffers(self, size: int) -> None:
        sock = self._sock
        pairs = ((SO_RCVBUFFORCE, socket.SO_RCVBUF), (SO_SNDBUFFORCE, socket.SO_SNDBUF))
        for force, plain in pairs:
            try:
                sock.setsockopt(socket.SOL_SOCKET, force, size)
            except OSError:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, plain, size)

    def _try_option(self, level: int, option: int, value: int) -> bool:
        try:
            self._sock.setsockopt(level, option, value)
        except OSError:
            return False
        return True


def _make_error(err_no: int, peer: Address | None) -> NetworkError:
    where = f"{peer[0]}:{peer[1]}" if peer else "peer"
    if err_no == errno.ECONNREFUSED:
        return PortUnreachableError(f"{where}: port unreachable (nothing listening)", peer)
    return NetworkError(f"{where}: {errno.errorcode.get(err_no, err_no)} reported by ICMP", peer)
