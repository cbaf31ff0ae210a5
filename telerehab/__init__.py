"""telerehab: computer-vision tele-rehabilitation engine."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("telerehab")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"
