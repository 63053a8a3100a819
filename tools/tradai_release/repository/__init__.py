"""The repository model: the release tree at a commit, its manifests, strategies, policy and environments."""
