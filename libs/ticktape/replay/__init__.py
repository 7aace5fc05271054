"""Recording and replay: session files, per-core verification, what-if runs, republishing.

See docs/determinism.md for the contract the cores keep and what a replay can and cannot prove."""
