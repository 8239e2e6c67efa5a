"""One module per OpenAI surface: request schema, handler input mapping, OpenAI response."""
