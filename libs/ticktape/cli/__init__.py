"""The `ticktape` command."""
