"""Earshot's Telegram front end (python-telegram-bot) and local terminal chat."""
