"""Outreach: what Earshot sends on its own (campaign asks, notices) and the inbox kept
during a handoff."""
