"""The WhatsApp Business (Cloud API) adapter: webhook in, Channel.send out (issue 20)."""
