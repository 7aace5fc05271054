"""Tools for developing ticktape itself: gates and ratchets that `just` recipes and tests run."""
