"""Chat platform adapters (Slack, Discord): translate platform events to questions and answers to messages."""
