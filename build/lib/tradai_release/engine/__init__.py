"""The GitOps engine: desired and live state, plan, apply, deployments (docs/architecture.md §7)."""
