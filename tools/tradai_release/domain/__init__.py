"""Rules several workflows share: the gate, pins, diffs, bundles, notifications, PSI monitoring."""
