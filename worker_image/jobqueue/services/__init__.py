"""Long-running processes built from the layers below: scheduler, supervisor, local stack."""
