"""The compare() runner: plans, clients, scorers, statistics, results."""
