"""Verbs that edit git, train or check: validate, promote, rollback, retrain, bootstrap, drift, provision."""
