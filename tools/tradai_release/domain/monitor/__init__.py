"""PSI monitoring: how far a live model's recent inputs and predictions moved from its training data.

Not live drift (a live value changed by hand since the last apply), which the engine's plan finds;
``tradai_release.workflows.drift`` reports the two together.
"""
