"""Model training: features, signal/position ensembles, ONNX export, held-out backtest (§6)."""
