"""Text: tokenizer, chat templates, tool-call formats."""
