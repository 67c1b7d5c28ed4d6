"""Cryptographic building blocks of the transport (sans-IO, no hidden randomness).

* :mod:`transport.crypto.noise` -- Noise Protocol Framework handshake (rev 34).
* :mod:`transport.crypto.aead` -- packet protection, key update, header protection.
* :mod:`transport.crypto.tokens` -- retry tokens, stateless reset tokens, retry tag.
* :mod:`transport.crypto.keys` -- X25519 key pairs: generate, save, load.

Each module documents its own API; nothing is re-exported here so that importing
the package stays cheap.
"""
