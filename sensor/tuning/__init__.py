"""The analyst's tuning: suppression entries and thresholds applied to findings before they are written."""
