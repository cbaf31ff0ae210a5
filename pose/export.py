"""Write landmark and angle tables as CSV, Parquet or JSON (chosen by suffix)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from telerehab.errors import ConfigError

from .estimator import PoseSequence
from .kinematics import Angles
from .landmarks import NAMES

FORMATS = (".csv", ".parquet", ".json")


def landmark_columns(seq: PoseSequence) -> dict[str, np.ndarray]:
    """One column per landmark coordinate: `{name}_x|y|z|visibility`, `world_{name}_x|y|z`."""
    cols = _frame_columns(seq)
    for i, name in enumerate(NAMES):
        for j, axis in enumerate(("x", "y", "z", "visibility")):
            cols[f"{name}_{axis}"] = seq.image[:, i, j]
    for i, name in enumerate(NAMES):
        for j, axis in enumerate(("x", "y", "z")):
            cols[f"world_{name}_{axis}_m"] = seq.world[:, i, j]
    return cols


def angle_columns(seq: PoseSequence, *tables: Angles) -> dict[str, np.ndarray]:
    """Frame columns plus `{name}_deg` (image plane) and `world_{name}_deg` columns."""
    cols = _frame_columns(seq)
    for table in tables:
        prefix = "world_" if table.space == "world" else ""
        for k, name in enumerate(table.names):
            cols[f"{prefix}{name}_deg"] = table.deg[:, k]
    return cols


def _frame_columns(seq: PoseSequence) -> dict[str, np.ndarray]:
    return {
        "frame": seq.index,
        "t_s": seq.t_s,
        "n_people": seq.n_people,
        "detected": seq.detected,
    }


def check_output_path(path: str | Path) -> str:
    """The output format of `path` (its lower-case suffix); an unknown one is an error."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(
            f"{path}: unknown output format {suffix!r}; use one of {', '.join(FORMATS)}"
        )
    return suffix


def write_table(columns: dict[str, np.ndarray], path: str | Path, meta: dict) -> Path:
    """Write `columns` to `path`; the suffix picks CSV, Parquet or JSON.

    Missing values (NaN) become empty CSV cells, Parquet nulls and JSON nulls.
    """
    import pyarrow as pa

    suffix = check_output_path(path)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        names = list(columns)
        rows = [
            {n: _json_value(columns[n][i]) for n in names}
            for i in range(len(next(iter(columns.values()))))
        ]
        path.write_text(json.dumps({"meta": meta, "rows": rows}, allow_nan=False), "utf-8")
        return path
    arrays = {
        n: pa.array(c, from_pandas=True)
        if np.issubdtype(np.asarray(c).dtype, np.floating)
        else pa.array(c)
        for n, c in columns.items()
    }
    table = pa.table(arrays).replace_schema_metadata({"telerehab": json.dumps(meta)})
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, path)
    else:
        import pyarrow.csv as pcsv

        pcsv.write_csv(table, path)
    return path


def _json_value(v: object) -> object:
    if isinstance(v, np.bool_ | bool):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    f = float(v)  # type: ignore[arg-type]
    return None if math.isnan(f) else round(f, 6)


def sequence_meta(seq: PoseSequence) -> dict:
    """Provenance stored with every export."""
    from telerehab import __version__

    return {
        "source": seq.source,
        "width": seq.width,
        "height": seq.height,
        "fps": seq.fps,
        "frames": len(seq),
        "backend": seq.backend,
        "variant": seq.variant,
        "complete": seq.complete,
        "warnings": list(seq.warnings),
        "telerehab": __version__,
    }
