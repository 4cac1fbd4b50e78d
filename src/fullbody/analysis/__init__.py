"""Error analysis of predictions against ground truth, part by part (hands above all)."""
