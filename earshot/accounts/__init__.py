"""Dashboard accounts: users, roles, passwords and sessions."""
