"""The Freqtrade strategy every released strategy runs: features, then the signal and position models decide.

A strategy's entry point (``tradai.yaml`` ``strategy.entry_point``, e.g. ``pascal.strategy:PascalStrategy``)
is a subclass in the strategy's folder; it may change the thresholds and the risk settings below, and
inherits the rest. The decisions (docs/architecture.md §17):

* enter long on a closed candle when the signal model's P(up move above the threshold) and the position
  model's P(price higher at its horizon) are both above ``entry_threshold``;
* exit when both are below ``exit_threshold``; a stop loss bounds a trade the models keep open;
* every entry is tagged with the release's ``entry_tag`` (the model name and version), so a trade in
  Freqtrade's database names the model that opened it.

The models and the tag come from the ``tradai`` section of the Freqtrade config the runtime renders
(``bot.config``); a backtest in training passes the freshly exported models the same way.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

from freqtrade.strategy import IStrategy

from tradai_release.bot.features import WARMUP_ROWS
from tradai_release.bot.models import ENTRY_THRESHOLD, EXIT_THRESHOLD

logger = logging.getLogger(__name__)

SECTION = "tradai"
"""The Freqtrade config key of the release's own values (``models_dir``, ``entry_tag``)."""
SIGNAL_COLUMN = "tradai_signal"
POSITION_COLUMN = "tradai_position"


class ReleasedStrategy(IStrategy):  # Freqtrade ships no type information: IStrategy is Any to mypy
    """Trades one release's models: long when both models agree on up, flat when both turn."""

    INTERFACE_VERSION = 3
    timeframe = "1h"  # the rendered config's timeframe (tradai.yaml) replaces it
    can_short = False
    # Exits come from the models; the ROI table is out of reach on purpose (a 10000 % return).
    minimal_roi: ClassVar[dict[str, float]] = {"0": 100.0}
    stoploss = -0.10
    use_exit_signal = True
    exit_profit_only = False
    process_only_new_candles = True
    startup_candle_count = WARMUP_ROWS

    entry_threshold = ENTRY_THRESHOLD
    exit_threshold = EXIT_THRESHOLD

    def bot_start(self, **kwargs: Any) -> None:
        """Load the release's models once, before the first candle is analysed."""
        from tradai_release.bot.models import ReleasedModels

        section = self.config.get(SECTION) or {}
        if "models_dir" not in section:
            raise ValueError(
                f"the Freqtrade config has no {SECTION}.models_dir: render it with tradai_release"
            )
        self.models = ReleasedModels.load(Path(section["models_dir"]))
        self.entry_tag = str(section.get("entry_tag") or "unversioned")
        # The line an operator (and the demo) reads to know which release a bot runs.
        logger.info(
            "%s: trading %s with the models in %s", type(self).__name__, self.entry_tag, self.models.directory
        )

    def version(self) -> str | None:
        """What the bot says it runs (Freqtrade's REST ``show_config`` ``strategy_version``, read by
        ``invoke observe``): ``<model> v<N> files <sha256>`` from the config the runtime rendered."""
        section = self.config.get(SECTION) or {}
        tag = str(section.get("entry_tag") or "unversioned")
        files = str(section.get("files_sha256") or "")
        return f"{tag} files {files}" if files else tag

    def populate_indicators(self, dataframe: Any, metadata: dict[str, Any]) -> Any:
        """The models' features and both probabilities for every candle (NaN until the features are warm)."""
        signal, position = self.models.probabilities(dataframe, time="date")
        dataframe[SIGNAL_COLUMN] = signal
        dataframe[POSITION_COLUMN] = position
        return dataframe

    def populate_entry_trend(self, dataframe: Any, metadata: dict[str, Any]) -> Any:
        enter = (dataframe[SIGNAL_COLUMN] > self.entry_threshold) & (
            dataframe[POSITION_COLUMN] > self.entry_threshold
        )
        dataframe.loc[enter, ["enter_long", "enter_tag"]] = (1, self.entry_tag)
        return dataframe

    def populate_exit_trend(self, dataframe: Any, metadata: dict[str, Any]) -> Any:
        leave = (dataframe[SIGNAL_COLUMN] < self.exit_threshold) & (
            dataframe[POSITION_COLUMN] < self.exit_threshold
        )
        dataframe.loc[leave, "exit_long"] = 1
        return dataframe
