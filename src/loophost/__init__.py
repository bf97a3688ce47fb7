"""loophost: one agent session loop, any loop host; your tools run locally."""

__version__ = "0.1.0"
