"""One download with a known sha256, through pooch (the Taskonomy weights and the reference affinities).

pooch streams to a temporary file beside the target, checks the hash, moves
the file into place only when it matches, retries failed downloads
(:data:`RETRIES` more times, waiting 1 s, 2 s, ... between tries) and shows a
progress bar. ``file:`` URLs (a mirror on a shared file system, and the tests)
are copied by :class:`_FileDownloader`, which pooch does not have.

Callers keep their own policy: what counts as a cached copy, what ``offline``
means, and the wording of their errors (:class:`DownloadError` carries
``mismatch`` to tell a wrong hash from an unreachable server).
"""

from __future__ import annotations

import shutil
import urllib.parse
import urllib.request
from pathlib import Path

#: Extra tries after a failed download (network error or wrong hash).
RETRIES = 2


class DownloadError(RuntimeError):
    """A download failed; ``mismatch`` is True when the bytes arrived but their sha256 is wrong."""

    def __init__(self, message: str, *, mismatch: bool = False):
        super().__init__(message)
        self.mismatch = mismatch


class _FileDownloader:
    """pooch downloader for ``file:`` URLs: a plain copy."""

    def __call__(self, url, output_file, pooch, check_only=False):
        source = Path(urllib.request.url2pathname(urllib.parse.urlparse(url).path))
        if check_only:
            return source.is_file()
        with open(source, "rb") as src, open(output_file, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        return None


def fetch(url: str, sha256: str, target: Path, *, progress: bool = False, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``target`` (its folder is created) when its sha256 is ``sha256``.

    Raises :class:`DownloadError`; on any failure nothing is left at ``target``
    (pooch deletes its temporary file).
    """
    import pooch
    import requests

    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if urllib.parse.urlparse(url).scheme == "file":
        downloader = _FileDownloader()
    else:
        downloader = pooch.HTTPDownloader(progressbar=progress, timeout=timeout)
    fetcher = pooch.create(
        path=target.parent,
        base_url="",
        registry={target.name: f"sha256:{sha256}"},
        urls={target.name: url},
        retry_if_failed=RETRIES,
    )
    try:
        return Path(fetcher.fetch(target.name, downloader=downloader))
    except ValueError as exc:
        if "hash" in str(exc).lower():
            raise DownloadError(
                f"downloaded file has the wrong sha256 (expected {sha256}): {exc}", mismatch=True
            ) from exc
        raise DownloadError(str(exc)) from exc
    except (requests.exceptions.RequestException, OSError) as exc:
        raise DownloadError(str(exc)) from exc
