"""User-facing text, one module per audience. Chinese first: this is what people read."""
