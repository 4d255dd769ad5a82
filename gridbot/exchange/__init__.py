"""Venues the runner can trade on. All implement ``base.Exchange``."""
