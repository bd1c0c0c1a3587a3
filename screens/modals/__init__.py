"""Modal dialogs: confirmations, the lifecycle transition picker, forms, help."""
