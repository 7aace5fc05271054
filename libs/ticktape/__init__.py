"""ticktape shared kernel: event contracts, subjects, bus shell, config, infra and test kit."""

__version__ = "0.1.0"
