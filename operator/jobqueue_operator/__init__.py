"""The jobqueue Kubernetes operator: pure decisions and manifest builders, with thin kopf handlers."""
