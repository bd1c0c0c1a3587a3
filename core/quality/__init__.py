"""Model quality from ground truth (confusion matrix, per-class precision/recall/F1 with
intervals, calibration) and drift without labels. ``metrics``, ``calibration`` and ``drift``
are pure; ``rollup`` keeps the hourly counts; ``store`` reads them; ``service`` is the front
door the CLI, the HTTP route, the console and /metrics share."""
