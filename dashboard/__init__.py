"""The dashboard service: `rft dashboard RUNS_DIR` serves live reward curves of run folders, joined to the
episodes behind them, read-only (docs/DASHBOARD.md)."""
