"""PSI scores and their levels: the thresholds between stable, moderate and significant, one row per
feature or prediction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tradai_release.core.errors import SettingsError

if TYPE_CHECKING:
    from tradai_release.core.settings import Settings

STABLE, MODERATE, SIGNIFICANT = "stable", "moderate", "significant"
LEVELS: tuple[str, ...] = (STABLE, MODERATE, SIGNIFICANT)
FEATURE, PREDICTION = "feature", "prediction"


@dataclass(frozen=True)
class Thresholds:
    """PSI below ``moderate`` is stable, up to ``significant`` moderate, above it significant."""

    moderate: float = 0.1
    significant: float = 0.25

    @classmethod
    def from_settings(cls, settings: Settings) -> Thresholds:
        moderate, significant = float(settings.drift_moderate), float(settings.drift_significant)
        if not 0 <= moderate <= significant:
            raise SettingsError(
                "drift_significant",
                f"needs 0 <= drift_moderate ({moderate:g}) <= drift_significant ({significant:g})",
            )
        return cls(moderate, significant)

    def level(self, value: float) -> str:
        if value < self.moderate:
            return STABLE
        return MODERATE if value <= self.significant else SIGNIFICANT


@dataclass(frozen=True)
class PsiRow:
    """PSI of one feature, or of one model's predicted probability (``name`` = the model role)."""

    kind: str
    name: str
    psi: float
    level: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "psi": round(self.psi, 6), "level": self.level}
