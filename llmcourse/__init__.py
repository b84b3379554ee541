"""Plumbing the course notebooks share, unit-tested; the lines a learner must see stay in the notebooks."""
