"""Command-line interface: one verb per module, all registered in :mod:`mattekit.cli.main`."""
