"""Turns the results store into the paper's tables and figure. Reads the store; never runs a model."""
