"""What sets a repository sync off from outside: webhook deliveries and GitHub Actions tokens."""
