"""logwatch: point it at a log directory and it tells you which lines are anomalous, and why."""

__version__ = "0.1.0"
