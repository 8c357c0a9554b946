"""X (Twitter) direct messages: the Account Activity webhook and the DM sender (issue 20)."""
