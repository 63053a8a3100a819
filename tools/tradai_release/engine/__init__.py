"""The GitOps engine: desired state at a commit, live state, plan, apply, deployments and live checks (§7)."""
