"""Feedback: capturing ideas from chats and imports, classifying, asking, triage (logic,
schemas and the SQL for feedback items)."""
