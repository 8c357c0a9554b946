"""Rasa SDK action server for Earshot: thin adapters from Rasa trackers to the core."""
