"""The GetProviderSchema response kept on disk, named by a hash of what generates it.

Terraform's first plugin start of a run asks for the schema and nothing else; a cold start that finds the
response here answers it without importing the protocol stubs, the provider or jsonschema. The name
hashes the content of every input (the schema documents, the generator, the tf package's schema code),
so an edit to any of them is a different file, built afresh on first use. `cloudbackup provider install`
builds it.
"""

from __future__ import annotations

import os
import sys

# Kept to os.path: a cold start imports this module before anything else it serves.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_GENERATOR = ("provider/schema.py", "provider/types.py", "contract/documents.py")
_TF_FILES = ("tf/schema.py", "tf/types.py", "tf/gen/tfplugin_pb2.py")


def _inputs() -> list[str]:
    paths = [os.path.join(ROOT, relative) for relative in _GENERATOR]
    # contract/schemas/ beside provider/: where a checkout and a wheel alike put the package data.
    documents = os.path.join(ROOT, "contract", "schemas")
    paths += sorted(
        os.path.join(documents, name)
        for name in os.listdir(documents)
        if name.endswith(".json") and name != "provider.json"
    )
    for relative in _TF_FILES:
        for entry in sys.path:
            candidate = os.path.join(entry, relative)
            if os.path.exists(candidate):
                paths.append(candidate)
                break
        else:
            paths.append(relative)  # not found: its absence is part of the name
    return paths


def _digest() -> str:
    try:
        from _blake2 import blake2b  # what hashlib wraps, without hashlib's OpenSSL import
    except ImportError:
        from hashlib import blake2b
    digest = blake2b(digest_size=16)
    for path in _inputs():
        digest.update(path.encode("utf-8", "surrogateescape") + b"\0")
        try:
            with open(path, "rb") as source:
                content = source.read()
        except OSError:
            content = b"\xff(missing)"
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def path() -> str:
    from provider.runtime import tls

    return os.path.join(tls.cache_dir(), f"schema-{_digest()}.pb")


def response() -> bytes:
    """The serialized GetProviderSchema response: from disk, else built (and kept) once."""
    target = path()
    try:
        with open(target, "rb") as cached:
            return cached.read()
    except OSError:
        pass
    return build(target)


def build(target: str | None = None) -> bytes:
    """Generate the response and keep it on disk (best effort: a read-only cache only costs time)."""
    from provider import schema

    target = target or path()
    data = schema.provider_schema_response()
    try:
        os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
        from contract.files import write_atomic

        write_atomic(target, data)
    except OSError:
        pass
    return data
