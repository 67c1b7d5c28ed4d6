"""`transport keygen`: create a key pair for the Noise handshake."""

from __future__ import annotations

import argparse
import sys


def _cmd_keygen(args: argparse.Namespace) -> int:
    """Write a new X25519 key pair: PATH (private, mode 0600) and PATH.pub."""
    import os

    from transport.crypto.keys import generate_keypair, public_key_to_raw, save_keypair
    from transport.errors import KeyFormatError

    private_path = str(args.out)
    public_path = private_path + ".pub"
    existing = [p for p in (private_path, public_path) if os.path.lexists(p)]
    if existing and not args.force:
        print(
            f"transport keygen: {', '.join(existing)} already exist(s); use --force to replace",
            file=sys.stderr,
        )
        return 2
    try:
        for path in existing:
            os.unlink(path)
    except OSError as exc:
        print(f"transport keygen: cannot replace {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    keypair = generate_keypair()
    try:
        save_keypair(keypair, private_path, public_path, fmt=args.format)
    except KeyFormatError as exc:
        if os.path.lexists(private_path) and not os.path.lexists(public_path):
            os.unlink(private_path)  # do not leave half a key pair behind
        print(f"transport keygen: {exc}", file=sys.stderr)
        return 2
    print(public_key_to_raw(keypair.public))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keygen = sub.add_parser(
        "keygen", help="create an X25519 key pair: PATH (private, 0600) and PATH.pub"
    )
    keygen.add_argument("--out", required=True, help="private key file; PATH.pub gets the public")
    keygen.add_argument("--format", choices=("pem", "raw"), default="pem",
                        help="pem: PKCS#8 / SubjectPublicKeyInfo (default); raw: base64 line")
    keygen.add_argument("--force", action="store_true", help="replace existing files")
    keygen.set_defaults(func=_cmd_keygen)
