"""Insights for product teams: statistics, the digest and exports."""
