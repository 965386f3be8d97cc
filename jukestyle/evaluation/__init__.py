"""Evaluation: the scoreboard of metrics, records, reports, sweeps, scoring and the cards."""
