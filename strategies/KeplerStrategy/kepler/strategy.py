"""KeplerStrategy: mean reversion on ETH and SOL perpetuals, entries filtered by the released models."""

from tradai_release.bot.strategy import ReleasedStrategy


class KeplerStrategy(ReleasedStrategy):
    """Mean reversion gives up sooner when it is wrong: a tighter stop than the trend strategies'."""

    stoploss = -0.06
