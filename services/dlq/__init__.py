"""Dead letters: reading them without personal data and re-publishing them (`govsync dlq`)."""
