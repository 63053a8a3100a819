"""The bot: the Freqtrade strategy a release runs, its config, its offline exchange and its backtests.

docs/architecture.md §17. Nothing here imports Freqtrade at module level except ``strategy`` (a
Freqtrade ``IStrategy`` cannot be defined without it) and ``backtest``; the rest stays light.
"""
