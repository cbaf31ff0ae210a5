"""Pseudonymous patient codes for exports: `P-` and 12 base-32 characters of
HMAC-SHA256(key, patient id). The same patient always gets the same code under
one key, and nobody without the key can tell whose it is or guess it from an
id. The key is the `pseudonym_key` setting, else a random one kept (mode 0600)
in the data folder on first use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from telerehab.settings import Settings

logger = logging.getLogger(__name__)
KEY_FILE = "pseudonym.key"


def load_key(settings: Settings) -> bytes:
    """The pseudonym key: the setting, else the data folder's key file (made
    on first use, written whole or not at all)."""
    if settings.pseudonym_key is not None:
        return settings.pseudonym_key.get_secret_value().encode()
    path = Path(settings.data_dir) / KEY_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # another process may have made one first: keep theirs
            logger.info("made a new pseudonym key in %s", path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()


def pseudonym(key: bytes, patient_id: int) -> str:
    """The patient's code, e.g. `P-K3M9Q2WX7T4B`."""
    digest = hmac.new(key, f"telerehab:patient:{patient_id}".encode(), hashlib.sha256).digest()
    return "P-" + base64.b32encode(digest).decode()[:12]
