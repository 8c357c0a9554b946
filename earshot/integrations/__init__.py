"""Where product teams work: outgoing webhooks, Slack, GitHub and Jira issues."""
