"""PascalStrategy: trend-following on BTC perpetuals, entries filtered by the released models."""

from tradai_release.bot.strategy import ReleasedStrategy


class PascalStrategy(ReleasedStrategy):
    """Rides a trend the position model sees once the signal model expects the next move to pay."""

    stoploss = -0.10
