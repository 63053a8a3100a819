"""MyStrategy's Freqtrade strategy (tradai.yaml ``strategy.entry_point``)."""
