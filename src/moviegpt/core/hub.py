"""Talking to the Hugging Face hub without hanging when it cannot be reached.

huggingface_hub retries an unreachable host for ~45 s per file; we ask once, quickly, and
then either load from the hub, load from the local hub cache, or say plainly what to do.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

OFFLINE_HINT = (
    "work offline with data.source=bundled or a local file, and model.name=scratch or a local save_pretrained directory"
)


@functools.cache
def reachable(timeout: float = 3.0) -> bool:
    """True when the hub endpoint accepts a TCP connection (and HF_HUB_OFFLINE is not set)."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False
