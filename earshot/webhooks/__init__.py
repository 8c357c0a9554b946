"""Inbound webhooks shared by channel adapters (Meta's Graph API: WhatsApp, Messenger)."""
