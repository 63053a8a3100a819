"""MyStrategy: momentum on BTC and ETH perpetuals, entries filtered by the released models."""

from tradai_release.bot.strategy import ReleasedStrategy


class MyStrategy(ReleasedStrategy):
    """Momentum enters only on a confident signal and leaves as soon as the signal fades."""

    entry_threshold = 0.55
    stoploss = -0.08
