"""Reusable widgets: the navigation bar, the filter input, the detail pane, the live panel."""
