"""Local stand-ins and launchers shared by the tests, the benchmarks and manual trials.

Not a test folder, so `bench/` and `scripts/` can use it without importing tests:
- `telegram_api`: a fake Telegram Bot API server (`python -m testkit.telegram_api`);
- `stack`: starts Rasa, the action server and the bot against that fake;
- `pgtemp`: throwaway PostgreSQL databases with random names;
- `webhook_receiver`, `slack_api`, `trackers` (GitHub, Jira): fakes of the integrations'
  counterparts, on `fakehttp`'s small threaded server;
- `whatsapp_api`, `messenger_api`, `x_api`: fakes of the messaging channels' APIs, on
  `fakechannel` (fakehttp's server, what they sent, webhooks to the adapter).
Nothing in the product (earshot, bot, actions) imports it.
"""
