"""Conversations: what the channels keep between turns (the customer's row and language,
button payloads, processed updates)."""
