"""axe-core, the accessibility checker, for the Chromium tests.

Not committed (654 kB of minified third-party code): the pinned release is
fetched once from the npm registry the user's npm uses (the same client code
that fetches the pose weights), its tarball and `axe.min.js` checked against
the SHA-256 digests below, and kept in the user cache folder. Injected into a
page with WebDriver (which the page's Content-Security-Policy does not
govern), it runs the WCAG 2.x A and AA rules and the best practices.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import platformdirs

from telerehab.models.registry import download, npm_tarball_url

PACKAGE, VERSION = "axe-core", "4.14.1"
TARBALL_SHA256 = "e6b0ce02b84d892e2e33e403485e7f3d6c29e2be6df65daf44d89ba564139745"
SCRIPT_SHA256 = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def axe_script(cache: Path | None = None) -> str:
    """The verified source of axe.min.js, downloaded into `cache` if absent."""
    folder = cache or Path(platformdirs.user_cache_dir("telerehab")) / f"{PACKAGE}-{VERSION}"
    path = folder / "axe.min.js"
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != SCRIPT_SHA256:
        url = npm_tarball_url(PACKAGE, VERSION)
        tmp = download(url, folder, expected_sha256=TARBALL_SHA256, label=PACKAGE)
        try:
            with tarfile.open(fileobj=io.BytesIO(tmp.read_bytes()), mode="r:gz") as tar:
                data = tar.extractfile("package/axe.min.js").read()  # a KeyError if absent
        finally:
            tmp.unlink(missing_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        if digest != SCRIPT_SHA256:
            raise RuntimeError(f"{url}: axe.min.js has SHA-256 {digest}, not {SCRIPT_SHA256}")
        part = path.with_suffix(".part")
        part.write_bytes(data)
        part.replace(path)
    return path.read_text(encoding="utf-8")


def violations(driver, script: str) -> list[str]:
    """Run axe on the page in `driver`; one line per violation and element."""
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "if (!window.axe) { (0, eval)(arguments[0]); }"
        "axe.run(document, {runOnly: {type: 'tag', values: arguments[1]},"
        " resultTypes: ['violations']})"
        ".then((r) => done(r.violations.map((v) => ({id: v.id, help: v.help,"
        " nodes: v.nodes.map((n) => n.target.join(' ') + ': ' + n.failureSummary)}))),"
        " (e) => done([{id: 'axe-error', help: String(e), nodes: []}]));",
        script,
        TAGS,
    )
    return [f"{v['id']} ({v['help']}): {node}" for v in found for node in v["nodes"] or [""]]
