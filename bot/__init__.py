"""The Rolecall service: settings, asking, reindexing, answer composition and the command line."""
