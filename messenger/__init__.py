"""The Facebook Messenger (and Instagram direct messages) adapter: webhook in, Channel.send out."""
