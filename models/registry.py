"""Download package archives from the npm registry and PyPI.

The user's own client configuration decides where packages come from: npm's
`registry` (``npm_config_registry`` or ``.npmrc``) and pip's ``index-url``
(``PIP_INDEX_URL`` or ``pip.conf``). Proxies come from the usual ``*_proxy``
variables (urllib reads them) and extra CA bundles from ``SSL_CERT_FILE``,
``REQUESTS_CA_BUNDLE``, ``PIP_CERT`` or ``NODE_EXTRA_CA_CERTS``.
"""

from __future__ import annotations

import configparser
import hashlib
import http.client
import json
import logging
import os
import re
import ssl
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from telerehab.errors import ModelDigestError, RegistryError

logger = logging.getLogger(__name__)

DEFAULT_NPM_REGISTRY = "https://registry.npmjs.org/"
DEFAULT_PYPI_INDEX = "https://pypi.org/simple/"
_CHUNK = 1 << 16
_TIMEOUT_S = 60.0

ProgressFactory = Callable[[str, int | None], "Progress"]


class Progress:
    """A do-nothing progress sink; the CLI passes a tqdm-backed one."""

    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _no_progress(_label: str, _total: int | None) -> Progress:
    return Progress()


# --------------------------------------------------------------------------- config


def _read_npmrc(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = os.path.expandvars(value.strip())
    return values


def npm_registry_url(scope: str | None = None) -> str:
    """The npm registry the user's npm would use for a package in `scope`."""
    for key in ("npm_config_registry", "NPM_CONFIG_REGISTRY"):
        if os.environ.get(key):
            return _with_slash(os.environ[key])
    candidates = [Path.cwd() / ".npmrc", Path.home() / ".npmrc"]
    if os.environ.get("NPM_CONFIG_USERCONFIG"):
        candidates.insert(1, Path(os.environ["NPM_CONFIG_USERCONFIG"]))
    for path in candidates:
        values = _read_npmrc(path)
        if scope and values.get(f"{scope}:registry"):
            return _with_slash(values[f"{scope}:registry"])
        if values.get("registry"):
            return _with_slash(values["registry"])
    return DEFAULT_NPM_REGISTRY


def pypi_index_url() -> str:
    """The package index the user's pip would use (its `index-url`)."""
    if os.environ.get("PIP_INDEX_URL"):
        return _with_slash(os.environ["PIP_INDEX_URL"])
    files = [Path("/etc/pip.conf")]
    xdg = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg")
    files += [Path(d) / "pip" / "pip.conf" for d in xdg.split(":") if d]
    files += [Path.home() / ".pip" / "pip.conf", Path.home() / ".config" / "pip" / "pip.conf"]
    if os.environ.get("VIRTUAL_ENV"):
        files.append(Path(os.environ["VIRTUAL_ENV"]) / "pip.conf")
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    url = DEFAULT_PYPI_INDEX
    for path in files:  # later files override earlier ones, as in pip
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError):
            continue
        for section in ("global", "install", "download"):
            if parser.has_option(section, "index-url"):
                url = parser.get(section, "index-url").split()[0]
    if not url.startswith(("http://", "https://")):
        return DEFAULT_PYPI_INDEX
    return _with_slash(url)


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    for key in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS"):
        cafile = os.environ.get(key)
        if cafile and Path(cafile).is_file():
            context.load_verify_locations(cafile=cafile)
    return context


# --------------------------------------------------------------------------- HTTP


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        parts = parts._replace(netloc=netloc)
    return urllib.parse.urlunsplit(parts)


def _open(url: str, accept: str | None = None):
    request = urllib.request.Request(url, headers={"User-Agent": "telerehab-models"})
    if accept:
        request.add_header("Accept", accept)
    parts = urllib.parse.urlsplit(url)
    if parts.username:  # credentials embedded in a registry URL, as pip and npm allow
        import base64

        token = (
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        )
        request.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        request.full_url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT_S, context=_ssl_context())
    except urllib.error.HTTPError as exc:
        raise RegistryError(f"{_redact(url)}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise RegistryError(f"{_redact(url)}: cannot connect ({reason})") from exc


def get_json(url: str, accept: str = "application/json") -> dict:
    """GET a JSON document; errors name the URL."""
    with _open(url, accept) as response:
        body = response.read()
        content_type = response.headers.get("Content-Type", "")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise RegistryError(
            f"{_redact(url)}: expected JSON, got {content_type or 'unknown'}"
        ) from exc


def download(
    url: str,
    dest_dir: Path,
    *,
    expected_sha256: str | None,
    label: str,
    progress: ProgressFactory | None = None,
) -> Path:
    """Download `url` into a new temporary file in `dest_dir` and return its path.

    The caller owns (and must delete) the returned file. On any failure, the
    partial file is removed before the exception propagates, so an interrupted
    download never leaves anything behind.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=dest_dir)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, _open(url) as response:
            length = response.headers.get("Content-Length")
            bar = (progress or _no_progress)(
                label, int(length) if length and length.isdigit() else None
            )
            received = 0
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                raise RegistryError(
                    f"{_redact(url)}: download interrupted after {received} bytes ({exc!r})"
                ) from exc
            finally:
                bar.close()
            if length and length.isdigit() and received != int(length):
                raise RegistryError(
                    f"{_redact(url)}: download interrupted after {received} of {length} bytes"
                )
        actual = digest.hexdigest()
        if expected_sha256 and actual != expected_sha256:
            raise ModelDigestError(_redact(url), expected_sha256, actual)
        return tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------- npm


def npm_tarball_url(name: str, version: str) -> str:
    """Resolve the tarball URL of `name@version` from the user's npm registry."""
    scope = name.split("/")[0] if name.startswith("@") else None
    registry = npm_registry_url(scope)
    meta_url = registry + name.replace("/", "%2f")
    document = get_json(meta_url)
    try:
        return document["versions"][version]["dist"]["tarball"]
    except KeyError as exc:
        raise RegistryError(f"{_redact(meta_url)}: no version {version} of {name}") from exc


# --------------------------------------------------------------------------- PyPI


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href = dict(attrs).get("href")

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self.links.append((data.strip(), self._href))
            self._href = None


def _platform_rank(filename: str) -> int:
    """Prefer a wheel for this interpreter and OS; any wheel holds the same models."""
    py = f"cp{sys.version_info.major}{sys.version_info.minor}"
    plat = {"linux": "linux", "darwin": "macosx", "win32": "win"}.get(sys.platform, "")
    return (py in filename) * 2 + (plat in filename)


def pypi_wheel(name: str, version: str) -> tuple[str, str | None]:
    """(URL, sha256) of a wheel of `name==version` from the user's package index."""
    index = pypi_index_url()
    project_url = index + re.sub(r"[-_.]+", "-", name).lower() + "/"
    files: list[tuple[str, str, str | None]] = []
    with _open(project_url, "application/vnd.pypi.simple.v1+json, text/html;q=0.1") as response:
        body = response.read()
        content_type = response.headers.get("Content-Type", "")
    if "json" in content_type:
        for entry in json.loads(body).get("files", []):
            files.append((entry["filename"], entry["url"], entry.get("hashes", {}).get("sha256")))
    else:
        parser = _Anchors()
        parser.feed(body.decode("utf-8", "replace"))
        for text, href in parser.links:
            url, _, fragment = href.partition("#")
            sha = fragment.split("=", 1)[1] if fragment.startswith("sha256=") else None
            files.append((text or url.rsplit("/", 1)[-1], url, sha))
    prefix = f"{name.replace('-', '_')}-{version}-"
    wheels = [f for f in files if f[0].startswith(prefix) and f[0].endswith(".whl")]
    if not wheels:
        raise RegistryError(f"{_redact(project_url)}: no wheel of {name}=={version}")
    _filename, url, sha = max(wheels, key=lambda f: _platform_rank(f[0]))
    return urllib.parse.urljoin(project_url, url), sha
