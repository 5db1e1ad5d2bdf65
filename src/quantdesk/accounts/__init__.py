"""Users, API keys and roles; paper accounts and their cash ledger."""
