from helm.fixtures import helm_bin  # noqa: F401 (fixture, by import)
