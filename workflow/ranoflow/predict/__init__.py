"""Applying trained models: the exported fold ensemble of an experiment, and ratings of new follow-ups."""
