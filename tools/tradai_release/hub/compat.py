"""Whether a models dir can serve a bot: each strategy's model_compat.json against its ml_config features."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from tradai_release.core.errors import ModelCompatError
from tradai_release.core.fsutil import read_json_object

COMPAT_FILE = "model_compat.json"


def check_compat(
    models_dir: Path, strategies: Iterable[str], features: Mapping[str, Sequence[str]] | None, *, where: str
) -> None:
    """Each bundled strategy's model_compat.json is sane and matches ``features`` where given."""
    present = set(strategies)
    for strategy in sorted(present | set(features or {})):
        compat_path = models_dir / strategy / COMPAT_FILE
        if strategy not in present or not compat_path.is_file():
            if features is not None and strategy in features:
                raise ModelCompatError(f"{where}: {strategy}", f"no {COMPAT_FILE} in the bundle")
            continue
        data = read_json_object(compat_path, f"{strategy}/{COMPAT_FILE}")
        count = data.get("feature_count")
        listed = data.get("features")
        if not isinstance(count, int) or isinstance(count, bool):
            raise ModelCompatError(
                f"{where}: {strategy}/{COMPAT_FILE}", f"feature_count is not an integer: {count!r}"
            )
        if isinstance(listed, list) and len(listed) != count:
            raise ModelCompatError(
                f"{where}: {strategy}/{COMPAT_FILE}",
                f"feature_count {count} but {len(listed)} features listed",
            )
        if features is None or strategy not in features:
            continue
        expected = list(features[strategy])
        if count != len(expected):
            raise ModelCompatError(
                f"{where}: {strategy}/{COMPAT_FILE}",
                f"feature_count {count} != {len(expected)} features in ml_config",
            )
        if isinstance(listed, list) and listed != expected:
            diff = next(i for i, (a, b) in enumerate(zip(listed, expected, strict=True)) if a != b)
            raise ModelCompatError(
                f"{where}: {strategy}/{COMPAT_FILE}",
                f"feature {diff} is {listed[diff]!r}, ml_config expects {expected[diff]!r}",
            )

