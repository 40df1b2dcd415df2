"""Session readers, one module per concern."""
